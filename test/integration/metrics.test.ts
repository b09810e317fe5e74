/**
 * /metrics, /healthz and /readyz of the built daemon after real traffic against a real slapd:
 * counts that match the requests sent (through postmap), bounded label values (no key, no
 * answer, no client-chosen map name), the real `promtool check metrics`, and readiness that
 * follows LDAP and the cache.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAP_SETTING_DEFS } from '../../src/config/settings.js';
import { startDaemonWithMetrics, type DaemonWithMetrics } from '../support/daemon.js';
import { classify, makePostfixConfigDir, postmapQuery, writeFixtureCf } from '../support/postfix.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';
import { sleep, waitFor } from '../support/wait.js';
import { metricValue, parseExposition, type Sample } from '../support/metrics.js';

const PROMTOOL = '/usr/bin/promtool';
const MAPS = ['aliases', 'mailboxes', 'sizelimit', 'brief'];

let slapd: Slapd;
let daemon: DaemonWithMetrics;
let confDir: string;
let adminPort: number;

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                      */
/* ------------------------------------------------------------------------------------------ */



async function scrapeText(): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

async function scrape(): Promise<Sample[]> {
  return parseExposition(await scrapeText());
}

async function getJson(path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${adminPort}${path}`);
  return { status: res.status, body: await res.json() };
}

function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (d: Buffer) => (output += d.toString()));
    p.stderr.on('data', (d: Buffer) => (output += d.toString()));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, output }));
    p.stdin.end(text);
  });
}

/** One raw socketmap request on a fresh connection; resolves with the reply payload. */
function rawSocketmap(payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: daemon.ports[0]! });
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const m = /^(\d+):/.exec(buf);
      if (m && buf.length >= m[0].length + Number(m[1]) + 1) {
        s.destroy();
        resolve(buf.slice(m[0].length, m[0].length + Number(m[1])));
      }
    });
    s.once('error', reject);
    s.once('close', () => resolve(buf));
    s.write(`${Buffer.byteLength(payload)}:${payload},`);
  });
}

/** Sends bytes that are not a netstring; resolves when the daemon closes the connection. */
function rawGarbage(bytes: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: daemon.ports[0]! });
    s.once('error', reject);
    s.on('data', () => {});
    s.once('close', () => resolve());
    s.write(bytes);
  });
}

/* ------------------------------------------------------------------------------------------ */

beforeAll(async () => {
  slapd = await startSlapd({ ldif: directoryLdif() });
  confDir = await makePostfixConfigDir();
  const dir = makeTmpDir('metrics-');
  const vars = { LDAP_URL: slapd.url };
  daemon = await startDaemonWithMetrics([
    '--socketmap', 'inet:127.0.0.1:0',
    '--map', `aliases=${writeFixtureCf(dir, 'aliases', vars)}`,
    '--map', `mailboxes=${writeFixtureCf(dir, 'mailboxes', vars)}`,
    // size_limit = 2: "triple" matches 3 entries, a temporary error every time.
    '--map', `sizelimit=${writeFixtureCf(dir, 'size-limit-2', vars)}`,
    // Answers that cannot be served once expired: 1 s TTLs, no stale-if-error.
    '--map', `brief=${writeFixtureCf(dir, 'mailboxes', vars)}`,
    '--set', 'map.brief.cache_ttl=1', '--set', 'map.brief.cache_negative_ttl=1', '--set', 'map.brief.stale_if_error=0',
  ]);
  adminPort = daemon.metricsPort;
  // Where the daemon has a change watcher (on by default), it expires every answer cached
  // before it has found its change marker, including lookups running at that moment. Counting
  // hits exactly needs that behind us.
  if ('changePollInterval' in MAP_SETTING_DEFS) {
    await waitFor('change watcher ready', async () => (await scrapeText()).includes('ldap_socketmap_change_marker{'), (x) => x, 15_000);
  }
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await slapd?.destroy();
});

/** Lookups sent one after the other through postmap, so cache hits are deterministic. */
const TRAFFIC: { map: string; key: string; expect: 'found' | 'notfound' | 'temp'; source: 'ldap' | 'cache' }[] = [
  { map: 'aliases', key: 'sales@example.org', expect: 'found', source: 'ldap' },
  { map: 'aliases', key: 'sales@example.org', expect: 'found', source: 'cache' },
  { map: 'aliases', key: 'sales@example.org', expect: 'found', source: 'cache' },
  { map: 'aliases', key: 'eng@example.org', expect: 'found', source: 'ldap' },
  { map: 'mailboxes', key: 'alice@example.org', expect: 'found', source: 'ldap' },
  { map: 'mailboxes', key: 'alice@example.org', expect: 'found', source: 'cache' },
  { map: 'aliases', key: 'nope-metrics@example.org', expect: 'notfound', source: 'ldap' },
  { map: 'aliases', key: 'nope-metrics@example.org', expect: 'notfound', source: 'cache' },
  { map: 'mailboxes', key: 'nobody-metrics@example.org', expect: 'notfound', source: 'ldap' },
  // Errors are never cached: both go to LDAP.
  { map: 'sizelimit', key: 'triple@example.org', expect: 'temp', source: 'ldap' },
  { map: 'sizelimit', key: 'triple@example.org', expect: 'temp', source: 'ldap' },
];
/** Strings that must never show up in the exposition: keys, answers, a client-chosen map name. */
const SECRETS = [
  ...new Set(TRAFFIC.map((t) => t.key)),
  'sales-archive@elsewhere.net',
  'eng-announce@example.org',
  'made-up-map-name',
  'made-up-key@example.org',
];

describe('metrics after real traffic', () => {
  let before: Sample[];
  let after: Sample[];
  let text: string;
  const d = (name: string, labels: Record<string, string> = {}) => metricValue(after, name, labels) - metricValue(before, name, labels);

  beforeAll(async () => {
    before = await scrape();
    for (const t of TRAFFIC) {
      const r = await postmapQuery(confDir, daemon.table(t.map), t.key);
      expect(classify(r), `${t.map} ${t.key}: ${r.stderr}`).toBe(t.expect);
    }
    // A map name no one configured (only a raw client can ask for it): PERM, counted as (unknown).
    expect(await rawSocketmap('made-up-map-name made-up-key@example.org')).toMatch(/^PERM /);
    // Not a netstring: the connection is closed and counted as a protocol error.
    await rawGarbage('xyz:what is this,');
    text = await scrapeText();
    after = parseExposition(text);
  }, 30_000);

  it('histogram count summed over labels = lookups sent; per result, per source', () => {
    const n = TRAFFIC.length;
    expect(d('ldap_socketmap_lookup_duration_seconds_count')).toBe(n);
    for (const result of ['found', 'notfound', 'temp'] as const) {
      expect(d('ldap_socketmap_lookup_duration_seconds_count', { result }), result).toBe(TRAFFIC.filter((t) => t.expect === result).length);
    }
    for (const source of ['ldap', 'cache'] as const) {
      expect(d('ldap_socketmap_lookup_duration_seconds_count', { source }), source).toBe(TRAFFIC.filter((t) => t.source === source).length);
    }
    expect(d('ldap_socketmap_lookup_duration_seconds_count', { source: 'stale' })).toBe(0);
    for (const map of MAPS) {
      expect(d('ldap_socketmap_lookup_duration_seconds_count', { map }), map).toBe(TRAFFIC.filter((t) => t.map === map).length);
    }
    // The +Inf bucket is the count; the sum of durations is positive and small.
    expect(d('ldap_socketmap_lookup_duration_seconds_bucket', { le: '+Inf' })).toBe(n);
    expect(d('ldap_socketmap_lookup_duration_seconds_sum')).toBeGreaterThan(0);
    expect(d('ldap_socketmap_lookup_duration_seconds_sum')).toBeLessThan(10);
    // Buckets fine enough for a cache hit (tens of µs) and wide enough for an LDAP timeout.
    const les = [...new Set(after.filter((s) => s.name === 'ldap_socketmap_lookup_duration_seconds_bucket').map((s) => s.labels.le!))];
    expect(les).toContain('+Inf');
    const finite = les.filter((le) => le !== '+Inf').map(Number);
    expect(finite.every(Number.isFinite)).toBe(true);
    expect(Math.min(...finite)).toBeLessThanOrEqual(0.00005);
    expect(Math.max(...finite)).toBeGreaterThanOrEqual(10);
  });

  it('lookups_total per map and result matches what postmap saw', () => {
    for (const map of MAPS) {
      for (const result of ['found', 'notfound', 'temp'] as const) {
        expect(d('ldap_socketmap_lookups_total', { map, result }), `${map} ${result}`).toBe(
          TRAFFIC.filter((t) => t.map === map && t.expect === result).length,
        );
      }
      expect(d('ldap_socketmap_lookups_total', { map, result: 'perm' })).toBe(0);
      expect(d('ldap_socketmap_lookups_total', { map, result: 'timeout' })).toBe(0);
    }
    expect(d('ldap_socketmap_lookups_total', { map: '(unknown)', result: 'perm' })).toBe(1);
    expect(d('ldap_socketmap_lookups_total')).toBe(TRAFFIC.length + 1);
  });

  it('cache hits and misses add up', () => {
    const fresh = TRAFFIC.filter((t) => t.source === 'cache' && t.expect === 'found').length;
    const negative = TRAFFIC.filter((t) => t.source === 'cache' && t.expect === 'notfound').length;
    expect(d('ldap_socketmap_cache_hits_total', { kind: 'fresh' })).toBe(fresh);
    expect(d('ldap_socketmap_cache_hits_total', { kind: 'negative' })).toBe(negative);
    expect(d('ldap_socketmap_cache_hits_total', { kind: 'stale' })).toBe(0);
    expect(d('ldap_socketmap_cache_misses_total')).toBe(TRAFFIC.length - fresh - negative);
    expect(d('ldap_socketmap_cache_hits_total') + d('ldap_socketmap_cache_misses_total')).toBe(TRAFFIC.length);
    // aliases holds sales, eng, nope; mailboxes alice, nobody; sizelimit nothing (errors).
    expect(metricValue(after, 'ldap_socketmap_cache_entries', { map: 'aliases' })).toBe(3);
    expect(metricValue(after, 'ldap_socketmap_cache_entries', { map: 'mailboxes' })).toBe(2);
    expect(metricValue(after, 'ldap_socketmap_cache_entries', { map: 'sizelimit' })).toBe(0);
    expect(metricValue(after, 'ldap_socketmap_cache_bytes', { map: 'aliases' })).toBeGreaterThan(0);
    // LDAP: the searches were made and succeeded (size limit is counted per search as an error or success, not "down").
    expect(d('ldap_socketmap_ldap_requests_total', { server: slapd.url })).toBeGreaterThanOrEqual(TRAFFIC.filter((t) => t.source === 'ldap').length);
    expect(d('ldap_socketmap_ldap_requests_total', { result: 'down' })).toBe(0);
    expect(d('ldap_socketmap_ldap_request_duration_seconds_count')).toBe(d('ldap_socketmap_ldap_requests_total'));
    expect(metricValue(after, 'ldap_socketmap_ldap_connections', { server: slapd.url, state: 'open' })).toBeGreaterThanOrEqual(1);
    expect(d('ldap_socketmap_client_connections_total', { protocol: 'socketmap' })).toBeGreaterThanOrEqual(TRAFFIC.length);
    expect(d('ldap_socketmap_protocol_errors_total', { protocol: 'socketmap' })).toBe(1);
    expect(metricValue(after, 'ldap_socketmap_build_info')).toBe(1);
  });

  it('no key, answer or client-chosen name in any label value; label values are from bounded sets', () => {
    for (const secret of SECRETS) expect(text.includes(secret), secret).toBe(false);
    // Label values of the daemon's own metrics: configured names, or fixed enum tokens.
    const byLabel: Record<string, Set<string>> = {
      map: new Set([...MAPS, '(unknown)']),
      // The configured LDAP server / server_host list (bounded, operator-chosen), never a client's.
      server: new Set([slapd.url]),
      servers: new Set([slapd.url, slapd.url.replace(/\/$/, '')]),
      // A watched naming context (the directory's suffix), where the daemon has a change watcher.
      base: new Set([slapd.suffix]),
    };
    const byMetricLabel: Record<string, Set<string>> = {
      'ldap_socketmap_lookups_total/result': new Set(['found', 'notfound', 'temp', 'timeout', 'perm']),
      'ldap_socketmap_lookup_duration_seconds_bucket/result': new Set(['found', 'notfound', 'temp', 'timeout', 'perm']),
      'ldap_socketmap_lookup_duration_seconds_bucket/source': new Set(['cache', 'ldap', 'stale']),
      'ldap_socketmap_cache_hits_total/kind': new Set(['fresh', 'stale', 'negative']),
      'ldap_socketmap_ldap_requests_total/result': new Set(['success', 'noSuchObject', 'timeout', 'down', 'error']),
      'ldap_socketmap_ldap_connection_events_total/event': new Set(['open', 'close', 'fail']),
      'ldap_socketmap_client_connections_total/protocol': new Set(['socketmap', 'tcp_table']),
      'ldap_socketmap_protocol_errors_total/reason': new Set(['bad_length', 'too_long', 'bad_terminator', 'bad_request', 'line_too_long', 'bad_escape']),
    };
    for (const s of after) {
      if (!s.name.startsWith('ldap_socketmap_') || s.name === 'ldap_socketmap_build_info') continue;
      for (const [label, value] of Object.entries(s.labels)) {
        if (label === 'le') continue;
        const where = `${s.name}{${label}="${value}"}`;
        const allowed = byMetricLabel[`${s.name}/${label}`] ?? byLabel[label];
        if (allowed) expect(allowed.has(value), where).toBe(true);
        // Anything else must be a short enum word: no digits, dots, colons or @ (no key, no address).
        else expect(value, where).toMatch(/^[A-Za-z_]{1,32}$/);
      }
    }
    const build = after.find((s) => s.name === 'ldap_socketmap_build_info');
    expect(Object.keys(build?.labels ?? {}).sort()).toEqual(['node_version', 'version']);
  });

  it('every metric of the issue is exposed, with its type', () => {
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    const expected: Record<string, string> = {
      ldap_socketmap_lookup_duration_seconds: 'histogram',
      ldap_socketmap_lookups_total: 'counter',
      ldap_socketmap_cache_hits_total: 'counter',
      ldap_socketmap_cache_misses_total: 'counter',
      ldap_socketmap_cache_entries: 'gauge',
      ldap_socketmap_cache_bytes: 'gauge',
      ldap_socketmap_ldap_requests_total: 'counter',
      ldap_socketmap_ldap_request_duration_seconds: 'histogram',
      ldap_socketmap_ldap_connections: 'gauge',
      ldap_socketmap_client_connections: 'gauge',
      ldap_socketmap_protocol_errors_total: 'counter',
      ldap_socketmap_replies_oversize_total: 'counter',
      ldap_socketmap_build_info: 'gauge',
      process_cpu_seconds_total: 'counter',
      process_resident_memory_bytes: 'gauge',
    };
    for (const [name, type] of Object.entries(expected)) expect(types.get(name), name).toBe(type);
  });

  it('passes the real promtool check metrics', async () => {
    const r = await promtoolCheck(text);
    expect(r.output).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('health endpoints', () => {
  it('/healthz 200', async () => {
    const res = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok\n');
  });

  it('/readyz 200 with JSON per map while slapd is up', async () => {
    const r = await getJson('/readyz');
    expect(r.status).toBe(200);
    const body = r.body as { ok: boolean; maps: Record<string, { ok: boolean; ldap: string; cacheEntries: number }> };
    expect(body.ok).toBe(true);
    expect(Object.keys(body.maps).sort()).toEqual([...MAPS].sort());
    for (const map of MAPS) expect(body.maps[map], map).toMatchObject({ ok: true, ldap: 'connected' });
    expect(body.maps.aliases!.cacheEntries).toBeGreaterThan(0);
  });

  it('/readyz 503 when slapd is down and nothing is cached; a map with cached answers stays ready; back to 200', async () => {
    const flush = await fetch(`http://127.0.0.1:${adminPort}/cache/flush`, { method: 'POST' });
    expect(flush.status).toBe(200);
    await slapd.stop();
    try {
      let r = await getJson('/readyz');
      expect(r.status).toBe(503);
      let body = r.body as { ok: boolean; maps: Record<string, { ok: boolean; ldap: string; cacheEntries: number; detail?: string }> };
      expect(body.ok).toBe(false);
      for (const map of MAPS) {
        expect(body.maps[map], map).toMatchObject({ ok: false, ldap: 'down', cacheEntries: 0 });
        expect(typeof body.maps[map]!.detail).toBe('string');
      }
      // The exposition stays valid with LDAP down.
      const down = await scrapeText();
      expect(await promtoolCheck(down)).toEqual({ code: 0, output: '' });

      // One map with an answer cached (while slapd was briefly back) serves from cache: ready.
      await slapd.start();
      await waitFor('lookup with slapd back', () => postmapQuery(confDir, daemon.table('aliases'), 'sales@example.org'), (x) => classify(x) === 'found');
      expect(classify(await postmapQuery(confDir, daemon.table('brief'), 'alice@example.org'))).toBe('found');
      const briefCached = Date.now();
      await slapd.stop();
      // brief's answer expires after 1 s and may not be served stale: that map has nothing to serve.
      await sleep(Math.max(0, briefCached + 1_300 - Date.now()));
      r = await getJson('/readyz');
      expect(r.status).toBe(503);
      body = r.body as typeof body;
      expect(body.maps.aliases).toMatchObject({ ok: true, ldap: 'down' });
      expect(body.maps.aliases!.cacheEntries).toBeGreaterThan(0);
      expect(body.maps.mailboxes).toMatchObject({ ok: false, ldap: 'down', cacheEntries: 0 });
      expect(body.maps.brief).toMatchObject({ ok: false, ldap: 'down', cacheEntries: 0 });
      expect(classify(await postmapQuery(confDir, daemon.table('brief'), 'alice@example.org'))).toBe('temp');
    } finally {
      await slapd.start();
    }
    const back = await waitFor('/readyz after slapd restart', () => getJson('/readyz'), (x) => x.status === 200);
    expect((back.body as { ok: boolean }).ok).toBe(true);
  }, 40_000);
});
