/**
 * CachedMap.peek(): what explain reports as "would come from the cache right now". It must say
 * exactly what lookup() would do, and change nothing while saying it.
 */
import { describe, expect, it } from 'vitest';
import { CachedMap, type CacheOptions } from '../../src/cache/cache-map.js';
import { found, NOTFOUND, temp, type LookupMap, type LookupResult } from '../../src/lookup/result.js';

class Inner implements LookupMap {
  readonly name = 'm';
  calls = 0;
  answer: LookupResult = found(Buffer.from('v'));
  held?: Promise<void>;
  async lookup(): Promise<LookupResult> {
    this.calls++;
    if (this.held) await this.held;
    return this.answer;
  }
}

function setup(over: Partial<CacheOptions> = {}) {
  let t = 1_000_000;
  const inner = new Inner();
  const hits: string[] = [];
  const cache = new CachedMap(
    inner,
    { ttlSec: 10, negativeTtlSec: 5, maxEntries: 100, maxBytes: 1_000_000, staleIfErrorSec: 20, refreshAheadFraction: 0.8, now: () => t, ...over },
    { hit: (_m, k) => hits.push(k), miss: () => hits.push('miss') },
  );
  return { cache, inner, hits, advance: (s: number) => { t += s * 1000; } };
}

const K = Buffer.from('Key@Example.org');

describe('CachedMap.peek', () => {
  it('absent, then fresh with age and time left, then stale, then gone', async () => {
    const { cache, inner, advance } = setup();
    expect(cache.peek(K)).toEqual({ enabled: true, state: 'absent', inFlight: false });
    await cache.lookup(K);
    advance(3);
    expect(cache.peek(K)).toMatchObject({ state: 'fresh', result: { kind: 'found' }, ageMs: 3000, expiresInMs: 7000, refreshAhead: false });
    advance(6);
    expect(cache.peek(K)).toMatchObject({ state: 'fresh', refreshAhead: true });
    advance(2);
    expect(cache.peek(K)).toMatchObject({ state: 'stale', expiresInMs: -1000, staleForMs: 19000 });
    advance(20);
    expect(cache.peek(K).state).toBe('absent');
    expect(inner.calls).toBe(1);
  });

  it('changes nothing: no inner lookup, no hit counted, no refresh started, no entry dropped', async () => {
    const { cache, inner, hits, advance } = setup();
    await cache.lookup(K);
    hits.length = 0;
    advance(9);
    for (let i = 0; i < 3; i++) cache.peek(K);
    expect(hits).toEqual([]);
    expect(inner.calls).toBe(1);
    // A real lookup after the peeks still sees the refresh-ahead moment.
    await cache.lookup(K);
    expect(inner.calls).toBe(2);
    advance(100);
    cache.peek(K);
    expect(cache.size).toBe(1);
  });

  it('keys are the exact request bytes', async () => {
    const { cache } = setup();
    await cache.lookup(K);
    expect(cache.peek(Buffer.from('key@example.org')).state).toBe('absent');
  });

  it('negative answers, in-flight lookups, and a cache that is off', async () => {
    const { cache, inner } = setup();
    inner.answer = NOTFOUND;
    await cache.lookup(K);
    expect(cache.peek(K)).toMatchObject({ state: 'fresh', result: { kind: 'notfound' }, expiresInMs: 5000 });

    let release!: () => void;
    inner.held = new Promise((r) => { release = r; });
    inner.answer = temp('down');
    const other = Buffer.from('other');
    const p = cache.lookup(other);
    expect(cache.peek(other)).toMatchObject({ state: 'absent', inFlight: true });
    release();
    await p;
    expect(cache.peek(other)).toMatchObject({ state: 'absent', inFlight: false });

    const off = setup({ ttlSec: 0, negativeTtlSec: 0 });
    await off.cache.lookup(K);
    expect(off.cache.peek(K)).toEqual({ enabled: false, state: 'absent', inFlight: false });
  });
});
