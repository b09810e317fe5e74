/**
 * The answer cache seen from outside, against a real slapd and the built daemon: coalescing of
 * concurrent identical lookups, stale-if-error while LDAP is down, positive and negative TTLs
 * with real directory changes, flushes (CLI, HTTP, SIGUSR1) and the byte bound under a flood of
 * random keys. Lookups go through the real Postfix client (postmap) except where postmap cannot
 * produce the traffic (200 concurrent connections, 20 000 keys): there a raw socketmap client.
 *
 * Every map below is its own cache (same .cf file under several names, per-map settings), so
 * each test owns its keys and timing. LDAP traffic is counted twice: from the daemon's
 * ldap_socketmap_ldap_requests_total and from slapd's own stats log.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAP_SETTING_DEFS } from '../../src/config/settings.js';
import { startDaemonWithMetrics, type DaemonWithMetrics, runCli } from '../support/daemon.js';
import { classify, makePostfixConfigDir, postmapQuery, valueOf, writeFixtureCf } from '../support/postfix.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';
import { sleep, waitFor } from '../support/wait.js';
import { frame, SocketmapClient } from '../support/socketmap-client.js';
import { metricValue, parseExposition, type Sample } from '../support/metrics.js';

const SALES = 'alice@example.org,robert@example.org,Bob.Builder@Example.ORG,bob@example.org,sales-archive@elsewhere.net';

/** Entries only this file uses, so directory changes here cannot disturb other expectations. */
const EXTRA_LDIF = `
dn: cn=cache-ttl,ou=Groups,dc=example,dc=org
objectClass: mailList
cn: cache-ttl
listName: cache-ttl
mail: cache-ttl-a@example.org

dn: cn=cache-ahead,ou=Groups,dc=example,dc=org
objectClass: mailList
cn: cache-ahead
listName: cache-ahead
mail: cache-ahead-a@example.org
`;
const LATE_PERSON = `dn: uid=late,ou=People,dc=example,dc=org
objectClass: inetOrgPerson
uid: late
cn: Late Comer
sn: Comer
mail: late@example.org
`;

const FLOOD_MAX_BYTES = 200_000;

/**
 * The change watcher (change_poll_interval, where the daemon has it) expires answers when the
 * directory changes and makes searches of its own. This file is about TTLs and exact search
 * counts, so it is turned off here.
 */
const NO_WATCHER = 'changePollInterval' in MAP_SETTING_DEFS ? ['--set', 'change_poll_interval=0'] : [];

let slapd: Slapd;
let daemon: DaemonWithMetrics;
let confDir: string;
let adminPort: number;

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                      */
/* ------------------------------------------------------------------------------------------ */


async function sleepUntil(t: number): Promise<void> {
  const d = t - Date.now();
  if (d > 0) await sleep(d);
}


/**
 * SIGSTOP takes effect asynchronously (each thread stops when it next handles signals, later
 * under load), so slapd.pause() can return while slapd still answers for a moment. Wait until
 * every thread of slapd is stopped.
 */
async function pauseSlapd(): Promise<void> {
  slapd.pause();
  const stopped = () => {
    try {
      return readdirSync(`/proc/${slapd.pid}/task`).every((t) => /^State:\s*T/m.test(readFileSync(`/proc/${slapd.pid}/task/${t}/status`, 'utf8')));
    } catch {
      return false;
    }
  };
  await waitFor('slapd stopped', async () => stopped(), (x) => x, 5_000);
}

async function scrape(): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

/** LDAP searches the daemon made (all servers, all outcomes). */
const ldapRequests = (m: Sample[]) => metricValue(m, 'ldap_socketmap_ldap_requests_total');

/** slapd's own count of searches whose filter mentions `needle`. */
const searchesFor = (needle: string) => slapd.searches().filter((s) => s.filter.includes(needle)).length;

async function lookup(map: string, key: string): Promise<{ kind: string; value: string }> {
  const r = await postmapQuery(confDir, daemon.table(map), key);
  return { kind: classify(r), value: classify(r) === 'found' ? valueOf(r) : r.stderr.trim() };
}

/* ------------------------------------------------------------------------------------------ */

beforeAll(async () => {
  slapd = await startSlapd({ ldif: [directoryLdif(), EXTRA_LDIF] });
  confDir = await makePostfixConfigDir();
  const dir = makeTmpDir('cache-');
  const vars = { LDAP_URL: slapd.url };
  const aliases = writeFixtureCf(dir, 'aliases', vars);
  const mailboxes = writeFixtureCf(dir, 'mailboxes', vars);
  daemon = await startDaemonWithMetrics([
    '--socketmap', 'inet:127.0.0.1:0', ...NO_WATCHER,
    // Defaults (cache_ttl 300, cache_negative_ttl 60, stale_if_error 600).
    '--map', `aliases=${aliases}`, '--map', `mailboxes=${mailboxes}`,
    // Short-lived answers with a short stale window.
    '--map', `short=${aliases}`,
    '--set', 'map.short.cache_ttl=1', '--set', 'map.short.cache_negative_ttl=1', '--set', 'map.short.stale_if_error=4',
    // TTL and negative TTL against real directory changes.
    '--map', `ttl=${aliases}`, '--set', 'map.ttl.cache_ttl=5',
    '--map', `negttl=${mailboxes}`, '--set', 'map.negttl.cache_negative_ttl=5',
    // Refresh-ahead (at 80 % of the TTL).
    '--map', `ahead=${aliases}`, '--set', 'map.ahead.cache_ttl=8',
    // No cache at all.
    '--map', `nocache=${mailboxes}`, '--set', 'map.nocache.cache_ttl=0', '--set', 'map.nocache.cache_negative_ttl=0',
    // Byte bound.
    '--map', `flood=${mailboxes}`, '--set', `map.flood.cache_max_bytes=${FLOOD_MAX_BYTES}`,
  ]);
  adminPort = daemon.metricsPort;
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await slapd?.destroy();
});

describe('coalescing', () => {
  it('200 concurrent identical cold lookups on 200 connections: exactly one LDAP search', async () => {
    // Connected pool first, so the one search below is the only thing that reaches slapd.
    expect(await lookup('mailboxes', 'bob@example.org')).toEqual({ kind: 'found', value: 'bob' });
    expect(frame('mailboxes alice@example.org').toString()).toBe('27:mailboxes alice@example.org,');
    const clients = await Promise.all(Array.from({ length: 200 }, () => SocketmapClient.connect(daemon.ports[0]!)));
    try {
      const before = await scrape();
      slapd.resetSearchCount();
      // Hold slapd still so that every request is in the daemon before the first answer can
      // exist: what is measured is coalescing, not the cache filled by a quick first answer.
      await pauseSlapd();
      let replies: Promise<string[]>;
      try {
        replies = Promise.all(clients.map((c) => c.ask('mailboxes', 'alice@example.org', Infinity)));
        // All 200 connections accepted by the daemon (their requests are already in its socket
        // buffers), then a moment for it to read them, under whatever load the machine has.
        // (If one were read only after the answer, it would be a cache hit: counted below.)
        await waitFor(
          'daemon accepting 200 connections',
          async () => metricValue(await scrape(), 'ldap_socketmap_client_connections', { protocol: 'socketmap' }),
          (n) => n >= 200,
          15_000,
        );
        await sleep(500);
      } finally {
        slapd.resume();
      }
      expect(new Set(await replies)).toEqual(new Set(['OK alice']));
      const after = await scrape();

      expect(ldapRequests(after) - ldapRequests(before)).toBe(1);
      await slapd.logSettled();
      expect(searchesFor('mail=alice@example.org')).toBe(1);
      expect(slapd.searchCount()).toBe(1);
      // All 200 were misses that waited on the one search; none was served from the cache.
      const d = (name: string, labels: Record<string, string>) => metricValue(after, name, labels) - metricValue(before, name, labels);
      expect(d('ldap_socketmap_cache_misses_total', { map: 'mailboxes' })).toBe(200);
      expect(d('ldap_socketmap_cache_hits_total', { map: 'mailboxes' })).toBe(0);
      expect(d('ldap_socketmap_lookups_total', { map: 'mailboxes', result: 'found' })).toBe(200);
    } finally {
      for (const c of clients) c.end();
    }
  });

  it('200 concurrent lookups of a nested list: one expansion, as many searches as one cold lookup', async () => {
    // One cold expansion of eng (list, carol, sales, alice, bob) in a map of its own, to learn its cost.
    const m0 = await scrape();
    expect((await lookup('ttl', 'eng')).kind).toBe('found');
    const m1 = await scrape();
    const perExpansion = ldapRequests(m1) - ldapRequests(m0);
    expect(perExpansion).toBeGreaterThanOrEqual(5);

    const clients = await Promise.all(Array.from({ length: 200 }, () => SocketmapClient.connect(daemon.ports[0]!)));
    try {
      slapd.resetSearchCount();
      // No pause this time: all requests written at once, answered while the expansion runs.
      const replies = await Promise.all(clients.map((c) => c.ask('aliases', 'eng', Infinity)));
      expect(new Set(replies)).toEqual(new Set([`OK eng-announce@example.org,carol@example.org,carol@elsewhere.net,${SALES}`]));
      const m2 = await scrape();
      expect(ldapRequests(m2) - ldapRequests(m1)).toBe(perExpansion);
      await slapd.logSettled();
      expect(searchesFor('listName=eng')).toBe(1);
      expect(slapd.searchCount()).toBe(perExpansion);
    } finally {
      for (const c of clients) c.end();
    }
  });
});

// Independent maps and keys: run side by side to keep the file quick. slapd's search log is
// read as deltas from a baseline here, never reset.
describe.concurrent('TTL with real directory changes', () => {
  it('a changed list: the old answer until cache_ttl has passed, the new one after', async ({ expect }) => {
    expect(await lookup('ttl', 'cache-ttl')).toEqual({ kind: 'found', value: 'cache-ttl-a@example.org' });
    const t0 = Date.now();
    await slapd.modify('dn: cn=cache-ttl,ou=Groups,dc=example,dc=org\nchangetype: modify\nadd: mail\nmail: cache-ttl-b@example.org\n');
    const base = searchesFor('listName=cache-ttl');
    expect(await lookup('ttl', 'cache-ttl')).toEqual({ kind: 'found', value: 'cache-ttl-a@example.org' });
    // Inside the TTL (5 s) and before refresh-ahead (80 %): from the cache, slapd not asked.
    expect(Date.now() - t0, 'test premise: second lookup well inside the TTL').toBeLessThan(4_000);
    expect(searchesFor('listName=cache-ttl') - base).toBe(0);

    await sleepUntil(t0 + 5_300);
    expect(await lookup('ttl', 'cache-ttl')).toEqual({ kind: 'found', value: 'cache-ttl-a@example.org,cache-ttl-b@example.org' });
    expect(searchesFor('listName=cache-ttl') - base).toBe(1);
  });

  it('a new entry: NOTFOUND until cache_negative_ttl has passed, found after', async ({ expect }) => {
    expect((await lookup('negttl', 'late@example.org')).kind).toBe('notfound');
    const t0 = Date.now();
    await slapd.add(LATE_PERSON);
    const base = searchesFor('mail=late@example.org');
    expect((await lookup('negttl', 'late@example.org')).kind).toBe('notfound');
    expect(Date.now() - t0, 'test premise: second lookup well inside the negative TTL').toBeLessThan(4_000);
    expect(searchesFor('mail=late@example.org') - base).toBe(0);
    // A map without that negative answer cached sees the new entry at once.
    expect(await lookup('mailboxes', 'late@example.org')).toEqual({ kind: 'found', value: 'late' });

    await sleepUntil(t0 + 5_300);
    expect(await lookup('negttl', 'late@example.org')).toEqual({ kind: 'found', value: 'late' });
  });

  it('refresh-ahead: a hit late in the TTL refreshes in the background; the next hit has the new answer, no miss', async ({ expect }) => {
    const tA = Date.now();
    expect(await lookup('ahead', 'cache-ahead')).toEqual({ kind: 'found', value: 'cache-ahead-a@example.org' });
    const tB = Date.now();
    await slapd.modify('dn: cn=cache-ahead,ou=Groups,dc=example,dc=org\nchangetype: modify\nadd: mail\nmail: cache-ahead-b@example.org\n');
    const base = searchesFor('listName=cache-ahead');
    const before = await scrape();

    // Past 80 % of the 8 s TTL: still the cached answer, and a refresh starts behind it.
    await sleepUntil(tB + 6_500);
    expect(await lookup('ahead', 'cache-ahead')).toEqual({ kind: 'found', value: 'cache-ahead-a@example.org' });
    await waitFor('background refresh search', async () => searchesFor('listName=cache-ahead') - base, (n) => n === 1, 1_000);
    await sleep(100);
    // Before the entry would have expired: the refreshed answer, from the cache.
    expect(await lookup('ahead', 'cache-ahead')).toEqual({ kind: 'found', value: 'cache-ahead-a@example.org,cache-ahead-b@example.org' });
    expect(Date.now(), 'test premise: still inside the first TTL').toBeLessThan(tA + 8_000);
    const after = await scrape();
    const d = (name: string, labels: Record<string, string>) => metricValue(after, name, labels) - metricValue(before, name, labels);
    expect(d('ldap_socketmap_cache_misses_total', { map: 'ahead' })).toBe(0);
    expect(d('ldap_socketmap_cache_hits_total', { map: 'ahead', kind: 'fresh' })).toBe(2);
    expect(searchesFor('listName=cache-ahead') - base).toBe(1);
  });

  it('cache_ttl = 0 and cache_negative_ttl = 0: every lookup is an LDAP search', async ({ expect }) => {
    const base = [searchesFor('mail=carol@example.org'), searchesFor('mail=nobody-here@example.org')];
    for (let i = 0; i < 3; i++) {
      expect(await lookup('nocache', 'carol@example.org')).toEqual({ kind: 'found', value: 'carol' });
      expect((await lookup('nocache', 'nobody-here@example.org')).kind).toBe('notfound');
    }
    expect(searchesFor('mail=carol@example.org') - base[0]!).toBe(3);
    expect(searchesFor('mail=nobody-here@example.org') - base[1]!).toBe(3);
  });
});

describe('flush', () => {
  it('ldap-socketmap cache flush MAP KEY / MAP / all: the next lookup goes to LDAP', async () => {
    const metrics = `127.0.0.1:${adminPort}`;
    slapd.resetSearchCount();
    expect(await lookup('mailboxes', 'carol@example.org')).toEqual({ kind: 'found', value: 'carol' });
    expect(await lookup('mailboxes', 'dave@example.org')).toEqual({ kind: 'found', value: 'dave' });
    expect(await lookup('mailboxes', 'carol@example.org')).toEqual({ kind: 'found', value: 'carol' });
    expect(searchesFor('mail=carol@example.org')).toBe(1);

    // One key.
    let r = await runCli(['cache', 'flush', 'mailboxes', 'carol@example.org', '--metrics', metrics]);
    expect(r).toMatchObject({ code: 0, stdout: 'flushed 1 cached answer\n' });
    expect(await lookup('mailboxes', 'carol@example.org')).toEqual({ kind: 'found', value: 'carol' });
    expect(await lookup('mailboxes', 'dave@example.org')).toEqual({ kind: 'found', value: 'dave' });
    expect(searchesFor('mail=carol@example.org')).toBe(2);
    expect(searchesFor('mail=dave@example.org')).toBe(1);

    // One map.
    r = await runCli(['cache', 'flush', 'mailboxes', '--metrics', metrics]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^flushed \d+ cached answers?\n$/);
    expect(Number(/\d+/.exec(r.stdout)![0])).toBeGreaterThanOrEqual(2);
    expect(await lookup('mailboxes', 'dave@example.org')).toEqual({ kind: 'found', value: 'dave' });
    expect(searchesFor('mail=dave@example.org')).toBe(2);

    // Everything.
    expect(await lookup('aliases', 'sales')).toEqual({ kind: 'found', value: SALES });
    r = await runCli(['cache', 'flush', '--metrics', metrics]);
    expect(r.code).toBe(0);
    expect(Number(/\d+/.exec(r.stdout)![0])).toBeGreaterThanOrEqual(2);
    const before = searchesFor('listName=sales');
    expect(await lookup('aliases', 'sales')).toEqual({ kind: 'found', value: SALES });
    expect(await lookup('mailboxes', 'dave@example.org')).toEqual({ kind: 'found', value: 'dave' });
    expect(searchesFor('listName=sales')).toBe(before + 1);
    expect(searchesFor('mail=dave@example.org')).toBe(3);

    // An unknown map is an error, named.
    r = await runCli(['cache', 'flush', 'no-such-map', '--metrics', metrics]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/404.*no-such-map/);
  });

  it('POST /cache/flush: key, map, all; the next lookup goes to LDAP', async () => {
    const post = async (query: string) => {
      const res = await fetch(`http://127.0.0.1:${adminPort}/cache/flush${query}`, { method: 'POST' });
      return { status: res.status, body: (await res.json()) as { flushed?: number; error?: string } };
    };
    slapd.resetSearchCount();
    expect(await lookup('mailboxes', 'erin@example.org')).toEqual({ kind: 'found', value: 'erin' });
    expect(await lookup('mailboxes', 'erin@example.org')).toEqual({ kind: 'found', value: 'erin' });
    expect(searchesFor('mail=erin@example.org')).toBe(1);

    expect(await post('?map=mailboxes&key=erin%40example.org')).toEqual({ status: 200, body: { flushed: 1 } });
    expect(await lookup('mailboxes', 'erin@example.org')).toEqual({ kind: 'found', value: 'erin' });
    expect(searchesFor('mail=erin@example.org')).toBe(2);
    // A key that is not cached: nothing to flush, not an error.
    expect(await post('?map=mailboxes&key=never-asked%40example.org')).toEqual({ status: 200, body: { flushed: 0 } });

    const m = await post('?map=mailboxes');
    expect(m.status).toBe(200);
    expect(m.body.flushed).toBeGreaterThanOrEqual(1);
    expect(await lookup('mailboxes', 'erin@example.org')).toEqual({ kind: 'found', value: 'erin' });
    expect(searchesFor('mail=erin@example.org')).toBe(3);

    const all = await post('');
    expect(all.status).toBe(200);
    expect(all.body.flushed).toBeGreaterThanOrEqual(1);
    expect(await lookup('mailboxes', 'erin@example.org')).toEqual({ kind: 'found', value: 'erin' });
    expect(searchesFor('mail=erin@example.org')).toBe(4);

    expect((await post('?map=no-such-map')).status).toBe(404);
    expect((await post('?key=erin%40example.org')).status).toBe(400);
    expect((await fetch(`http://127.0.0.1:${adminPort}/cache/flush`)).status).toBe(405);
  });

  it('SIGUSR1 flushes every map', async () => {
    expect(await lookup('mailboxes', 'alice@example.org')).toEqual({ kind: 'found', value: 'alice' });
    expect(await lookup('aliases', 'sales')).toEqual({ kind: 'found', value: SALES });
    slapd.resetSearchCount();
    expect(await lookup('mailboxes', 'alice@example.org')).toEqual({ kind: 'found', value: 'alice' });
    expect(await lookup('aliases', 'sales')).toEqual({ kind: 'found', value: SALES });
    expect(slapd.searchCount()).toBe(0);
    const cached = await scrape();
    expect(metricValue(cached, 'ldap_socketmap_cache_entries', { map: 'mailboxes' })).toBeGreaterThan(0);
    expect(metricValue(cached, 'ldap_socketmap_cache_entries', { map: 'aliases' })).toBeGreaterThan(0);

    process.kill(daemon.proc.pid!, 'SIGUSR1');
    const line = await daemon.waitForLog(/SIGUSR1: flushed \d+ cached answers/);
    expect(Number(/flushed (\d+)/.exec(line)![1])).toBeGreaterThanOrEqual(2);
    const flushed = await scrape();
    expect(metricValue(flushed, 'ldap_socketmap_cache_entries')).toBe(0);
    expect(metricValue(flushed, 'ldap_socketmap_cache_bytes')).toBe(0);

    expect(await lookup('mailboxes', 'alice@example.org')).toEqual({ kind: 'found', value: 'alice' });
    expect(await lookup('aliases', 'sales')).toEqual({ kind: 'found', value: SALES });
    expect(searchesFor('mail=alice@example.org')).toBe(1);
    expect(searchesFor('listName=sales')).toBe(1);
    expect(daemon.proc.exitCode).toBeNull();
    // Node starts its inspector on SIGUSR1 unless the program handles the signal.
    expect(daemon.log.join('\n')).not.toMatch(/Debugger listening|inspector/i);
  });
});

describe('memory bound', () => {
  it(`20 000 distinct random keys: cache bytes stay within cache_max_bytes (${FLOOD_MAX_BYTES})`, async () => {
    const CONNECTIONS = 4;
    const TOTAL = 20_000;
    const WINDOW = 32;
    const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => SocketmapClient.connect(daemon.ports[0]!)));
    let maxSeen = 0;
    try {
      let next = 0;
      let sent = 0;
      const worker = async (c: SocketmapClient) => {
        while (next < TOTAL) {
          const keys: string[] = [];
          while (keys.length < WINDOW && next < TOTAL) {
            keys.push(`flood-${next++}-${Math.random().toString(36).slice(2)}-${'x'.repeat(40)}@example.org`);
          }
          const replies = await c.askMany('flood', keys, Infinity);
          for (const r of replies) expect(r).toBe('NOTFOUND ');
          sent += keys.length;
        }
      };
      const sampler = (async () => {
        while (sent < TOTAL) {
          maxSeen = Math.max(maxSeen, metricValue(await scrape(), 'ldap_socketmap_cache_bytes', { map: 'flood' }));
          await sleep(250);
        }
      })();
      await Promise.all(clients.map(worker));
      await sampler;
      expect(sent).toBe(TOTAL);
    } finally {
      for (const c of clients) c.end();
    }
    const m = await scrape();
    const bytes = metricValue(m, 'ldap_socketmap_cache_bytes', { map: 'flood' });
    const entries = metricValue(m, 'ldap_socketmap_cache_entries', { map: 'flood' });
    expect(Math.max(maxSeen, bytes)).toBeLessThanOrEqual(FLOOD_MAX_BYTES);
    // The bound is used, not dodged by caching nothing.
    expect(bytes).toBeGreaterThan(FLOOD_MAX_BYTES / 2);
    expect(entries).toBeGreaterThan(100);
    expect(entries).toBeLessThan(TOTAL / 10);
    expect(metricValue(m, 'ldap_socketmap_lookups_total', { map: 'flood', result: 'notfound' })).toBe(TOTAL);
  }, 40_000);
});

describe('stale-if-error (last: stops slapd)', () => {
  it('slapd down: stale answers inside the window, TEMP after it, never-cached keys TEMP; slapd back: fresh answers', async () => {
    const tStart = Date.now();
    expect(await lookup('short', 'sales')).toEqual({ kind: 'found', value: SALES });
    const tEnd = Date.now();
    expect((await lookup('short', 'nope@example.org')).kind).toBe('notfound');
    await slapd.stop();
    const before = await scrape();

    // Expired (cache_ttl = 1) but inside stale_if_error (4 s): the last good answer.
    await sleepUntil(tEnd + 1_300);
    const stale = await lookup('short', 'sales');
    expect(Date.now()).toBeLessThan(tStart + 1_000 + 4_000);
    expect(stale).toEqual({ kind: 'found', value: SALES });
    // A key never cached is a temporary error (never NOTFOUND), and that error is not cached.
    expect((await lookup('short', 'eng')).kind).toBe('temp');
    expect((await lookup('short', 'eng')).kind).toBe('temp');
    // A stale NOTFOUND is still NOTFOUND, not an error.
    expect((await lookup('short', 'nope@example.org')).kind).toBe('notfound');

    const during = await scrape();
    const d = (name: string, labels: Record<string, string>) => metricValue(during, name, labels) - metricValue(before, name, labels);
    expect(d('ldap_socketmap_cache_hits_total', { map: 'short', kind: 'stale' })).toBe(2);
    expect(d('ldap_socketmap_lookup_duration_seconds_count', { map: 'short', source: 'stale', result: 'found' })).toBe(1);
    expect(d('ldap_socketmap_lookup_duration_seconds_count', { map: 'short', source: 'stale', result: 'notfound' })).toBe(1);
    expect(d('ldap_socketmap_lookups_total', { map: 'short', result: 'temp' })).toBe(2);

    // Past expiry + stale_if_error: TEMP.
    await sleepUntil(tEnd + 1_000 + 4_000 + 300);
    expect((await lookup('short', 'sales')).kind).toBe('temp');

    // slapd back: answers again, and they come from slapd.
    await slapd.start();
    const back = await waitFor('lookup after slapd restart', () => lookup('short', 'sales'), (x) => x.kind === 'found');
    expect(back.value).toBe(SALES);
    expect(searchesFor('listName=sales')).toBeGreaterThanOrEqual(1);
    expect((await lookup('short', 'eng')).kind).toBe('found');
  }, 40_000);
});
