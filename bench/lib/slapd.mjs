// A private slapd on loopback: generated slapd.conf, slapadd once, foreground process (-d 0, no
// stats logging so the directory is not slowed down by its own log), cn=Monitor for counting
// the searches every client made (daemon and Postfix's native ldap: alike).
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { run, spawnTracked, stopChild, sleep } from './proc.mjs';
import { SUFFIX } from './directory.mjs';

const SYSTEM_SCHEMAS = ['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `/etc/ldap/schema/${s}.schema`);

function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen({ port: 0, host: '127.0.0.1' }, () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

export function requireTools() {
  for (const [p, pkg] of [['/usr/sbin/slapd', 'slapd'], ['/usr/sbin/slapadd', 'slapd'], ['/usr/bin/ldapsearch', 'ldap-utils'], ['/usr/sbin/postmap', 'postfix'], ['/usr/lib/postfix/postfix-ldap.so', 'postfix-ldap']]) {
    if (!existsSync(p)) throw new Error(`${p} not found: install the Debian package '${pkg}'`);
  }
}

/**
 * Writes slapd.conf in `dir`, loads `ldifFile` with slapadd, starts slapd on a free loopback
 * port and waits until it answers. Returns { url, port, pid, stop(), searchCount() }.
 */
export async function startSlapd(dir, { schemaFile, ldifFile }) {
  const dbDir = join(dir, 'db');
  mkdirSync(dbDir, { recursive: true });
  const conf = join(dir, 'slapd.conf');
  writeFileSync(conf, [
    ...SYSTEM_SCHEMAS.map((s) => `include ${s}`),
    `include ${resolve(schemaFile)}`,
    `pidfile ${join(dir, 'slapd.pid')}`,
    `argsfile ${join(dir, 'slapd.args')}`,
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    // Postfix's ldap: table and the daemon must both see whole big lists.
    'sizelimit unlimited',
    'loglevel 0',
    '',
    'database mdb',
    `suffix "${SUFFIX}"`,
    `rootdn "cn=admin,${SUFFIX}"`,
    'rootpw secret',
    `directory ${dbDir}`,
    'maxsize 1073741824',
    'index objectClass eq',
    'index listName eq',
    'index mail eq',
    'index uid eq',
    '',
    'database monitor',
    '',
  ].join('\n'));

  const add = await run('/usr/sbin/slapadd', ['-q', '-f', conf, '-l', ldifFile], { timeoutMs: 180_000 });
  if (add.code !== 0) throw new Error(`slapadd failed (exit ${add.code}): ${add.stderr}`);

  const port = await freePort();
  const url = `ldap://127.0.0.1:${port}/`;
  const child = spawnTracked('slapd', '/usr/sbin/slapd', ['-f', conf, '-h', url, '-d', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b) => { if (stderr.length < 65536) stderr += b.toString('utf8'); });
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`slapd exited (${child.exitCode}): ${stderr}`);
    const r = await run('/usr/bin/ldapsearch', ['-x', '-H', url, '-b', '', '-s', 'base', '-o', 'nettimeout=2', '(objectClass=*)', '1.1'], { timeoutMs: 5000 }).catch(() => undefined);
    if (r && r.code === 0) break;
    if (Date.now() > deadline) throw new Error(`slapd did not answer on ${url} within 15 s: ${stderr}`);
    await sleep(50);
  }

  /** Completed search operations so far (cn=Monitor; this probe itself is not yet completed). */
  const searchCount = async () => {
    const r = await run('/usr/bin/ldapsearch', ['-x', '-LLL', '-H', url, '-b', 'cn=Search,cn=Operations,cn=Monitor', '-s', 'base', '(objectClass=*)', 'monitorOpCompleted'], { timeoutMs: 10_000 });
    const m = /monitorOpCompleted: (\d+)/.exec(r.stdout.toString('utf8'));
    if (!m) throw new Error(`cn=Monitor gave no monitorOpCompleted: ${r.stderr}`);
    return Number(m[1]);
  };

  return {
    url,
    port,
    pid: child.pid,
    conf,
    stop: () => stopChild(child),
    /** Searches completed between two calls of this counter, its own probe excluded. */
    async counter() {
      const before = await searchCount();
      return async () => (await searchCount()) - before - 1;
    },
    /** Reads every entry once so both clients meet a directory with warm pages. */
    async warm() {
      const r = await run('/usr/bin/ldapsearch', ['-x', '-LLL', '-H', url, '-b', SUFFIX, '(objectClass=*)', 'mail', 'contact', 'listName', 'uid'], { timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`warm-up search failed: ${r.stderr}`);
      return r.stdout.length;
    },
  };
}
