/**
 * Load, on loopback: 5 000 client connections held open at once and all used, three rounds;
 * the daemon keeps answering and its memory (VmRSS from /proc) stays bounded: no growth from
 * one round to the next.
 * Then slowloris: hundreds of connections trickling one byte at a time are reaped by
 * request_read_timeout while well-behaved clients see no slowdown.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonWithMetrics, startDaemonWithMetrics } from '../support/daemon.js';
import { metricsText, metricValue } from '../support/metrics.js';
import { writeFixtureCf } from '../support/postfix.js';
import { fdLimit, rssKb } from '../support/proc.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { frame, SocketmapClient } from '../support/socketmap-client.js';
import { sleep, waitFor } from '../support/wait.js';
import { makeTmpDir } from '../support/tmp.js';

const CONNECTIONS = 5_000;
const SLOWLORIS = 300;
const READ_TIMEOUT_S = 3;
const KEYS = ['sales@example.org', 'eng@example.org', 'nobody@example.org', 'deep1@example.org', 'ghost@example.org', 'dupes@example.org'];

let slapd: Slapd;
let daemon: DaemonWithMetrics;
const mb = (kb: number): number => Math.round(kb / 102.4) / 10;

/** Makes sure `pid` may hold `need` descriptors, raising its soft limit with prlimit(1) if needed. */
function ensureFds(pid: number, need: number): void {
  if (fdLimit(pid) >= need) return;
  const r = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${need}:`], { encoding: 'utf8' });
  if (fdLimit(pid) < need) {
    throw new Error(`process ${pid} may open only ${fdLimit(pid)} files and prlimit could not raise it to ${need}: ${r.stderr}`);
  }
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
}

/** Opens `n` connections, a batch at a time (the listen backlog is finite). */
async function openMany(n: number): Promise<SocketmapClient[]> {
  const out: SocketmapClient[] = [];
  for (let i = 0; i < n; i += 250) {
    const batch = Array.from({ length: Math.min(250, n - i) }, () => new SocketmapClient(daemon.ports[0]!));
    await Promise.all(batch.map((c) => c.ready(20_000)));
    out.push(...batch);
  }
  return out;
}

async function useAll(clients: SocketmapClient[]): Promise<{ ok: number; notfound: number; other: number; p99: number; max: number }> {
  const lat: number[] = [];
  let ok = 0;
  let notfound = 0;
  let other = 0;
  await Promise.all(clients.map(async (c, i) => {
    const t0 = performance.now();
    const r = await c.ask('aliases', KEYS[i % KEYS.length]!, 30_000);
    lat.push(performance.now() - t0);
    if (r.startsWith('OK ')) ok++;
    else if (r === 'NOTFOUND ') notfound++;
    else other++;
  }));
  return { ok, notfound, other, p99: percentile(lat, 0.99), max: Math.max(...lat) };
}

beforeAll(async () => {
  ensureFds(process.pid, CONNECTIONS + SLOWLORIS + 500);
  slapd = await startSlapd({ ldif: directoryLdif() });
  const dir = makeTmpDir('load-');
  const aliases = writeFixtureCf(dir, 'aliases', { LDAP_URL: slapd.url });
  daemon = await startDaemonWithMetrics([
    '--socketmap', 'inet:127.0.0.1:0', '--map', `aliases=${aliases}`,
    '--set', `max_connections=${CONNECTIONS + SLOWLORIS + 200}`, '--set', `request_read_timeout=${READ_TIMEOUT_S}`,
  ]);
  ensureFds(daemon.proc.pid!, CONNECTIONS + SLOWLORIS + 500);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await slapd?.destroy?.();
});

describe(`${CONNECTIONS} concurrent connections`, () => {
  it('are all held and answered, three rounds; memory stays bounded, no growth per round', async () => {
    const pid = daemon.proc.pid!;
    const warm = new SocketmapClient(daemon.ports[0]!);
    for (const k of KEYS) await warm.ask('aliases', k);
    warm.end();
    const rssStart = rssKb(pid);
    const rounds: { open: number; peakRss: number; afterRss: number; ok: number; p99: number; max: number; openMs: number }[] = [];
    for (let round = 0; round < 3; round++) {
      const t0 = Date.now();
      const clients = await openMany(CONNECTIONS);
      const openMs = Date.now() - t0;
      await waitFor('all counted', () => daemon.metric('ldap_socketmap_client_connections'), (n) => n === CONNECTIONS, 20_000, 100);
      const first = await useAll(clients);
      const second = await useAll(clients);
      for (const r of [first, second]) {
        expect(r.other).toBe(0);
        expect(r.ok + r.notfound).toBe(CONNECTIONS);
      }
      // Still all open (no one dropped), and the daemon still answers a newcomer.
      expect(clients.filter((c) => c.closed)).toHaveLength(0);
      const extra = new SocketmapClient(daemon.ports[0]!);
      expect(await extra.ask('aliases', 'sales@example.org')).toMatch(/^OK /);
      extra.end();
      const peakRss = rssKb(pid);
      for (const c of clients) c.end();
      await waitFor('all closed', () => daemon.metric('ldap_socketmap_client_connections'), (n) => n === 0, 20_000, 100);
      await sleep(500);
      rounds.push({ open: clients.length, peakRss, afterRss: rssKb(pid), ok: first.ok + second.ok, p99: Math.max(first.p99, second.p99), max: Math.max(first.max, second.max), openMs });
    }
    console.log(`load: RSS at start ${mb(rssStart)} MB; ` + rounds.map((r, i) =>
      `round ${i + 1}: ${r.open} connections opened in ${r.openMs} ms, ${2 * r.open} lookups (p99 ${r.p99.toFixed(0)} ms, max ${r.max.toFixed(0)} ms), RSS peak ${mb(r.peakRss)} MB, after close ${mb(r.afterRss)} MB`).join('; '));
    // Bounded: 40 kB per connection on top of the start covers it with room (measured: 10
    // to 20 kB); and no steady growth from round to round, which a per-connection leak would show
    // (V8 collects lazily, so the peak wanders by a few tens of MB from round to round).
    for (const r of rounds) expect(r.peakRss - rssStart).toBeLessThan(CONNECTIONS * 40);
    expect(rounds[2]!.peakRss).toBeLessThan(rounds[0]!.peakRss + 80 * 1024);
    expect(daemon.proc.exitCode).toBe(null);
  }, 120_000);
});

describe(`slowloris: ${SLOWLORIS} connections trickling a byte at a time`, () => {
  it('are reaped after request_read_timeout while other clients see no slowdown', async () => {
    const before = await daemon.metric('ldap_socketmap_client_timeouts_total', { kind: 'read' });
    const measure = async (ms: number): Promise<number[]> => {
      const clients = Array.from({ length: 20 }, () => new SocketmapClient(daemon.ports[0]!));
      const lat: number[] = [];
      const end = Date.now() + ms;
      await Promise.all(clients.map(async (c, i) => {
        while (Date.now() < end) {
          const t0 = performance.now();
          expect(await c.ask('aliases', KEYS[i % KEYS.length]!)).toMatch(/^(OK |NOTFOUND )/);
          lat.push(performance.now() - t0);
          await sleep(10);
        }
        c.end();
      }));
      return lat;
    };
    const baseline = await measure(2_000);

    const slow = await openMany(SLOWLORIS);
    const payload = frame('aliases sales@example.org');
    let trickling = true;
    const t0 = Date.now();
    const trickle = (async () => {
      for (let i = 0; trickling && i < payload.length - 1; i++) {
        for (const c of slow) c.send(payload.subarray(i, i + 1));
        await sleep(400);
      }
    })();
    const during = await measure(READ_TIMEOUT_S * 1000 + 1_500);
    await waitFor('slowloris reaped', () => slow.filter((c) => !c.closed).length, (n) => n === 0, 10_000, 100);
    trickling = false;
    await trickle;
    const reapedAfter = Math.max(...slow.map((c) => c.closedAt)) - t0;
    const firstReaped = Math.min(...slow.map((c) => c.closedAt)) - t0;
    // No slowloris got its request through: every one was closed before its frame completed.
    expect(slow.every((c) => c.pending.length === 0)).toBe(true);
    expect(firstReaped).toBeGreaterThanOrEqual(READ_TIMEOUT_S * 1000 - 200);
    expect(reapedAfter).toBeLessThan(READ_TIMEOUT_S * 1000 + 2_000);
    const text = await metricsText(daemon.metricsPort);
    expect(metricValue(text, 'ldap_socketmap_client_timeouts_total', { kind: 'read' }) - before).toBe(SLOWLORIS);
    const b99 = percentile(baseline, 0.99);
    const d99 = percentile(during, 0.99);
    console.log(`slowloris: ${SLOWLORIS} reaped between ${firstReaped} and ${reapedAfter} ms; neighbours p99 ${b99.toFixed(1)} ms before, ${d99.toFixed(1)} ms during (${during.length} lookups)`);
    expect(d99).toBeLessThan(Math.max(100, b99 * 3));
  }, 60_000);
});
