/**
 * Freshness on 389-ds 2.3 through the retro changelog (FreeIPA's setup: Retro Changelog plugin
 * on, USN plugin off), everything real (ns-slapd, the built daemon, postmap, ldapmodify), bound
 * as an ordinary entry:
 *
 * - `cl`: past the lookthrough limit (> 5 000 entries, so modifyTimestamp would be refused),
 *   with the ACI on cn=changelog that `check` advises. The watcher picks the changelog; with
 *   TTLs of an hour an added person, a changed address, a deleted member, a renamed member and
 *   a list moved out of the search base all show within a few poll intervals. `check` runs a
 *   real poll. A second daemon polling slower than the changelog is trimmed
 *   (nsslapd-changelogmaxage 3s) finds changes trimmed before it read them and expires the
 *   context.
 * - `hidden`: no ACI (389-ds shows the records to the Directory Manager only, and answers
 *   everyone else with zero entries, not an error). A daemon started while the changelog is
 *   empty picks it, and once a write's record stays invisible fails loudly: warning with
 *   insufficientAccessRights (50) and the ACI, /readyz, the blind gauge. `check` then keeps
 *   modifyTimestamp and prints the ACI; applying exactly that ACI makes the watcher recover.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startDaemon, type RunningDaemon } from '../support/daemon.js';
import { bulkLdif, startDs389, type Ds389 } from '../support/ds389.js';
import { bigListLdif, FRESHNESS_LDIF, RESTART_LDIF } from '../support/fixtures.js';
import { answerOf, cfTemplate, classify, expandTemplate, makePostfixConfigDir, postmapQuery, writeCf, type Answer } from '../support/postfix.js';
import { directoryLdif } from '../support/slapd.js';
import { restartAcrossChange } from '../support/snapshot-restart.js';
import { makeTmpDir } from '../support/tmp.js';
import { waitFor } from '../support/wait.js';

const POLL_S = 1;
/** "within a few poll intervals", measured from the moment ldapmodify returned. */
const WITHIN_MS = 4 * POLL_S * 1000 + 1000;
const BLIND_TTL_S = 3;
/** The slow daemon's interval: longer than the changelog's max age plus its trim interval. */
const SLOW_POLL_S = 10;
const ACI_BASE = 'cn=changelog';

const EXTRA_LDIF = `${FRESHNESS_LDIF}
dn: cn=fresh-doomed,ou=Groups,dc=example,dc=org
objectClass: mailList
cn: fresh-doomed
listName: fresh-doomed
mail: doomed@example.org

dn: cn=fresh-moved,ou=Groups,dc=example,dc=org
objectClass: mailList
cn: fresh-moved
listName: fresh-moved
mail: moved@example.org
`;

interface Setup {
  ds: Ds389;
  daemon: RunningDaemon;
  files: Record<string, string>;
  adminPort: number;
}

let confDir: string;
let cl: Setup;
let hidden: Setup;
let slow: RunningDaemon | undefined;
const figures: string[] = [];
const dirs: string[] = [];

function mapFiles(ds: Ds389): Record<string, string> {
  const dir = makeTmpDir('ds389-retrocl-');
  dirs.push(dir);
  const bind = `\nbind = yes\nbind_dn = ${ds.bindDn}\nbind_pw = ${ds.bindPw}\n`;
  const files: Record<string, string> = {};
  for (const m of ['aliases', 'mailboxes']) files[m] = writeCf(dir, `${m}.cf`, expandTemplate(cfTemplate(m), { LDAP_URL: ds.url }) + bind, {});
  return files;
}

async function daemonFor(files: Record<string, string>, pollS: number): Promise<{ daemon: RunningDaemon; adminPort: number }> {
  const daemon = await startDaemon([
    '--socketmap', 'inet:127.0.0.1:0', '--metrics', '127.0.0.1:0',
    '--map', `aliases=${files.aliases}`, '--map', `mailboxes=${files.mailboxes}`,
    '--set', 'cache_ttl=1h', '--set', 'cache_negative_ttl=1h', '--set', 'stale_if_error=1h',
    '--set', `change_poll_interval=${pollS}`, '--set', `blind_cache_ttl=${BLIND_TTL_S}`,
  ]);
  const line = await daemon.waitForLog(/metrics on \S+:\d+/);
  return { daemon, adminPort: Number(/:(\d+)\s*$/.exec(line)![1]) };
}

/** The ACI `check` advises, as 389-ds takes it. */
function aciFor(ds: Ds389): string {
  return `aci: (targetattr="changeNumber || targetDn || changeType || newRdn || newSuperior")(version 3.0; acl "ldap-socketmap change watcher"; allow (read, search, compare) userdn="ldap:///${ds.bindDn}";)`;
}

async function setupCl(): Promise<Setup> {
  const ds = await startDs389({
    ldif: [directoryLdif(), EXTRA_LDIF, bigListLdif('big1500', 1500), bulkLdif(4000)].join('\n'),
    usn: false,
    retroChangelog: true,
    retroChangelogConfig: { 'nsslapd-changelogmaxage': '3s', 'nsslapd-changelog-trim-interval': '1' },
  });
  figures.push(`389-ds (retro changelog, USN off): dscreate ${Math.round(ds.createMs)} ms, import of ${ds.entries} entries ${Math.round(ds.importMs)} ms`);
  await ds.modify(`dn: ${ACI_BASE}\nchangetype: modify\nadd: aci\n${aciFor(ds)}\n`);
  // A record to check readability against (an offline import logs none).
  await ds.modify('dn: uid=dave,ou=People,dc=example,dc=org\nchangetype: modify\nreplace: description\ndescription: before the daemon\n');
  const files = mapFiles(ds);
  return { ds, files, ...(await daemonFor(files, POLL_S)) };
}

async function setupHidden(): Promise<Setup> {
  const ds = await startDs389({ ldif: [directoryLdif(), EXTRA_LDIF].join('\n'), usn: false, retroChangelog: true });
  figures.push(`389-ds (retro changelog without ACI, USN off): dscreate ${Math.round(ds.createMs)} ms, import of ${ds.entries} entries ${Math.round(ds.importMs)} ms`);
  const files = mapFiles(ds);
  return { ds, files, ...(await daemonFor(files, POLL_S)) };
}

beforeAll(async () => {
  confDir = await makePostfixConfigDir();
  [cl, hidden] = await Promise.all([setupCl(), setupHidden()]);
  await cl.daemon.waitForLog(/change watcher .*: lastchangenumber/, 30_000);
  await hidden.daemon.waitForLog(/change watcher .*: lastchangenumber/, 30_000);
}, 300_000);

afterAll(async () => {
  await slow?.stop();
  for (const s of [cl, hidden]) {
    await s?.daemon.stop();
    await s?.ds.destroy();
  }
  console.log(`ds389 retro changelog:\n  ${figures.join('\n  ')}`);
});

const q = (s: Setup, map: string, key: string): Promise<Answer> => answerOf(confDir, s.daemon.table(map), key);

/** Asks until `ok` holds (every 100 ms, for at most `ms`) and notes how long that took. */
async function within(s: Setup, map: string, key: string, ok: (a: Answer) => boolean, ms: number, what: string) {
  const start = Date.now();
  const answer = await waitFor(`${map} ${key}`, () => q(s, map, key), ok, ms, 100);
  figures.push(`${what}: ${Date.now() - start} ms`);
  return { answer, ms: Date.now() - start };
}

async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

describe('389-ds with the retro changelog and without the USN plugin', () => {
  it('the root DSE shows the changelog numbers to the bind DN, and the ACI lets it read the records', async () => {
    const dse = await cl.ds.search('user', '', 'base', '(objectClass=*)', ['changelog', 'firstchangenumber', 'lastchangenumber', 'lastusn']);
    expect(dse.stdout).toMatch(/^changelog: cn=changelog$/m);
    expect(dse.stdout).toMatch(/^lastchangenumber: [1-9]\d*$/m);
    expect(dse.stdout).not.toMatch(/lastusn/i);
    const records = await cl.ds.search('user', 'cn=changelog', 'one', '(changeNumber>=1)', ['targetDn', 'changeType', 'changes']);
    expect(records.stdout).toMatch(/^targetDn: uid=dave,ou=People,dc=example,dc=org$/m);
    // The ACI leaves out `changes` (the written values).
    expect(records.stdout).not.toMatch(/^changes/m);
  });

  it('picks the changelog marker and reports it on /readyz', async () => {
    expect(cl.daemon.log.join('\n')).toMatch(/change watcher .*: lastchangenumber and the records of "cn=changelog" whose targetDn is under "dc=example,dc=org" \(retro changelog\): sees additions, modifications, deletions and renames; maps aliases, mailboxes/);
    const r = await fetch(`http://127.0.0.1:${cl.adminPort}/readyz`);
    const body = (await r.json()) as { maps: Record<string, { watcher?: { state: string; markers: Record<string, string> } }> };
    expect(r.status).toBe(200);
    expect(body.maps.aliases!.watcher).toMatchObject({ state: 'ok', markers: { 'dc=example,dc=org': 'changelog' } });
  });

  it('an added person, a changed address, a deleted member, a renamed member and a moved list show within a few polls', async () => {
    expect(await q(cl, 'aliases', 'fresh-team@example.org')).toEqual({ kind: 'found', value: 'alice@example.org,fresh-gone@example.org' });
    const other = await q(cl, 'aliases', 'fresh-other@example.org');
    expect(other.kind).toBe('found');
    expect(await q(cl, 'aliases', 'fresh-moved@example.org')).toEqual({ kind: 'found', value: 'moved@example.org' });
    expect(await q(cl, 'mailboxes', 'fresh-new@example.org')).toEqual({ kind: 'notfound', value: '' });

    await cl.ds.add('dn: uid=fresh-new,ou=People,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: fresh-new\ncn: New\nsn: New\nmail: fresh-new@example.org\n');
    await within(cl, 'mailboxes', 'fresh-new@example.org', (a) => a.kind === 'found' && a.value === 'fresh-new', WITHIN_MS, 'changelog: added person (NOTFOUND expired)');

    await cl.ds.modify('dn: uid=alice,ou=People,dc=example,dc=org\nchangetype: modify\nreplace: mail\nmail: alice.new@example.org\n');
    await within(cl, 'aliases', 'fresh-team@example.org', (a) => a.value === 'alice.new@example.org,fresh-gone@example.org', WITHIN_MS, 'changelog: modified member');

    await cl.ds.delete('uid=fresh-gone,ou=People,dc=example,dc=org');
    await within(cl, 'aliases', 'fresh-team@example.org', (a) => a.value === 'alice.new@example.org', WITHIN_MS, 'changelog: deleted member');

    // The list points to alice's old DN: after the rename it has no member left.
    await cl.ds.modify('dn: uid=alice,ou=People,dc=example,dc=org\nchangetype: modrdn\nnewrdn: uid=alice-renamed\ndeleteoldrdn: 0\n');
    await within(cl, 'aliases', 'fresh-team@example.org', (a) => a.kind === 'notfound', WITHIN_MS, 'changelog: renamed member');

    // Moved out of ou=Groups (the map's search base): no longer found there.
    await cl.ds.modify('dn: cn=fresh-moved,ou=Groups,dc=example,dc=org\nchangetype: modrdn\nnewrdn: cn=fresh-moved\ndeleteoldrdn: 0\nnewsuperior: ou=People,dc=example,dc=org\n');
    await within(cl, 'aliases', 'fresh-moved@example.org', (a) => a.kind === 'notfound', WITHIN_MS, 'changelog: list moved out of the search base');

    // What no change touched is still served from the cache, unchanged.
    expect(await q(cl, 'aliases', 'fresh-other@example.org')).toEqual(other);
    const text = await scrape(cl.adminPort);
    expect(text).toMatch(/ldap_socketmap_directory_changes_total\{[^}]*kind="deleted"[^}]*\} [1-9]/);
    expect(text).toMatch(/ldap_socketmap_change_marker\{[^}]*marker="changelog"[^}]*\} 1/);
    expect(text).not.toMatch(/ldap_socketmap_change_watcher_blind\{/);
    // Nothing was expired as a whole, and no cached DN had to be verified: the records named them.
    expect(text).not.toMatch(/ldap_socketmap_directory_changes_total\{[^}]*kind="unexplained"[^}]*\} [1-9]/);
    expect(cl.daemon.log.join('\n')).not.toMatch(/cannot poll/);
  }, 120_000);

  it('check runs a real poll of the changelog marker', async () => {
    const r = await runCli(['check', '--map', `aliases=${cl.files.aliases}`], { timeoutMs: 60_000 });
    expect(r.output).toMatch(/change marker: lastchangenumber and the records of "cn=changelog" whose targetDn is under "dc=example,dc=org" \(retro changelog\)/);
    expect(r.output).toMatch(/change marker poll: ok \(\d+ ms\)/);
    expect(r.code, r.output).toBe(0);
  }, 60_000);

  it('changes trimmed from the changelog before a slow watcher read them expire the whole context', async () => {
    const d = await daemonFor(cl.files, SLOW_POLL_S);
    slow = d.daemon;
    await slow.waitForLog(/change watcher .*: lastchangenumber/, 30_000);
    const before = await postmapQuery(confDir, slow.table('aliases'), 'fresh-other@example.org');
    expect(classify(before)).toBe('found');
    // Two records; the older one goes after 3 s (trimming keeps the newest).
    await cl.ds.modify('dn: uid=bulk1,ou=Bulk,dc=example,dc=org\nchangetype: modify\nreplace: description\ndescription: one\n');
    await cl.ds.modify('dn: uid=bulk2,ou=Bulk,dc=example,dc=org\nchangetype: modify\nreplace: description\ndescription: two\n');
    const t0 = Date.now();
    const line = await slow.waitForLog(/unexplained change \(changes \d+ to \d+ were trimmed from the retro changelog/, 3 * SLOW_POLL_S * 1000);
    figures.push(`changelog trimmed before the slow watcher read it: seen after ${Date.now() - t0} ms (${line.replace(/^.*unexplained change /, '').slice(0, 90)})`);
    const text = await scrape(d.adminPort);
    expect(text).toMatch(/ldap_socketmap_directory_changes_total\{[^}]*kind="unexplained"[^}]*\} [1-9]/);
    expect(text).toMatch(/ldap_socketmap_cache_invalidations_total\{map="aliases"\} [1-9]/);
  }, 90_000);
});

describe('389-ds with a retro changelog the bind DN may not read', () => {
  it('records hidden by 389-ds come back as zero entries, not as an error', async () => {
    await hidden.ds.modify('dn: uid=dave,ou=People,dc=example,dc=org\nchangetype: modify\nreplace: description\ndescription: hidden write\n');
    const dse = await hidden.ds.search('user', '', 'base', '(objectClass=*)', ['lastchangenumber']);
    expect(dse.stdout).toMatch(/^lastchangenumber: 1$/m);
    const asUser = await hidden.ds.search('user', 'cn=changelog', 'one', '(changeNumber>=1)', ['targetDn']);
    expect(asUser.code).toBe(0);
    expect(asUser.stdout).not.toMatch(/targetDn/);
    const asRoot = await hidden.ds.search('root', 'cn=changelog', 'one', '(changeNumber>=1)', ['targetDn']);
    expect(asRoot.stdout).toMatch(/^targetDn: uid=dave,ou=People,dc=example,dc=org$/m);
  });

  it('the watcher that picked the empty changelog fails loudly once a record stays invisible', async () => {
    const line = await hidden.daemon.waitForLog(/change watcher .*cannot poll the directory/, 30_000);
    expect(line).toMatch(/\(changelog under "dc=example,dc=org"\): insufficientAccessRights \(50\)/);
    expect(line).toMatch(/at most 3 s \(blind_cache_ttl\)/);
    expect(line).toContain(`fix: insufficientAccessRights (50): let the bind DN read the retro changelog: add to "cn=changelog", as the Directory Manager: ${aciFor(hidden.ds)}`);
    expect(line).toMatch(/dsconf INSTANCE plugin usn enable/);
    const text = await scrape(hidden.adminPort);
    expect(text).toMatch(/ldap_socketmap_change_watcher_blind\{[^}]*reason="insufficientAccessRights \(50\)"[^}]*\} 1/);
    const r = await fetch(`http://127.0.0.1:${hidden.adminPort}/readyz`);
    const body = (await r.json()) as { maps: Record<string, { ok: boolean; watcher?: { state: string; refused?: string; advice?: string } }> };
    expect(r.status).toBe(503);
    expect(body.maps.aliases).toMatchObject({ ok: false, watcher: { state: 'failing', refused: 'insufficientAccessRights (50)' } });
    expect(body.maps.aliases!.watcher!.advice).toContain('targetattr="changeNumber || targetDn || changeType || newRdn || newSuperior"');
  }, 60_000);

  it('check keeps modifyTimestamp and says which ACI to add', async () => {
    const r = await runCli(['check', '--map', `aliases=${hidden.files.aliases}`], { timeoutMs: 60_000 });
    expect(r.output).toMatch(/change marker: \(modifyTimestamp>=LAST\) under "dc=example,dc=org"/);
    expect(r.output).toContain(`the retro changelog is on but its records are hidden from the bind DN: to have the watcher read it (sees deletions and renames), add to "cn=changelog", as the Directory Manager: ${aciFor(hidden.ds)}`);
    expect(r.output).not.toMatch(/syncprov/);
  }, 60_000);

  it('with the advised ACI added the watcher recovers, and follows deletions again', async () => {
    await hidden.ds.modify(`dn: ${ACI_BASE}\nchangetype: modify\nadd: aci\n${aciFor(hidden.ds)}\n`);
    await hidden.daemon.waitForLog(/change watcher .*: polling again after/, 10_000);
    // Cached after the recovery, so fresh for the hour of cache_ttl again: only the watcher can expire it.
    expect(await q(hidden, 'aliases', 'fresh-team@example.org')).toEqual({ kind: 'found', value: 'alice@example.org,fresh-gone@example.org' });
    await hidden.ds.delete('uid=fresh-gone,ou=People,dc=example,dc=org');
    await within(hidden, 'aliases', 'fresh-team@example.org', (a) => a.value === 'alice@example.org', WITHIN_MS, 'changelog after the ACI: deleted member');
    const r = await fetch(`http://127.0.0.1:${hidden.adminPort}/readyz`);
    expect(r.status).toBe(200);
    const check = await runCli(['check', '--map', `aliases=${hidden.files.aliases}`], { timeoutMs: 60_000 });
    expect(check.output).toMatch(/change marker: lastchangenumber and the records of "cn=changelog"/);
    expect(check.code, check.output).toBe(0);
  }, 60_000);

  it('a restart resumes from the cache snapshot at the last change number read: deletions while down answer like native at once, the rest from the restored cache', async () => {
    await hidden.ds.add(RESTART_LDIF);
    const r = await restartAcrossChange({
      confDir,
      files: hidden.files,
      marker: /change watcher .*: lastchangenumber/,
      keys: [['aliases', 'snap-list@example.org'], ['aliases', 'fresh-other@example.org'], ['mailboxes', 'snap-b@example.org'], ['mailboxes', 'snap-c@example.org']],
      whileDown: () => hidden.ds.delete('uid=snap-b,ou=People,dc=example,dc=org'),
    });
    expect(r.before[0]).toEqual({ kind: 'found', value: 'snap-a@example.org,snap-b@example.org' });
    expect(r.native[0]).toEqual({ kind: 'found', value: 'snap-a@example.org' });
    expect(r.native[2]).toEqual({ kind: 'notfound', value: '' });
    expect(r.after).toEqual(r.native);
    expect(r.log.join('\n')).toMatch(/change watcher .*\(retro changelog\).*resuming from the cache snapshot/);
    expect(r.misses).toEqual({ aliases: 1, mailboxes: 1 });
    expect(r.hits).toEqual({ aliases: 1, mailboxes: 1 });
  }, 120_000);
});
