/**
 * Freshness: with TTLs of an hour, cached answers still follow directory changes within
 * change_poll_interval + 1 s, because the daemon's change watcher notices them. Everything real:
 * slapd (with and without the syncprov overlay), the built daemon, Postfix's own postmap as the
 * client, ldapmodify/ldapadd for the changes.
 *
 * - syncprov (contextCSN): an added member, a deleted person and a new list each show within
 *   1 + 1 s; answers the change did not touch stay cached (no flush). LDAP stopped: cached
 *   answers stay, the watcher reports its failures, nothing is invalidated; LDAP back: still
 *   nothing is invalidated (no flush storm), the watcher resumes by itself.
 * - no syncprov (modifyTimestamp): an added member shows within 1 + 1 s; a deletion is not seen
 *   and waits for the TTL, the documented limit of that marker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemonWithMetrics, type DaemonWithMetrics, runCli } from '../support/daemon.js';
import { classify, makePostfixConfigDir, postmapQuery, valueOf, writeFixtureCf } from '../support/postfix.js';
import { FRESHNESS_LDIF } from '../support/fixtures.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { sleep, waitFor } from '../support/wait.js';
import { metricValue, scrapeMetrics } from '../support/metrics.js';
import { makeTmpDir } from '../support/tmp.js';

const POLL_S = 1;
/** "within poll interval + 1 s", measured from the moment ldapmodify returned. */
const WITHIN_MS = POLL_S * 1000 + 1000;

const ADD_ERIN = `dn: cn=fresh-team,ou=Groups,dc=example,dc=org
changetype: modify
add: contact
contact: uid=erin,ou=People,dc=example,dc=org
`;
const DELETE_GONE = `dn: uid=fresh-gone,ou=People,dc=example,dc=org
changetype: delete
`;
const NEW_LIST = `dn: cn=fresh-new,ou=Groups,dc=example,dc=org
objectClass: mailList
cn: fresh-new
listName: fresh-new
contact: uid=carol,ou=People,dc=example,dc=org
`;

interface Setup {
  slapd: Slapd;
  daemon: DaemonWithMetrics;
  files: Record<string, string>;
  adminPort: number;
}

let confDir: string;
let sync: Setup;
let plain: Setup;

async function setup(syncprov: boolean, extraArgs: (files: Record<string, string>) => string[] = () => []): Promise<Setup> {
  const slapd = await startSlapd({ ldif: [directoryLdif(), FRESHNESS_LDIF], syncprov });
  const dir = makeTmpDir('fresh-');
  const vars = { LDAP_URL: slapd.url };
  const files = { aliases: writeFixtureCf(dir, 'aliases', vars), mailboxes: writeFixtureCf(dir, 'mailboxes', vars) };
  const daemon = await startDaemonWithMetrics([
    '--socketmap', 'inet:127.0.0.1:0',
    '--map', `aliases=${files.aliases}`, '--map', `mailboxes=${files.mailboxes}`,
    '--set', 'cache_ttl=1h', '--set', 'cache_negative_ttl=1h', '--set', 'stale_if_error=1h',
    '--set', `change_poll_interval=${POLL_S}`,
    ...extraArgs(files),
  ]);
  await daemon.waitForLog(/change watcher .*: (contextCSN|\(modifyTimestamp)/);
  return { slapd, daemon, files, adminPort: daemon.metricsPort };
}

beforeAll(async () => {
  confDir = await makePostfixConfigDir();
  [sync, plain] = await Promise.all([
    setup(true),
    // The alias map once more under the name `short` with a 4 s TTL: the deletion the watcher cannot see.
    setup(false, (f) => ['--map', `short=${f.aliases}`, '--set', 'map.short.cache_ttl=4']),
  ]);
}, 60_000);

afterAll(async () => {
  for (const s of [sync, plain]) {
    await s?.daemon.stop();
    await s?.slapd.destroy();
  }
});

/* helpers ------------------------------------------------------------------------------------ */

async function q(s: Setup, map: string, key: string): Promise<{ kind: string; value: string }> {
  const r = await postmapQuery(confDir, s.daemon.table(map), key);
  return { kind: classify(r), value: classify(r) === 'found' ? valueOf(r) : '' };
}

/** Polls until ok(answer), failing after `ms`; returns the answer and the time it took. */
async function within(s: Setup, map: string, key: string, ok: (a: { kind: string; value: string }) => boolean, ms: number) {
  const start = Date.now();
  const answer = await waitFor(`${map} ${key}`, () => q(s, map, key), ok, ms, 100);
  return { answer, ms: Date.now() - start };
}

async function readyz(s: Setup): Promise<{ status: number; body: { ok: boolean; maps: Record<string, { ok: boolean; watcher?: { state: string; markers: Record<string, string>; error?: string } }> } }> {
  const r = await fetch(`http://127.0.0.1:${s.adminPort}/readyz`);
  return { status: r.status, body: (await r.json()) as never };
}

/** LDAP searches slapd saw for one list since the last reset. */
const searchesFor = (s: Setup, needle: string) => s.slapd.searches().filter((x) => x.filter.includes(needle)).length;

/* with syncprov -------------------------------------------------------------------------------- */

describe('slapd with syncprov: contextCSN', () => {
  it('logs its choice of marker and reports it on /readyz', async () => {
    expect(sync.daemon.log.join('\n')).toMatch(/change watcher ldap:\/\/127\.0\.0\.1:\d+\/: contextCSN of "dc=example,dc=org" \(syncprov\): sees additions, modifications, deletions and renames; maps aliases, mailboxes/);
    const r = await readyz(sync);
    expect(r.status).toBe(200);
    expect(r.body.maps.aliases!.watcher).toMatchObject({ state: 'ok', markers: { 'dc=example,dc=org': 'contextCSN' } });
  });

  it('a member added to a list shows within poll interval + 1 s; untouched answers stay cached', async () => {
    const before = await q(sync, 'aliases', 'fresh-team@example.org');
    expect(before).toEqual({ kind: 'found', value: 'alice@example.org,fresh-gone@example.org' });
    const other = await q(sync, 'aliases', 'fresh-other@example.org');
    expect(other).toEqual({ kind: 'found', value: 'dave@example.org' });
    // Cached (TTL 1 h): the second ask reaches no LDAP.
    sync.slapd.resetSearchCount();
    expect(await q(sync, 'aliases', 'fresh-team@example.org')).toEqual(before);
    expect(searchesFor(sync, 'fresh-team')).toBe(0);

    await sync.slapd.modify(ADD_ERIN);
    const { answer, ms } = await within(sync, 'aliases', 'fresh-team@example.org', (a) => a.value.includes('erin@example.org'), WITHIN_MS);
    expect(answer.value).toBe('alice@example.org,fresh-gone@example.org,erin@example.org');
    expect(ms).toBeLessThanOrEqual(WITHIN_MS);

    // Not a flush: the list the change did not touch is still answered from the cache.
    sync.slapd.resetSearchCount();
    expect(await q(sync, 'aliases', 'fresh-other@example.org')).toEqual(other);
    expect(searchesFor(sync, 'fresh-other')).toBe(0);
    const m = await scrapeMetrics(sync.adminPort);
    expect(metricValue(m, 'ldap_socketmap_directory_changes_total', { kind: 'modified' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(m, 'ldap_socketmap_cache_invalidations_total', { map: 'aliases' })).toBeGreaterThanOrEqual(1);
  });

  it('a deleted person disappears from lists and mailboxes within poll interval + 1 s', async () => {
    expect(await q(sync, 'mailboxes', 'fresh-gone@example.org')).toEqual({ kind: 'found', value: 'fresh-gone' });
    expect((await q(sync, 'aliases', 'fresh-team@example.org')).value).toContain('fresh-gone@example.org');

    await sync.slapd.modify(DELETE_GONE);
    const t0 = Date.now();
    await within(sync, 'aliases', 'fresh-team@example.org', (a) => a.kind === 'found' && !a.value.includes('fresh-gone'), WITHIN_MS);
    await within(sync, 'mailboxes', 'fresh-gone@example.org', (a) => a.kind === 'notfound', WITHIN_MS - (Date.now() - t0));
    expect(await q(sync, 'aliases', 'fresh-team@example.org')).toEqual({ kind: 'found', value: 'alice@example.org,erin@example.org' });
    const m = await scrapeMetrics(sync.adminPort);
    expect(metricValue(m, 'ldap_socketmap_directory_changes_total', { kind: 'deleted' })).toBeGreaterThanOrEqual(1);
  });

  it('a new list shows within poll interval + 1 s although "not found" was cached for an hour', async () => {
    expect(await q(sync, 'aliases', 'fresh-new@example.org')).toEqual({ kind: 'notfound', value: '' });
    sync.slapd.resetSearchCount();
    expect(await q(sync, 'aliases', 'fresh-new@example.org')).toEqual({ kind: 'notfound', value: '' });
    expect(searchesFor(sync, 'fresh-new')).toBe(0);

    await sync.slapd.add(NEW_LIST);
    const { answer } = await within(sync, 'aliases', 'fresh-new@example.org', (a) => a.kind === 'found', WITHIN_MS);
    expect(answer.value).toBe('carol@example.org,carol@elsewhere.net');
  });

  it('LDAP stopped: cached answers stay, nothing is invalidated; LDAP back: no flush storm, the watcher resumes', async () => {
    const team = await q(sync, 'aliases', 'fresh-team@example.org');
    const other = await q(sync, 'aliases', 'fresh-other@example.org');
    const mailbox = await q(sync, 'mailboxes', 'alice@example.org');
    expect(mailbox).toEqual({ kind: 'found', value: 'alice' });
    const before = await scrapeMetrics(sync.adminPort);

    await sync.slapd.stop();
    try {
      await sleep(POLL_S * 1000 * 3 + 500);
      // Answers straight from the cache while the directory is gone.
      expect(await q(sync, 'aliases', 'fresh-team@example.org')).toEqual(team);
      expect(await q(sync, 'aliases', 'fresh-other@example.org')).toEqual(other);
      expect(await q(sync, 'mailboxes', 'alice@example.org')).toEqual(mailbox);
      const down = await scrapeMetrics(sync.adminPort);
      expect(metricValue(down, 'ldap_socketmap_change_poll_errors_total') - metricValue(before, 'ldap_socketmap_change_poll_errors_total')).toBeGreaterThanOrEqual(2);
      expect(metricValue(down, 'ldap_socketmap_cache_invalidations_total')).toBe(metricValue(before, 'ldap_socketmap_cache_invalidations_total'));
      expect(metricValue(down, 'ldap_socketmap_change_poll_age_seconds')).toBeGreaterThanOrEqual(2);
      const r = await readyz(sync);
      expect(r.body.maps.aliases!.watcher!.state).toBe('failing');
      expect(r.body.maps.aliases!.watcher!.error).toBeTruthy();
      // Cached answers keep the maps ready; the watcher has not been failing "for long" yet.
      expect(r.status).toBe(200);
    } finally {
      await sync.slapd.start();
    }
    sync.slapd.resetSearchCount();
    await waitFor('watcher resumed', () => readyz(sync), (r) => r.body.maps.aliases!.watcher!.state === 'ok', 15_000);
    await sleep(POLL_S * 1000 * 2 + 200);
    const after = await scrapeMetrics(sync.adminPort);
    expect(metricValue(after, 'ldap_socketmap_cache_invalidations_total')).toBe(metricValue(before, 'ldap_socketmap_cache_invalidations_total'));
    expect(metricValue(after, 'ldap_socketmap_directory_changes_total')).toBe(metricValue(before, 'ldap_socketmap_directory_changes_total'));
    expect(metricValue(after, 'ldap_socketmap_change_poll_age_seconds')).toBeLessThan(POLL_S * 2 + 1);
    // Everything still answered from the cache: not one lookup search reached slapd.
    expect(await q(sync, 'aliases', 'fresh-team@example.org')).toEqual(team);
    expect(await q(sync, 'aliases', 'fresh-other@example.org')).toEqual(other);
    expect(await q(sync, 'mailboxes', 'alice@example.org')).toEqual(mailbox);
    expect(sync.slapd.searches().filter((s) => /listName=|mail=/.test(s.filter))).toEqual([]);
    // And changes are followed again.
    await sync.slapd.modify(ADD_ERIN.replace('uid=erin', 'uid=carol'));
    await within(sync, 'aliases', 'fresh-team@example.org', (a) => a.value.includes('carol@example.org'), WITHIN_MS);
  }, 60_000);

  it('check reports the contextCSN marker and what it sees', async () => {
    const r = await runCli(['check', '--map', `aliases=${sync.files.aliases}`], { timeoutMs: 20_000 });
    expect(r.stdout + r.stderr).toMatch(/change marker: contextCSN of "dc=example,dc=org" \(syncprov\): sees additions, modifications, deletions and renames/);
    expect(r.code).toBe(0);
  });
});

/* without syncprov ----------------------------------------------------------------------------- */

describe('slapd without syncprov: modifyTimestamp', () => {
  it('logs the modifyTimestamp marker and its limit', () => {
    expect(plain.daemon.log.join('\n')).toMatch(/change watcher .*: \(modifyTimestamp>=LAST\) under "dc=example,dc=org": sees additions and modifications, NOT deletions or renames/);
  });

  it('an added member shows within poll interval + 1 s', async () => {
    expect(await q(plain, 'aliases', 'fresh-team@example.org')).toEqual({ kind: 'found', value: 'alice@example.org,fresh-gone@example.org' });
    const other = await q(plain, 'aliases', 'fresh-other@example.org');
    await plain.slapd.modify(ADD_ERIN);
    const { answer } = await within(plain, 'aliases', 'fresh-team@example.org', (a) => a.value.includes('erin@example.org'), WITHIN_MS);
    expect(answer.value).toBe('alice@example.org,fresh-gone@example.org,erin@example.org');
    plain.slapd.resetSearchCount();
    expect(await q(plain, 'aliases', 'fresh-other@example.org')).toEqual(other);
    expect(searchesFor(plain, 'fresh-other')).toBe(0);
  });

  it('documented limit: a deletion is not seen; it shows when the TTL ends', async () => {
    // `short` is the same alias map with a 4 s TTL.
    const primed = Date.now();
    expect(await q(plain, 'short', 'fresh-team@example.org')).toEqual({ kind: 'found', value: 'alice@example.org,fresh-gone@example.org,erin@example.org' });
    expect((await q(plain, 'aliases', 'fresh-team@example.org')).value).toContain('fresh-gone@example.org');
    await plain.slapd.modify(DELETE_GONE);
    await sleep(WITHIN_MS + 500);
    // Poll interval + 1 s later both maps still answer with the deleted person (TTL 1 h and 4 s).
    expect((await q(plain, 'aliases', 'fresh-team@example.org')).value).toContain('fresh-gone@example.org');
    expect((await q(plain, 'short', 'fresh-team@example.org')).value).toContain('fresh-gone@example.org');
    // Once the short TTL is over the deletion shows there; the hour-long answer keeps it.
    await sleep(Math.max(0, primed + 4_000 + 300 - Date.now()));
    expect(await q(plain, 'short', 'fresh-team@example.org')).toEqual({ kind: 'found', value: 'alice@example.org,erin@example.org' });
    expect((await q(plain, 'aliases', 'fresh-team@example.org')).value).toContain('fresh-gone@example.org');
  });

  it('check reports modifyTimestamp and that it does not see deletions', async () => {
    const r = await runCli(['check', '--map', `aliases=${plain.files.aliases}`], { timeoutMs: 20_000 });
    expect(r.stdout + r.stderr).toMatch(/change marker: \(modifyTimestamp>=LAST\) under "dc=example,dc=org": sees additions and modifications, NOT deletions or renames/);
    expect(r.stdout + r.stderr).toMatch(/modifyTimestamp does not see deletions or renames/);
    expect(r.code).toBe(0);
  });
});
