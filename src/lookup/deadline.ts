import type { LookupContext, ReadyAnswer, ServedMap } from '../contracts/map.js';
import { timeout, type LookupResult } from '../contracts/result.js';

/**
 * Bounds how long a client waits for one answer. Postfix's socketmap client gives up after
 * 100 s and then only knows "temporary error"; answering TIMEOUT well before that keeps the
 * reason visible and frees the client sooner. The lookup itself runs on (its result may still
 * fill the cache); only the answer is cut short.
 *
 * Only lookups that have to wait get a deadline: an answer the map below has ready now is
 * returned without a timer.
 */
export class DeadlineMap<E> implements ServedMap<E> {
  constructor(private readonly inner: ServedMap<E>, private readonly ms: number) {}

  get name(): string {
    return this.inner.name;
  }

  answerNow(key: Buffer, start?: number): ReadyAnswer<E> | undefined {
    return this.inner.answerNow(key, start);
  }

  lookup(key: Buffer, ctx?: LookupContext): Promise<LookupResult> {
    if (this.ms <= 0) return this.inner.lookup(key, ctx);
    const ready = ctx?.lookOnly ? undefined : this.inner.answerNow(key);
    if (ready) return Promise.resolve(ready.result());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ctx?.trace?.deadline?.(this.ms);
        resolve(timeout(`no answer within ${this.ms / 1000} s`));
      }, this.ms);
      this.inner.lookup(key, ctx).then(
        (r) => { clearTimeout(timer); resolve(r); },
        (e: unknown) => { clearTimeout(timer); reject(e); },
      );
    });
  }

  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}
