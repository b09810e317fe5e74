/**
 * The synchronous hit is a contract the type checker enforces (src/contracts/map.ts): every
 * wrapper between the servers and the cache must be a ServedMap, so one that does not forward
 * answerNow() fails to compile instead of silently making every hit asynchronous. The
 * `@ts-expect-error` lines below are checked by `tsc -p tsconfig.test.json` (part of npm test):
 * if they ever compiled, that check would fail.
 */
import { describe, expect, it } from 'vitest';
import { CachedMap } from '../../src/cache/cache-map.js';
import type { LookupContext, LookupMap, ServedMap } from '../../src/contracts/map.js';
import { found, type LookupResult } from '../../src/contracts/result.js';
import { DeadlineMap } from '../../src/lookup/deadline.js';
import { socketmapAnswers, type SocketmapForm } from '../../src/protocol/socketmap-answers.js';
import type { MapRegistry } from '../../src/server/handlers.js';

/** A new wrapper that only forwards lookup(): what a newcomer might write. */
class LoggingMap implements LookupMap {
  constructor(private readonly inner: LookupMap) {}
  get name(): string {
    return this.inner.name;
  }
  lookup(key: Buffer, ctx?: LookupContext): Promise<LookupResult> {
    return this.inner.lookup(key, ctx);
  }
}

const ldap: LookupMap = { name: 'm', lookup: async () => found(Buffer.from('v')) };
const cache = new CachedMap(ldap, { ttlSec: 60, negativeTtlSec: 60, maxEntries: 10, maxBytes: 1e6, staleIfErrorSec: 0 }, socketmapAnswers());

describe('the synchronous hit through the chain', () => {
  it('a wrapper without answerNow cannot stand between the deadline and the cache, nor be served', async () => {
    // @ts-expect-error: LoggingMap is not a ServedMap (no answerNow)
    const wrongChain = new DeadlineMap(new LoggingMap(cache), 1000);
    // @ts-expect-error: the servers take only ServedMaps
    const wrongRegistry: MapRegistry = { get: () => new LoggingMap(cache), names: () => ['m'] };
    const right: ServedMap<SocketmapForm> = new DeadlineMap(cache, 1000);
    await right.lookup(Buffer.from('k'));
    // Through the right chain the hit is ready synchronously; through the wrong one it is not.
    expect(right.answerNow(Buffer.from('k'))?.encoded).toBe('4:OK v,');
    expect(() => wrongChain.answerNow(Buffer.from('k'))).toThrow(TypeError);
    expect(wrongRegistry.names()).toEqual(['m']);
  });
});
