/**
 * CachedMap.lookup(key, { lookOnly: true }): what `explain` runs. The cache must make the same
 * decisions a request would meet, report them to the trace, and change nothing while doing so.
 */
import { describe, expect, it } from 'vitest';
import { CachedMap } from '../../src/cache/cache-map.js';
import { type CacheOptions } from '../../src/cache/options.js';
import type { LookupMap } from '../../src/contracts/map.js';
import { found, NOTFOUND, temp, type LookupResult } from '../../src/contracts/result.js';
import type { CacheEvent } from '../../src/contracts/trace.js';
import { socketmapAnswers } from '../../src/protocol/socketmap-answers.js';

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
    socketmapAnswers(),
    { hit: (_m, k) => hits.push(k), miss: () => hits.push('miss') },
  );
  /** Looks without changing anything; returns the answer and what the cache reported. */
  const look = async (key: Buffer) => {
    const events: CacheEvent[] = [];
    const result = await cache.lookup(key, { trace: { cache: (e) => events.push(e) }, lookOnly: true });
    return { result, events };
  };
  return { cache, inner, hits, look, advance: (s: number) => { t += s * 1000; } };
}

const K = Buffer.from('Key@Example.org');

describe('CachedMap looked at without being used (explain)', () => {
  it('absent, then fresh with age and time left, then expired-but-servable, then gone', async () => {
    const { cache, look, advance } = setup();
    expect((await look(K)).events).toEqual([{ outcome: 'miss', inFlight: false }]);
    await cache.lookup(K);
    advance(3);
    let r = await look(K);
    expect(r.events).toEqual([{ outcome: 'hit', inFlight: false, held: { result: found(Buffer.from('v')), ageMs: 3000, expiresInMs: 7000, refreshAhead: false } }]);
    advance(6);
    expect((await look(K)).events[0]!.held).toMatchObject({ refreshAhead: true });
    advance(2);
    r = await look(K);
    expect(r.events[0]).toMatchObject({ outcome: 'miss', held: { expiresInMs: -1000, staleForMs: 19000 } });
    advance(20);
    expect((await look(K)).events).toEqual([{ outcome: 'miss', inFlight: false }]);
  });

  it('changes nothing: no hit counted, no refresh started, nothing stored, no entry dropped', async () => {
    const { cache, inner, hits, look, advance } = setup();
    await cache.lookup(K);
    hits.length = 0;
    advance(9);
    for (let i = 0; i < 3; i++) await look(K);
    expect(hits).toEqual([]);
    expect(inner.calls).toBe(1);
    // A real lookup after the looks still sees the refresh-ahead moment.
    await cache.lookup(K);
    expect(inner.calls).toBe(2);
    // A miss asks the map below, but stores nothing.
    const other = Buffer.from('other');
    expect((await look(other)).result).toEqual(found(Buffer.from('v')));
    expect(inner.calls).toBe(3);
    expect(cache.size).toBe(1);
    advance(100);
    await look(K);
    expect(cache.size).toBe(1);
  });

  it('serves the expired answer when the lookup below fails, as a request would (stale_if_error)', async () => {
    const { cache, inner, look, advance } = setup();
    await cache.lookup(K);
    advance(12);
    inner.answer = temp('down');
    const r = await look(K);
    expect(r.result).toEqual(found(Buffer.from('v')));
    expect(r.events.map((e) => e.outcome)).toEqual(['miss', 'stale']);
    advance(20);
    expect((await look(K)).result).toEqual(temp('down'));
  });

  it('keys are the exact request bytes', async () => {
    const { cache, look } = setup();
    await cache.lookup(K);
    expect((await look(Buffer.from('key@example.org'))).events[0]!.outcome).toBe('miss');
  });

  it('negative answers, in-flight lookups, and a cache that is off', async () => {
    const { cache, inner, look } = setup();
    inner.answer = NOTFOUND;
    await cache.lookup(K);
    expect((await look(K)).events[0]).toMatchObject({ outcome: 'hit', held: { result: { kind: 'notfound' }, expiresInMs: 5000 } });

    let release!: () => void;
    inner.held = new Promise((r) => { release = r; });
    inner.answer = temp('down');
    const other = Buffer.from('other');
    const p = cache.lookup(other);
    const during = look(other);
    release();
    await p;
    expect((await during).events).toEqual([{ outcome: 'miss', inFlight: true }]);
    expect((await look(other)).events).toEqual([{ outcome: 'miss', inFlight: false }]);

    const off = setup({ ttlSec: 0, negativeTtlSec: 0 });
    await off.cache.lookup(K);
    expect((await off.look(K)).events).toEqual([{ outcome: 'disabled', inFlight: false }]);
  });
});
