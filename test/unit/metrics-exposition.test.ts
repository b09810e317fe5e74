import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { CachedMap } from '../../src/cache/cache-map.js';
import type { LookupMap } from '../../src/contracts/map.js';
import { found, NOTFOUND, perm, temp, type LookupResult } from '../../src/contracts/result.js';
import { LOOKUP_BUCKETS, Metrics, UNKNOWN_MAP } from '../../src/metrics/metrics.js';
import { requestFlush } from '../../src/cli/admin-client.js';
import { isLoopback, startAdminHttp, type Health } from '../../src/runtime/admin-http.js';
import { socketmapAnswers, type SocketmapForm } from '../../src/protocol/socketmap-answers.js';
import { metricValue, parseExposition as parseSamples, type Sample, seriesValue } from '../support/metrics.js';
import { httpRequest } from '../support/http.js';

/** Parses the text exposition, checking the shape of every HELP/TYPE line on the way. */
function parseExposition(text: string): Sample[] {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) expect(line).toMatch(/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/);
  }
  return parseSamples(text);
}

class Scripted implements LookupMap {
  calls = 0;
  answers = new Map<string, LookupResult>();
  constructor(readonly name: string) {}
  async lookup(key: Buffer): Promise<LookupResult> {
    this.calls++;
    return this.answers.get(key.toString('latin1')) ?? NOTFOUND;
  }
}

const K = (s: string): Buffer => Buffer.from(s);

/**
 * A scripted day in the life: two maps behind caches, LDAP events, client connections, protocol
 * errors, an unknown map and an oversize reply. Lookups go through the cache (cacheObserver) and
 * the "handler" (lookupObserverFor) like in the daemon.
 */
async function scripted(): Promise<{ metrics: Metrics; requests: number; clock: { t: number } }> {
  const metrics = new Metrics({ version: '9.9.9-test' });
  const clock = { t: 0 };
  const aliasesInner = new Scripted('aliases');
  aliasesInner.answers.set('a@x', found(K('b@y')));
  aliasesInner.answers.set('big@x', found(Buffer.alloc(200_000, 0x61)));
  const mailboxesInner = new Scripted('mailboxes');
  const opts = { ttlSec: 60, negativeTtlSec: 10, maxEntries: 100, maxBytes: 1 << 20, staleIfErrorSec: 300, now: () => clock.t };
  const aliases = new CachedMap(aliasesInner, opts, socketmapAnswers(), metrics.cacheObserver);
  const mailboxes = new CachedMap(mailboxesInner, opts, socketmapAnswers(), metrics.cacheObserver);
  metrics.setMaps(['aliases', 'mailboxes']);
  metrics.registerCache('aliases', aliases);
  metrics.registerCache('mailboxes', mailboxes);
  const socketmap = metrics.lookupObserverFor('socketmap');
  const tcp = metrics.lookupObserverFor('tcp_table');
  let requests = 0;
  const ask = async (map: CachedMap<SocketmapForm>, key: string, observer = socketmap): Promise<LookupResult> => {
    requests++;
    const r = await map.lookup(K(key));
    observer.answered?.(map.name, r, r.kind === 'found' && r.value.length > 100_000 ? r.value.length : undefined);
    return r;
  };

  await ask(aliases, 'a@x'); // miss, found, ldap
  await ask(aliases, 'a@x'); // fresh hit
  await ask(aliases, 'a@x', tcp); // fresh hit
  await ask(aliases, 'nobody@x'); // miss, notfound
  await ask(aliases, 'nobody@x'); // negative hit
  await ask(aliases, 'big@x'); // miss, found, oversize
  await ask(mailboxes, 'm@x'); // miss, notfound
  clock.t += 61_000;
  aliasesInner.answers.set('a@x', temp('ldap down'));
  await ask(aliases, 'a@x'); // stale hit
  aliasesInner.answers.set('zzz', temp('ldap down'));
  await ask(aliases, 'zzz'); // miss, temp
  // 20 concurrent cold lookups, coalesced into one inner call: still 20 requests
  await Promise.all(Array.from({ length: 20 }, () => ask(mailboxes, 'hot@x')));
  // a client asks for a map that does not exist: PERM, never a new label value
  requests++;
  socketmap.answered?.('no-such-map-\u00e9', perm('unknown map'));

  const server = 'ldap://ldap1.example.org:389';
  metrics.poolObserver.connection?.(server, 'fail');
  metrics.poolObserver.connection?.(server, 'open');
  metrics.poolObserver.connection?.(server, 'open');
  metrics.poolObserver.connection?.(server, 'close');
  metrics.poolObserver.request?.(server, 'success', 0.002);
  metrics.poolObserver.request?.(server, 'success', 0.004);
  metrics.poolObserver.request?.(server, 'noSuchObject', 0.001);
  metrics.poolObserver.request?.(server, 'timeout', 10);

  const conns = metrics.connectionObserver;
  conns.opened?.('socketmap');
  conns.opened?.('socketmap');
  conns.opened?.('tcp_table');
  conns.closed?.('socketmap');
  conns.protocolError?.('socketmap', 'bad_length');
  conns.closed?.('tcp_table');
  conns.closed?.('tcp_table'); // an extra close never drives the gauge negative
  return { metrics, requests, clock };
}

describe('Metrics exposition', () => {
  it('contains the expected counts after a scripted sequence', async () => {
    const { metrics, requests } = await scripted();
    const text = await metrics.text();
    const p = parseExposition(text);

    // lookups_total: once per request, by map and result
    expect(metricValue(p, 'ldap_socketmap_lookups_total')).toBe(requests);
    expect(seriesValue(p, 'ldap_socketmap_lookups_total', { map: 'aliases', result: 'found' })).toBe(5);
    expect(seriesValue(p, 'ldap_socketmap_lookups_total', { map: 'aliases', result: 'notfound' })).toBe(2);
    expect(seriesValue(p, 'ldap_socketmap_lookups_total', { map: 'aliases', result: 'temp' })).toBe(1);
    expect(seriesValue(p, 'ldap_socketmap_lookups_total', { map: 'aliases', result: 'timeout' })).toBe(0);
    expect(seriesValue(p, 'ldap_socketmap_lookups_total', { map: 'mailboxes', result: 'notfound' })).toBe(21);
    expect(seriesValue(p, 'ldap_socketmap_lookups_total', { map: UNKNOWN_MAP, result: 'perm' })).toBe(1);
    expect(text).not.toContain('no-such-map');

    // histogram: _count equals the requests that went through the cache layer
    const cached = requests - 1;
    expect(metricValue(p, 'ldap_socketmap_lookup_duration_seconds_count')).toBe(cached);
    expect(seriesValue(p, 'ldap_socketmap_lookup_duration_seconds_count', { map: 'aliases', result: 'found', source: 'cache' })).toBe(2);
    expect(seriesValue(p, 'ldap_socketmap_lookup_duration_seconds_count', { map: 'aliases', result: 'found', source: 'ldap' })).toBe(2);
    expect(seriesValue(p, 'ldap_socketmap_lookup_duration_seconds_count', { map: 'aliases', result: 'found', source: 'stale' })).toBe(1);
    expect(seriesValue(p, 'ldap_socketmap_lookup_duration_seconds_count', { map: 'aliases', result: 'notfound', source: 'cache' })).toBe(1);
    expect(seriesValue(p, 'ldap_socketmap_lookup_duration_seconds_count', { map: 'aliases', result: 'temp', source: 'ldap' })).toBe(1);
    expect(seriesValue(p, 'ldap_socketmap_lookup_duration_seconds_count', { map: 'mailboxes', result: 'notfound', source: 'ldap' })).toBe(21);
    // every series has the +Inf bucket equal to its count, and all configured buckets
    const infs = metricValue(p, 'ldap_socketmap_lookup_duration_seconds_bucket', { le: '+Inf' });
    expect(infs).toBe(cached);
    for (const le of LOOKUP_BUCKETS) {
      expect(seriesValue(p, 'ldap_socketmap_lookup_duration_seconds_bucket', { map: 'aliases', result: 'found', source: 'cache', le: String(le) })).toBeDefined();
    }
    expect(LOOKUP_BUCKETS[0]).toBe(0.000025);
    expect(LOOKUP_BUCKETS.at(-1)).toBe(30);

    // cache hits / misses: exactly one per cached request
    expect(seriesValue(p, 'ldap_socketmap_cache_hits_total', { map: 'aliases', kind: 'fresh' })).toBe(2);
    expect(seriesValue(p, 'ldap_socketmap_cache_hits_total', { map: 'aliases', kind: 'negative' })).toBe(1);
    expect(seriesValue(p, 'ldap_socketmap_cache_hits_total', { map: 'aliases', kind: 'stale' })).toBe(1);
    expect(seriesValue(p, 'ldap_socketmap_cache_hits_total', { map: 'mailboxes', kind: 'fresh' })).toBe(0);
    expect(seriesValue(p, 'ldap_socketmap_cache_misses_total', { map: 'aliases' })).toBe(4);
    expect(seriesValue(p, 'ldap_socketmap_cache_misses_total', { map: 'mailboxes' })).toBe(21);
    expect(metricValue(p, 'ldap_socketmap_cache_hits_total') + metricValue(p, 'ldap_socketmap_cache_misses_total')).toBe(cached);

    // cache gauges read the caches at scrape time
    expect(seriesValue(p, 'ldap_socketmap_cache_entries', { map: 'aliases' })).toBe(3);
    expect(seriesValue(p, 'ldap_socketmap_cache_entries', { map: 'mailboxes' })).toBe(2);
    expect(seriesValue(p, 'ldap_socketmap_cache_bytes', { map: 'aliases' })).toBeGreaterThan(200_000);

    // oversize replies, by map and protocol
    expect(seriesValue(p, 'ldap_socketmap_replies_oversize_total', { map: 'aliases', protocol: 'socketmap' })).toBe(1);

    // LDAP
    const server = 'ldap://ldap1.example.org:389';
    expect(seriesValue(p, 'ldap_socketmap_ldap_requests_total', { server, result: 'success' })).toBe(2);
    expect(seriesValue(p, 'ldap_socketmap_ldap_requests_total', { server, result: 'noSuchObject' })).toBe(1);
    expect(seriesValue(p, 'ldap_socketmap_ldap_requests_total', { server, result: 'timeout' })).toBe(1);
    expect(seriesValue(p, 'ldap_socketmap_ldap_requests_total', { server, result: 'down' })).toBe(0);
    expect(seriesValue(p, 'ldap_socketmap_ldap_request_duration_seconds_count', { server })).toBe(4);
    expect(seriesValue(p, 'ldap_socketmap_ldap_request_duration_seconds_sum', { server })).toBeCloseTo(10.007, 6);
    expect(seriesValue(p, 'ldap_socketmap_ldap_connections', { server, state: 'open' })).toBe(1);
    expect(seriesValue(p, 'ldap_socketmap_ldap_connection_events_total', { server, event: 'open' })).toBe(2);
    expect(seriesValue(p, 'ldap_socketmap_ldap_connection_events_total', { server, event: 'close' })).toBe(1);
    expect(seriesValue(p, 'ldap_socketmap_ldap_connection_events_total', { server, event: 'fail' })).toBe(1);

    // clients
    expect(seriesValue(p, 'ldap_socketmap_client_connections', { protocol: 'socketmap' })).toBe(1);
    expect(seriesValue(p, 'ldap_socketmap_client_connections', { protocol: 'tcp_table' })).toBe(0);
    expect(seriesValue(p, 'ldap_socketmap_client_connections_total', { protocol: 'socketmap' })).toBe(2);
    expect(seriesValue(p, 'ldap_socketmap_client_connections_total', { protocol: 'tcp_table' })).toBe(1);
    expect(seriesValue(p, 'ldap_socketmap_protocol_errors_total', { protocol: 'socketmap', reason: 'bad_length' })).toBe(1);

    // build info and default process metrics
    expect(seriesValue(p, 'ldap_socketmap_build_info', { version: '9.9.9-test', node_version: process.version })).toBe(1);
    expect(text).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(text).toContain('nodejs_heap_size_used_bytes');
  });

  it('several registries coexist (one per daemon)', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.connectionObserver.opened?.('socketmap');
    const pa = parseExposition(await a.text());
    const pb = parseExposition(await b.text());
    expect(seriesValue(pa, 'ldap_socketmap_client_connections_total', { protocol: 'socketmap' })).toBe(1);
    expect(seriesValue(pb, 'ldap_socketmap_client_connections_total', { protocol: 'socketmap' })).toBeUndefined();
    expect(a.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('declared maps have zero-valued counter series before any traffic; setMaps drops removed caches', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.setMaps(['aliases']);
    m.registerCache('old', { size: 7, bytes: 700 });
    let p = parseExposition(await m.text());
    expect(seriesValue(p, 'ldap_socketmap_lookups_total', { map: 'aliases', result: 'temp' })).toBe(0);
    expect(seriesValue(p, 'ldap_socketmap_cache_misses_total', { map: 'aliases' })).toBe(0);
    expect(seriesValue(p, 'ldap_socketmap_cache_entries', { map: 'old' })).toBe(7);
    m.setMaps(['aliases']);
    p = parseExposition(await m.text());
    expect(seriesValue(p, 'ldap_socketmap_cache_entries', { map: 'old' })).toBeUndefined();
  });

  it('passes promtool check metrics', async () => {
    const probe = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
    if (probe.error) {
      throw new Error('promtool not found: install the Debian package "prometheus" (apt-get install -y prometheus)');
    }
    const { metrics } = await scripted();
    const text = await metrics.text();
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    const output = `${r.stdout}${r.stderr}`.trim();
    expect(output).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('admin HTTP', () => {
  it('serves /metrics, /healthz, /readyz and /cache/flush', async () => {
    const { metrics } = await scripted();
    let health: Health = { ok: true, maps: { aliases: { ok: true, ldap: 'connected', cacheEntries: 3 } } };
    const flushed: [string | undefined, string | undefined][] = [];
    const admin = await startAdminHttp(
      { host: '127.0.0.1', port: 0 },
      {
        metrics,
        health: async () => health,
        flush: (map, key) => {
          flushed.push([map, key]);
          return key ? 1 : 5;
        },
      },
    );
    try {
      const m = await httpRequest(admin.port, '/metrics');
      expect(m.status).toBe(200);
      expect(m.type).toBe(metrics.contentType);
      expect(m.body).toContain('ldap_socketmap_lookups_total{map="aliases",result="found"} 5');

      expect(await httpRequest(admin.port, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });

      let r = await httpRequest(admin.port, '/readyz');
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toEqual(health);
      health = { ok: false, maps: { aliases: { ok: false, ldap: 'down', cacheEntries: 0, detail: 'connect ECONNREFUSED' } } };
      r = await httpRequest(admin.port, '/readyz');
      expect(r.status).toBe(503);
      expect(JSON.parse(r.body).maps.aliases.detail).toBe('connect ECONNREFUSED');

      expect((await httpRequest(admin.port, '/cache/flush')).status).toBe(405);
      expect((await httpRequest(admin.port, '/metrics', 'POST')).status).toBe(405);
      expect((await httpRequest(admin.port, '/nope')).status).toBe(404);

      r = await httpRequest(admin.port, '/cache/flush?map=aliases&key=a%40x', 'POST');
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ flushed: 1 });
      expect(await requestFlush({ host: '127.0.0.1', port: admin.port })).toBe(5);
      expect(await requestFlush({ host: '127.0.0.1', port: admin.port }, 'mailboxes')).toBe(5);
      expect(flushed).toEqual([['aliases', 'a@x'], [undefined, undefined], ['mailboxes', undefined]]);
      await expect(requestFlush({ host: '127.0.0.1', port: admin.port }, undefined, 'k')).rejects.toThrow('HTTP 400');
    } finally {
      await admin.close();
    }
  });

  it('recognises loopback addresses only', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) expect(isLoopback(a)).toBe(true);
    for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '192.168.1.1', '::', '0.0.0.0', 'fe80::1', undefined]) expect(isLoopback(a)).toBe(false);
  });

  it('refuses /cache/flush from a non-loopback address', async () => {
    // Find a non-loopback local address to connect from; skip the network part if there is none.
    const os = await import('node:os');
    const external = Object.values(os.networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
    if (!external) return;
    let calls = 0;
    const admin = await startAdminHttp({ host: '0.0.0.0', port: 0 }, { metrics: new Metrics({ defaultMetrics: false }), health: async () => ({ ok: true, maps: {} }), flush: () => ++calls });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: external, port: admin.port, path: '/cache/flush', method: 'POST', localAddress: external }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(403);
      expect(calls).toBe(0);
      expect((await httpRequest(admin.port, '/cache/flush', 'POST')).status).toBe(200);
      expect(calls).toBe(1);
    } finally {
      await admin.close();
    }
  });
});
