/**
 * The fleet's consumer as many sites run it: syncrepl only, no syncprov overlay, so the root DSE
 * does not announce the sync control. syncrepl still moves the suffix's contextCSN; the daemon
 * takes it once checked against modifyTimestamp (freshness/markers/replica-csn.ts) and so sees
 * deletions, which modifyTimestamp never could. A real provider and consumer (the snippet's
 * slapd.conf lines with the two syncprov lines taken out), the daemon over ldapi:// + SASL
 * EXTERNAL with answers cached for an hour, native postmap as the referee.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startDaemonWithMetrics, type DaemonWithMetrics } from '../support/daemon.js';
import { consumerConfig, contextCsn, fleetAliasesCf, fleetDaemonConf } from '../support/fleet.js';
import { backdate, classify, makePostfixConfigDir, postmapQuery, valueOf } from '../support/postfix.js';
import { startSlapd, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';
import { waitFor } from '../support/wait.js';

const SUFFIX = 'dc=example,dc=org';
const PEOPLE = `ou=People,${SUFFIX}`;
const GROUPS = `ou=Groups,${SUFFIX}`;
const person = (uid: string) => `dn: uid=${uid},${PEOPLE}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nmail: ${uid}@example.org\n`;
const LDIF = [
  `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n`,
  `dn: ${PEOPLE}\nobjectClass: organizationalUnit\nou: People\n`,
  `dn: ${GROUPS}\nobjectClass: organizationalUnit\nou: Groups\n`,
  person('alice'), person('bob'),
  `dn: cn=sales,${GROUPS}\nobjectClass: groupOfNames\nobjectClass: extensibleObject\ncn: sales\nmember: cn=nobody\nlistName: sales\ncontact: uid=alice,${PEOPLE}\ncontact: uid=bob,${PEOPLE}\n`,
].join('\n');
/** Replication (a persist message) plus one 1 s poll, with room for a loaded 2-core machine. */
const WITHIN_MS = 8_000;

let provider: Slapd;
let consumer: Slapd;
let daemon: DaemonWithMetrics;
let confDir: string;
let aliases: string;

/** The snippet's consumer lines without `moduleload syncprov` and `overlay syncprov`. */
function consumerWithoutSyncprov(uid: number): ReturnType<typeof consumerConfig> {
  const c = consumerConfig(provider, uid);
  const strip = (text: string, re: RegExp, what: string): string => {
    if (!re.test(text)) throw new Error(`postfix-snippets/fleet/slapd-consumer.conf: ${what} not found`);
    return text.replace(re, '');
  };
  return { globalConfig: strip(c.globalConfig, /^moduleload syncprov$/m, 'moduleload syncprov'), extraConfig: strip(c.extraConfig, /^overlay syncprov$/m, 'overlay syncprov') };
}

async function answer(table: string, key: string): Promise<string> {
  const r = await postmapQuery(confDir, table, key);
  const kind = classify(r);
  return kind === 'found' ? `OK ${valueOf(r)}` : kind.toUpperCase();
}

beforeAll(async () => {
  provider = await startSlapd({ ldif: LDIF, syncprov: true });
  consumer = await startSlapd({ empty: true, ldapi: true, ...consumerWithoutSyncprov(process.getuid?.() ?? 0) });
  const want = await contextCsn(provider);
  await waitFor('consumer caught up with the provider', () => contextCsn(consumer), (c) => c.length > 0 && c.join() === want.join(), 30_000, 100);
  const dir = makeTmpDir('replica-csn-');
  aliases = join(dir, 'ldap-aliases.cf');
  writeFileSync(aliases, fleetAliasesCf(consumer));
  backdate(aliases);
  const conf = join(dir, 'ldap-socketmap.conf');
  writeFileSync(conf, fleetDaemonConf(dir, { change_poll_interval: '1s' }));
  confDir = await makePostfixConfigDir();
  daemon = await startDaemonWithMetrics(['--config', conf]);
  await daemon.waitForLog(/change watcher .*contextCSN of "dc=example,dc=org"|change watcher .*modifyTimestamp/, 20_000);
}, 90_000);

afterAll(async () => {
  await daemon?.stop();
  await consumer?.destroy();
  await provider?.destroy();
});

describe('a syncrepl consumer without syncprov', () => {
  it('announces no sync control, and the watcher still takes its contextCSN', async () => {
    const check = await runCli(['check', '--map', `aliases=${aliases}`]);
    expect(check.stdout).toContain('change marker: contextCSN of "dc=example,dc=org" (syncrepl replica without syncprov, checked against modifyTimestamp)');
    expect(check.stdout).toContain('change marker poll: ok');
    expect(daemon.log.join('\n')).toContain('contextCSN of "dc=example,dc=org" (syncrepl replica without syncprov, checked against modifyTimestamp): sees additions, modifications, deletions and renames');
  });

  it('a deletion on the provider shows in the cached answer within seconds, as natively', async () => {
    const daemonTable = daemon.table('aliases');
    expect(await answer(daemonTable, 'sales@example.org')).toBe('OK alice@example.org,bob@example.org');
    expect(await answer(`ldap:${aliases}`, 'sales@example.org')).toBe('OK alice@example.org,bob@example.org');
    const t0 = Date.now();
    await provider.modify(`dn: uid=bob,${PEOPLE}\nchangetype: delete\n`);
    await waitFor('daemon follows the deletion', () => answer(daemonTable, 'sales@example.org'), (a) => a === 'OK alice@example.org', WITHIN_MS, 50);
    console.log(`replica without syncprov: deletion seen by the daemon ${Date.now() - t0} ms after the provider's write`);
    expect(await answer(`ldap:${aliases}`, 'sales@example.org')).toBe('OK alice@example.org');
  }, 30_000);

  it('a contextCSN that nothing moves (a server loaded from an old LDIF, no syncrepl) is not taken', async () => {
    const stale = await startSlapd({ ldif: LDIF.replace('dc: example\n', 'dc: example\ncontextCSN: 20200101000000.000000Z#000000#000#000000\n') });
    try {
      expect(await contextCsn(stale)).toEqual(['20200101000000.000000Z#000000#000#000000']);
      const cf = join(makeTmpDir('stale-csn-'), 'aliases.cf');
      writeFileSync(cf, `server_host = ${stale.url}\nbind = no\nsearch_base = ${GROUPS}\nquery_filter = (listName=%u)\nresult_attribute = mail\n`);
      const check = await runCli(['check', '--map', `aliases=${cf}`]);
      expect(check.stdout).toContain(`change marker: (modifyTimestamp>=LAST) under "${SUFFIX}"`);
    } finally {
      await stale.destroy();
    }
  });
});
