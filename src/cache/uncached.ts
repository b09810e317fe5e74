import type { LookupContext, LookupMap, ServedMap } from '../contracts/map.js';
import type { LookupResult } from '../contracts/result.js';

/**
 * The chain without a cache (query, explain from the command line): a ServedMap that never has
 * an answer ready, so the wrappers above it stay the same.
 */
export class Uncached<E> implements ServedMap<E> {
  constructor(private readonly inner: LookupMap) {}

  get name(): string {
    return this.inner.name;
  }

  answerNow(): undefined {
    return undefined;
  }

  lookup(key: Buffer, ctx?: LookupContext): Promise<LookupResult> {
    ctx?.trace?.cache?.({ outcome: 'disabled', inFlight: false });
    return this.inner.lookup(key, ctx);
  }

  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}
