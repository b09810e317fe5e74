/**
 * The fleet: one daemon per MTA host reading a local OpenLDAP replica, as postfix-snippets/fleet/
 * documents it. Everything real: a provider slapd (syncprov), a consumer slapd that starts empty
 * and follows it with syncrepl refreshAndPersist (its slapd.conf lines are the snippet's), the
 * built daemon reading the consumer over ldapi:// with bind = sasl / sasl_mechs = EXTERNAL
 * (authz-regexp maps this process's uid to the one identity the consumer's ACL lets read), and
 * Postfix's own `postmap -q … ldap:` with the same .cf files as the referee.
 *
 * 1. Every fixture key of every ldapi-capable fixture map answers byte for byte what the native
 *    table answers from the same consumer, and the kind the fixture catalogue expects.
 * 2. Writes on the provider (a member added, a person deleted, a list added) show in the daemon's
 *    answers within seconds although answers are cached for an hour: the consumer's contextCSN
 *    moves, the daemon's change watcher expires what the change touched. The delays are logged.
 * 3. The provider is killed (SIGKILL): the daemon keeps answering from the consumer, cached and
 *    uncached keys alike, nothing TEMP, and native postmap agrees.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startDaemonWithMetrics, type DaemonWithMetrics } from '../support/daemon.js';
import { FIXTURE_CASES } from '../support/fixtures.js';
import { attributeValues, consumerConfig, contextCsn, entryExists, fleetAliasesCf, fleetDaemonConf } from '../support/fleet.js';
import { backdate, cfTemplate, classify, expandTemplate, makePostfixConfigDir, postmapQuery, postmapQueryAll, valueOf, type PostmapResult } from '../support/postfix.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';
import { sleep, waitFor } from '../support/wait.js';

const POLL_S = 1;
/** "Within a few seconds": replication (a persist message) plus one poll interval, with room for a loaded 2-core machine. */
const WITHIN_MS = 5_000;
/** Fixture maps that need a TCP host and port of their own, which an ldapi:// URL has not. */
const TCP_ONLY = new Set(['server-host-port', 'server-list-first-dead']);
const SASL_LINES = 'bind = sasl\nsasl_mechs = EXTERNAL\n';
const GROUPS = 'ou=Groups,dc=example,dc=org';
const PEOPLE = 'ou=People,dc=example,dc=org';

const EXTRA_LDIF = `
dn: uid=fleet-gone,${PEOPLE}
objectClass: inetOrgPerson
uid: fleet-gone
cn: Fleet Gone
sn: Gone
mail: fleet-gone@example.org

dn: cn=fleet-team,${GROUPS}
objectClass: mailList
cn: fleet-team
listName: fleet-team
contact: uid=alice,${PEOPLE}
contact: uid=fleet-gone,${PEOPLE}

dn: cn=fleet-other,${GROUPS}
objectClass: mailList
cn: fleet-other
listName: fleet-other
contact: uid=dave,${PEOPLE}
`;

/**
 * directory.ldif, replicable. Its cn=odd-dn holds two contact values that are one DN once
 * normalized (`CN=smith\, john , OU=people,…` and `cn=Smith\2C John,…`): slapadd loads that,
 * but a consumer refuses the entry ("contact: value #0 provided more than once", rc 20) and,
 * retrying forever, never gets past it, so the rest of the refresh never arrives. ldapadd would
 * refuse the entry on a provider too; the replica gets the list without the duplicate.
 */
function replicableDirectoryLdif(): string {
  const dup = /^contact: cn=Smith\\2C John,ou=People,dc=example,dc=org\n/m;
  const ldif = directoryLdif();
  if (!dup.test(ldif)) throw new Error('directory.ldif changed: the duplicate contact of cn=odd-dn is gone, drop replicableDirectoryLdif');
  return ldif.replace(dup, '');
}

let provider: Slapd;
let consumer: Slapd;
let daemon: DaemonWithMetrics;
let confDir: string;
let dir: string;
/** map name → its .cf file (the same file for the daemon and for native postmap). */
const cfFiles = new Map<string, string>();
/** map name → the fixture keys asked in (1). */
const fixtureKeys = new Map<string, string[]>();
const delays: string[] = [];

beforeAll(async () => {
  const t0 = Date.now();
  provider = await startSlapd({ ldif: [replicableDirectoryLdif(), EXTRA_LDIF], syncprov: true });
  const uid = process.getuid?.() ?? 0;
  consumer = await startSlapd({ empty: true, ldapi: true, ...consumerConfig(provider, uid) });
  // The consumer is complete once its contextCSN is the provider's.
  const want = await contextCsn(provider);
  expect(want.length).toBeGreaterThan(0);
  await waitFor('consumer caught up with the provider', () => contextCsn(consumer), (c) => c.join() === want.join(), 30_000, 100);
  const tRefresh = Date.now() - t0;

  dir = makeTmpDir('fleet-');
  mkdirSync(join(dir, 'maps'));
  const aliases = join(dir, 'ldap-aliases.cf');
  writeFileSync(aliases, fleetAliasesCf(consumer));
  backdate(aliases);
  cfFiles.set('aliases', aliases);
  fixtureKeys.set('aliases', (FIXTURE_CASES.aliases ?? []).map((c) => c.key));
  const mapArgs: string[] = [];
  for (const [name, cases] of Object.entries(FIXTURE_CASES)) {
    if (TCP_ONLY.has(name)) continue;
    const file = join(dir, 'maps', `${name}.cf`);
    writeFileSync(file, expandTemplate(cfTemplate(name), { LDAP_URL: consumer.ldapiUrl! }) + SASL_LINES);
    backdate(file);
    cfFiles.set(`t-${name}`, file);
    fixtureKeys.set(`t-${name}`, cases.map((c) => c.key));
    mapArgs.push('--map', `t-${name}=${file}`);
  }
  const conf = join(dir, 'ldap-socketmap.conf');
  writeFileSync(conf, fleetDaemonConf(dir, { change_poll_interval: `${POLL_S}s` }));
  confDir = await makePostfixConfigDir();
  daemon = await startDaemonWithMetrics(['--config', conf, ...mapArgs]);
  await daemon.waitForLog(/change watcher .*contextCSN of "dc=example,dc=org"/, 20_000);
  console.log(`fleet fixture: provider + consumer refreshed in ${tRefresh} ms, daemon ready after ${Date.now() - t0} ms, ${cfFiles.size} maps`);
}, 90_000);

afterAll(async () => {
  console.log(`fleet propagation delays (provider write returned -> daemon answer changed):\n${delays.join('\n')}`);
  await daemon?.stop();
  await consumer?.destroy();
  await provider?.destroy();
});

/* helpers ------------------------------------------------------------------------------------ */

interface Answer { kind: string; value: string }

function answer(r: PostmapResult): Answer {
  const kind = classify(r);
  return { kind, value: kind === 'found' ? valueOf(r) : kind === 'other' ? `exit ${r.code}: ${r.stderr.trim()}` : '' };
}

async function ask(map: string, key: string): Promise<Answer> {
  return answer(await postmapQuery(confDir, daemon.table(map), key));
}

async function native(map: string, key: string): Promise<Answer> {
  return answer(await postmapQuery(confDir, `ldap:${cfFiles.get(map)!}`, key));
}

/** Polls the daemon until ok(answer); returns the answer and ms since `since`. */
async function until(map: string, key: string, ok: (a: Answer) => boolean, since: number): Promise<{ answer: Answer; ms: number }> {
  const a = await waitFor(`${map} ${key}`, () => ask(map, key), ok, WITHIN_MS + 5_000, 50);
  return { answer: a, ms: Date.now() - since };
}

/** Ms from `since` until `check` holds on the consumer (replication alone). */
async function replicated(check: () => Promise<boolean>, since: number): Promise<number> {
  await waitFor('replicated to the consumer', check, (v) => v, 10_000, 20);
  return Date.now() - since;
}

/** Every fixture key of every map, daemon against native: the rows that differ (empty when all agree). */
async function differential(): Promise<{ rows: string[]; mismatches: string[]; kinds: Record<string, number> }> {
  const rows: string[] = [];
  const mismatches: string[] = [];
  const kinds: Record<string, number> = {};
  for (const [map, keys] of fixtureKeys) {
    const [n, o] = await Promise.all([
      postmapQueryAll(confDir, `ldap:${cfFiles.get(map)!}`, keys, 3),
      postmapQueryAll(confDir, daemon.table(map), keys, 3),
    ]);
    for (const key of keys) {
      const an = answer(n.get(key)!);
      const ao = answer(o.get(key)!);
      kinds[an.kind] = (kinds[an.kind] ?? 0) + 1;
      const row = `${map} ${JSON.stringify(key)}: native ${an.kind} ${an.value} | daemon ${ao.kind} ${ao.value}`;
      rows.push(row);
      // Byte for byte: the whole of postmap's stdout, exit code included.
      if (n.get(key)!.stdout !== o.get(key)!.stdout || n.get(key)!.code !== o.get(key)!.code || an.kind !== ao.kind) mismatches.push(row);
    }
  }
  return { rows, mismatches, kinds };
}

/** The kind the fixture catalogue expects for a map's key (the replica must hold the whole directory). */
function expectedKind(map: string, key: string): string {
  const name = map.replace(/^t-/, '');
  return (FIXTURE_CASES[name] ?? []).find((c) => c.key === key)!.expect;
}

/* 1. the replica answers like the native table -------------------------------------------------- */

describe('daemon on a syncrepl consumer over ldapi + SASL EXTERNAL', () => {
  it('the watcher polls the consumer\'s contextCSN', async () => {
    expect(daemon.log.join('\n')).toMatch(/change watcher ldapi:\/\/[^ ]+: contextCSN of "dc=example,dc=org" \(syncprov\): sees additions, modifications, deletions and renames/);
    const r = await fetch(`http://127.0.0.1:${daemon.metricsPort}/readyz`);
    expect(r.status).toBe(200);
  });

  it('every fixture key answers byte for byte what native postmap answers from the same consumer', async () => {
    const t0 = Date.now();
    const { rows, mismatches, kinds } = await differential();
    console.log(`fleet differential: ${rows.length} keys in ${Date.now() - t0} ms, native kinds ${JSON.stringify(kinds)}`);
    expect(mismatches, mismatches.join('\n')).toEqual([]);
    // The replica is complete and the SASL identity may read it: every key is what the catalogue says.
    const wrongKind = rows.filter((row) => {
      const m = /^(\S+) ("(?:[^"\\]|\\.)*"): native (\S+)/.exec(row)!;
      return m[3] !== expectedKind(m[1]!, JSON.parse(m[2]!) as string);
    });
    expect(wrongKind, wrongKind.join('\n')).toEqual([]);
    expect(kinds.found).toBeGreaterThan(80);
  }, 180_000);

  it('the SASL identity is what reads: anonymous over the same socket sees nothing (the ACL holds)', async () => {
    const anon = join(dir, 'anonymous.cf');
    writeFileSync(anon, fleetAliasesCf(consumer).replace(/^bind = sasl$/m, 'bind = no'));
    backdate(anon);
    // The static search_base is invisible too (noSuchObject): Postfix's temporary error.
    expect(await postmapQuery(confDir, `ldap:${anon}`, 'sales@example.org').then(answer)).toEqual({ kind: 'temp', value: '' });
    expect(await native('aliases', 'sales@example.org')).toEqual({ kind: 'found', value: 'alice@example.org,robert@example.org,Bob.Builder@Example.ORG,bob@example.org,sales-archive@elsewhere.net' });
  });
});

/* 2. provider writes reach the daemon through the consumer's contextCSN -------------------------- */

describe('a write on the provider shows in the daemon\'s answers within seconds', () => {
  it('a member added to a list', async () => {
    const before = await ask('aliases', 'fleet-team@example.org');
    expect(before).toEqual({ kind: 'found', value: 'alice@example.org,fleet-gone@example.org' });
    const other = await ask('aliases', 'fleet-other@example.org');
    expect(other).toEqual({ kind: 'found', value: 'dave@example.org' });
    const inv0 = await daemon.metric('ldap_socketmap_cache_invalidations_total', { map: 'aliases' });
    // Cached for an hour: asking again reaches no LDAP.
    consumer.resetSearchCount();
    expect(await ask('aliases', 'fleet-team@example.org')).toEqual(before);
    expect(consumer.searches().filter((s) => s.filter.includes('fleet-team'))).toEqual([]);

    await provider.modify(`dn: cn=fleet-team,${GROUPS}\nchangetype: modify\nadd: contact\ncontact: uid=erin,${PEOPLE}\n`);
    const t0 = Date.now();
    const [rep, seen] = await Promise.all([
      replicated(async () => (await attributeValues(consumer, `cn=fleet-team,${GROUPS}`, 'contact')).some((v) => v.startsWith('uid=erin')), t0),
      until('aliases', 'fleet-team@example.org', (a) => a.value.includes('erin@example.org'), t0),
    ]);
    delays.push(`  member added:   replica ${rep} ms, daemon ${seen.ms} ms`);
    expect(seen.answer).toEqual({ kind: 'found', value: 'alice@example.org,fleet-gone@example.org,erin@example.org' });
    expect(seen.ms).toBeLessThanOrEqual(WITHIN_MS);
    // The watcher expired it (cache_ttl is an hour), and only what the change touched.
    expect(await daemon.metric('ldap_socketmap_cache_invalidations_total', { map: 'aliases' })).toBeGreaterThan(inv0);
    consumer.resetSearchCount();
    expect(await ask('aliases', 'fleet-other@example.org')).toEqual(other);
    expect(consumer.searches().filter((s) => s.filter.includes('fleet-other'))).toEqual([]);
    expect(await native('aliases', 'fleet-team@example.org')).toEqual(seen.answer);
  });

  it('a person deleted', async () => {
    expect(await ask('t-mailboxes', 'fleet-gone@example.org')).toEqual({ kind: 'found', value: 'fleet-gone' });
    expect((await ask('aliases', 'fleet-team@example.org')).value).toContain('fleet-gone@example.org');

    await provider.modify(`dn: uid=fleet-gone,${PEOPLE}\nchangetype: delete\n`);
    const t0 = Date.now();
    const [rep, list, mailbox] = await Promise.all([
      replicated(async () => !(await entryExists(consumer, `uid=fleet-gone,${PEOPLE}`)), t0),
      until('aliases', 'fleet-team@example.org', (a) => a.kind === 'found' && !a.value.includes('fleet-gone'), t0),
      until('t-mailboxes', 'fleet-gone@example.org', (a) => a.kind === 'notfound', t0),
    ]);
    delays.push(`  person deleted: replica ${rep} ms, daemon ${list.ms} ms (list), ${mailbox.ms} ms (mailbox)`);
    expect(list.answer).toEqual({ kind: 'found', value: 'alice@example.org,erin@example.org' });
    expect(Math.max(list.ms, mailbox.ms)).toBeLessThanOrEqual(WITHIN_MS);
    expect(await native('t-mailboxes', 'fleet-gone@example.org')).toEqual({ kind: 'notfound', value: '' });
    expect(await daemon.metric('ldap_socketmap_directory_changes_total', { kind: 'deleted' })).toBeGreaterThanOrEqual(1);
  });

  it('a new list, although "not found" was cached for an hour', async () => {
    expect(await ask('aliases', 'fleet-new@example.org')).toEqual({ kind: 'notfound', value: '' });
    consumer.resetSearchCount();
    expect(await ask('aliases', 'fleet-new@example.org')).toEqual({ kind: 'notfound', value: '' });
    expect(consumer.searches().filter((s) => s.filter.includes('fleet-new'))).toEqual([]);

    await provider.add(`dn: cn=fleet-new,${GROUPS}\nobjectClass: mailList\ncn: fleet-new\nlistName: fleet-new\ncontact: uid=carol,${PEOPLE}\n`);
    const t0 = Date.now();
    const [rep, seen] = await Promise.all([
      replicated(() => entryExists(consumer, `cn=fleet-new,${GROUPS}`), t0),
      until('aliases', 'fleet-new@example.org', (a) => a.kind === 'found', t0),
    ]);
    delays.push(`  list added:     replica ${rep} ms, daemon ${seen.ms} ms`);
    expect(seen.answer).toEqual({ kind: 'found', value: 'carol@example.org,carol@elsewhere.net' });
    expect(seen.ms).toBeLessThanOrEqual(WITHIN_MS);
    expect(await native('aliases', 'fleet-new@example.org')).toEqual(seen.answer);
  });
});

/* 3. the provider dies ------------------------------------------------------------------------- */

describe('the provider is killed: the daemon keeps answering from the consumer', () => {
  it('cached and uncached keys answer, nothing TEMP, native agrees; the watcher stays healthy', async () => {
    const cached = await ask('aliases', 'fleet-team@example.org');
    expect(cached.kind).toBe('found');
    const temp0 = await daemon.metric('ldap_socketmap_lookups_total', { result: 'temp' });
    const pollErrors0 = await daemon.metric('ldap_socketmap_change_poll_errors_total');

    process.kill(provider.pid, 'SIGKILL');
    await waitFor('provider gone', () => provider.running(), (r) => !r, 5_000, 20);
    // A few watcher polls of the consumer without its provider (which it keeps retrying every second).
    await sleep(POLL_S * 1000 * 2 + 200);

    expect(await ask('aliases', 'fleet-team@example.org')).toEqual(cached);
    // Everything the daemon cached is dropped: every following lookup is fresh, read from the consumer alone.
    const flushed = await runCli(['cache', 'flush', '--metrics', `127.0.0.1:${daemon.metricsPort}`]);
    expect(flushed.code, flushed.output).toBe(0);
    expect(flushed.stdout).toMatch(/^flushed \d+ cached answers\n$/);
    const misses0 = await daemon.metric('ldap_socketmap_cache_misses_total');
    const t0 = Date.now();
    const { rows, mismatches, kinds } = await differential();
    console.log(`fleet differential with the provider dead: ${rows.length} keys in ${Date.now() - t0} ms, native kinds ${JSON.stringify(kinds)}`);
    expect(mismatches, mismatches.join('\n')).toEqual([]);
    expect(await daemon.metric('ldap_socketmap_cache_misses_total') - misses0).toBeGreaterThanOrEqual(rows.length);
    // Nothing TEMP but what the catalogue says is TEMP (loops, limits, bad URLs) — the same keys as before the kill.
    const temps = rows.filter((r) => / daemon temp /.test(r)).map((r) => r.split(':')[0]);
    const expectedTemps = [...fixtureKeys].flatMap(([map, keys]) => keys.filter((k) => expectedKind(map, k) === 'temp').map((k) => `${map} ${JSON.stringify(k)}`));
    expect(temps.sort()).toEqual(expectedTemps.sort());
    // New keys, never asked before, answered too.
    expect(await ask('t-mailboxes', 'carol@example.org')).toEqual({ kind: 'found', value: 'carol' });
    expect(await ask('aliases', 'fleet-new@example.org')).toEqual({ kind: 'found', value: 'carol@example.org,carol@elsewhere.net' });
    expect(await ask('aliases', 'fleet-other@example.org')).toEqual({ kind: 'found', value: 'dave@example.org' });
    // Only the catalogue's own TEMP keys were TEMP (each asked once, by the daemon side of the differential).
    expect(await daemon.metric('ldap_socketmap_lookups_total', { result: 'temp' }) - temp0).toBe(expectedTemps.length);
    // The watcher polls the consumer, not the provider: it never failed.
    expect(await daemon.metric('ldap_socketmap_change_poll_errors_total')).toBe(pollErrors0);
    const ready = await fetch(`http://127.0.0.1:${daemon.metricsPort}/readyz`);
    expect(ready.status).toBe(200);
    expect(provider.running()).toBe(false);
  }, 180_000);
});
