/**
 * bind = sasl, refereed by Postfix's own ldap: table (Debian's postfix-ldap is built with SASL).
 *
 * Real slapd servers with a private Cyrus SASL configuration (a slapd.conf naming a private
 * sasldb made with saslpasswd2, bind-mounted in slapd's own mount namespace; see SlapdOptions),
 * listening on ldap://, ldaps:// and ldapi://. authz-regexp maps each mechanism's identity
 * (uid=postfix,cn=REALM,cn=MECH,cn=auth; the ldapi peer and the client certificate for
 * EXTERNAL) to a service DN of its own, and the ACL lets each service DN read only its own copy
 * of the looked-up entry, whose mail names the mechanism: the answer tells which mechanism was
 * used, so the mechanism choice is refereed too, not only the outcome. Each case is asked
 * through `postmap -q` natively and through the daemon's socketmap.
 *
 * Two more servers demand a SASL security strength (sasl-secprops minssf=56, and minssf=1):
 * over plain ldap:// DIGEST-MD5 then needs a security layer, which native libldap/Cyrus and the
 * daemon both negotiate (the daemon rc4 where only confidentiality will do, integrity where
 * that is offered); answers of every size, many at once, must come through it unchanged.
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
const OTHER_REALM = 'other.example';
const SECRET = 'sasl-secret';
/** Mechanisms whose identity gets a service DN and an entry of its own. */
const MECHS = ['external', 'plain', 'cram-md5', 'digest-md5', 'scram-sha-1', 'scram-sha-256', 'scram-sha-512'];
const svc = (m: string) => `uid=svc-${m},ou=svc,${SUFFIX}`;
const LDIF = [
  `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n`,
  `dn: ou=svc,${SUFFIX}\nobjectClass: organizationalUnit\nou: svc\n`,
  ...MECHS.map((m) => `dn: ${svc(m)}\nobjectClass: account\nuid: svc-${m}\n`),
  ...MECHS.map((m) => `dn: ou=${m},${SUFFIX}\nobjectClass: organizationalUnit\nou: ${m}\n\ndn: uid=alice,ou=${m},${SUFFIX}\nobjectClass: inetOrgPerson\nuid: alice\ncn: alice\nsn: alice\nmail: alice@${m}.example\n`),
  // An answer of about 80 KB: the server's reply spans several security-layer frames (maxbuf 65536).
  `dn: uid=big,ou=digest-md5,${SUFFIX}\nobjectClass: inetOrgPerson\nuid: big\ncn: big\nsn: big\n` +
    Array.from({ length: 2000 }, (_, i) => `mail: member-${String(i).padStart(4, '0')}@layer.digest-md5.example\n`).join(''),
].join('\n');
/** Keys asked through the security layers: small, large, not found. */
const LAYER_KEYS = ['alice', 'big', 'nobody'];
const KEY = 'alice';
const SASLPASSWD2 = '/usr/sbin/saslpasswd2';
const PLUGIN_DIR = '/usr/lib/x86_64-linux-gnu/sasl2';

interface Case { id: string; cf: string[]; server: 'main' | 'layer' | 'integrity' }

let slapd: Slapd;
let layered: Slapd;
let integrity: Slapd;
let client: CertFiles;
let dir: string;
let confDir: string;
let daemon: RunningDaemon | undefined;
const cases: Case[] = [];

function requireSasl(): void {
  if (!existsSync(SASLPASSWD2)) throw new Error(`${SASLPASSWD2} not found: install the Debian package 'sasl2-bin' (see scripts/install-deps.sh)`);
  for (const m of ['libplain.so', 'libsasldb.so', 'libdigestmd5.so', 'libscram.so', 'libcrammd5.so']) {
    if (!existsSync(join(PLUGIN_DIR, m))) throw new Error(`${PLUGIN_DIR}/${m} not found: install the Debian package 'libsasl2-modules'`);
  }
}

function addCase(id: string, lines: string[], server: Case['server'] = 'main'): void {
  cases.push({ id, server, cf: [`search_base = ${SUFFIX}`, 'query_filter = (uid=%s)', 'result_attribute = mail', 'timeout = 5', ...lines] });
}

/** A private Cyrus configuration and sasldb for one slapd. */
function saslConf(name: string, extra = ''): string {
  const saslDir = join(dir, `sasl2-${name}`);
  mkdirSync(saslDir);
  const sasldb = join(dir, `sasldb2-${name}`);
  writeFileSync(join(saslDir, 'slapd.conf'), `pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: ${sasldb}\n` +
    `mech_list: EXTERNAL PLAIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256 SCRAM-SHA-512\n${extra}`);
  execFileSync(SASLPASSWD2, ['-f', sasldb, '-c', '-p', '-u', REALM, 'postfix'], { input: SECRET });
  execFileSync(SASLPASSWD2, ['-f', sasldb, '-c', '-p', '-u', OTHER_REALM, 'postfix'], { input: 'other-secret' });
  // A name that SCRAM and DIGEST-MD5 must escape or quote.
  execFileSync(SASLPASSWD2, ['-f', sasldb, '-c', '-p', '-u', REALM, 'odd=na,me"x'], { input: 'p"w\\,=' });
  return saslDir;
}

beforeAll(async () => {
  requireSasl();
  const t0 = Date.now();
  dir = makeTmpDir('sasl-');
  const pki = makePki();
  const server = pki.issue({ name: 'server', cn: 'localhost', san: ['DNS:localhost', 'IP:127.0.0.1'] });
  client = pki.issue({ name: 'client', cn: 'postfix-client' });
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const globalConfig = (secprops: string) => [
    `sasl-realm ${REALM}`,
    'sasl-auxprops sasldb',
    ...(secprops !== '' ? [`sasl-secprops ${secprops}`] : []),
    `authz-regexp "^gidNumber=${gid}[+]uidNumber=${uid},cn=peercred,cn=external,cn=auth$" "${svc('external')}"`,
    `authz-regexp "^cn=postfix-client$" "${svc('external')}"`,
    // uid=USER,cn=REALM,cn=MECH,cn=auth → the mechanism's service DN (the realm is left out when it is the default).
    `authz-regexp "^uid=[^,]+,cn=[^,]+,cn=([^,]+),cn=auth$" "uid=svc-$1,ou=svc,${SUFFIX}"`,
    `authz-regexp "^uid=[^,]+,cn=([^,]+),cn=auth$" "uid=svc-$1,ou=svc,${SUFFIX}"`,
  ].join('\n');
  const extraConfig = [
    ...MECHS.map((m) => `access to dn.subtree="ou=${m},${SUFFIX}" by dn.exact="${svc(m)}" read by * none`),
    'access to * by users search by * none',
  ].join('\n');
  [slapd, layered, integrity] = await Promise.all([
    startSlapd({ ldif: LDIF, ldapi: true, ldaps: true, tls: { ...server, ca: pki.caCert, verifyClient: 'try' }, saslConfDir: saslConf('main'), globalConfig: globalConfig(''), extraConfig }),
    startSlapd({ ldif: LDIF, ldapi: true, saslConfDir: saslConf('layer'), globalConfig: globalConfig('noanonymous,minssf=56'), extraConfig }),
    startSlapd({ ldif: LDIF, saslConfDir: saslConf('integrity'), globalConfig: globalConfig('noanonymous,minssf=1'), extraConfig }),
  ]);
  const ldapi = `server_host = ${slapd.ldapiUrl}`;
  const ldaps = `server_host = ldaps://127.0.0.1:${slapd.ldapsPort}/`;
  const plain = `server_host = ldap://127.0.0.1:${slapd.port}/`;
  const startTls = [`server_host = ldap://127.0.0.1:${slapd.port}/`, 'start_tls = yes'];
  const tlsCa = [`tls_ca_cert_file = ${pki.caCert}`, 'tls_require_cert = yes'];
  const cert = [`tls_cert = ${client.cert}`, `tls_key = ${client.key}`];
  const sasl = (mechs: string) => ['bind = sasl', `sasl_mechs = ${mechs}`];
  const creds = (pw = SECRET, user = 'postfix') => [`bind_dn = ${user}`, `bind_pw = ${pw}`];

  // EXTERNAL and PLAIN, and how they combine.
  addCase('ldapi, bind = no (the ACL hides everything)', [ldapi, 'bind = no']);
  addCase('ldapi EXTERNAL', [ldapi, ...sasl('EXTERNAL')]);
  addCase('ldapi EXTERNAL, authz id not allowed', [ldapi, ...sasl('EXTERNAL'), `sasl_authz_id = dn:uid=alice,ou=plain,${SUFFIX}`]);
  addCase('ldapi EXTERNAL, authz id = own DN', [ldapi, ...sasl('EXTERNAL'), `sasl_authz_id = dn:${svc('external')}`]);
  addCase('ldaps EXTERNAL with client cert', [ldaps, ...tlsCa, ...cert, ...sasl('EXTERNAL')]);
  addCase('StartTLS EXTERNAL with client cert', [...startTls, ...tlsCa, ...cert, ...sasl('EXTERNAL')]);
  addCase('ldaps EXTERNAL without client cert', [ldaps, ...tlsCa, ...sasl('EXTERNAL')]);
  addCase('plain ldap EXTERNAL', [plain, ...sasl('EXTERNAL')]);
  addCase('ldapi PLAIN', [ldapi, ...sasl('PLAIN'), ...creds()]);
  addCase('ldapi PLAIN, realm set', [ldapi, ...sasl('PLAIN'), ...creds(), `sasl_realm = ${REALM}`]);
  addCase('ldapi PLAIN, wrong password', [ldapi, ...sasl('PLAIN'), ...creds('wrong')]);
  addCase('ldaps PLAIN', [ldaps, ...tlsCa, ...sasl('PLAIN'), ...creds()]);
  addCase('plain ldap PLAIN', [plain, ...sasl('PLAIN'), ...creds()]);
  addCase('ldapi "PLAIN EXTERNAL", wrong password', [ldapi, ...sasl('PLAIN EXTERNAL'), ...creds('wrong')]);
  addCase('ldapi "EXTERNAL PLAIN", wrong password', [ldapi, ...sasl('EXTERNAL PLAIN'), ...creds('wrong')]);
  addCase('ldaps "EXTERNAL PLAIN" without client cert', [ldaps, ...tlsCa, ...sasl('EXTERNAL PLAIN'), ...creds()]);
  addCase('ldaps "PLAIN EXTERNAL" with client cert, wrong password', [ldaps, ...tlsCa, ...cert, ...sasl('PLAIN EXTERNAL'), ...creds('wrong')]);
  addCase('plain ldap "EXTERNAL PLAIN"', [plain, ...sasl('EXTERNAL PLAIN'), ...creds()]);

  // Challenge-response mechanisms on every transport.
  const transports: [string, string[]][] = [['ldapi', [ldapi]], ['ldaps', [ldaps, ...tlsCa]], ['ldaps+cert', [ldaps, ...tlsCa, ...cert]], ['plain', [plain]], ['StartTLS', [...startTls, ...tlsCa]]];
  for (const [t, lines] of transports) {
    for (const m of ['CRAM-MD5', 'DIGEST-MD5', 'SCRAM-SHA-1', 'SCRAM-SHA-256', 'SCRAM-SHA-512']) addCase(`${t} ${m}`, [...lines, ...sasl(m), ...creds()]);
  }
  // Which mechanism of a list: Cyrus' order, whatever the order given.
  const lists = [
    'PLAIN DIGEST-MD5', 'DIGEST-MD5 PLAIN', 'DIGEST-MD5 SCRAM-SHA-1', 'SCRAM-SHA-1 DIGEST-MD5', 'SCRAM-SHA-1 SCRAM-SHA-256',
    'SCRAM-SHA-256 SCRAM-SHA-1', 'SCRAM-SHA-1 SCRAM-SHA-512 SCRAM-SHA-256', 'CRAM-MD5 DIGEST-MD5', 'DIGEST-MD5 CRAM-MD5',
    'SCRAM-SHA-1 CRAM-MD5', 'EXTERNAL DIGEST-MD5', 'DIGEST-MD5 EXTERNAL', 'SCRAM-SHA-1 EXTERNAL', 'CRAM-MD5 EXTERNAL',
    'EXTERNAL CRAM-MD5', 'PLAIN CRAM-MD5', 'PLAIN CRAM-MD5 EXTERNAL', 'SCRAM-SHA-1 SCRAM-SHA-224', 'SCRAM-SHA-384 SCRAM-SHA-1',
    'scram-sha-1', 'DIGEST-MD5,CRAM-MD5',
  ];
  for (const [t, lines] of transports.slice(0, 4)) for (const l of lists) addCase(`${t} "${l}"`, [...lines, ...sasl(l), ...creds()]);
  // Credentials, realms and authorization identities.
  for (const m of ['CRAM-MD5', 'DIGEST-MD5', 'SCRAM-SHA-1', 'SCRAM-SHA-256']) {
    addCase(`ldapi ${m}, wrong password`, [ldapi, ...sasl(m), ...creds('wrong')]);
    addCase(`ldapi ${m}, unknown user`, [ldapi, ...sasl(m), ...creds(SECRET, 'nobody')]);
    addCase(`ldapi ${m}, no bind_dn`, [ldapi, ...sasl(m), `bind_pw = ${SECRET}`]);
    addCase(`ldapi ${m}, no bind_pw`, [ldapi, ...sasl(m), 'bind_dn = postfix']);
    addCase(`ldapi ${m}, user@realm`, [ldapi, ...sasl(m), ...creds(SECRET, `postfix@${REALM}`)]);
    addCase(`ldapi ${m}, user@other realm`, [ldapi, ...sasl(m), ...creds('other-secret', `postfix@${OTHER_REALM}`)]);
    addCase(`ldapi ${m}, sasl_realm = server's`, [ldapi, ...sasl(m), ...creds(), `sasl_realm = ${REALM}`]);
    addCase(`ldapi ${m}, sasl_realm = other, its password`, [ldapi, ...sasl(m), ...creds('other-secret'), `sasl_realm = ${OTHER_REALM}`]);
    addCase(`ldapi ${m}, sasl_realm = other, main password`, [ldapi, ...sasl(m), ...creds(), `sasl_realm = ${OTHER_REALM}`]);
    addCase(`ldapi ${m}, authz id = self`, [ldapi, ...sasl(m), ...creds(), 'sasl_authz_id = postfix']);
    addCase(`ldapi ${m}, authz id = u:self`, [ldapi, ...sasl(m), ...creds(), 'sasl_authz_id = u:postfix']);
    addCase(`ldapi ${m}, authz id not allowed`, [ldapi, ...sasl(m), ...creds(), `sasl_authz_id = dn:${svc('plain')}`]);
    addCase(`ldapi ${m}, name and password to escape`, [ldapi, ...sasl(m), ...creds('p"w\\,=', 'odd=na,me"x')]);
    addCase(`plain ${m}, sasl_minssf = 300`, [plain, ...sasl(m), ...creds(), 'sasl_minssf = 300']);
  }
  addCase('ldapi EXTERNAL, sasl_minssf = 300', [ldapi, ...sasl('EXTERNAL'), 'sasl_minssf = 300']);
  addCase('ldaps PLAIN, sasl_minssf = 300', [ldaps, ...tlsCa, ...sasl('PLAIN'), ...creds(), 'sasl_minssf = 300']);
  // A server that demands a SASL strength of 56: met by ldapi:// (71) without a layer.
  const layeredPlain = `server_host = ldap://127.0.0.1:${layered.port}/`;
  addCase('minssf=56 server, ldapi DIGEST-MD5', [`server_host = ${layered.ldapiUrl}`, ...sasl('DIGEST-MD5'), ...creds()], 'layer');
  addCase('minssf=56 server, ldapi SCRAM-SHA-256', [`server_host = ${layered.ldapiUrl}`, ...sasl('SCRAM-SHA-256'), ...creds()], 'layer');
  addCase('minssf=56 server, plain SCRAM-SHA-256', [layeredPlain, ...sasl('SCRAM-SHA-256'), ...creds()], 'layer');
  addCase(LAYER_CASES[0], [layeredPlain, ...sasl('DIGEST-MD5'), ...creds()], 'layer');
  const integrityPlain = `server_host = ldap://127.0.0.1:${integrity.port}/`;
  addCase(LAYER_CASES[1], [integrityPlain, ...sasl('DIGEST-MD5'), ...creds()], 'integrity');
  addCase('minssf=1 server, plain "CRAM-MD5 DIGEST-MD5"', [integrityPlain, ...sasl('CRAM-MD5 DIGEST-MD5'), ...creds()], 'integrity');
  addCase('minssf=1 server, plain SCRAM-SHA-1', [integrityPlain, ...sasl('SCRAM-SHA-1'), ...creds()], 'integrity');
  addCase('minssf=1 server, plain DIGEST-MD5, wrong password', [integrityPlain, ...sasl('DIGEST-MD5'), ...creds('wrong')], 'integrity');

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
  await Promise.all([slapd?.destroy(), layered?.destroy(), integrity?.destroy()]);
});

function outcome(r: PostmapResult): string {
  const c = classify(r);
  return c === 'found' ? `OK ${r.stdout.trim()}` : c === 'temp' ? 'TEMP' : c === 'notfound' ? 'NOTFOUND' : `OTHER(exit ${r.code}: ${r.stderr.trim().split('\n').pop()})`;
}

/** DIGEST-MD5 over plain ldap:// to the servers that demand a security layer: rc4, then integrity. */
const LAYER_CASES = ['minssf=56 server, plain DIGEST-MD5 (rc4 layer)', 'minssf=1 server, plain DIGEST-MD5 (integrity layer)'] as const;

describe('bind = sasl', () => {
  let results: { c: Case; n: PostmapResult; o: PostmapResult }[] = [];

  it('every case answers what the native ldap: table answers, by the same mechanism', async () => {
    const t0 = Date.now();
    const ask = async (c: Case, i: number) => {
      const file = join(dir, `case-${i}.cf`);
      const [native, ours] = await Promise.all([
        postmapQueryAll(confDir, `ldap:${file}`, [KEY], 1),
        postmapQueryAll(confDir, daemon!.table(`c${i}`), [KEY], 1),
      ]);
      return { c, n: native.get(KEY)!, o: ours.get(KEY)! };
    };
    // In batches: each native case is a postmap process with its own connection and bind.
    results = [];
    for (let i = 0; i < cases.length; i += 24) results.push(...await Promise.all(cases.slice(i, i + 24).map((c, j) => ask(c, i + j))));
    const rows = results.map(({ c, n, o }) => `${c.id.padEnd(62)} | native ${outcome(n).padEnd(34)} | daemon ${outcome(o)}`);
    console.log(`sasl cases (${Date.now() - t0} ms):\n${rows.join('\n')}`);
    const mismatches = results.filter(({ n, o }) => classify(n) !== classify(o) || n.stdout !== o.stdout)
      .map(({ c, n }) => `${c.id}: native stderr ${n.stderr.trim().split('\n').pop() ?? ''}`);
    expect(mismatches, rows.join('\n')).toEqual([]);
    const found = (m: string) => results.filter((r) => classify(r.n) === 'found' && r.n.stdout.trim() === `alice@${m}.example`).length;
    for (const m of MECHS) expect(found(m), `cases answered through ${m}`).toBeGreaterThanOrEqual(3);
    expect(results.filter((r) => classify(r.n) === 'temp').length).toBeGreaterThanOrEqual(20);
    expect(results.filter((r) => classify(r.n) === 'other' || classify(r.o) === 'other')).toEqual([]);
  }, 300_000);

  it('through a security layer (rc4, integrity), answers small and large, asked many at once, are the native ones', async () => {
    for (const id of LAYER_CASES) {
      const i = cases.findIndex((c) => c.id === id);
      const file = join(dir, `case-${i}.cf`);
      const native = await postmapQueryAll(confDir, `ldap:${file}`, LAYER_KEYS, 1);
      expect(outcome(native.get('alice')!)).toBe('OK alice@digest-md5.example');
      expect(native.get('big')!.stdout.trim().split(',')).toHaveLength(2000);
      expect(classify(native.get('nobody')!)).toBe('notfound');
      // Ten rounds of every key at once: the daemon's connections carry them all through the layer.
      const rounds = await Promise.all(Array.from({ length: 10 }, () => postmapQueryAll(confDir, daemon!.table(`c${i}`), LAYER_KEYS, LAYER_KEYS.length)));
      for (const ours of rounds) {
        for (const k of LAYER_KEYS) expect(outcome(ours.get(k)!), `${id} ${k}`).toBe(outcome(native.get(k)!));
      }
    }
    expect(daemon!.log.join('\n')).not.toMatch(/DIGEST-MD5 layer|security layer ldap-socketmap cannot provide/);
  }, 120_000);

  it('check says the bind runs a security layer, and which', () => {
    for (const [server, layer] of [[layered, 'auth-conf, rc4'], [integrity, 'auth-int']] as const) {
      const file = join(dir, `check-layer-${layer.length}.cf`);
      writeFileSync(file, `server_host = ldap://127.0.0.1:${server.port}/\nbind = sasl\nsasl_mechs = DIGEST-MD5\nbind_dn = postfix\nbind_pw = ${SECRET}\nsearch_base = ${SUFFIX}\n`);
      const r = spawnSync(process.execPath, [CLI, 'check', '--map', `x=${file}`], { encoding: 'utf8', timeout: 20_000 });
      expect(r.stdout).toContain(`LDAP: connected and bound (SASL DIGEST-MD5 with a security layer (${layer}))`);
    }
  });

  it('a mechanism the daemon cannot perform is refused at startup with file, line, key and advice', () => {
    const file = join(dir, 'gssapi.cf');
    writeFileSync(file, `server_host = ${slapd.ldapiUrl}\nbind = sasl\nsasl_mechs = GSSAPI\n`);
    const r = spawnSync(process.execPath, [CLI, 'check', '--map', `x=${file}`], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${file}:3: sasl_mechs: SASL mechanism GSSAPI is not supported`);
    expect(r.stderr).toContain('use sasl_mechs = EXTERNAL over ldapi://');
  });

  it('check names the mechanism the bind used', () => {
    const file = join(dir, 'check-mech.cf');
    writeFileSync(file, `server_host = ${slapd.ldapiUrl}\nbind = sasl\nsasl_mechs = PLAIN DIGEST-MD5 SCRAM-SHA-256\nbind_dn = postfix\nbind_pw = ${SECRET}\nsearch_base = ${SUFFIX}\n`);
    const r = spawnSync(process.execPath, [CLI, 'check', '--map', `x=${file}`], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout).toContain('LDAP: connected and bound (SASL SCRAM-SHA-256)');
  });

  it('sasl_minssf above 0 is accepted with a warning that it is not enforced (natively neither)', () => {
    const file = join(dir, 'minssf.cf');
    writeFileSync(file, `server_host = ${slapd.ldapiUrl}\nbind = sasl\nsasl_mechs = EXTERNAL\nsasl_minssf = 128\n`);
    const r = spawnSync(process.execPath, [CLI, 'check', '--map', `x=${file}`], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout).toContain(`${file}:4: sasl_minssf: 128 is not enforced, as Postfix's own ldap: table does not enforce it either`);
  });
});
