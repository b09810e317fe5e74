import type { LookupTrace } from './ldap-map.js';
import { timeout, type LookupMap, type LookupResult } from './result.js';

/**
 * Bounds how long a client waits for one answer. Postfix's socketmap client gives up after
 * 100 s and then only knows "temporary error"; answering TIMEOUT well before that keeps the
 * reason visible and frees the client sooner. The lookup itself runs on (its result may still
 * fill the cache); only the answer is cut short.
 */
export class DeadlineMap implements LookupMap {
  constructor(private readonly inner: LookupMap, private readonly ms: number) {}

  get name(): string {
    return this.inner.name;
  }

  lookup(key: Buffer, trace?: LookupTrace): Promise<LookupResult> {
    if (this.ms <= 0) return this.inner.lookup(key, trace);
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
