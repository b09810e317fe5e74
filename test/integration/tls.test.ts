/**
 * TLS exactly as libldap (GnuTLS build, Debian) does it, refereed by Postfix's own ldap: table.
 *
 * A throwaway PKI (openssl CLI) issues server certificates that name only the machine's
 * canonical host name, only `localhost`, only the IP 127.0.0.1, a wrong name, a CN without
 * subjectAltName, ... plus expired and foreign-CA ones; one real slapd per certificate serves
 * StartTLS and ldaps. Each case is one .cf file asked through `postmap -q` natively and through
 * the daemon's socketmap: found vs temporary error must agree (and the value, byte for byte).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../support/daemon.js';
import { makePki, type CertFiles, type CertRequest, type Pki } from '../support/pki.js';
import { backdate, classify, makePostfixConfigDir, postmapQueryAll, type PostmapResult } from '../support/postfix.js';
import { deadPort, startSlapd, type Slapd, type SlapdTls } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';

const SUFFIX = 'dc=example,dc=org';
const LDIF = [
  `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n`,
  `dn: uid=alice,${SUFFIX}\nobjectClass: inetOrgPerson\nuid: alice\ncn: alice\nsn: alice\nmail: alice@example.org\n`,
].join('\n');
const KEY = 'alice';

/** libldap's name for "localhost": the canonical name of gethostname() (ldap_pvt_get_fqdn). */
function canonicalHostName(): string {
  const short = hostname();
  try {
    const line = execFileSync('/usr/bin/getent', ['hosts', short], { encoding: 'utf8' }).split('\n')[0] ?? '';
    return line.trim().split(/\s+/)[1] ?? short;
  } catch {
    return short;
  }
}

interface Server { slapd: Slapd; name: string }
interface Case { id: string; cf: string[]; server: string; note: string }

let pki: Pki;
let foreign: Pki;
let canon: string;
const servers = new Map<string, Server>();
const cases: Case[] = [];
let dir: string;
let confDir: string;
let daemon: RunningDaemon | undefined;
let daemonStartMs = 0;

async function tlsServer(name: string, cert: CertFiles, extra: Partial<SlapdTls> = {}, globalConfig?: string): Promise<void> {
  const slapd = await startSlapd({ ldif: LDIF, tls: { ...cert, ca: pki.caCert, ...extra }, ldaps: true, ...(globalConfig ? { globalConfig } : {}) });
  servers.set(name, { slapd, name });
}

function url(server: string, kind: 'ldaps' | 'starttls' | 'plain', host: string): string {
  const s = servers.get(server)!.slapd;
  return kind === 'ldaps' ? `ldaps://${host}:${s.ldapsPort}/` : `ldap://${host}:${s.port}/`;
}

function addCase(id: string, server: string, note: string, lines: string[]): void {
  cases.push({ id, server, note, cf: [`search_base = ${SUFFIX}`, 'query_filter = (uid=%s)', 'result_attribute = mail', 'bind = no', 'timeout = 5', ...lines] });
}

beforeAll(async () => {
  const t0 = Date.now();
  canon = canonicalHostName();
  pki = makePki();
  foreign = makePki('foreign CA');
  const req = (r: CertRequest, p: Pki = pki) => p.issue(r);
  // Servers, one certificate each (started in parallel: each takes well under a second).
  const all = ['DNS:localhost', `DNS:${canon}`, 'IP:127.0.0.1'];
  await Promise.all([
    tlsServer('host-only', req({ name: 'host-only', cn: canon, san: [`DNS:${canon}`] })),
    tlsServer('localhost-only', req({ name: 'localhost-only', cn: 'localhost', san: ['DNS:localhost'] })),
    tlsServer('ip-only', req({ name: 'ip-only', cn: 'ip-only.invalid', san: ['IP:127.0.0.1'] })),
    tlsServer('wrong-name', req({ name: 'wrong-name', cn: 'wrong.invalid', san: ['DNS:wrong.invalid'] })),
    tlsServer('cn-only', req({ name: 'cn-only', cn: canon })),
    tlsServer('cn-ip', req({ name: 'cn-ip', cn: '127.0.0.1' })),
    tlsServer('cn-fallback', req({ name: 'cn-fallback', cn: canon, san: ['DNS:other.invalid'] })),
    tlsServer('wildcard', req({ name: 'wildcard', cn: 'wild', san: ['DNS:*.example.org'] })),
    tlsServer('expired', req({ name: 'expired', cn: canon, san: all, expired: true })),
    tlsServer('foreign-ca', req({ name: 'foreign-ca', cn: canon, san: all }, foreign)),
    tlsServer('all-names', req({ name: 'all-names', cn: canon, san: all })),
    tlsServer('client-demand', req({ name: 'client-demand', cn: canon, san: all }), { verifyClient: 'demand' }),
    tlsServer('ssf', req({ name: 'ssf', cn: canon, san: all }), {}, 'security ssf=128'),
  ]);
  const client = pki.issue({ name: 'client', cn: 'postfix-client' });
  const foreignClient = foreign.issue({ name: 'foreign-client', cn: 'postfix-client' });
  dir = makeTmpDir('tls-cases-');
  const ca = `tls_ca_cert_file = ${pki.caCert}`;
  const demand = 'tls_require_cert = yes';

  // 1. Host name and IP rules: every certificate, through ldaps and StartTLS, by three names.
  const nameCerts = ['host-only', 'localhost-only', 'ip-only', 'wrong-name', 'cn-only', 'cn-ip', 'cn-fallback', 'wildcard', 'all-names'];
  for (const server of nameCerts) {
    for (const host of ['localhost', canon, '127.0.0.1']) {
      addCase(`${server} ldaps ${host}`, server, 'name check', [`server_host = ${url(server, 'ldaps', host)}`, ca, demand]);
      addCase(`${server} starttls ${host}`, server, 'name check', [`server_host = ${url(server, 'starttls', host)}`, 'start_tls = yes', ca, demand]);
    }
  }
  // An empty host in the URL is libldap's "localhost" too.
  addCase('host-only ldaps (no host)', 'host-only', 'name check', [`server_host = ldaps://:${servers.get('host-only')!.slapd.ldapsPort}/`, ca, demand]);
  // 2. Chain and validity.
  for (const server of ['expired', 'foreign-ca']) {
    for (const kind of ['ldaps', 'starttls'] as const) {
      const tls = kind === 'starttls' ? ['start_tls = yes'] : [];
      addCase(`${server} ${kind} require yes`, server, 'chain', [`server_host = ${url(server, kind, '127.0.0.1')}`, ...tls, ca, demand]);
      addCase(`${server} ${kind} require no`, server, 'chain', [`server_host = ${url(server, kind, '127.0.0.1')}`, ...tls, ca, 'tls_require_cert = no']);
    }
  }
  addCase('wrong-name ldaps require no', 'wrong-name', 'require_cert', [`server_host = ${url('wrong-name', 'ldaps', 'localhost')}`, ca, 'tls_require_cert = no']);
  addCase('wrong-name ldaps default require', 'wrong-name', 'require_cert', [`server_host = ${url('wrong-name', 'ldaps', 'localhost')}`, ca]);
  addCase('all-names ldaps no CA, require yes', 'all-names', 'CA', [`server_host = ${url('all-names', 'ldaps', '127.0.0.1')}`, demand]);
  addCase('all-names ldaps no CA, require no', 'all-names', 'CA', [`server_host = ${url('all-names', 'ldaps', '127.0.0.1')}`]);
  // 3. CA directory: hashed as c_rehash makes it, and a plain directory with ca.pem only.
  const plainCaDir = join(dir, 'plain-ca-dir');
  mkdirSync(plainCaDir);
  copyFileSync(pki.caCert, join(plainCaDir, 'my-ca.pem'));
  const oddCaDir = join(dir, 'odd-ca-dir');
  mkdirSync(oddCaDir);
  copyFileSync(pki.caCert, join(oddCaDir, 'root-certificate'));
  for (const [label, d] of [['hashed', pki.hashedCaDir()], ['plain', plainCaDir], ['odd name', oddCaDir]] as const) {
    addCase(`all-names ldaps CA dir ${label}`, 'all-names', 'CA', [`server_host = ${url('all-names', 'ldaps', '127.0.0.1')}`, `tls_ca_cert_dir = ${d}`, demand]);
    addCase(`all-names starttls CA dir ${label}`, 'all-names', 'CA', [`server_host = ${url('all-names', 'starttls', '127.0.0.1')}`, 'start_tls = yes', `tls_ca_cert_dir = ${d}`, demand]);
  }
  addCase('all-names ldaps CA file missing, require no', 'all-names', 'CA', [`server_host = ${url('all-names', 'ldaps', '127.0.0.1')}`, `tls_ca_cert_file = ${join(dir, 'nonexistent.pem')}`]);
  addCase('all-names ldaps CA file foreign', 'all-names', 'CA', [`server_host = ${url('all-names', 'ldaps', '127.0.0.1')}`, `tls_ca_cert_file = ${foreign.caCert}`, demand]);
  // 4. Client certificates (TLSVerifyClient demand).
  for (const kind of ['ldaps', 'starttls'] as const) {
    const tls = kind === 'starttls' ? ['start_tls = yes'] : [];
    const at = `server_host = ${url('client-demand', kind, '127.0.0.1')}`;
    addCase(`client-demand ${kind} with cert`, 'client-demand', 'client cert', [at, ...tls, ca, demand, `tls_cert = ${client.cert}`, `tls_key = ${client.key}`]);
    addCase(`client-demand ${kind} without cert`, 'client-demand', 'client cert', [at, ...tls, ca, demand]);
    addCase(`client-demand ${kind} foreign cert`, 'client-demand', 'client cert', [at, ...tls, ca, demand, `tls_cert = ${foreignClient.cert}`, `tls_key = ${foreignClient.key}`]);
  }
  // 5. A server that demands TLS (security ssf=128).
  addCase('ssf plain', 'ssf', 'ssf', [`server_host = ${url('ssf', 'plain', '127.0.0.1')}`]);
  addCase('ssf starttls', 'ssf', 'ssf', [`server_host = ${url('ssf', 'starttls', '127.0.0.1')}`, 'start_tls = yes', ca, demand]);
  addCase('ssf ldaps', 'ssf', 'ssf', [`server_host = ${url('ssf', 'ldaps', '127.0.0.1')}`, ca, demand]);
  // 6. Failover lists: a dead server, or one whose certificate is refused, before a good one.
  const dead = deadPort();
  addCase('failover dead, ldaps', 'all-names', 'failover', [`server_host = ldaps://127.0.0.1:${dead}/ ${url('all-names', 'ldaps', 'localhost')}`, ca, demand]);
  addCase('failover bad name, ldaps', 'all-names', 'failover', [`server_host = ${url('wrong-name', 'ldaps', 'localhost')} ${url('all-names', 'ldaps', 'localhost')}`, ca, demand]);
  addCase('failover bad name, starttls', 'all-names', 'failover', [`server_host = ${url('wrong-name', 'starttls', 'localhost')} ${url('all-names', 'starttls', 'localhost')}`, 'start_tls = yes', ca, demand]);
  addCase('failover dead, starttls', 'all-names', 'failover', [`server_host = ldap://127.0.0.1:${dead}/ ${url('all-names', 'starttls', '127.0.0.1')}`, 'start_tls = yes', ca, demand]);

  const maps: string[] = [];
  cases.forEach((c, i) => {
    const file = join(dir, `case-${i}.cf`);
    writeFileSync(file, c.cf.join('\n') + '\n');
    backdate(file);
    maps.push('--map', `c${i}=${file}`);
  });
  confDir = await makePostfixConfigDir();
  const d0 = Date.now();
  daemon = await startDaemon(['--socketmap', 'inet:127.0.0.1:0', ...maps]);
  daemonStartMs = Date.now() - d0;
  console.log(`tls fixture: ${servers.size} slapd, ${cases.length} cases, ${Date.now() - t0} ms (daemon start ${daemonStartMs} ms); canonical host name ${canon}`);
}, 180_000);

afterAll(async () => {
  await daemon?.stop();
  await Promise.all([...servers.values()].map((s) => s.slapd.destroy()));
});

function outcome(r: PostmapResult): string {
  const c = classify(r);
  return c === 'found' ? `OK ${r.stdout.trim()}` : c === 'temp' ? 'TEMP' : c === 'notfound' ? 'NOTFOUND' : `OTHER(exit ${r.code}: ${r.stderr.trim().split('\n').pop()})`;
}

describe('TLS as libldap does it', () => {
  it('every case answers what the native ldap: table answers', async () => {
    const t0 = Date.now();
    const rows: string[] = [];
    const mismatches: string[] = [];
    const results = await Promise.all(cases.map(async (c, i) => {
      const file = join(dir, `case-${i}.cf`);
      const [native, ours] = await Promise.all([
        postmapQueryAll(confDir, `ldap:${file}`, [KEY], 1),
        postmapQueryAll(confDir, daemon!.table(`c${i}`), [KEY], 1),
      ]);
      return { c, n: native.get(KEY)!, o: ours.get(KEY)! };
    }));
    for (const { c, n, o } of results) {
      const row = `${c.id.padEnd(44)} | native ${outcome(n).padEnd(26)} | daemon ${outcome(o)}`;
      rows.push(row);
      if (classify(n) !== classify(o) || n.stdout !== o.stdout) mismatches.push(`${row}\n   native stderr: ${n.stderr.trim().split('\n').pop() ?? ''}`);
    }
    console.log(`tls cases (${Date.now() - t0} ms):\n${rows.join('\n')}`);
    expect(mismatches, rows.join('\n')).toEqual([]);
    // The fixture must exercise both outcomes, and never a silent postmap death (SIGPIPE).
    expect(results.filter((r) => classify(r.n) === 'found').length).toBeGreaterThan(10);
    expect(results.filter((r) => classify(r.n) === 'temp').length).toBeGreaterThan(10);
    expect(results.filter((r) => classify(r.n) === 'other' || classify(r.o) === 'other')).toEqual([]);
  }, 240_000);
});
