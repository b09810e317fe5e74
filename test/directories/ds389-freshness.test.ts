/**
 * Freshness on 389-ds 2.3, past its lookthrough limit (> 5 000 entries), bound as an ordinary
 * entry, everything real (ns-slapd, the built daemon, postmap, ldapmodify):
 *
 * - USN plugin on (and the retro changelog too): the watcher picks lastusn/entryusn; with TTLs of an hour, an added member,
 *   a changed address, a deleted person and a deleted list all show within a few poll
 *   intervals. `check` runs a real poll and says so.
 * - USN plugin off: the modifyTimestamp poll is refused with adminLimitExceeded (11). That must
 *   be loud: a warning naming the code and the fix (dsconf), the blind gauge and the poll
 *   error counter, /readyz 503 with the refusal, `check` failing with the same advice — and
 *   cached answers fall back to blind_cache_ttl, so changes still show within it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startDaemon, type RunningDaemon } from '../support/daemon.js';
import { bulkLdif, startDs389, type Ds389 } from '../support/ds389.js';
import { bigListLdif, FRESHNESS_LDIF, RESTART_LDIF } from '../support/fixtures.js';
import { answerOf, cfTemplate, expandTemplate, makePostfixConfigDir, writeCf, type Answer } from '../support/postfix.js';
import { directoryLdif } from '../support/slapd.js';
import { restartAcrossChange } from '../support/snapshot-restart.js';
import { makeTmpDir } from '../support/tmp.js';
import { waitFor } from '../support/wait.js';

const POLL_S = 1;
/** "within a few poll intervals", measured from the moment ldapmodify returned. */
const WITHIN_MS = 4 * POLL_S * 1000 + 1000;
const BLIND_TTL_S = 3;

const EXTRA_LDIF = `${FRESHNESS_LDIF}
dn: cn=fresh-doomed,ou=Groups,dc=example,dc=org
objectClass: mailList
cn: fresh-doomed
listName: fresh-doomed
mail: doomed@example.org
`;

interface Setup {
  ds: Ds389;
  daemon: RunningDaemon;
  files: Record<string, string>;
  adminPort: number;
}

let confDir: string;
let usn: Setup;
let blind: Setup;
const figures: string[] = [];

async function setup(withUsn: boolean): Promise<Setup> {
  // With USN on, the retro changelog is on too (and readable by the root DSE's numbers): the
  // watcher must still prefer entryUSN (markers/retro-changelog.ts has the changelog's own suite).
  const ds = await startDs389({ ldif: [directoryLdif(), EXTRA_LDIF, bigListLdif('big1500', 1500), bulkLdif(4000)].join('\n'), usn: withUsn, retroChangelog: withUsn });
  figures.push(`389-ds (USN ${withUsn ? 'on' : 'off'}): dscreate ${Math.round(ds.createMs)} ms, import of ${ds.entries} entries ${Math.round(ds.importMs)} ms`);
  const dir = makeTmpDir('ds389-fresh-');
  const bind = `\nbind = yes\nbind_dn = ${ds.bindDn}\nbind_pw = ${ds.bindPw}\n`;
  const files: Record<string, string> = {};
  for (const m of ['aliases', 'mailboxes']) files[m] = writeCf(dir, `${m}.cf`, expandTemplate(cfTemplate(m), { LDAP_URL: ds.url }) + bind, {});
  const daemon = await startDaemon([
    '--socketmap', 'inet:127.0.0.1:0', '--metrics', '127.0.0.1:0',
    '--map', `aliases=${files.aliases}`, '--map', `mailboxes=${files.mailboxes}`,
    '--set', 'cache_ttl=1h', '--set', 'cache_negative_ttl=1h', '--set', 'stale_if_error=1h',
    '--set', `change_poll_interval=${POLL_S}`, '--set', `blind_cache_ttl=${BLIND_TTL_S}`,
  ]);
  const line = await daemon.waitForLog(/metrics on \S+:\d+/);
  return { ds, daemon, files, adminPort: Number(/:(\d+)\s*$/.exec(line)![1]) };
}

beforeAll(async () => {
  confDir = await makePostfixConfigDir();
  [usn, blind] = await Promise.all([setup(true), setup(false)]);
  await usn.daemon.waitForLog(/change watcher .*: lastusn/, 30_000);
}, 300_000);

afterAll(async () => {
  for (const s of [usn, blind]) {
    await s?.daemon.stop();
    await s?.ds.destroy();
  }
  console.log(`ds389 freshness:\n  ${figures.join('\n  ')}`);
});

const q = (s: Setup, map: string, key: string): Promise<Answer> => answerOf(confDir, s.daemon.table(map), key);

/** Asks until `ok` holds (every 100 ms, for at most `ms`) and notes how long that took. */
async function within(s: Setup, map: string, key: string, ok: (a: Answer) => boolean, ms: number, what: string) {
  const start = Date.now();
  const answer = await waitFor(`${map} ${key}`, () => q(s, map, key), ok, ms, 100);
  figures.push(`${what}: ${Date.now() - start} ms`);
  return { answer, ms: Date.now() - start };
}

async function scrape(s: Setup): Promise<string> {
  return (await fetch(`http://127.0.0.1:${s.adminPort}/metrics`)).text();
}

describe('389-ds with the USN plugin: lastusn / entryusn', () => {
  it('picks the USN marker (not the retro changelog, also on) and reports it on /readyz', async () => {
    const dse = await usn.ds.search('user', '', 'base', '(objectClass=*)', ['lastchangenumber']);
    expect(dse.stdout).toMatch(/^lastchangenumber: \d+$/m);
    expect(usn.daemon.log.join('\n')).toMatch(/change watcher .*: lastusn;userroot and \(entryusn>=LAST\) under "dc=example,dc=org" \(389-ds USN plugin\): sees additions, modifications, deletions and renames; maps aliases, mailboxes/);
    const r = await fetch(`http://127.0.0.1:${usn.adminPort}/readyz`);
    const body = (await r.json()) as { maps: Record<string, { watcher?: { state: string; markers: Record<string, string> } }> };
    expect(r.status).toBe(200);
    expect(body.maps.aliases!.watcher).toMatchObject({ state: 'ok', markers: { 'dc=example,dc=org': 'entryUSN' } });
  });

  it('an added member, a changed address, a deleted person and a deleted list show within a few polls', async () => {
    expect(await q(usn, 'aliases', 'fresh-team@example.org')).toEqual({ kind: 'found', value: 'alice@example.org,fresh-gone@example.org' });
    const other = await q(usn, 'aliases', 'fresh-other@example.org');
    expect(await q(usn, 'aliases', 'fresh-doomed@example.org')).toEqual({ kind: 'found', value: 'doomed@example.org' });
    expect(await q(usn, 'mailboxes', 'fresh-new@example.org')).toEqual({ kind: 'notfound', value: '' });

    await usn.ds.modify('dn: cn=fresh-team,ou=Groups,dc=example,dc=org\nchangetype: modify\nadd: contact\ncontact: uid=erin,ou=People,dc=example,dc=org\n');
    await within(usn, 'aliases', 'fresh-team@example.org', (a) => a.value === 'alice@example.org,fresh-gone@example.org,erin@example.org', WITHIN_MS, 'USN: added member');

    await usn.ds.modify('dn: uid=alice,ou=People,dc=example,dc=org\nchangetype: modify\nreplace: mail\nmail: alice.new@example.org\n');
    await within(usn, 'aliases', 'fresh-team@example.org', (a) => a.value.startsWith('alice.new@example.org,'), WITHIN_MS, 'USN: modified member');

    await usn.ds.delete('uid=fresh-gone,ou=People,dc=example,dc=org');
    await within(usn, 'aliases', 'fresh-team@example.org', (a) => a.value === 'alice.new@example.org,erin@example.org', WITHIN_MS, 'USN: deleted member');

    await usn.ds.delete('cn=fresh-doomed,ou=Groups,dc=example,dc=org');
    await within(usn, 'aliases', 'fresh-doomed@example.org', (a) => a.kind === 'notfound', WITHIN_MS, 'USN: deleted list');

    await usn.ds.add('dn: uid=fresh-new,ou=People,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: fresh-new\ncn: New\nsn: New\nmail: fresh-new@example.org\n');
    await within(usn, 'mailboxes', 'fresh-new@example.org', (a) => a.kind === 'found' && a.value === 'fresh-new', WITHIN_MS, 'USN: added person (NOTFOUND expired)');

    // What no change touched is still served from the cache, unchanged.
    expect(await q(usn, 'aliases', 'fresh-other@example.org')).toEqual(other);
    const text = await scrape(usn);
    expect(text).toMatch(/ldap_socketmap_directory_changes_total\{[^}]*kind="deleted"[^}]*\} [1-9]/);
    expect(text).not.toMatch(/ldap_socketmap_change_watcher_blind\{/);
  }, 120_000);

  it('check runs a real poll of the USN marker', async () => {
    const r = await runCli(['check', '--map', `aliases=${usn.files.aliases}`], { timeoutMs: 60_000 });
    expect(r.output).toMatch(/change marker: lastusn;userroot and \(entryusn>=LAST\) under "dc=example,dc=org" \(389-ds USN plugin\)/);
    expect(r.output).toMatch(/change marker poll: ok \(\d+ ms\)/);
    expect(r.code, r.output).toBe(0);
  }, 60_000);
});

describe('389-ds with the USN plugin: a restart resumes from the cache snapshot', () => {
  it('what changed while the daemon was down answers like native at once; untouched keys come from the restored cache', async () => {
    await usn.ds.add(RESTART_LDIF);
    const r = await restartAcrossChange({
      confDir,
      files: usn.files,
      marker: /change watcher .*: lastusn/,
      keys: [['aliases', 'snap-list@example.org'], ['aliases', 'fresh-other@example.org'], ['mailboxes', 'snap-b@example.org'], ['mailboxes', 'snap-c@example.org']],
      whileDown: async () => {
        await usn.ds.delete('uid=snap-b,ou=People,dc=example,dc=org');
      },
    });
    expect(r.before[0]).toEqual({ kind: 'found', value: 'snap-a@example.org,snap-b@example.org' });
    expect(r.native[0]).toEqual({ kind: 'found', value: 'snap-a@example.org' });
    expect(r.native[2]).toEqual({ kind: 'notfound', value: '' });
    expect(r.after).toEqual(r.native);
    expect(r.log.join('\n')).toMatch(/change watcher .*lastusn;userroot .*resuming from the cache snapshot/);
    // The deleted member's list and mailbox were asked of LDAP; the other two came from the snapshot.
    expect(r.misses).toEqual({ aliases: 1, mailboxes: 1 });
    expect(r.hits).toEqual({ aliases: 1, mailboxes: 1 });
  }, 120_000);
});

describe('389-ds without the USN plugin: the modifyTimestamp poll is refused (adminLimitExceeded)', () => {
  it('warns, naming the result code and the fix', async () => {
    const line = await blind.daemon.waitForLog(/change watcher .*cannot poll the directory/, 30_000);
    expect(line).toMatch(/adminLimitExceeded \(11\)/);
    expect(line).not.toMatch(/Code: 0x/);
    expect(line).toMatch(/fix: .*dsconf INSTANCE plugin usn enable/);
    expect(line).toMatch(/backend index add --attr modifyTimestamp --index-type eq/);
    expect(line).toMatch(/at most 3 s \(blind_cache_ttl\)/);
  }, 60_000);

  it('shows on the metrics and on /readyz', async () => {
    const text = await scrape(blind);
    expect(text).toMatch(/ldap_socketmap_change_watcher_blind\{[^}]*reason="adminLimitExceeded \(11\)"[^}]*\} 1/);
    expect(text).toMatch(/ldap_socketmap_change_poll_errors_total\{[^}]*\} [1-9]/);
    const r = await fetch(`http://127.0.0.1:${blind.adminPort}/readyz`);
    const body = (await r.json()) as { ok: boolean; maps: Record<string, { ok: boolean; watcher?: { state: string; refused?: string; advice?: string; error?: string } }> };
    expect(r.status).toBe(503);
    expect(body.maps.aliases).toMatchObject({ ok: false, watcher: { state: 'failing', refused: 'adminLimitExceeded (11)' } });
    expect(body.maps.aliases!.watcher!.advice).toMatch(/plugin usn enable/);
  });

  it('cached answers fall back to blind_cache_ttl while the watcher is blind', async () => {
    expect(await q(blind, 'aliases', 'fresh-team@example.org')).toEqual({ kind: 'found', value: 'alice@example.org,fresh-gone@example.org' });
    await blind.ds.delete('uid=fresh-gone,ou=People,dc=example,dc=org');
    // The watcher sees nothing, but the answer expires after blind_cache_ttl instead of an hour.
    const { ms } = await within(blind, 'aliases', 'fresh-team@example.org', (a) => a.value === 'alice@example.org', BLIND_TTL_S * 1000 + 2000, 'blind: deleted member (blind_cache_ttl 3 s)');
    expect(ms).toBeLessThanOrEqual(BLIND_TTL_S * 1000 + 2000);
  }, 60_000);

  it('check runs the poll, fails, and gives 389-ds advice', async () => {
    const r = await runCli(['check', '--map', `aliases=${blind.files.aliases}`], { timeoutMs: 60_000 });
    expect(r.output).toMatch(/change marker: \(modifyTimestamp>=LAST\) under "dc=example,dc=org"/);
    expect(r.output).toMatch(/change marker poll: FAILED: adminLimitExceeded \(11\): the watcher would be blind/);
    expect(r.output).toMatch(/dsconf INSTANCE plugin usn enable/);
    expect(r.output).not.toMatch(/syncprov/);
    expect(r.code).toBe(1);
  }, 60_000);
});
