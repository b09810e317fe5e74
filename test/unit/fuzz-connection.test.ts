/**
 * Seeded property tests of the per-connection layer (serveConnection + the socketmap handler)
 * over real loopback sockets, without LDAP: whatever the chunking and timing of the bytes,
 *
 * - well-formed requests are answered exactly, in order, and the connection stays open;
 * - a stream that turns malformed gets answers for (a prefix of) the requests before the bad
 *   bytes, then a close, with exactly one protocol error reported;
 * - a partial request that stops arriving is closed after request_read_timeout; one that
 *   completes in time is not;
 * - an idle connection is closed after idle_timeout.
 *
 * Replay a failure with FUZZ_SEED=<seed printed in the failure>.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CachedMap } from '../../src/cache/cache-map.js';
import { Uncached } from '../../src/cache/uncached.js';
import { DeadlineMap } from '../../src/lookup/deadline.js';
import type { LookupMap } from '../../src/contracts/map.js';
import { found, NOTFOUND, temp, type LookupResult } from '../../src/contracts/result.js';
import { encodeSocketmapReply } from '../../src/protocol/socketmap.js';
import { serveConnection, type ConnectionHooks } from '../../src/server/connection.js';
import { socketmapProtocol, type MapRegistry } from '../../src/server/handlers.js';
import { prng as rng, int } from '../support/prng.js';
import { socketmapAnswers, type SocketmapForm } from '../../src/protocol/socketmap-answers.js';
import { sleep } from '../support/wait.js';
import { frame } from '../support/socketmap-client.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20240607);


/** A map whose answer is a pure function of the key, sometimes after a delay. */
function answerFor(key: Buffer): LookupResult {
  const h = key.reduce((a, b) => (a * 31 + b) >>> 0, 7);
  if (h % 5 === 0) return NOTFOUND;
  if (h % 7 === 0) return temp(`busy ${h}`);
  return found(Buffer.concat([Buffer.from('v='), key.length > 0 ? key : Buffer.from('-')]));
}
const map: LookupMap = {
  name: 'm',
  lookup: async (key) => {
    const copy = Buffer.from(key);
    if (copy.length % 3 === 0) await sleep(copy.length % 4);
    return answerFor(copy);
  },
};
/** The same map behind a cache: repeated keys are answered synchronously, the others wait. */
const cached = new DeadlineMap(new CachedMap(map, { ttlSec: 3600, negativeTtlSec: 3600, maxEntries: 1000, maxBytes: 1 << 20, staleIfErrorSec: 0 }, socketmapAnswers()), 10_000);
/** Answers after 400 ms: longer than the idle_timeout of the timeout tests. */
const slow: LookupMap = { name: 'slow', lookup: async (key) => { await sleep(400); return answerFor(Buffer.from(key)); } };
/** The servers take ServedMaps: the uncached ones as the chain builder makes them without a cache. */
const served = { m: new Uncached<SocketmapForm>(map), c: cached, slow: new Uncached<SocketmapForm>(slow) };
const registry: MapRegistry = { get: (n) => (n === 'm' || n === 'c' || n === 'slow' ? served[n] : undefined), names: () => ['m', 'c', 'slow'] };

const MAX_REQUEST = 1024;

let server: net.Server;
let port: number;
const events = { opened: 0, closed: 0, protocolErrors: [] as string[], timedOut: [] as string[] };
let idleMs = 5_000;
let readMs = 5_000;

beforeAll(async () => {
  const hooks: ConnectionHooks = {
    opened: () => { events.opened++; },
    closed: () => { events.closed++; },
    protocolError: (r) => { events.protocolErrors.push(r); },
    timedOut: (k) => { events.timedOut.push(k); },
  };
  server = net.createServer((socket) => {
    const p = socketmapProtocol(registry, {}, MAX_REQUEST);
    serveConnection(socket, p.decoder(), p.handle, { idleTimeoutMs: idleMs, requestReadTimeoutMs: readMs, maxRequestSize: MAX_REQUEST, hooks, label: 'fuzz' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** Sends `bytes` in random chunks with random pauses; resolves with all bytes received until close or `quietMs` of silence after sending. */
function exchange(bytes: Buffer, r: () => number, opts: { endAfter?: boolean; quietMs?: number; expectBytes?: number } = {}): Promise<{ got: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    let done = false;
    let quiet: NodeJS.Timeout | undefined;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(quiet);
      sock.destroy();
      resolve({ got: Buffer.concat(got), closed });
    };
    const armQuiet = (): void => {
      clearTimeout(quiet);
      quiet = setTimeout(() => finish(false), opts.quietMs ?? 150);
    };
    let received = 0;
    sock.on('data', (d: Buffer) => {
      got.push(d);
      received += d.length;
      // All expected bytes are in: wait briefly for anything extra (there must be nothing).
      if (opts.expectBytes !== undefined && received >= opts.expectBytes) {
        clearTimeout(quiet);
        quiet = setTimeout(() => finish(false), 15);
      } else if (sentAll) armQuiet();
    });
    sock.on('close', () => finish(true));
    sock.on('error', () => undefined);
    let sentAll = false;
    sock.on('connect', async () => {
      let at = 0;
      while (at < bytes.length && !sock.destroyed) {
        const n = r() < 0.3 ? bytes.length - at : 1 + int(r, 40);
        sock.write(bytes.subarray(at, at + n));
        at += n;
        if (r() < 0.2) await sleep(int(r, 3));
      }
      sentAll = true;
      if (opts.endAfter && !sock.destroyed) sock.end();
      if (opts.expectBytes === undefined || received < opts.expectBytes) armQuiet();
    });
  });
}

function randomKey(r: () => number): Buffer {
  const n = int(r, 40);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = r() < 0.7 ? 0x20 + int(r, 95) : int(r, 256);
  return b;
}

describe('serveConnection under random chunking (seeded)', () => {
  it('answers well-formed requests exactly and in order, keeps the connection open', async () => {
    const r = rng(SEED);
    for (let round = 0; round < 150; round++) {
      const keys = Array.from({ length: 1 + int(r, 8) }, () => randomKey(r));
      const bytes = Buffer.concat(keys.map((k) => frame(Buffer.concat([Buffer.from('m '), k]))));
      const expected = Buffer.concat(keys.map((k) => encodeSocketmapReply(answerFor(k)).frame));
      const { got, closed } = await exchange(bytes, r, { quietMs: 2_000, expectBytes: expected.length });
      expect(closed, `seed ${SEED} round ${round}`).toBe(false);
      expect(got.equals(expected), `seed ${SEED} round ${round}: ${got.toString('latin1')} vs ${expected.toString('latin1')}`).toBe(true);
    }
  }, 60_000);

  it('cache hits answered at once and lookups that wait stay in request order', async () => {
    const r = rng(SEED + 2);
    const pool = Array.from({ length: 6 }, () => randomKey(r));
    for (let round = 0; round < 150; round++) {
      const reqs = Array.from({ length: 1 + int(r, 12) }, () => ({ map: r() < 0.7 ? 'c' : 'm', key: r() < 0.8 ? pool[int(r, pool.length)]! : randomKey(r) }));
      const bytes = Buffer.concat(reqs.map((q) => frame(Buffer.concat([Buffer.from(`${q.map} `), q.key]))));
      const expected = Buffer.concat(reqs.map((q) => encodeSocketmapReply(answerFor(q.key)).frame));
      const { got, closed } = await exchange(bytes, r, { quietMs: 2_000, expectBytes: expected.length });
      expect(closed, `seed ${SEED} round ${round}`).toBe(false);
      expect(got.equals(expected), `seed ${SEED} round ${round}: ${got.toString('latin1')} vs ${expected.toString('latin1')}`).toBe(true);
    }
  }, 60_000);

  it('a stream that turns malformed: answers for a prefix of the good requests, then one protocol error and a close', async () => {
    const r = rng(SEED + 1);
    const garbage = [Buffer.from('x'), Buffer.from('-1:'), Buffer.from(`${MAX_REQUEST + 1}:`), Buffer.from('3:abc;'), Buffer.from('2:m,'), Buffer.from('99999999999999999:')];
    for (let round = 0; round < 120; round++) {
      const keys = Array.from({ length: int(r, 5) }, () => randomKey(r));
      const good = keys.map((k) => frame(Buffer.concat([Buffer.from('m '), k])));
      const bad = garbage[int(r, garbage.length)]!;
      const before = events.protocolErrors.length;
      const { got, closed } = await exchange(Buffer.concat([...good, bad, Buffer.from(frame(Buffer.from('m after')))]), r, { quietMs: 2_000 });
      expect(closed, `seed ${SEED} round ${round}`).toBe(true);
      // Answers are complete replies for the first j good requests, for some j.
      const replies = keys.map((k) => encodeSocketmapReply(answerFor(k)).frame);
      const prefixes = replies.map((_, j) => Buffer.concat(replies.slice(0, j)));
      prefixes.push(Buffer.concat(replies));
      expect(prefixes.some((p) => p.equals(got)), `seed ${SEED} round ${round}: ${got.toString('latin1')}`).toBe(true);
      await sleep(5);
      expect(events.protocolErrors.length - before, `seed ${SEED} round ${round}`).toBe(1);
    }
  }, 60_000);
});

describe('timeouts', () => {
  it('request_read_timeout closes a stalled partial request; a request completed in time is answered', async () => {
    readMs = 200;
    idleMs = 5_000;
    const before = events.timedOut.filter((k) => k === 'read').length;
    const t0 = Date.now();
    const stalled = await exchange(Buffer.from('20:m abc'), rng(1), { quietMs: 3_000 });
    expect(stalled.closed).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(events.timedOut.filter((k) => k === 'read').length).toBe(before + 1);

    // 2 parts, 100 ms apart: complete within 200 ms, answered; the clock restarts per request.
    const sock = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    sock.on('data', (d: Buffer) => got.push(d));
    let closed = false;
    sock.on('close', () => { closed = true; });
    await new Promise((res) => sock.once('connect', res));
    for (let i = 0; i < 3; i++) {
      const f = frame(Buffer.from(`m key${i}`));
      sock.write(f.subarray(0, 4));
      await sleep(100);
      sock.write(f.subarray(4));
      await sleep(100);
    }
    expect(closed).toBe(false);
    expect(Buffer.concat(got).equals(Buffer.concat([0, 1, 2].map((i) => encodeSocketmapReply(answerFor(Buffer.from(`key${i}`))).frame)))).toBe(true);
    sock.destroy();
  });

  it('idle_timeout closes a silent connection', async () => {
    idleMs = 150;
    readMs = 5_000;
    const before = events.timedOut.filter((k) => k === 'idle').length;
    const t0 = Date.now();
    const r = await exchange(frame(Buffer.from('m hello')), rng(2), { quietMs: 3_000 });
    expect(r.closed).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(r.got.equals(encodeSocketmapReply(answerFor(Buffer.from('hello'))).frame)).toBe(true);
    expect(events.timedOut.filter((k) => k === 'idle').length).toBe(before + 1);
  });

  it('a connection waiting for a slow answer is not idle; idle_timeout counts from the answer', async () => {
    idleMs = 150;
    readMs = 5_000;
    const before = events.timedOut.filter((k) => k === 'idle').length;
    const t0 = Date.now();
    const r = await exchange(frame(Buffer.from('slow hello')), rng(3), { quietMs: 3_000 });
    expect(r.closed).toBe(true);
    expect(r.got.equals(encodeSocketmapReply(answerFor(Buffer.from('hello'))).frame)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400 + 140);
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(events.timedOut.filter((k) => k === 'idle').length).toBe(before + 1);
  });

  it('every connection opened was closed exactly once', async () => {
    await sleep(50);
    expect(events.closed).toBe(events.opened);
  });
});
