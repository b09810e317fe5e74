/**
 * A hung directory (slapd SIGSTOPped) with Postfix's default timeout of 10 s: after the first
 * lookup that times out, the server's circuit breaker opens; cached keys answer their stale
 * value and new keys TEMP at once, through the real `postmap -q`; a second server_host takes
 * over at once; after SIGCONT a background probe closes the breaker and fresh answers return.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemonWithMetrics, type DaemonWithMetrics } from '../support/daemon.js';
import { classify, makePostfixConfigDir, postmapQuery, valueOf, writeCf } from '../support/postfix.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { httpRequest } from '../support/http.js';
import { socketmapFrame } from '../support/socketmap-client.js';
import { makeTmpDir } from '../support/tmp.js';
import { sleep, waitFor } from '../support/wait.js';

let hung: Slapd;
let spare: Slapd;
let daemon: DaemonWithMetrics;
let confDir: string;
let nativeCf: string;

const GROUPS_CF = 'search_base = ou=Groups,dc=example,dc=org\nquery_filter = (&(objectClass=*)(listName=%u))\nresult_attribute = mail\nspecial_result_attribute = contact\ntimeout = 10\n';
const CACHED = ['sales@example.org', 'eng@example.org', 'deep1@example.org'];
const NEW_KEYS = ['deep2@example.org', 'dupes@example.org', 'nobody@example.org'];

function sm(map: string): string {
  return `socketmap:inet:127.0.0.1:${daemon.ports[0]}:${map}`;
}

async function timed(table: string, key: string): Promise<{ ms: number; outcome: string; value: string }> {
  const t0 = Date.now();
  const r = await postmapQuery(confDir, table, key);
  return { ms: Date.now() - t0, outcome: classify(r), value: valueOf(r) };
}

async function breakerOpen(server: string): Promise<number> {
  return daemon.metric('ldap_socketmap_ldap_circuit_open', { server });
}

beforeAll(async () => {
  [hung, spare] = await Promise.all([startSlapd({ ldif: directoryLdif() }), startSlapd({ ldif: directoryLdif() })]);
  confDir = await makePostfixConfigDir();
  const dir = makeTmpDir('breaker-');
  nativeCf = writeCf(dir, 'native.cf', `server_host = ${hung.url}\n${GROUPS_CF}`, {});
  const single = writeCf(dir, 'single.cf', `server_host = ${hung.url}\n${GROUPS_CF}`, {});
  const pair = writeCf(dir, 'pair.cf', `server_host = ${hung.url} ${spare.url}\n${GROUPS_CF}`, {});
  daemon = await startDaemonWithMetrics([
    '--socketmap', 'inet:127.0.0.1:0',
    '--map', `single=${single}`, '--map', `pair=${pair}`,
    // Answers expire after 1 s, then stay servable for an hour if LDAP fails.
    '--set', 'cache_ttl=1', '--set', 'cache_negative_ttl=1', '--set', 'stale_if_error=1h',
    '--set', 'change_poll_interval=0',
  ]);
}, 60_000);

afterAll(async () => {
  hung?.resume();
  await daemon?.stop();
  await Promise.all([hung?.destroy?.(), spare?.destroy?.()]);
});

describe('circuit breaker on a hung directory (timeout = 10)', () => {
  it('after the first timeout: stale answers and TEMP at once, failover at once; after SIGCONT the breaker closes by itself', async () => {
    // What Postfix's own table answers while the directory is well.
    const expected = new Map<string, string>();
    for (const key of CACHED) {
      const native = await postmapQuery(confDir, `ldap:${nativeCf}`, key);
      expect(classify(native)).toBe('found');
      expected.set(key, valueOf(native));
      expect(valueOf(await postmapQuery(confDir, sm('single'), key))).toBe(expected.get(key));
    }
    await sleep(1_200); // every cached answer has expired: only stale_if_error may serve them now
    const server = hung.url.replace(/\/$/, '') + '/';
    hung.pause();
    try {
      // The first lookup meets the hang and waits one timeout; it is served stale.
      const first = await timed(sm('single'), CACHED[0]!);
      expect(first).toMatchObject({ outcome: 'found', value: expected.get(CACHED[0]!) });
      expect(first.ms).toBeGreaterThan(9_000);
      expect(await breakerOpen(server)).toBe(1);

      // None after it waits: cached keys stale, new keys TEMP, the pair fails over to the spare.
      const times: number[] = [];
      for (const key of CACHED.slice(1)) {
        const r = await timed(sm('single'), key);
        expect(r).toMatchObject({ outcome: 'found', value: expected.get(key) });
        times.push(r.ms);
      }
      const raw: number[] = [];
      for (const key of NEW_KEYS) {
        const r = await timed(sm('single'), key);
        expect(r.outcome).toBe('temp');
        times.push(r.ms);
        // postmap sleeps 1 s before it exits on a temporary error; the daemon's own answer:
        const t0 = Date.now();
        expect((await socketmapFrame(daemon.ports[0]!, 'single', key)).toString('latin1')).toMatch(/^\d+:TEMP .*(circuit breaker|no LDAP server is tried)/);
        raw.push(Date.now() - t0);
      }
      for (const ms of raw) expect(ms).toBeLessThan(1_000);
      // The pair's first lookup still meets the hung first server once (its own pool)...
      await timed(sm('pair'), 'nobody@example.org');
      for (const key of NEW_KEYS) {
        const r = await timed(sm('pair'), key);
        const native = await postmapQuery(confDir, `ldap:${writeCf(makeTmpDir('breaker-spare-'), 'spare.cf', `server_host = ${spare.url}\n${GROUPS_CF}`, {})}`, key);
        expect(r.outcome).toBe(classify(native));
        if (r.outcome === 'found') expect(r.value).toBe(valueOf(native));
        times.push(r.ms);
      }
      // "At once": nowhere near the 10 s timeout (a postmap process start included).
      for (const ms of times) expect(ms).toBeLessThan(2_000);
      console.log(`circuit breaker: postmap answers while open took ${times.join(', ')} ms, the daemon's TEMP ${raw.join(', ')} ms (first lookup ${first.ms} ms)`);

      const ready = JSON.parse((await httpRequest(daemon.metricsPort, '/readyz', 'GET', 10_000)).body) as { maps: Record<string, { failingServers?: { server: string }[] }> };
      expect(ready.maps.single!.failingServers?.map((f) => f.server)).toEqual([server]);
      const explain = JSON.parse((await httpRequest(daemon.metricsPort, `/explain?map=single&key=${encodeURIComponent(NEW_KEYS[0]!)}`, 'GET', 10_000)).body) as { notes: string[] };
      expect(explain.notes.some((n) => n.startsWith(`circuit breaker open for ${server}`))).toBe(true);
    } finally {
      hung.resume();
    }
    // The probe closes the breaker by itself; fresh answers return.
    await waitFor('breaker closed', () => breakerOpen(server), (v) => v === 0, 30_000, 250);
    const fresh = await postmapQuery(confDir, sm('single'), 'deep2@example.org');
    const native = await postmapQuery(confDir, `ldap:${nativeCf}`, 'deep2@example.org');
    expect(classify(fresh)).toBe(classify(native));
    expect(valueOf(fresh)).toBe(valueOf(native));
    const transitions = await daemon.metric('ldap_socketmap_ldap_circuit_transitions_total', { server, state: 'closed' });
    expect(transitions).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
