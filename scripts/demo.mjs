// The demo: a private slapd on loopback loaded with examples/directory.ldif, the daemon serving
// examples/ldap-*.cf.in as maps "aliases" and "mailboxes", and the postmap -q lines to compare
// it with Postfix's own ldap: table. Everything lives in a temp directory removed on exit.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, utimesSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'ldap-socketmap-demo-'));
const children = [];
const cleanup = () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));

function freePort() {
  return new Promise((res) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

async function waitForPort(port, ms = 10_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((r) => { const c = net.connect(port, '127.0.0.1', () => { c.destroy(); r(true); }); c.on('error', () => r(false)); });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on port ${port}`);
}

const backdate = (f) => { const t = new Date(Date.now() - 10_000); utimesSync(f, t, t); };

// 1. slapd with the sample directory.
const ldapPort = await freePort();
mkdirSync(join(dir, 'db'));
writeFileSync(join(dir, 'slapd.conf'), `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include ${join(repo, 'examples/mailing-list.schema')}
pidfile ${join(dir, 'slapd.pid')}
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw secret
directory ${join(dir, 'db')}
sizelimit unlimited
`);
const add = spawnSync('slapadd', ['-q', '-f', join(dir, 'slapd.conf'), '-l', join(repo, 'examples/directory.ldif')], { encoding: 'utf8' });
if (add.status !== 0) throw new Error(`slapadd failed: ${add.stderr}`);
const slapd = spawn('slapd', ['-d', '0', '-f', join(dir, 'slapd.conf'), '-h', `ldap://127.0.0.1:${ldapPort}/`], { stdio: 'ignore' });
children.push(slapd);
await waitForPort(ldapPort);

// 2. The unchanged ldap_table files, and a Postfix config dir for postmap -c.
const ldapUrl = `ldap://127.0.0.1:${ldapPort}/`;
const cf = {};
for (const name of ['aliases', 'mailboxes']) {
  cf[name] = join(dir, `ldap-${name}.cf`);
  writeFileSync(cf[name], readFileSync(join(repo, `examples/ldap-${name}.cf.in`), 'utf8').replaceAll('@LDAP_URL@', ldapUrl));
  backdate(cf[name]);
}
writeFileSync(join(dir, 'main.cf'), 'compatibility_level = 3.6\n');
backdate(join(dir, 'main.cf'));

// 3. The daemon, as users run it.
const smPort = await freePort();
const metricsPort = await freePort();
const daemon = spawn(process.execPath, [join(repo, 'dist/cli/main.js'), 'serve',
  '--socketmap', `inet:127.0.0.1:${smPort}`, '--metrics', `127.0.0.1:${metricsPort}`,
  '--map', `aliases=${cf.aliases}`, '--map', `mailboxes=${cf.mailboxes}`], { stdio: ['ignore', 'inherit', 'inherit'] });
children.push(daemon);
daemon.on('exit', (code) => { console.error(`daemon exited (${code})`); process.exit(1); });
await waitForPort(smPort);

const sm = (m) => `socketmap:inet:127.0.0.1:${smPort}:${m}`;
const pm = `postmap -c ${dir}`;
console.log(`
ldap-socketmap demo is running (Ctrl-C stops it and removes ${dir}).
  slapd:   ${ldapUrl}  (sample directory: examples/directory.ldif)
  daemon:  socketmap inet:127.0.0.1:${smPort}, metrics http://127.0.0.1:${metricsPort}/metrics

Try, and compare with Postfix's own LDAP table:
  ${pm} -q staff@example.org ${sm('aliases')}
  ${pm} -q staff@example.org ldap:${cf.aliases}
  ${pm} -q Coding@Example.ORG ${sm('aliases')}
  ${pm} -q bob.builder@example.org ${sm('mailboxes')}
  ${pm} -q nobody@example.org ${sm('aliases')}; echo "exit $?  (1 = not found)"
  ${pm} -q ring-a@example.org ${sm('aliases')}   # a loop: temporary error, logged with its path
  printf 'staff@example.org\\ncoding@example.org\\nalice@example.org\\n' | ${pm} -q - ${sm('aliases')}
  node ${join(repo, 'dist/cli/main.js')} query --map aliases=${cf.aliases} aliases staff@example.org
  curl -s http://127.0.0.1:${metricsPort}/metrics | grep ldap_socketmap_lookups_total
`);
await new Promise(() => {});
