/**
 * Real slapd instances for integration tests (no mocks).
 *
 * Each instance lives in its own mkdtemp directory with a generated slapd.conf, an mdb
 * database loaded with slapadd before the first start, and a stats log (`-d 256`) that is
 * parsed to count and inspect the searches clients made.
 *
 * Processes are cleaned up three ways: `stop()`/`destroy()` from the test, a synchronous
 * `process.on('exit')` hook in this worker, and a tiny detached shell watchdog per instance
 * that kills slapd (and removes its directory) if this Node process disappears without
 * running exit hooks (e.g. a vitest worker killed with SIGKILL).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync, readFileSync, rmSync, openSync, closeSync, statSync, chmodSync, mkdirSync, existsSync, readdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { createServer, connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { makeTmpDir } from './tmp.js';
import { sleep } from './wait.js';
import { ExitRegistry } from './exit-registry.js';
import { runCommand } from './run.js';

const here = dirname(fileURLToPath(import.meta.url));
export const FIXTURES_DIR = resolve(here, '../fixtures/ldap');
export const TEST_SCHEMA = join(FIXTURES_DIR, 'socketmap-test.schema');
export const DIRECTORY_LDIF = join(FIXTURES_DIR, 'directory.ldif');

const SYSTEM_SCHEMAS = ['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `/etc/ldap/schema/${s}.schema`);

const PORT_MIN = 20000;
const PORT_MAX = 32000;
const READY_TIMEOUT_MS = 10_000;
/** Filter of the harness' own readiness probe; such searches are never counted. */
const PROBE_FILTER = '(|(objectClass=*)(description=ldap-socketmap-harness-probe))';

export interface SlapdOptions {
  /** LDIF text, or several texts; loaded with slapadd before the first start. Default: none (only the suffix entry is created if absent). */
  ldif?: string | string[];
  /** Default dc=example,dc=org */
  suffix?: string;
  /** Load and configure the syncprov overlay on the database. */
  syncprov?: boolean;
  /** Extra slapd.conf lines appended inside the mdb database section (indexes, limits, overlays, ...). */
  extraConfig?: string;
  /** Extra slapd.conf lines placed in the global section (before the first `database`). */
  globalConfig?: string;
  /** Server-side size limit (`sizelimit N`). Default: unlimited. */
  sizelimit?: number;
  /** Also listen on a unix socket (ldapi://); exposed as `ldapiUrl`/`ldapiPath`. */
  ldapi?: boolean;
  /** Root DN password. Default 'secret'. */
  rootPw?: string;
  /** TLS for StartTLS on the ldap:// listener (and the ldaps:// one with `ldaps: true`). */
  tls?: SlapdTls;
  /** Also listen for ldaps:// on 127.0.0.1 (needs `tls`); exposed as `ldapsPort`. */
  ldaps?: boolean;
  /** Extra environment for slapd. */
  env?: NodeJS.ProcessEnv;
  /**
   * A private Cyrus SASL configuration directory (holding slapd.conf with sasldb_path, ...).
   * slapd reads SASL settings only from /etc/ldap/sasl2 or /usr/lib/sasl2 (SASL_CONF_PATH is
   * ignored), so slapd runs in a private mount namespace (unshare -m, private propagation)
   * where this directory is bind-mounted over /etc/ldap/sasl2; the host sees no change.
   */
  saslConfDir?: string;
  /**
   * Start with an empty database: no slapadd, not even the suffix entry (`ldif` must be unset).
   * For a syncrepl consumer, which gets every entry, with the provider's entryUUID and entryCSN,
   * from its provider.
   */
  empty?: boolean;
}

export interface SlapdTls {
  cert: string;
  key: string;
  ca: string;
  /** TLSVerifyClient (default never). */
  verifyClient?: 'never' | 'allow' | 'try' | 'demand';
}

export interface SearchRecord {
  conn: number;
  op: number;
  base: string;
  scope: number;
  filter: string;
}

export interface Slapd {
  url: string;
  host: string;
  port: number;
  suffix: string;
  rootDn: string;
  rootPw: string;
  /** pid of the current slapd process (changes on start()). */
  pid: number;
  dir: string;
  logFile: string;
  /** Only with `ldapi: true`. */
  ldapiUrl?: string;
  ldapiPath?: string;
  /** Only with `ldaps: true`: the ldaps:// port on 127.0.0.1. */
  ldapsPort?: number;
  /** Stop slapd (SIGTERM, then SIGKILL after 5 s). The directory and data are kept, so start() can restart it. */
  stop(): Promise<void>;
  /** (Re)start on the same port (and ldapi path) with the same data. Resets the search count. */
  start(): Promise<void>;
  /** SIGSTOP: the TCP listener stays open but nothing is answered. */
  pause(): void;
  /** SIGCONT */
  resume(): void;
  running(): boolean;
  /** Number of SRCH operations in the stats log since start/reset (the harness' own probes excluded). */
  searchCount(): number;
  resetSearchCount(): void;
  /** The SRCH operations since start/reset, in log order. `base` is as slapd logs it (pretty DN). */
  searches(): SearchRecord[];
  /** Text of the stats log since start/reset. */
  logSince(): string;
  /**
   * Resolves once the log has stopped growing for `quietMs` (at most `maxMs`): slapd writes its
   * log from worker threads, so the last lines of an operation the client has already seen
   * answered may still be on their way.
   */
  logSettled(quietMs?: number, maxMs?: number): Promise<void>;
  /** Last `lines` lines of the whole log. */
  logTail(lines?: number): string;
  /** ldapmodify as the root DN. */
  modify(ldif: string): Promise<void>;
  /** ldapadd as the root DN. */
  add(ldif: string): Promise<void>;
  /** stop() and remove the directory. */
  destroy(): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// process cleanup registry

/** SIGCONT first: a paused slapd (pause()) must not stay stopped. */
const live = new ExitRegistry((pid) => {
  try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
  process.kill(pid, 'SIGKILL');
});

/**
 * Detached watchdog: when this Node process dies (for whatever reason), kill slapd and
 * remove the instance directory. Exits by itself once slapd is gone.
 */
function spawnWatchdog(slapdPid: number, dir: string): void {
  const script = `
    while kill -0 ${process.pid} 2>/dev/null && kill -0 ${slapdPid} 2>/dev/null; do sleep 1; done
    if ! kill -0 ${process.pid} 2>/dev/null; then
      kill -CONT ${slapdPid} 2>/dev/null; kill -TERM ${slapdPid} 2>/dev/null; sleep 2; kill -KILL ${slapdPid} 2>/dev/null
      rm -rf '${dir.replace(/'/g, `'\\''`)}'
    fi`;
  const w = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' });
  w.unref();
}

// ---------------------------------------------------------------------------------------
// ports

function randomPort(): number {
  return PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN + 1));
}

function canListen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => res(true)));
  });
}

/** A port in 20000–32000 on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = randomPort();
    if (await canListen(p)) return p;
  }
  throw new Error('freePort: no free port found in 20000-32000');
}

/**
 * A port on 127.0.0.1 that refuses connections: port 1 (tcpmux) is never served on
 * these machines, and being privileged nothing in a test run can start listening there.
 * Use as `ldap://127.0.0.1:${deadPort()}/` for "server_host that refuses connections".
 */
export function deadPort(): number {
  return 1;
}

/** `ldap://127.0.0.1:1/`: an LDAP URL whose connections are refused. */
export function deadLdapUrl(): string {
  return `ldap://127.0.0.1:${deadPort()}/`;
}

/** Resolves true if a TCP connect to 127.0.0.1:port is refused. */
export function isRefused(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); res(false); });
    s.once('error', (e: NodeJS.ErrnoException) => res(e.code === 'ECONNREFUSED'));
  });
}

// ---------------------------------------------------------------------------------------
// helpers

function requireBinary(path: string, pkg: string): void {
  if (!existsSync(path)) {
    throw new Error(`${path} not found: install the Debian package '${pkg}' (see .ci/run). Integration tests need a real slapd.`);
  }
}

function suffixEntryLdif(suffix: string): string {
  const first = suffix.split(',')[0] ?? '';
  const eq = first.indexOf('=');
  const attr = first.slice(0, eq).trim().toLowerCase();
  const value = first.slice(eq + 1).trim();
  if (attr === 'dc') return `dn: ${suffix}\nobjectClass: dcObject\nobjectClass: organization\ndc: ${value}\no: ${value}\n`;
  if (attr === 'o') return `dn: ${suffix}\nobjectClass: organization\no: ${value}\n`;
  if (attr === 'ou') return `dn: ${suffix}\nobjectClass: organizationalUnit\nou: ${value}\n`;
  throw new Error(`startSlapd: cannot create a suffix entry for ${suffix}; include it in the LDIF`);
}

function ldifMentionsDn(ldif: string, dn: string): boolean {
  const norm = (s: string) => s.replace(/\s+/g, '').toLowerCase();
  const target = norm(dn);
  return ldif.split(/\r?\n/).some((l) => l.toLowerCase().startsWith('dn:') && norm(l.slice(3)) === target);
}

const SRCH_RE = /conn=(\d+) op=(\d+) SRCH base="((?:[^"\\]|\\.)*)" scope=(\d) deref=\d+ filter="(.*)"$/;

function parseSearches(text: string): SearchRecord[] {
  const out: SearchRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes(' SRCH base=')) continue;
    const m = SRCH_RE.exec(line);
    if (!m) continue;
    const filter = m[5] ?? '';
    if (filter === PROBE_FILTER) continue;
    out.push({ conn: Number(m[1]), op: Number(m[2]), base: m[3] ?? '', scope: Number(m[4]), filter });
  }
  return out;
}


// ---------------------------------------------------------------------------------------

/**
 * SIGSTOP is delivered asynchronously: slapd can still answer for a moment after kill()
 * returns. Wait (synchronously, bounded) until every thread reports state T.
 */
function waitUntilStopped(pid: number, ms = 2_000): void {
  const end = Date.now() + ms;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  while (Date.now() < end) {
    let all = true;
    try {
      for (const t of readdirSync(`/proc/${pid}/task`)) {
        const st = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
        if (!/^State:\s+[Tt]/m.test(st)) { all = false; break; }
      }
    } catch {
      return; // the process is gone
    }
    if (all) return;
    Atomics.wait(nap, 0, 0, 5);
  }
  throw new Error(`slapd ${pid} did not stop within ${ms} ms of SIGSTOP`);
}

export async function startSlapd(opts: SlapdOptions = {}): Promise<Slapd> {
  requireBinary('/usr/sbin/slapd', 'slapd');
  requireBinary('/usr/sbin/slapadd', 'slapd');
  requireBinary('/usr/bin/ldapsearch', 'ldap-utils');

  const suffix = opts.suffix ?? 'dc=example,dc=org';
  const rootDn = `cn=admin,${suffix}`;
  const rootPw = opts.rootPw ?? 'secret';
  const dir = makeTmpDir('slapd-');
  // Postfix daemons (running as user postfix) may need to reach the ldapi socket.
  chmodSync(dir, 0o755);
  const dbDir = join(dir, 'db');
  mkdirSync(dbDir, { mode: 0o700 });
  const confFile = join(dir, 'slapd.conf');
  const logFile = join(dir, 'slapd.log');
  const ldapiPath = opts.ldapi ? join(dir, 'ldapi') : undefined;
  const ldapiUrl = ldapiPath ? `ldapi://${encodeURIComponent(ldapiPath)}` : undefined;

  const conf = [
    ...SYSTEM_SCHEMAS.map((s) => `include ${s}`),
    `include ${TEST_SCHEMA}`,
    `pidfile ${join(dir, 'slapd.pid')}`,
    `argsfile ${join(dir, 'slapd.args')}`,
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    ...(opts.syncprov ? ['moduleload syncprov'] : []),
    `sizelimit ${opts.sizelimit === undefined ? 'unlimited' : String(opts.sizelimit)}`,
    ...(opts.tls ? [
      `TLSCACertificateFile ${opts.tls.ca}`,
      `TLSCertificateFile ${opts.tls.cert}`,
      `TLSCertificateKeyFile ${opts.tls.key}`,
      `TLSVerifyClient ${opts.tls.verifyClient ?? 'never'}`,
    ] : []),
    ...(opts.globalConfig ? [opts.globalConfig] : []),
    '',
    'database mdb',
    `suffix "${suffix}"`,
    `rootdn "${rootDn}"`,
    `rootpw ${rootPw}`,
    `directory ${dbDir}`,
    'maxsize 268435456',
    'index objectClass eq',
    ...(opts.syncprov ? ['index entryCSN,entryUUID eq', 'overlay syncprov', 'syncprov-checkpoint 100 10'] : []),
    ...(opts.extraConfig ? [opts.extraConfig] : []),
    '',
  ].join('\n');
  writeFileSync(confFile, conf);

  // Load data.
  if (opts.empty && opts.ldif !== undefined) throw new Error('startSlapd: empty and ldif exclude each other');
  const ldifs = opts.ldif === undefined ? [] : Array.isArray(opts.ldif) ? opts.ldif : [opts.ldif];
  let data = ldifs.map((l) => l.trimEnd() + '\n').join('\n');
  if (!ldifMentionsDn(data, suffix)) data = suffixEntryLdif(suffix) + '\n' + data;
  const dataFile = join(dir, 'data.ldif');
  writeFileSync(dataFile, data);
  const add = opts.empty ? undefined : spawnSync('/usr/sbin/slapadd', ['-f', confFile, '-l', dataFile], { encoding: 'utf8' });
  if (add && add.status !== 0) {
    const msg = `slapadd failed (exit ${add.status}):\n${add.stderr}${add.stdout}`;
    rmSync(dir, { recursive: true, force: true });
    throw new Error(msg);
  }

  if (opts.ldaps && !opts.tls) throw new Error('startSlapd: ldaps needs tls');
  const ldapsPort = opts.ldaps ? await freePort() : undefined;
  let port = 0;
  let child: ChildProcess | undefined;
  let exited = true;
  let exitPromise: Promise<void> = Promise.resolve();
  let logOffset = 0;
  const forget = live.add(dir, () => (exited ? undefined : child?.pid));

  const readLogBuf = (): Buffer => {
    try { return readFileSync(logFile); } catch { return Buffer.alloc(0); }
  };
  const readLog = (): string => readLogBuf().toString('utf8');
  /** Log text from a byte offset (offsets are byte counts: the log holds UTF-8 filters). */
  const logFrom = (offset: number): string => readLogBuf().subarray(offset).toString('utf8');
  const logTail = (lines = 30): string => readLog().split('\n').slice(-lines - 1).join('\n');

  const spawnOnce = (p: number): void => {
    const urls = [`ldap://127.0.0.1:${p}/`, ...(ldapiUrl ? [ldapiUrl] : []), ...(ldapsPort ? [`ldaps://127.0.0.1:${ldapsPort}/`] : [])].join(' ');
    const fd = openSync(logFile, 'a');
    const slapdArgs = ['-f', confFile, '-h', urls, '-d', '256'];
    const [cmd, args] = opts.saslConfDir
      ? ['/usr/bin/unshare', ['-m', '--propagation', 'private', '/bin/sh', '-c', 'mount --bind "$0" /etc/ldap/sasl2 && exec /usr/sbin/slapd "$@"', opts.saslConfDir, ...slapdArgs]]
      : ['/usr/sbin/slapd', slapdArgs];
    const c = spawn(cmd, args, {
      stdio: ['ignore', fd, fd],
      ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
    });
    closeSync(fd);
    child = c;
    exited = false;
    exitPromise = new Promise<void>((res) => {
      c.once('exit', () => { exited = true; res(); });
      c.once('error', () => { exited = true; res(); });
    });
    if (c.pid !== undefined) spawnWatchdog(c.pid, dir);
  };

  // With TLS configured the probe uses StartTLS (a server may demand TLS, `security ssf=`),
  // presenting the server's own certificate (it may demand a client certificate too).
  const probeTls = opts.tls ? ['-ZZ'] : [];
  const probeEnv = opts.tls ? { LDAPTLS_REQCERT: 'never', LDAPTLS_CERT: opts.tls.cert, LDAPTLS_KEY: opts.tls.key } : undefined;
  const waitReady = async (p: number): Promise<boolean> => {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited) return false;
      const r = await runCommand('/usr/bin/ldapsearch', ['-x', ...probeTls, '-H', `ldap://127.0.0.1:${p}/`, '-b', '', '-s', 'base', '-o', 'nettimeout=2', PROBE_FILTER, '1.1'], { timeoutMs: 5000, env: probeEnv }).catch(() => undefined);
      if (r && r.code === 0) {
        if (!ldapiUrl) return true;
        const r2 = await runCommand('/usr/bin/ldapsearch', ['-x', '-H', ldapiUrl, '-b', '', '-s', 'base', PROBE_FILTER, '1.1'], { timeoutMs: 5000 }).catch(() => undefined);
        if (r2 && r2.code === 0) return true;
      }
      await sleep(50);
    }
    return false;
  };

  const killChild = async (): Promise<void> => {
    if (exited || !child?.pid) return;
    const pid = child.pid;
    try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    const t = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await exitPromise;
    clearTimeout(t);
  };

  const startOn = async (fixedPort: number | undefined): Promise<void> => {
    const attempts = fixedPort === undefined ? 8 : 3;
    let lastErr = '';
    for (let i = 0; i < attempts; i++) {
      const p = fixedPort ?? randomPort();
      if (fixedPort === undefined && !(await canListen(p))) continue;
      if (ldapiPath) rmSync(ldapiPath, { force: true });
      const before = statSafeSize(logFile);
      spawnOnce(p);
      // The probe must have been answered by OUR slapd (not one that grabbed the port
      // between the free-port check and our bind): its SRCH line must be in our log.
      if ((await waitReady(p)) && !exited && logFrom(before).includes(PROBE_FILTER)) {
        port = p;
        logOffset = statSafeSize(logFile);
        return;
      }
      lastErr = logFrom(before);
      await killChild();
      if (fixedPort !== undefined) await sleep(300);
    }
    throw new Error(`slapd did not become ready (dir ${dir}). Log tail:\n${lastErr.split('\n').slice(-30).join('\n')}`);
  };

  try {
    await startOn(undefined);
  } catch (e) {
    forget();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  const ldapTool = async (tool: 'ldapmodify' | 'ldapadd', ldif: string): Promise<void> => {
    const r = await runCommand(`/usr/bin/${tool}`, ['-x', '-H', `ldap://127.0.0.1:${port}/`, '-D', rootDn, '-w', rootPw], { input: ldif });
    if (r.code !== 0) throw new Error(`${tool} failed (exit ${r.code}): ${r.stderr}${r.stdout}`);
  };

  const inst: Slapd = {
    get url() { return `ldap://127.0.0.1:${port}/`; },
    host: '127.0.0.1',
    get port() { return port; },
    suffix,
    rootDn,
    rootPw,
    get pid() { return child?.pid ?? -1; },
    dir,
    logFile,
    ...(ldapiUrl ? { ldapiUrl, ldapiPath } : {}),
    ...(ldapsPort ? { ldapsPort } : {}),
    async stop() { await killChild(); },
    async start() {
      if (!exited) return;
      await startOn(port);
    },
    pause() {
      if (exited || !child?.pid) return;
      process.kill(child.pid, 'SIGSTOP');
      waitUntilStopped(child.pid);
    },
    resume() { if (!exited && child?.pid) process.kill(child.pid, 'SIGCONT'); },
    running() { return !exited; },
    searchCount() { return parseSearches(logFrom(logOffset)).length; },
    resetSearchCount() { logOffset = statSafeSize(logFile); },
    searches() { return parseSearches(logFrom(logOffset)); },
    logSince() { return logFrom(logOffset); },
    async logSettled(quietMs = 150, maxMs = 3_000) {
      const end = Date.now() + maxMs;
      let size = statSafeSize(logFile);
      let since = Date.now();
      while (Date.now() < end && Date.now() - since < quietMs) {
        await new Promise((r) => setTimeout(r, 25));
        const now = statSafeSize(logFile);
        if (now !== size) { size = now; since = Date.now(); }
      }
    },
    logTail,
    async modify(ldif: string) { await ldapTool('ldapmodify', ldif); },
    async add(ldif: string) { await ldapTool('ldapadd', ldif); },
    async destroy() {
      await killChild();
      forget();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return inst;
}

function statSafeSize(file: string): number {
  try { return statSync(file).size; } catch { return 0; }
}

/** Read the project's directory fixture (test/fixtures/ldap/directory.ldif). */
export function directoryLdif(): string {
  return readFileSync(DIRECTORY_LDIF, 'utf8');
}

/** Stop and remove every instance started by this worker. */
export async function stopAllSlapd(): Promise<void> {
  live.killAll();
}
