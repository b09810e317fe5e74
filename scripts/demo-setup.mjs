// The demo's world, shared by `npm run demo` (scripts/demo.mjs) and the test that runs the
// README's examples against it (test/integration/readme-examples.test.ts), so the README is
// checked against exactly what a reader gets: a private slapd loaded with
// examples/directory.ldif, and a directory laid out like a mail host's /etc/postfix
// (ldap-aliases.cf, ldap-mailboxes.cf, main.cf with ldap: tables, master.cf) plus the daemon
// config that serves those files, and the daemon started from it as users run it.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '..');
export const CLI = join(REPO, 'dist/cli/main.js');

/** The ports the README's examples use; the demo takes them when they are free. */
export const README_PORTS = { ldap: 10389, socketmap: 9054, metrics: 9105 };

/** A loopback port the OS says is free right now. */
export function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

function portIsFree(port) {
  return new Promise((res) => {
    const s = net.createServer();
    s.once('error', () => res(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => res(true)));
  });
}

/** `preferred` when nothing listens there (so the README's commands work as written), else any free port. */
export async function preferPort(preferred) {
  return (await portIsFree(preferred)) ? preferred : freePort();
}

export async function waitForPort(port, ms = 10_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((r) => { const c = net.connect(port, '127.0.0.1', () => { c.destroy(); r(true); }); c.on('error', () => r(false)); });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on port ${port}`);
}

// Postfix ignores a main.cf/.cf file changed within the last second ("file is too new"): the
// files are written in one go and then used at once.
const backdate = (f) => { const t = new Date(Date.now() - 10_000); utimesSync(f, t, t); };

/**
 * Writes the demo's files into `dir` and starts slapd and the daemon on `ports`
 * ({ ldap, socketmap, metrics }). `children` collects the processes (the caller stops them);
 * `daemonStdio` is where the daemon's log goes. Returns what the demo prints.
 */
export async function startDemo({ dir, ports, children, daemonStdio = ['ignore', 'inherit', 'inherit'] }) {
  // 1. slapd with the sample directory.
  mkdirSync(join(dir, 'db'), { recursive: true });
  writeFileSync(join(dir, 'slapd.conf'), `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include ${join(REPO, 'examples/mailing-list.schema')}
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
  const add = spawnSync('slapadd', ['-q', '-f', join(dir, 'slapd.conf'), '-l', join(REPO, 'examples/directory.ldif')], { encoding: 'utf8' });
  if (add.error) throw new Error(`slapadd: ${add.error.message} (Debian package slapd)`);
  if (add.status !== 0) throw new Error(`slapadd failed: ${add.stderr}`);
  const slapd = spawn('slapd', ['-d', '0', '-f', join(dir, 'slapd.conf'), '-h', `ldap://127.0.0.1:${ports.ldap}/`], { stdio: 'ignore' });
  children.push(slapd);
  await waitForPort(ports.ldap);

  // 2. The unchanged ldap_table files, and a Postfix configuration that uses them natively
  //    (what `migrate` starts from, and what postmap -c / MAIL_CONFIG read).
  const ldapUrl = `ldap://127.0.0.1:${ports.ldap}/`;
  const cf = {};
  for (const name of ['aliases', 'mailboxes']) {
    cf[name] = join(dir, `ldap-${name}.cf`);
    writeFileSync(cf[name], readFileSync(join(REPO, `examples/ldap-${name}.cf.in`), 'utf8').replaceAll('@LDAP_URL@', ldapUrl));
    backdate(cf[name]);
  }
  writeFileSync(join(dir, 'main.cf'), `compatibility_level = 3.6
virtual_mailbox_domains = example.org
virtual_alias_maps = ldap:${cf.aliases}
virtual_mailbox_maps = ldap:${cf.mailboxes}
`);
  backdate(join(dir, 'main.cf'));
  const stockMaster = ['/etc/postfix/master.cf', '/usr/share/postfix/master.cf.dist'].find((f) => existsSync(f));
  if (!stockMaster) throw new Error('no master.cf to start from (Debian package postfix)');
  copyFileSync(stockMaster, join(dir, 'master.cf'));
  backdate(join(dir, 'master.cf'));

  // 3. The daemon's config, as /etc/ldap-socketmap/ldap-socketmap.conf would be, and the daemon.
  const conf = join(dir, 'ldap-socketmap.conf');
  writeFileSync(conf, `socketmap_listen = inet:127.0.0.1:${ports.socketmap}
metrics_listen = 127.0.0.1:${ports.metrics}
client_allow = 127.0.0.0/8, ::1/128
map.aliases = ${cf.aliases}
map.mailboxes = ${cf.mailboxes}
`);
  const daemon = spawn(process.execPath, [CLI, 'serve', '--config', conf], { stdio: daemonStdio });
  children.push(daemon);
  await waitForPort(ports.socketmap);
  await waitForPort(ports.metrics);
  return { dir, ldapUrl, cf, conf, slapd, daemon };
}
