import type { AnswersNow, CachedAnswer } from '../cache/cache-map.js';
import type { LookupTrace } from './ldap-map.js';
import { timeout, type LookupMap, type LookupResult } from './result.js';

/**
 * Bounds how long a client waits for one answer. Postfix's socketmap client gives up after
 * 100 s and then only knows "temporary error"; answering TIMEOUT well before that keeps the
 * reason visible and frees the client sooner. The lookup itself runs on (its result may still
 * fill the cache); only the answer is cut short.
 *
 * Only lookups that have to wait get a deadline: when the inner map is a cache that holds a
 * fresh answer (AnswersNow), that answer is returned without a timer.
 */
export class DeadlineMap implements LookupMap, AnswersNow {
  constructor(private readonly inner: LookupMap & Partial<AnswersNow>, private readonly ms: number) {}

  get name(): string {
    return this.inner.name;
  }

  /** The inner cache's fresh answer, if any: ready now, so no deadline applies. */
  answerNow(key: Buffer, start?: number): CachedAnswer | undefined {
    return this.inner.answerNow?.(key, start);
  }

  lookup(key: Buffer, trace?: LookupTrace): Promise<LookupResult> {
    if (this.ms <= 0) return this.inner.lookup(key, trace);
    const ready = this.inner.answerNow?.(key);
    if (ready) return Promise.resolve(ready.result());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve(timeout(`no answer within ${this.ms / 1000} s`)), this.ms);
      this.inner.lookup(key, trace).then(
        (r) => { clearTimeout(timer); resolve(r); },
        (e: unknown) => { clearTimeout(timer); reject(e); },
      );
    });
  }

  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}
