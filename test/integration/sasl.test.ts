/**
 * bind = sasl, refereed by Postfix's own ldap: table (Debian's postfix-ldap is built with SASL).
 *
 * One real slapd with a private Cyrus SASL configuration (a slapd.conf naming a private sasldb
 * made with saslpasswd2, bind-mounted in slapd's own mount namespace; see SlapdOptions), listening on ldap://, ldaps:// and ldapi://. Its
 * authz-regexp rules map the ldapi peer (this process' uid/gid), the client certificate's
 * subject and the sasldb user to one service DN, the only identity the ACL lets read. Each case
 * is asked through `postmap -q` natively and through the daemon's socketmap.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, startDaemon, type RunningDaemon } from '../support/daemon.js';
import { makePki, type CertFiles } from '../support/pki.js';
import { backdate, classify, makePostfixConfigDir, postmapQueryAll, type PostmapResult } from '../support/postfix.js';
import { startSlapd, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';

const SUFFIX = 'dc=example,dc=org';
const REALM = 'example.org';
const SERVICE_DN = `uid=postfix,ou=svc,${SUFFIX}`;
const LDIF = [
  `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n`,
  `dn: ou=svc,${SUFFIX}\nobjectClass: organizationalUnit\nou: svc\n`,
  `dn: ${SERVICE_DN}\nobjectClass: account\nuid: postfix\n`,
  `dn: uid=alice,${SUFFIX}\nobjectClass: inetOrgPerson\nuid: alice\ncn: alice\nsn: alice\nmail: alice@example.org\n`,
].join('\n');
const KEY = 'alice';
const SASLPASSWD2 = '/usr/sbin/saslpasswd2';
const PLUGIN_DIR = '/usr/lib/x86_64-linux-gnu/sasl2';

interface Case { id: string; cf: string[] }

let slapd: Slapd;
let client: CertFiles;
let caCert: string;
let dir: string;
let confDir: string;
let daemon: RunningDaemon | undefined;
const cases: Case[] = [];

function requireSasl(): void {
  if (!existsSync(SASLPASSWD2)) throw new Error(`${SASLPASSWD2} not found: install the Debian package 'sasl2-bin' (see scripts/install-deps.sh)`);
  for (const m of ['libplain.so', 'libsasldb.so']) {
    if (!existsSync(join(PLUGIN_DIR, m))) throw new Error(`${PLUGIN_DIR}/${m} not found: install the Debian package 'libsasl2-modules'`);
  }
}

function addCase(id: string, lines: string[]): void {
  cases.push({ id, cf: [`search_base = ${SUFFIX}`, 'query_filter = (uid=%s)', 'result_attribute = mail', 'timeout = 5', ...lines] });
}

beforeAll(async () => {
  requireSasl();
  const t0 = Date.now();
  dir = makeTmpDir('sasl-');
  const pki = makePki();
  caCert = pki.caCert;
  const server = pki.issue({ name: 'server', cn: 'localhost', san: ['DNS:localhost', 'IP:127.0.0.1'] });
  client = pki.issue({ name: 'client', cn: 'postfix-client' });
  // A private Cyrus SASL configuration for slapd: its own sasldb, nothing from /etc.
  const saslDir = join(dir, 'sasl2');
  mkdirSync(saslDir);
  const sasldb = join(dir, 'sasldb2');
  writeFileSync(join(saslDir, 'slapd.conf'), `pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: ${sasldb}\nmech_list: EXTERNAL PLAIN DIGEST-MD5 SCRAM-SHA-1\n`);
  execFileSync(SASLPASSWD2, ['-f', sasldb, '-c', '-p', '-u', REALM, 'postfix'], { input: 'sasl-secret' });
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  slapd = await startSlapd({
    ldif: LDIF,
    ldapi: true,
    ldaps: true,
    tls: { ...server, ca: pki.caCert, verifyClient: 'try' },
    saslConfDir: saslDir,
    globalConfig: [
      `sasl-realm ${REALM}`,
      'sasl-auxprops sasldb',
      `authz-regexp "^gidNumber=${gid}[+]uidNumber=${uid},cn=peercred,cn=external,cn=auth$" "${SERVICE_DN}"`,
      `authz-regexp "^cn=postfix-client$" "${SERVICE_DN}"`,
      `authz-regexp "^uid=postfix(@${REALM})?,cn=${REALM},cn=[^,]+,cn=auth$" "${SERVICE_DN}"`,
    ].join('\n'),
    extraConfig: `access to * by dn.exact="${SERVICE_DN}" read by * none`,
  });
  const ldapi = `server_host = ${slapd.ldapiUrl}`;
  const ldaps = `server_host = ldaps://127.0.0.1:${slapd.ldapsPort}/`;
  const plain = `server_host = ldap://127.0.0.1:${slapd.port}/`;
  const tlsCa = [`tls_ca_cert_file = ${pki.caCert}`, 'tls_require_cert = yes'];
  const cert = [`tls_cert = ${client.cert}`, `tls_key = ${client.key}`];
  const sasl = (mechs: string) => ['bind = sasl', `sasl_mechs = ${mechs}`];
  const plainCreds = (pw: string) => ['bind_dn = postfix', `bind_pw = ${pw}`];

  addCase('ldapi, bind = no (the ACL hides everything)', [ldapi, 'bind = no']);
  addCase('ldapi EXTERNAL', [ldapi, ...sasl('EXTERNAL')]);
  addCase('ldapi EXTERNAL, authz id not allowed', [ldapi, ...sasl('EXTERNAL'), `sasl_authz_id = dn:uid=alice,${SUFFIX}`]);
  addCase('ldapi EXTERNAL, authz id = own DN', [ldapi, ...sasl('EXTERNAL'), `sasl_authz_id = dn:${SERVICE_DN}`]);
  addCase('ldaps EXTERNAL with client cert', [ldaps, ...tlsCa, ...cert, ...sasl('EXTERNAL')]);
  addCase('StartTLS EXTERNAL with client cert', [`server_host = ldap://127.0.0.1:${slapd.port}/`, 'start_tls = yes', ...tlsCa, ...cert, ...sasl('EXTERNAL')]);
  addCase('ldaps EXTERNAL without client cert', [ldaps, ...tlsCa, ...sasl('EXTERNAL')]);
  addCase('plain ldap EXTERNAL', [plain, ...sasl('EXTERNAL')]);
  addCase('ldapi PLAIN', [ldapi, ...sasl('PLAIN'), ...plainCreds('sasl-secret')]);
  addCase('ldapi PLAIN, realm set', [ldapi, ...sasl('PLAIN'), ...plainCreds('sasl-secret'), `sasl_realm = ${REALM}`]);
  addCase('ldapi PLAIN, wrong password', [ldapi, ...sasl('PLAIN'), ...plainCreds('wrong')]);
  addCase('ldaps PLAIN', [ldaps, ...tlsCa, ...sasl('PLAIN'), ...plainCreds('sasl-secret')]);
  addCase('plain ldap PLAIN', [plain, ...sasl('PLAIN'), ...plainCreds('sasl-secret')]);
  addCase('ldapi "PLAIN EXTERNAL", wrong password', [ldapi, ...sasl('PLAIN EXTERNAL'), ...plainCreds('wrong')]);
  addCase('ldapi "EXTERNAL PLAIN", wrong password', [ldapi, ...sasl('EXTERNAL PLAIN'), ...plainCreds('wrong')]);
  addCase('ldaps "EXTERNAL PLAIN" without client cert', [ldaps, ...tlsCa, ...sasl('EXTERNAL PLAIN'), ...plainCreds('sasl-secret')]);
  addCase('ldaps "PLAIN EXTERNAL" with client cert, wrong password', [ldaps, ...tlsCa, ...cert, ...sasl('PLAIN EXTERNAL'), ...plainCreds('wrong')]);
  addCase('plain ldap "EXTERNAL PLAIN"', [plain, ...sasl('EXTERNAL PLAIN'), ...plainCreds('sasl-secret')]);

  const maps: string[] = [];
  cases.forEach((c, i) => {
    const file = join(dir, `case-${i}.cf`);
    writeFileSync(file, c.cf.join('\n') + '\n');
    backdate(file);
    maps.push('--map', `c${i}=${file}`);
  });
  confDir = await makePostfixConfigDir();
  daemon = await startDaemon(['--socketmap', 'inet:127.0.0.1:0', ...maps]);
  console.log(`sasl fixture: ${cases.length} cases, ${Date.now() - t0} ms`);
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  await slapd?.destroy();
});

function outcome(r: PostmapResult): string {
  const c = classify(r);
  return c === 'found' ? `OK ${r.stdout.trim()}` : c === 'temp' ? 'TEMP' : c === 'notfound' ? 'NOTFOUND' : `OTHER(exit ${r.code}: ${r.stderr.trim().split('\n').pop()})`;
}

describe('bind = sasl', () => {
  it('every case answers what the native ldap: table answers', async () => {
    const t0 = Date.now();
    const results = await Promise.all(cases.map(async (c, i) => {
      const file = join(dir, `case-${i}.cf`);
      const [native, ours] = await Promise.all([
        postmapQueryAll(confDir, `ldap:${file}`, [KEY], 1),
        postmapQueryAll(confDir, daemon!.table(`c${i}`), [KEY], 1),
      ]);
      return { c, n: native.get(KEY)!, o: ours.get(KEY)! };
    }));
    const rows = results.map(({ c, n, o }) => `${c.id.padEnd(48)} | native ${outcome(n).padEnd(24)} | daemon ${outcome(o)}`);
    console.log(`sasl cases (${Date.now() - t0} ms):\n${rows.join('\n')}`);
    const mismatches = results.filter(({ n, o }) => classify(n) !== classify(o) || n.stdout !== o.stdout)
      .map(({ c, n }) => `${c.id}: native stderr ${n.stderr.trim().split('\n').pop() ?? ''}`);
    expect(mismatches, rows.join('\n')).toEqual([]);
    expect(results.filter((r) => classify(r.n) === 'found').length).toBeGreaterThanOrEqual(5);
    expect(results.filter((r) => classify(r.n) === 'temp').length).toBeGreaterThanOrEqual(4);
    expect(results.filter((r) => classify(r.n) === 'other' || classify(r.o) === 'other')).toEqual([]);
  }, 120_000);

  it('a mechanism the daemon cannot perform is refused at startup with file, line, key and advice', () => {
    const file = join(dir, 'gssapi.cf');
    writeFileSync(file, `server_host = ${slapd.ldapiUrl}\nbind = sasl\nsasl_mechs = GSSAPI\n`);
    const r = spawnSync(process.execPath, [CLI, 'check', '--map', `x=${file}`], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${file}:3: sasl_mechs: SASL mechanism GSSAPI is not supported`);
    expect(r.stderr).toContain('use sasl_mechs = EXTERNAL over ldapi://');
  });
});
