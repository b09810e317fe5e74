import { afterEach, describe, expect, it, vi } from 'vitest';
import { CachedMap } from '../../src/cache/cache-map.js';
import { Uncached } from '../../src/cache/uncached.js';
import { DeadlineMap } from '../../src/lookup/deadline.js';
import type { LookupMap } from '../../src/contracts/map.js';
import { found, NOTFOUND, type LookupResult } from '../../src/contracts/result.js';
import { encodeSocketmapReply } from '../../src/protocol/socketmap.js';
import { socketmapProtocol, type MapRegistry } from '../../src/server/handlers.js';
import { socketmapAnswers, type SocketmapForm } from '../../src/protocol/socketmap-answers.js';
import type { ReadyAnswer } from '../../src/contracts/map.js';

/** What the socketmap server writes for a ready answer, and the oversize it reports. */
function sent(a: ReadyAnswer<SocketmapForm>): { reply: string; oversize: number | undefined };
function sent(a: ReadyAnswer<SocketmapForm> | undefined): { reply: string; oversize: number | undefined } | undefined;
function sent(a: ReadyAnswer<SocketmapForm> | undefined): { reply: string; oversize: number | undefined } | undefined {
  if (!a) return undefined;
  return typeof a.encoded === 'string' ? { reply: a.encoded, oversize: undefined } : { reply: a.encoded.reply, oversize: a.encoded.oversize };
}


const K = (s: string): Buffer => Buffer.from(s, 'latin1');
const OPTS = { ttlSec: 60, negativeTtlSec: 60, maxEntries: 100, maxBytes: 1 << 20, staleIfErrorSec: 0 };

function innerMap(answers: Record<string, LookupResult>): LookupMap & { calls: number } {
  const m = {
    name: 'aliases',
    calls: 0,
    lookup: async (key: Buffer): Promise<LookupResult> => {
      m.calls++;
      return answers[key.toString('latin1')] ?? NOTFOUND;
    },
  };
  return m;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('DeadlineMap', () => {
  it('a fresh cache hit needs no timer; a miss gets one, cleared when the answer comes', async () => {
    vi.useFakeTimers();
    const inner = innerMap({ a: found(K('v')) });
    const d = new DeadlineMap(new CachedMap(inner, OPTS, socketmapAnswers()), 5_000);
    const miss = d.lookup(K('a'));
    expect(vi.getTimerCount()).toBe(1);
    expect(await miss).toEqual(found(K('v')));
    expect(vi.getTimerCount()).toBe(0);
    const hit = d.lookup(K('a'));
    expect(vi.getTimerCount()).toBe(0);
    expect(await hit).toEqual(found(K('v')));
    expect(sent(d.answerNow(K('a')))?.reply).toBe('4:OK v,');
    expect(d.answerNow(K('b'))).toBeUndefined();
    expect(inner.calls).toBe(1);
  });

  it('a lookup slower than the deadline answers TIMEOUT; over a map without a cache, answerNow is always undefined', async () => {
    vi.useFakeTimers();
    const slow: LookupMap = { name: 's', lookup: () => new Promise((r) => setTimeout(() => r(found(K('late'))), 10_000)) };
    const d = new DeadlineMap(new Uncached(slow), 1_000);
    expect(d.answerNow(K('x'))).toBeUndefined();
    const p = d.lookup(K('x'));
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await p).kind).toBe('timeout');
  });
});

describe('socketmapProtocol', () => {
  function setup() {
    const inner = innerMap({ 'a@x': found(K('b@y')) });
    const served = new DeadlineMap(new CachedMap(inner, OPTS, socketmapAnswers()), 5_000);
    const registry: MapRegistry = { get: (n) => (n === 'aliases' ? served : undefined), names: () => ['aliases'] };
    const answered: [string, string, number | undefined][] = [];
    const p = socketmapProtocol(registry, { answered: (map, r, oversize) => answered.push([map, r.kind, oversize]) });
    return { inner, p, answered };
  }

  it('answers a cache hit synchronously with the stored frame, a miss through a Promise; same bytes either way', async () => {
    const { inner, p, answered } = setup();
    const first = p.handle(K('aliases a@x'));
    expect(first).toBeInstanceOf(Promise);
    const cold = await first;
    expect(Buffer.isBuffer(cold)).toBe(true);
    const hit = p.handle(K('aliases a@x'));
    expect(typeof hit).toBe('string');
    const frame = encodeSocketmapReply(found(K('b@y'))).frame;
    expect(Buffer.from(hit as string, 'latin1').equals(frame)).toBe(true);
    expect((cold as Buffer).equals(frame)).toBe(true);
    // NOTFOUND: cached too, answered synchronously the second time.
    await p.handle(K('aliases nobody@x'));
    expect(p.handle(K('aliases nobody@x'))).toBe('9:NOTFOUND ,');
    expect(inner.calls).toBe(2);
    expect(answered).toEqual([
      ['aliases', 'found', undefined],
      ['aliases', 'found', undefined],
      ['aliases', 'notfound', undefined],
      ['aliases', 'notfound', undefined],
    ]);
  });

  it('each request is answered from the map it names, also when names alternate (the name string is reused per connection)', async () => {
    const maps = new Map(['ab', 'ac', 'abc', '\u00e9b'].map((n) => [n, new DeadlineMap(new CachedMap({ name: n, lookup: async () => found(K(`from-${n}`)) }, OPTS, socketmapAnswers()), 5_000)]));
    const registry: MapRegistry = { get: (n) => maps.get(n), names: () => [...maps.keys()] };
    const p = socketmapProtocol(registry);
    const ask = async (name: string): Promise<string> => {
      const r = await p.handle(Buffer.concat([Buffer.from(name, 'latin1'), K(' k')]));
      return typeof r === 'string' ? r : r.toString('latin1');
    };
    for (let round = 0; round < 2; round++) {
      for (const n of ['ab', 'ac', 'ac', 'abc', 'ab', '\u00e9b', 'ab']) expect(await ask(n)).toBe(encodeSocketmapReply(found(K(`from-${n}`))).frame.toString('latin1'));
    }
    // 'é' in UTF-8 is two bytes, neither of them the latin1 'é' the map is named with.
    expect(await ask('\u00c3\u00a9b')).toMatch(/PERM unknown map name/);
  });

  it('an unknown map is answered PERM synchronously; a malformed request throws synchronously', () => {
    const { p, answered } = setup();
    const r = p.handle(K('nope k'));
    expect(Buffer.isBuffer(r)).toBe(true);
    expect((r as Buffer).toString('latin1')).toMatch(/^\d+:PERM unknown map name "nope"; known maps: aliases,$/);
    expect(answered).toEqual([['nope', 'perm', undefined]]);
    expect(() => p.handle(K('nospace'))).toThrow(/no space/);
  });
});
