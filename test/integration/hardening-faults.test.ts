/**
 * LDAP faults with the real slapd, beyond ldap-down.test.ts: a dead first server_host (failover,
 * retried later with backoff), a wrong bind password (TEMP, one loud line, no bind storm, the
 * password nowhere), slapd hung under load (TIMEOUT well before Postfix's 100 s, bounded queue,
 * stale answers where enabled) and slapd SIGKILLed and restarted.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, statSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, type DaemonWithMetrics, startDaemonWithMetrics } from '../support/daemon.js';
import { httpRequest } from '../support/http.js';
import { metricsText, metricValue } from '../support/metrics.js';
import { classify, makePostfixConfigDir, postmapQuery, writeCf, writeFixtureCf } from '../support/postfix.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { SocketmapClient } from '../support/socketmap-client.js';
import { sleep, waitFor } from '../support/wait.js';
import { makeTmpDir } from '../support/tmp.js';

let slapd: Slapd;
let daemon: DaemonWithMetrics;
let confDir: string;
let dir: string;
let badBindCf: string;
let hungUrl: string;
const MARKER = `Pw-${process.pid}-${Date.now().toString(36)}-hardening-marker`;
const SALES = 'alice@example.org,robert@example.org,Bob.Builder@Example.ORG,bob@example.org,sales-archive@elsewhere.net';

/** A server_host that accepts TCP connections and closes them at once; counts the attempts. */
let deadServer: net.Server;
let deadAttempts = 0;
/** A TCP proxy to slapd whose connections can be cut at will; counts connections. */
let proxy: net.Server;
let proxyConnections = 0;
const proxied = new Set<net.Socket>();

function listenLocal(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

function cutProxied(): void {
  for (const s of proxied) s.destroy();
  proxied.clear();
}

const GROUPS_CF = 'search_base = ou=Groups,dc=example,dc=org\nquery_filter = (&(objectClass=*)(listName=%u))\nresult_attribute = mail\nspecial_result_attribute = contact\n';

beforeAll(async () => {
  slapd = await startSlapd({ ldif: directoryLdif() });
  confDir = await makePostfixConfigDir();
  dir = makeTmpDir('faults-');

  deadServer = net.createServer((s) => { deadAttempts++; s.destroy(); });
  const deadPort = await listenLocal(deadServer);
  proxy = net.createServer((client) => {
    proxyConnections++;
    const upstream = net.connect(slapd.port, '127.0.0.1');
    proxied.add(client);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.pipe(upstream).pipe(client);
    client.on('close', () => { upstream.destroy(); proxied.delete(client); });
    upstream.on('close', () => client.destroy());
  });
  const proxyPort = await listenLocal(proxy);

  const aliases = writeFixtureCf(dir, 'aliases', { LDAP_URL: slapd.url });
  const failover = writeCf(dir, 'failover.cf', `server_host = ldap://127.0.0.1:${deadPort}/ ldap://127.0.0.1:${proxyPort}/\n${GROUPS_CF}`, {});
  // Postfix's default timeout (10 s); the request deadline (2 s) answers first.
  // Spelled without the trailing slash: its own label in the pool metrics.
  hungUrl = `ldap://127.0.0.1:${slapd.port}`;
  const hung = writeCf(dir, 'hung.cf', `server_host = ${hungUrl}\ntimeout = 10\n${GROUPS_CF}`, {});
  const staleCf = writeFixtureCf(dir, 'timeout-1', { LDAP_URL: slapd.url });
  badBindCf = writeCf(dir, 'badbind.cf', `server_host = ${slapd.url}\nbind = yes\nbind_dn = cn=admin,dc=example,dc=org\nbind_pw = ${MARKER}\n${GROUPS_CF}`, {});
  chmodSync(badBindCf, 0o644);
  expect(statSync(badBindCf).mode & 0o004).toBe(0o004);

  daemon = await startDaemonWithMetrics([
    '--socketmap', 'inet:127.0.0.1:0', '--log-level', 'debug',
    '--map', `aliases=${aliases}`, '--map', `failover=${failover}`, '--map', `hung=${hung}`,
    '--map', `stale=${staleCf}`, '--map', `badbind=${badBindCf}`,
    // No cache except where a test is about it: faults must not be hidden.
    '--set', 'cache_ttl=0', '--set', 'cache_negative_ttl=0', '--set', 'stale_if_error=0',
    '--set', 'map.failover.pool_size=1',
    '--set', 'map.hung.request_timeout=2', '--set', 'map.hung.ldap_max_in_flight=4', '--set', 'map.hung.pool_size=1',
    '--set', 'map.stale.cache_ttl=1', '--set', 'map.stale.stale_if_error=1h',
  ]);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  cutProxied();
  proxy?.close();
  deadServer?.close();
  await slapd?.destroy?.();
});

describe('first server_host dead', () => {
  it('fails over with no visible error, and the dead server is retried later with backoff', async () => {
    const c = new SocketmapClient(daemon.ports[0]!);
    expect(await c.ask('failover', 'sales@example.org')).toBe(`OK ${SALES}`);
    expect(deadAttempts).toBe(1);
    // Force a reconnect every 250 ms for ~6 s: every lookup still succeeds, and the dead
    // server is not tried on every reconnect.
    const t0 = Date.now();
    let lookups = 0;
    const connectionsBefore = proxyConnections;
    while (Date.now() - t0 < 6_000) {
      cutProxied();
      await sleep(250);
      expect(await c.ask('failover', 'sales@example.org')).toBe(`OK ${SALES}`);
      lookups++;
    }
    const reconnects = proxyConnections - connectionsBefore;
    expect(reconnects).toBeGreaterThanOrEqual(lookups - 1);
    // Per-server backoff 250 ms doubling: retried at about 0.25, 0.75, 1.75, 3.75 s.
    expect(deadAttempts).toBeGreaterThanOrEqual(2);
    expect(deadAttempts).toBeLessThanOrEqual(7);
    expect(deadAttempts).toBeLessThan(reconnects / 2);
    console.log(`failover: ${lookups} lookups OK across ${reconnects} forced reconnects; dead first server tried ${deadAttempts} times`);
    c.end();
  }, 20_000);
});

describe('bind failure (wrong bind_pw)', () => {
  it('answers TEMP, logs one loud line, does not storm the directory with binds', async () => {
    slapd.resetSearchCount();
    const c = new SocketmapClient(daemon.ports[0]!);
    const t0 = Date.now();
    let lookups = 0;
    const answers = new Set<string>();
    while (Date.now() - t0 < 4_000) {
      const r = await c.ask('badbind', `user${lookups}@example.org`);
      answers.add(r.replace(/\d+ ms/, 'N ms'));
      expect(r).toMatch(/^TEMP /);
      lookups++;
    }
    c.end();
    const binds = slapd.logSince().split('\n').filter((l) => / BIND dn="cn=admin,dc=example,dc=org"/.test(l)).length;
    // Backoff 250 ms doubling to 5 s: about 5 binds in 4 s, against hundreds of lookups.
    expect(lookups).toBeGreaterThan(200);
    expect(binds).toBeGreaterThanOrEqual(2);
    expect(binds).toBeLessThanOrEqual(8);
    const loud = daemon.log.filter((l) => /^error: LDAP server \S+: bind as cn=admin,dc=example,dc=org refused: 49 \(Invalid credentials\); .*retrying with backoff/.test(l));
    expect(loud).toHaveLength(1);
    console.log(`bind failure: ${lookups} lookups answered TEMP in 4 s with ${binds} bind attempts and ${loud.length} error line`);
    for (const a of answers) expect(a).not.toContain(MARKER);
    // The TEMP reason says why (what Postfix will log), without the password.
    expect([...answers].some((a) => /Invalid credentials/i.test(a))).toBe(true);
  }, 20_000);

  it('the password appears nowhere: log, /metrics, /readyz, check output; the readable-file warning is logged', async () => {
    await daemon.waitForLog(/badbind\.cf:\d+: bind_pw: .*readable by other users/);
    expect(daemon.log.join('\n')).not.toContain(MARKER);
    expect(await metricsText(daemon.metricsPort)).not.toContain(MARKER);
    const ready = await httpRequest(daemon.metricsPort, '/readyz', 'GET', 10_000);
    expect(ready.status).toBe(503);
    expect(ready.body).not.toContain(MARKER);
    const check = spawnSync(process.execPath, [CLI, 'check', '--map', `badbind=${badBindCf}`], { encoding: 'utf8', timeout: 30_000 });
    expect(check.status).toBe(1);
    expect(check.stdout).toMatch(/LDAP: FAILED: .*Invalid credentials/i);
    expect(check.stdout).toMatch(/readable by other users/);
    expect(check.stdout).toMatch(/^limits: max_request_size 16384 bytes, max_connections 2000, idle_timeout 60 s, request_read_timeout 10 s$/m);
    expect(check.stdout + check.stderr).not.toContain(MARKER);
    // Through the real Postfix client too (its error text comes from our TEMP reason).
    const pm = await postmapQuery(confDir, daemon.table('badbind'), 'sales@example.org');
    expect(classify(pm)).toBe('temp');
    expect(pm.stdout + pm.stderr).not.toContain(MARKER);
  }, 40_000);
});

describe('slapd hung (SIGSTOP)', () => {
  it('TIMEOUT at the request deadline, queue bounded by the waiting clients, stale answers where enabled; SIGCONT: normal service', async () => {
    const warm = new SocketmapClient(daemon.ports[0]!);
    expect(await warm.ask('hung', 'sales@example.org')).toBe(`OK ${SALES}`);
    expect(await warm.ask('stale', 'sales@example.org')).toBe(`OK ${SALES}`);
    await sleep(1_200); // the stale map's answer (cache_ttl 1 s) has expired
    slapd.pause();
    try {
      const t0 = Date.now();
      expect(await warm.ask('hung', 'eng@example.org')).toMatch(/^TIMEOUT no answer within 2 s/);
      const took = Date.now() - t0;
      expect(took).toBeGreaterThan(1_800);
      expect(took).toBeLessThan(3_500);
      // timeout = 1 there: after 1 s the expired answer is served (stale-if-error).
      const s0 = Date.now();
      expect(await warm.ask('stale', 'sales@example.org')).toBe(`OK ${SALES}`);
      expect(Date.now() - s0).toBeLessThan(3_000);

      // 40 clients asking distinct keys non-stop for 6 s against the hung server.
      const CLIENTS = 40;
      let stop = false;
      const kinds = new Map<string, number>();
      let peakQueued = 0;
      let peakInFlight = 0;
      const sampler = (async () => {
        while (!stop) {
          const text = await metricsText(daemon.metricsPort);
          peakQueued = Math.max(peakQueued, metricValue(text, 'ldap_socketmap_ldap_queued_requests', { servers: hungUrl }));
          peakInFlight = Math.max(peakInFlight, metricValue(text, 'ldap_socketmap_ldap_in_flight', { servers: hungUrl }));
          await sleep(200);
        }
      })();
      const clients = Array.from({ length: CLIENTS }, () => new SocketmapClient(daemon.ports[0]!));
      const workers = clients.map(async (c, i) => {
        let n = 0;
        while (!stop) {
          const r = await c.ask('hung', `pile-${i}-${n++}@example.org`, 15_000);
          const kind = r.split(' ')[0]!;
          kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        }
      });
      await sleep(6_000);
      stop = true;
      await Promise.all([...workers, sampler]);
      for (const c of clients) c.end();
      // Only temporary answers while hung; never NOTFOUND (mail would bounce) or a value.
      expect([...kinds.keys()].every((k) => k === 'TIMEOUT' || k === 'TEMP')).toBe(true);
      expect([...kinds.values()].reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(CLIENTS * 2);
      expect(peakInFlight).toBeLessThanOrEqual(4); // map.hung.ldap_max_in_flight
      // Queued searches never outnumber the clients waiting (they give up with their client).
      // (A client answered TIMEOUT may queue its next search a few ms before its previous one
      // leaves the queue: allow that overlap.)
      expect(peakQueued).toBeLessThanOrEqual(CLIENTS + 4);
      expect(await daemon.metric('ldap_socketmap_ldap_queue_timeouts_total', { servers: hungUrl })).toBeGreaterThan(0);
      console.log(`hung slapd: ${JSON.stringify(Object.fromEntries(kinds))} answers from ${CLIENTS} clients in 6 s; peak queued ${peakQueued}, peak in flight ${peakInFlight}`);
    } finally {
      slapd.resume();
    }
    const back = Date.now();
    await waitFor('service after SIGCONT', () => warm.ask('hung', 'eng@example.org', 15_000), (r) => r.startsWith('OK '), 20_000, 200);
    console.log(`hung slapd: first OK ${Date.now() - back} ms after SIGCONT`);
    await waitFor('queue drained', async () => {
      const t = await metricsText(daemon.metricsPort);
      return metricValue(t, 'ldap_socketmap_ldap_queued_requests') + metricValue(t, 'ldap_socketmap_ldap_in_flight');
    }, (n) => n === 0, 15_000, 200);
    warm.end();
  }, 60_000);
});

describe('slapd killed (SIGKILL) and restarted', () => {
  it('TEMP while it is gone, answers again without restarting the daemon', async () => {
    const c = new SocketmapClient(daemon.ports[0]!);
    expect(await c.ask('aliases', 'sales@example.org')).toBe(`OK ${SALES}`);
    const pid = daemon.proc.pid;
    process.kill(slapd.pid, 'SIGKILL');
    await waitFor('slapd gone', () => slapd.running(), (r) => !r, 10_000, 100);
    expect(await c.ask('aliases', 'sales@example.org')).toMatch(/^TEMP /);
    await slapd.start();
    await waitFor('answers after restart', () => c.ask('aliases', 'eng@example.org'), (r) => r.startsWith('OK '), 20_000, 200);
    expect(await c.ask('aliases', 'sales@example.org')).toBe(`OK ${SALES}`);
    expect(daemon.proc.pid).toBe(pid);
    expect(daemon.proc.exitCode).toBe(null);
    c.end();
  }, 40_000);
});
