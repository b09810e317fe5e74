import { describe, expect, it } from 'vitest';
import { CachedMap } from '../../src/cache/cache-map.js';
import { cacheOptionsFrom, ENTRY_OVERHEAD_BYTES, type CacheOptions, type CacheObserver } from '../../src/cache/options.js';
import type { LookupMap } from '../../src/contracts/map.js';
import { found, NOTFOUND, perm, temp, timeout, type LookupResult } from '../../src/contracts/result.js';
import { encodeSocketmapReply, SOCKETMAP_MAX_REPLY } from '../../src/protocol/socketmap.js';
import { socketmapAnswers, type SocketmapForm } from '../../src/protocol/socketmap-answers.js';
import type { ReadyAnswer } from '../../src/contracts/map.js';

/** What the socketmap server writes for a ready answer, and the oversize it reports. */
function sent(a: ReadyAnswer<SocketmapForm>): { reply: string; oversize: number | undefined };
function sent(a: ReadyAnswer<SocketmapForm> | undefined): { reply: string; oversize: number | undefined } | undefined;
function sent(a: ReadyAnswer<SocketmapForm> | undefined): { reply: string; oversize: number | undefined } | undefined {
  if (!a) return undefined;
  return typeof a.encoded === 'string' ? { reply: a.encoded, oversize: undefined } : { reply: a.encoded.reply, oversize: a.encoded.oversize };
}


/** Scripted inner map: answers from `answers` (by key), counts calls, can hold answers back. */
class ScriptedMap implements LookupMap {
  readonly name = 'aliases';
  calls = 0;
  readonly callsByKey = new Map<string, number>();
  answers = new Map<string, LookupResult>();
  fallback: LookupResult = NOTFOUND;
  /** When set, lookups wait until release() is called. */
  held = false;
  private waiting: (() => void)[] = [];

  async lookup(key: Buffer): Promise<LookupResult> {
    this.calls++;
    const k = key.toString('latin1');
    this.callsByKey.set(k, (this.callsByKey.get(k) ?? 0) + 1);
    if (this.held) await new Promise<void>((r) => this.waiting.push(r));
    return this.answers.get(k) ?? this.fallback;
  }

  release(): void {
    this.held = false;
    const w = this.waiting;
    this.waiting = [];
    for (const r of w) r();
  }

  get pending(): number {
    return this.waiting.length;
  }
}

class Clock {
  t = 1_000_000;
  now = (): number => this.t;
  advance(sec: number): void {
    this.t += sec * 1000;
  }
}

interface Recorded {
  lookups: { result: string; source: string }[];
  hits: string[];
  misses: number;
  refreshes: number;
}

function recorder(): { obs: CacheObserver; rec: Recorded } {
  const rec: Recorded = { lookups: [], hits: [], misses: 0, refreshes: 0 };
  return {
    rec,
    obs: {
      lookup: (_m, r, source, seconds) => {
        expect(seconds).toBeGreaterThanOrEqual(0);
        rec.lookups.push({ result: r.kind, source });
      },
      hit: (_m, kind) => rec.hits.push(kind),
      miss: () => { rec.misses++; },
      refresh: () => { rec.refreshes++; },
    },
  };
}

const K = (s: string): Buffer => Buffer.from(s, 'utf8');

function setup(over: Partial<CacheOptions> = {}) {
  const inner = new ScriptedMap();
  const clock = new Clock();
  const { obs, rec } = recorder();
  const cache = new CachedMap(
    inner,
    { ttlSec: 60, negativeTtlSec: 10, maxEntries: 1000, maxBytes: 1_000_000, staleIfErrorSec: 0, refreshAheadFraction: 1, now: clock.now, ...over }, socketmapAnswers(),
    obs);
  return { inner, clock, cache, rec };
}

const flushMicrotasks = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('CachedMap TTLs', () => {
  it('caches FOUND for ttl and asks again after it', async () => {
    const { inner, clock, cache, rec } = setup();
    inner.answers.set('a@x', found(K('b@y')));
    expect(await cache.lookup(K('a@x'))).toEqual(found(K('b@y')));
    clock.advance(59.9);
    expect(await cache.lookup(K('a@x'))).toEqual(found(K('b@y')));
    expect(inner.calls).toBe(1);
    clock.advance(0.1);
    inner.answers.set('a@x', found(K('c@y')));
    expect(await cache.lookup(K('a@x'))).toEqual(found(K('c@y')));
    expect(inner.calls).toBe(2);
    expect(rec.lookups.map((l) => l.source)).toEqual(['ldap', 'cache', 'ldap']);
    expect(rec.hits).toEqual(['fresh']);
    expect(rec.misses).toBe(2);
  });

  it('caches NOTFOUND for the negative ttl only', async () => {
    const { inner, clock, cache, rec } = setup();
    expect((await cache.lookup(K('nobody'))).kind).toBe('notfound');
    clock.advance(9);
    expect((await cache.lookup(K('nobody'))).kind).toBe('notfound');
    expect(inner.calls).toBe(1);
    clock.advance(1);
    inner.answers.set('nobody', found(K('now@exists')));
    expect(await cache.lookup(K('nobody'))).toEqual(found(K('now@exists')));
    expect(inner.calls).toBe(2);
    expect(rec.hits).toEqual(['negative']);
  });

  it('ttl 0 disables caching of that kind only', async () => {
    const { inner, cache } = setup({ ttlSec: 0, negativeTtlSec: 30 });
    inner.answers.set('a', found(K('v')));
    await cache.lookup(K('a'));
    await cache.lookup(K('a'));
    expect(inner.callsByKey.get('a')).toBe(2);
    await cache.lookup(K('n'));
    await cache.lookup(K('n'));
    expect(inner.callsByKey.get('n')).toBe(1);
    expect(cache.size).toBe(1);
  });

  it('both ttls 0: nothing cached, lookups still coalesced', async () => {
    const { inner, cache } = setup({ ttlSec: 0, negativeTtlSec: 0 });
    inner.held = true;
    const all = Promise.all([cache.lookup(K('a')), cache.lookup(K('a'))]);
    await flushMicrotasks();
    inner.release();
    await all;
    expect(inner.calls).toBe(1);
    await cache.lookup(K('a'));
    expect(inner.calls).toBe(2);
    expect(cache.size).toBe(0);
    expect(cache.bytes).toBe(0);
  });

  it('keys are exact bytes (latin1 keys are lossless)', async () => {
    const { inner, cache } = setup();
    const k1 = Buffer.from([0xc3, 0xa9]);
    const k2 = Buffer.from([0xe9]);
    inner.answers.set(k1.toString('latin1'), found(K('one')));
    inner.answers.set(k2.toString('latin1'), found(K('two')));
    expect(await cache.lookup(k1)).toEqual(found(K('one')));
    expect(await cache.lookup(k2)).toEqual(found(K('two')));
    expect(await cache.lookup(Buffer.from([0xc3, 0xa9]))).toEqual(found(K('one')));
    expect(inner.calls).toBe(2);
  });

  it('stores a private copy of the value and hands each caller its own buffer', async () => {
    const { inner, cache } = setup();
    const big = Buffer.alloc(64 * 1024, 0x61);
    inner.answers.set('a', found(big.subarray(0, 3)));
    await cache.lookup(K('a'));
    big.fill(0x62); // the inner map's buffer changes (or is a view that must not be retained)
    const r1 = await cache.lookup(K('a'));
    expect(r1.kind === 'found' && r1.value.toString()).toBe('aaa');
    if (r1.kind === 'found') r1.value.fill(0x63); // a caller scribbling on its answer
    const r2 = await cache.lookup(K('a'));
    expect(r2.kind === 'found' && r2.value.toString()).toBe('aaa');
    // binary values survive unchanged
    const bin = Buffer.from([0x00, 0xff, 0xc3, 0xa9, 0x80]);
    inner.answers.set('bin', found(bin));
    await cache.lookup(K('bin'));
    expect(await cache.lookup(K('bin'))).toEqual(found(bin));
    expect(inner.calls).toBe(2);
  });
});

describe('CachedMap errors', () => {
  it.each([
    ['temp', temp('ldap down')],
    ['timeout', timeout('slow')],
    ['perm', perm('bad config')],
  ])('never caches %s', async (_n, err) => {
    const { inner, cache, rec } = setup({ staleIfErrorSec: 300 });
    inner.answers.set('k', err);
    expect(await cache.lookup(K('k'))).toBe(err);
    expect(await cache.lookup(K('k'))).toBe(err);
    expect(inner.calls).toBe(2);
    expect(cache.size).toBe(0);
    expect(rec.lookups).toEqual([{ result: err.kind, source: 'ldap' }, { result: err.kind, source: 'ldap' }]);
  });

  it('an inner exception propagates, is not cached and is counted as a temp miss', async () => {
    const { inner, cache, rec } = setup();
    inner.lookup = () => Promise.reject(new Error('bug'));
    await expect(cache.lookup(K('k'))).rejects.toThrow('bug');
    expect(cache.size).toBe(0);
    expect(rec.misses).toBe(1);
    expect(rec.lookups).toEqual([{ result: 'temp', source: 'ldap' }]);
  });

  it('a fresh answer that may not be cached removes the older one (no stale resurrection)', async () => {
    const { inner, clock, cache } = setup({ negativeTtlSec: 0, staleIfErrorSec: 300 });
    inner.answers.set('k', found(K('old')));
    await cache.lookup(K('k'));
    clock.advance(61);
    inner.answers.delete('k'); // now NOTFOUND, which is not cached
    expect((await cache.lookup(K('k'))).kind).toBe('notfound');
    inner.answers.set('k', temp('down'));
    expect((await cache.lookup(K('k'))).kind).toBe('temp');
  });
});

describe('CachedMap coalescing', () => {
  it('200 concurrent identical cold lookups make exactly one inner call', async () => {
    const { inner, cache, rec } = setup();
    inner.answers.set('hot@x', found(K('dest@y')));
    inner.held = true;
    const all = Promise.all(Array.from({ length: 200 }, () => cache.lookup(K('hot@x'))));
    await flushMicrotasks();
    expect(inner.pending).toBe(1);
    inner.release();
    const results = await all;
    expect(inner.calls).toBe(1);
    for (const r of results) expect(r).toEqual(found(K('dest@y')));
    expect(rec.misses).toBe(200);
    expect(rec.lookups).toHaveLength(200);
    expect(rec.lookups.every((l) => l.source === 'ldap')).toBe(true);
    // and the answer is cached afterwards
    await cache.lookup(K('hot@x'));
    expect(inner.calls).toBe(1);
  });

  it('different keys are not coalesced', async () => {
    const { inner, cache } = setup();
    inner.held = true;
    const all = Promise.all([cache.lookup(K('a')), cache.lookup(K('b')), cache.lookup(K('a'))]);
    await flushMicrotasks();
    inner.release();
    await all;
    expect(inner.calls).toBe(2);
  });

  it('coalesced errors are shared but not cached', async () => {
    const { inner, cache } = setup();
    inner.answers.set('k', temp('down'));
    inner.held = true;
    const all = Promise.all(Array.from({ length: 10 }, () => cache.lookup(K('k'))));
    await flushMicrotasks();
    inner.release();
    expect((await all).every((r) => r.kind === 'temp')).toBe(true);
    expect(inner.calls).toBe(1);
    await cache.lookup(K('k'));
    expect(inner.calls).toBe(2);
  });
});

describe('CachedMap stale-if-error', () => {
  it('serves an expired FOUND answer on temp/timeout inside the window, the error after it', async () => {
    const { inner, clock, cache, rec } = setup({ staleIfErrorSec: 120 });
    inner.answers.set('k', found(K('good')));
    await cache.lookup(K('k'));
    clock.advance(60 + 100); // expired 100 s ago, window 120 s
    inner.answers.set('k', temp('ldap down'));
    expect(await cache.lookup(K('k'))).toEqual(found(K('good')));
    inner.answers.set('k', timeout('ldap slow'));
    clock.advance(20); // exactly at the end of the window: still served
    expect(await cache.lookup(K('k'))).toEqual(found(K('good')));
    expect(rec.lookups.slice(-2)).toEqual([{ result: 'found', source: 'stale' }, { result: 'found', source: 'stale' }]);
    expect(rec.hits).toEqual(['stale', 'stale']);
    clock.advance(0.001); // past the window
    expect((await cache.lookup(K('k'))).kind).toBe('timeout');
    expect(rec.lookups.at(-1)).toEqual({ result: 'timeout', source: 'ldap' });
    expect(cache.size).toBe(0);
    // LDAP back: fresh again
    inner.answers.set('k', found(K('new')));
    expect(await cache.lookup(K('k'))).toEqual(found(K('new')));
  });

  it('serves an expired NOTFOUND answer the same way', async () => {
    const { inner, clock, cache, rec } = setup({ staleIfErrorSec: 30 });
    await cache.lookup(K('n'));
    clock.advance(10 + 5);
    inner.answers.set('n', temp('down'));
    expect((await cache.lookup(K('n'))).kind).toBe('notfound');
    expect(rec.lookups.at(-1)).toEqual({ result: 'notfound', source: 'stale' });
  });

  it('does not serve stale on perm, nor when the window is 0', async () => {
    const a = setup({ staleIfErrorSec: 300 });
    a.inner.answers.set('k', found(K('v')));
    await a.cache.lookup(K('k'));
    a.clock.advance(61);
    a.inner.answers.set('k', perm('config'));
    expect((await a.cache.lookup(K('k'))).kind).toBe('perm');

    const b = setup({ staleIfErrorSec: 0 });
    b.inner.answers.set('k', found(K('v')));
    await b.cache.lookup(K('k'));
    b.clock.advance(60);
    b.inner.answers.set('k', temp('down'));
    expect((await b.cache.lookup(K('k'))).kind).toBe('temp');
  });

  it('a successful lookup after expiry replaces the stale entry', async () => {
    const { inner, clock, cache } = setup({ staleIfErrorSec: 300 });
    inner.answers.set('k', found(K('v1')));
    await cache.lookup(K('k'));
    clock.advance(61);
    inner.answers.set('k', found(K('v2')));
    expect(await cache.lookup(K('k'))).toEqual(found(K('v2')));
    inner.answers.set('k', temp('down'));
    clock.advance(61);
    expect(await cache.lookup(K('k'))).toEqual(found(K('v2')));
  });

  it('prune() drops entries past their stale window', async () => {
    const { clock, cache } = setup({ staleIfErrorSec: 10 });
    await cache.lookup(K('a'));
    clock.advance(15);
    await cache.lookup(K('b'));
    expect(cache.size).toBe(2);
    clock.advance(6); // t=21 s: a (stale until 20 s) is gone, b (until 35 s) stays
    expect(cache.prune()).toBe(1);
    expect(cache.size).toBe(1);
  });
});

describe('CachedMap refresh-ahead', () => {
  it('a hit past the fraction triggers exactly one background refresh and returns the cached answer at once', async () => {
    const { inner, clock, cache, rec } = setup({ refreshAheadFraction: 0.8 });
    inner.answers.set('k', found(K('v1')));
    await cache.lookup(K('k'));
    clock.advance(47); // < 48 s = 0.8 × 60
    await cache.lookup(K('k'));
    expect(inner.calls).toBe(1);
    clock.advance(2); // 49 s
    inner.answers.set('k', found(K('v2')));
    inner.held = true;
    const hits = await Promise.all(Array.from({ length: 50 }, () => cache.lookup(K('k'))));
    for (const h of hits) expect(h).toEqual(found(K('v1')));
    expect(inner.calls).toBe(2);
    expect(inner.pending).toBe(1);
    inner.release();
    await flushMicrotasks();
    expect(rec.refreshes).toBe(1);
    // refreshed: new value, new TTL from now
    expect(await cache.lookup(K('k'))).toEqual(found(K('v2')));
    clock.advance(59);
    expect(await cache.lookup(K('k'))).toEqual(found(K('v2')));
    expect(inner.calls).toBe(3); // 59 s > 48 s: the next refresh was started by that hit
    await flushMicrotasks();
    expect(rec.refreshes).toBe(2);
    expect(rec.lookups.every((l) => l.source !== 'ldap' || l.result === 'found')).toBe(true);
  });

  it('a failed refresh keeps the entry and is not retried on every hit', async () => {
    const { inner, clock, cache } = setup({ refreshAheadFraction: 0.5 });
    inner.answers.set('k', found(K('v1')));
    await cache.lookup(K('k'));
    clock.advance(31);
    inner.answers.set('k', temp('down'));
    expect(await cache.lookup(K('k'))).toEqual(found(K('v1')));
    await flushMicrotasks();
    for (let i = 0; i < 10; i++) expect(await cache.lookup(K('k'))).toEqual(found(K('v1')));
    expect(inner.calls).toBe(2);
  });

  it('a cold lookup during a refresh joins it instead of starting another', async () => {
    const { inner, clock, cache } = setup({ refreshAheadFraction: 0.5 });
    inner.answers.set('k', found(K('v1')));
    await cache.lookup(K('k'));
    clock.advance(31);
    inner.held = true;
    inner.answers.set('k', found(K('v2')));
    await cache.lookup(K('k')); // starts the refresh
    clock.advance(30); // now expired
    const waiting = cache.lookup(K('k'));
    await flushMicrotasks();
    expect(inner.calls).toBe(2);
    inner.release();
    expect(await waiting).toEqual(found(K('v2')));
  });
});

describe('CachedMap.answerNow (the synchronous hit path)', () => {
  const wire = (r: LookupResult): string => encodeSocketmapReply(r).frame.toString('latin1');

  it('a fresh FOUND answer: the stored socketmap frame, counted as a hit like lookup()', async () => {
    const { inner, cache, rec } = setup();
    expect(cache.answerNow(K('a@x'))).toBeUndefined();
    expect(rec.hits).toEqual([]);
    expect(rec.lookups).toEqual([]);
    inner.answers.set('a@x', found(K('b@y,c@y')));
    await cache.lookup(K('a@x'));
    const hit = cache.answerNow(K('a@x'))!;
    expect(hit.kind).toBe('found');
    expect(sent(hit).reply).toBe('10:OK b@y,c@y,');
    expect(sent(hit).reply).toBe(wire(found(K('b@y,c@y'))));
    expect(sent(hit).oversize).toBeUndefined();
    expect(hit.result()).toEqual(found(K('b@y,c@y')));
    expect(rec.hits).toEqual(['fresh']);
    expect(rec.lookups).toEqual([{ result: 'found', source: 'ldap' }, { result: 'found', source: 'cache' }]);
    expect(inner.calls).toBe(1);
    // The key may start inside a larger buffer (the request payload after the map name).
    expect(sent(cache.answerNow(K('aliases a@x'), 8))?.reply).toBe('10:OK b@y,c@y,');
    expect(cache.answerNow(K('aliases a@'), 8)).toBeUndefined();
  });

  it('NOTFOUND, an empty value and a value too large for socketmap get the reply encodeSocketmapReply gives', async () => {
    const { inner, cache, rec } = setup();
    const big = Buffer.alloc(SOCKETMAP_MAX_REPLY, 0x61);
    inner.answers.set('big', found(big));
    inner.answers.set('empty', found(Buffer.alloc(0)));
    for (const k of ['nf', 'big', 'empty']) await cache.lookup(K(k));
    const nf = cache.answerNow(K('nf'))!;
    expect([nf.kind, sent(nf).reply, sent(nf).oversize]).toEqual(['notfound', wire(NOTFOUND), undefined]);
    const b = cache.answerNow(K('big'))!;
    expect(b.kind).toBe('found');
    expect(sent(b).reply).toBe(wire(found(big)));
    expect(sent(b).reply).toMatch(/^\d+:TEMP reply too large/);
    expect(sent(b).oversize).toBe(encodeSocketmapReply(found(big)).oversize);
    expect(b.result()).toEqual(found(big));
    const e = cache.answerNow(K('empty'))!;
    expect([e.kind, sent(e).reply, sent(e).oversize]).toEqual(['found', wire(NOTFOUND), undefined]);
    expect(rec.hits).toEqual(['negative', 'fresh', 'fresh']);
    // Non-ASCII bytes survive the latin1 round trip.
    const utf8 = K('j\u00fcrgen@b\u00fccher.example,\u{1F600}@x');
    inner.answers.set('u', found(utf8));
    await cache.lookup(K('u'));
    expect(Buffer.from(sent(cache.answerNow(K('u'))!).reply, 'latin1').equals(encodeSocketmapReply(found(utf8)).frame)).toBe(true);
    expect(cache.answerNow(K('u'))!.result()).toEqual(found(utf8));
  });

  it('expired, stale or absent: undefined and nothing counted, lookup() decides', async () => {
    const { inner, clock, cache, rec } = setup({ staleIfErrorSec: 300 });
    inner.answers.set('a', found(K('v')));
    await cache.lookup(K('a'));
    clock.advance(60);
    expect(cache.answerNow(K('a'))).toBeUndefined();
    expect(rec.hits).toEqual([]);
    expect(rec.lookups).toHaveLength(1);
    inner.answers.set('a', temp('down'));
    expect(await cache.lookup(K('a'))).toEqual(found(K('v')));
    expect(rec.hits).toEqual(['stale']);
    const off = setup({ ttlSec: 0, negativeTtlSec: 0 });
    await off.cache.lookup(K('a'));
    expect(off.cache.answerNow(K('a'))).toBeUndefined();
  });

  it('a hit past the refresh-ahead fraction starts one background refresh', async () => {
    const { inner, clock, cache, rec } = setup({ refreshAheadFraction: 0.5 });
    inner.answers.set('k', found(K('v1')));
    await cache.lookup(K('k'));
    clock.advance(31);
    inner.answers.set('k', found(K('v2')));
    expect(sent(cache.answerNow(K('k'))!).reply).toBe('5:OK v1,');
    expect(sent(cache.answerNow(K('k'))!).reply).toBe('5:OK v1,');
    expect(inner.calls).toBe(2);
    await flushMicrotasks();
    expect(rec.refreshes).toBe(1);
    expect(sent(cache.answerNow(K('k'))!).reply).toBe('5:OK v2,');
  });
});

describe('CachedMap bounds and flush', () => {
  it('stays within maxBytes under 100k distinct random keys', async () => {
    const inner = new ScriptedMap();
    inner.fallback = found(Buffer.alloc(100, 0x78));
    const maxBytes = 256 * 1024;
    const cache = new CachedMap(inner, { ttlSec: 300, negativeTtlSec: 60, maxEntries: 1_000_000, maxBytes, staleIfErrorSec: 600 }, socketmapAnswers());
    let maxSeen = 0;
    for (let i = 0; i < 100_000; i++) {
      const key = Buffer.from(`${Math.random().toString(36).slice(2)}${i}@example.org`);
      await cache.lookup(key);
      if (i % 1000 === 0) maxSeen = Math.max(maxSeen, cache.bytes);
    }
    maxSeen = Math.max(maxSeen, cache.bytes);
    expect(maxSeen).toBeLessThanOrEqual(maxBytes);
    expect(cache.size).toBeLessThanOrEqual(Math.floor(maxBytes / (100 + ENTRY_OVERHEAD_BYTES)));
    expect(cache.size).toBeGreaterThan(100);
    expect(inner.calls).toBe(100_000);
  });

  it('stays within maxEntries and evicts the least recently used', async () => {
    const { inner, cache } = setup({ maxEntries: 3 });
    for (const k of ['a', 'b', 'c']) await cache.lookup(K(k));
    await cache.lookup(K('a')); // a is now most recent
    await cache.lookup(K('d')); // evicts b
    expect(cache.size).toBe(3);
    const before = inner.calls;
    await cache.lookup(K('a'));
    expect(inner.calls).toBe(before);
    await cache.lookup(K('b'));
    expect(inner.calls).toBe(before + 1);
  });

  it('counts key + stored reply + overhead bytes', async () => {
    const { inner, cache } = setup();
    inner.answers.set('abc', found(K('0123456789')));
    await cache.lookup(K('abc'));
    await cache.lookup(K('nf'));
    // A found value is stored as its socketmap frame; NOTFOUND stores no bytes of its own.
    expect(cache.bytes).toBe(3 + '13:OK 0123456789,'.length + ENTRY_OVERHEAD_BYTES + 2 + ENTRY_OVERHEAD_BYTES);
  });

  it('flush by key and flush all', async () => {
    const { inner, cache } = setup();
    for (const k of ['a', 'b', 'c']) await cache.lookup(K(k));
    expect(cache.flush(K('b'))).toBe(1);
    expect(cache.flush(K('b'))).toBe(0);
    expect(cache.size).toBe(2);
    await cache.lookup(K('b'));
    expect(inner.calls).toBe(4);
    expect(cache.flush()).toBe(3);
    expect(cache.size).toBe(0);
    expect(cache.bytes).toBe(0);
    await cache.lookup(K('a'));
    expect(inner.calls).toBe(5);
  });

  it('a lookup in flight during a flush does not store its (possibly old) answer', async () => {
    const { inner, cache } = setup();
    inner.held = true;
    const p = cache.lookup(K('a'));
    await flushMicrotasks();
    cache.flush();
    inner.release();
    await p;
    expect(cache.size).toBe(0);
  });

  it('close() empties the cache and closes the inner map', async () => {
    const { inner, cache } = setup();
    let closed = false;
    (inner as LookupMap).close = async () => { closed = true; };
    await cache.lookup(K('a'));
    await cache.close();
    expect(cache.size).toBe(0);
    expect(closed).toBe(true);
  });
});

describe('cacheOptionsFrom', () => {
  it('maps settings to options', () => {
    expect(cacheOptionsFrom({ cacheTtl: 300, cacheNegativeTtl: 60, cacheMaxEntries: 100000, cacheMaxBytes: 64 << 20, staleIfError: 3600 })).toEqual({
      ttlSec: 300,
      negativeTtlSec: 60,
      maxEntries: 100000,
      maxBytes: 64 << 20,
      staleIfErrorSec: 3600,
      refreshAheadFraction: 0.8,
    });
  });
});
