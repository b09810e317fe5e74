// The demo: a private slapd on loopback loaded with examples/directory.ldif, the daemon serving
// examples/ldap-*.cf.in as maps "aliases" and "mailboxes" from its own config file, and the
// postmap -q lines to compare it with Postfix's own ldap: table. The ports are the README's
// (9054, 9105, LDAP 10389) when free, so the README's examples work as written. Everything
// lives in a temp directory removed on exit.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, README_PORTS, preferPort, startDemo } from './demo-setup.mjs';

const dir = mkdtempSync(join(tmpdir(), 'ldap-socketmap-demo-'));
const children = [];
const cleanup = () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));

const ports = {
  ldap: await preferPort(README_PORTS.ldap),
  socketmap: await preferPort(README_PORTS.socketmap),
  metrics: await preferPort(README_PORTS.metrics),
};
const demo = await startDemo({ dir, ports, children });
demo.daemon.on('exit', (code) => { console.error(`daemon exited (${code})`); process.exit(1); });

const sm = (m) => `socketmap:inet:127.0.0.1:${ports.socketmap}:${m}`;
const moved = Object.entries(README_PORTS).filter(([k, p]) => ports[k] !== p).map(([k, p]) => `${k} ${p} -> ${ports[k]}`);
console.log(`
ldap-socketmap demo is running (Ctrl-C stops it and removes ${dir}).
  slapd:   ${demo.ldapUrl}  (sample directory: examples/directory.ldif)
  daemon:  ${CLI} serve --config ${demo.conf}
           socketmap inet:127.0.0.1:${ports.socketmap}, metrics http://127.0.0.1:${ports.metrics}/metrics

The README's examples run against this demo as written, once these stand in for a mail host's files:
  export MAIL_CONFIG=${dir}        # postmap reads this main.cf instead of /etc/postfix's
  alias ldap-socketmap='node ${CLI}'
  /etc/postfix/ldap-aliases.cf            = ${demo.cf.aliases}
  /etc/postfix/ldap-mailboxes.cf          = ${demo.cf.mailboxes}
  /etc/postfix (main.cf, master.cf)       = ${dir}
  /etc/ldap-socketmap/ldap-socketmap.conf = ${demo.conf}
${moved.length ? `  ports in use elsewhere, so moved: ${moved.join(', ')}\n` : ''}
Try, and compare with Postfix's own LDAP table:
  postmap -c ${dir} -q staff@example.org ${sm('aliases')}
  postmap -c ${dir} -q staff@example.org ldap:${demo.cf.aliases}
  postmap -c ${dir} -q Coding@Example.ORG ${sm('aliases')}
  postmap -c ${dir} -q bob.builder@example.org ${sm('mailboxes')}
  postmap -c ${dir} -q nobody@example.org ${sm('aliases')}; echo "exit $?  (1 = not found)"
  postmap -c ${dir} -q ring-a@example.org ${sm('aliases')}   # a loop: temporary error, logged with its path
  printf 'staff@example.org\\ncoding@example.org\\nalice@example.org\\n' | postmap -c ${dir} -q - ${sm('aliases')}
  node ${CLI} explain --config ${demo.conf} aliases alumni@example.org
  node ${CLI} query --map aliases=${demo.cf.aliases} aliases staff@example.org
  curl -s http://127.0.0.1:${ports.metrics}/metrics | grep ldap_socketmap_lookups_total
`);
await new Promise(() => {});
