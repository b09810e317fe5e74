/**
 * A real Samba Active Directory domain controller for tests (Debian's `samba`), no mocks.
 *
 * The domain is provisioned by `samba-tool domain provision` into a temp dir (3.5-9 s here),
 * with Samba's internal DNS backend, as a real DC: that gives the domain the DNS application
 * partitions DC=DomainDnsZones and DC=ForestDnsZones, so a subtree search from the domain root
 * comes back with references to them besides CN=Configuration (measured: +0.1-0.3 s of
 * provision over --dns-backend=NONE). The DNS server itself is not started: its zone has no
 * address for the partitions' names anyway (NXDOMAIN, measured); the namespace's hosts file
 * decides what resolves (see resolveAlso).
 *
 * filled offline through Samba's own python bindings (SamDB, the same dsdb module stack the
 * LDAP server uses: ~8 s for 1600 entries, where ldapadd over LDAP takes ~60 s), and then
 * served by `samba -i` inside a network namespace of its own, so it listens on the real ports
 * 389 and 636 without touching the host. Everything that talks to it (ldapsearch, postmap, the
 * daemon) runs under `ip netns exec NS`. The namespace's /etc/hosts (ip netns bind-mounts
 * /etc/netns/NS/hosts over it) names the DC `ad.example.org` and `vm.ad.example.org` on
 * 127.0.0.1, because AD's search references name the DNS domain
 * (`ldap://ad.example.org/CN=Configuration,…`).
 *
 * Cleanup three ways, like slapd.ts: destroy() from the test, a synchronous exit hook, and a
 * detached shell watchdog that kills every process in the namespace, deletes the namespace
 * and removes the directories if this Node process disappears. samba renames its processes
 * ("samba: root process"), so processes are found by namespace (`ip netns pids`), never by name.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTmpDir } from './tmp.js';

export const REALM = 'AD.EXAMPLE.ORG';
export const DNS_DOMAIN = 'ad.example.org';
export const BASE_DN = 'DC=ad,DC=example,DC=org';
export const ADMIN_PW = 'Adm1n-Pw-For-Tests!';
/** The account the maps bind as (created with a password, UPN mailbind@ad.example.org). */
export const BIND_USER = 'mailbind';
export const BIND_PW = 'Ma1l-Bind-Pw-2026!';
export const BIND_UPN = `${BIND_USER}@${DNS_DOMAIN}`;
export const BIND_DN = `CN=${BIND_USER},CN=Users,${BASE_DN}`;
/** Where the DC keeps the directory-service settings (dSHeuristics). */
export const DS_SETTINGS_DN = `CN=Directory Service,CN=Windows NT,CN=Services,CN=Configuration,${BASE_DN}`;

const SAMBA = '/usr/sbin/samba';
const SAMBA_TOOL = '/usr/bin/samba-tool';
const SYSTEM_PYTHON = '/usr/bin/python3';
const IP = '/usr/sbin/ip';
const LDAPSEARCH = '/usr/bin/ldapsearch';
const LDAPMODIFY = '/usr/bin/ldapmodify';
const POSTMAP = '/usr/sbin/postmap';

export interface RunResult { code: number; stdout: string; stderr: string }

export interface SambaAd {
  ns: string;
  dir: string;
  smbConf: string;
  /** The DC's self-signed CA, written by samba at its first start. */
  caFile: string;
  /** Milliseconds spent in `samba-tool domain provision`, in loading the entries, in starting. */
  timings: { provisionMs: number; loadMs: number; startMs: number };
  /** Run a program inside the namespace. */
  exec(cmd: string, args: string[], input?: string, timeoutMs?: number): Promise<RunResult>;
  /** ldapmodify (add entries with `changetype: add`) as Administrator over ldap://127.0.0.1/. */
  modify(ldif: string): Promise<void>;
  /** ldapsearch as Administrator; returns the LDIF text. */
  search(base: string, scope: 'base' | 'one' | 'sub', filter: string, attrs?: string[]): Promise<string>;
  /** `postmap -c CONF -q KEY TABLE` inside the namespace, SIGPIPE ignored (see field notes). */
  postmap(confDir: string, table: string, key: string): Promise<RunResult>;
  /**
   * Host names that resolve to the DC (127.0.0.1) inside the namespace besides the DC's own,
   * from now on: the namespace's hosts file is rewritten in place (ip netns exec bind-mounts
   * that very file, so running processes see the change too). [] puts the default back.
   */
  resolveAlso(names: string[], address?: string): void;
  /**
   * An address inside the namespace that silently drops every packet sent to it (a veth pair
   * with a static neighbour entry and no owner of the address): a connect to it hangs, like a
   * firewalled DC. Made on first call.
   */
  dropAddress(): Promise<string>;
  /** Argument prefix that runs a command inside the namespace. */
  prefix(): string[];
  destroy(): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// cleanup registry

interface Live { ns: string; dirs: string[] }
const live = new Set<Live>();
let hookInstalled = false;

function killNamespace(ns: string): void {
  const pids = spawnSync(IP, ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
  for (const p of pids.split(/\s+/).filter(Boolean)) {
    try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ }
  }
  spawnSync(IP, ['netns', 'del', ns]);
}

function cleanupSync(l: Live): void {
  killNamespace(l.ns);
  for (const d of l.dirs) { try { rmSync(d, { recursive: true, force: true }); } catch { /* ignore */ } }
  live.delete(l);
}

function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  process.on('exit', () => { for (const l of [...live]) cleanupSync(l); });
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** When this Node process is gone, however it ended: kill the namespace's processes, delete it, remove the dirs. */
function spawnWatchdog(l: Live): void {
  const script = `
    while kill -0 ${process.pid} 2>/dev/null && ${IP} netns list | grep -qw ${q(l.ns)}; do sleep 1; done
    if ${IP} netns list | grep -qw ${q(l.ns)}; then
      for p in $(${IP} netns pids ${q(l.ns)}); do kill -KILL "$p" 2>/dev/null; done
      ${IP} netns del ${q(l.ns)}
    fi
    rm -rf ${l.dirs.map(q).join(' ')}`;
  spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
}

// ---------------------------------------------------------------------------------------

function run(cmd: string, args: string[], input?: string, timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') { reject(new Error(`${cmd}: ${err.message}\n${stderr}`)); return; }
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout: String(stdout), stderr: String(stderr) });
    });
    // A program that exits without reading its input must not crash the test with EPIPE.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}

async function must(cmd: string, args: string[], input?: string, timeoutMs?: number): Promise<RunResult> {
  const r = await run(cmd, args, input, timeoutMs);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r;
}

/** Missing packages make the suite fail, loudly, naming what to install. */
export function requireSamba(): void {
  const need: [string, string][] = [
    [SAMBA, 'samba'], [SAMBA_TOOL, 'samba'], [SYSTEM_PYTHON, 'python3 (with python3-samba)'], [IP, 'iproute2'],
    [LDAPSEARCH, 'ldap-utils'], [LDAPMODIFY, 'ldap-utils'], [POSTMAP, 'postfix'],
  ];
  for (const [path, pkg] of need) {
    if (!existsSync(path)) throw new Error(`${path} not found: install the Debian package '${pkg}' (scripts/install-deps.sh does). The AD suite needs a real Samba DC.`);
  }
  if (spawnSync(SYSTEM_PYTHON, ['-c', 'import samba.samdb'], { encoding: 'utf8' }).status !== 0) {
    throw new Error(`${SYSTEM_PYTHON} cannot import samba.samdb: install the Debian package 'python3-samba' (comes with 'samba')`);
  }
}

/**
 * Adds LDIF records and creates users with passwords, offline, in one transaction.
 * argv: smb.conf, sam.ldb, ldif file, users file (lines "name<TAB>password").
 */
const LOADER = `
import sys
import ldb
from samba.samdb import SamDB
from samba.param import LoadParm
from samba.auth import system_session
lp = LoadParm(); lp.load(sys.argv[1])
db = SamDB(url=sys.argv[2], session_info=system_session(), lp=lp)
for line in open(sys.argv[4]).read().splitlines():
    if line:
        name, pw = line.split('\\t')
        db.newuser(name, pw)
db.transaction_start()
try:
    for changetype, msg in db.parse_ldif(open(sys.argv[3], encoding='utf-8').read()):
        if changetype == ldb.CHANGETYPE_MODIFY:
            db.modify(msg)
        else:
            db.add(msg)
except Exception:
    db.transaction_cancel()
    raise
db.transaction_commit()
`;

export interface SambaAdOptions {
  /** LDIF records (each with objectClass) added before the first start. DNs under BASE_DN. */
  ldif?: string;
  /** Extra accounts with passwords: [sAMAccountName, password]. The bind user is always made. */
  users?: [string, string][];
}

let counter = 0;

export async function startSambaAd(opts: SambaAdOptions = {}): Promise<SambaAd> {
  requireSamba();
  installExitHook();
  const dir = makeTmpDir('samba-ad-');
  const ns = `lsmad${process.pid}x${counter++}`;
  const netnsEtc = `/etc/netns/${ns}`;
  const l: Live = { ns, dirs: [dir, netnsEtc] };
  live.add(l);
  spawnWatchdog(l);
  try {
    let t = Date.now();
    await must(SAMBA_TOOL, [
      'domain', 'provision', '--server-role=dc', '--dns-backend=SAMBA_INTERNAL', `--targetdir=${dir}`,
      `--realm=${REALM}`, '--domain=ADEX', `--adminpass=${ADMIN_PW}`, '--host-name=vm',
      '--option=interfaces=lo', '--option=bind interfaces only=yes',
    ], undefined, 300_000);
    const provisionMs = Date.now() - t;
    const smbConf = join(dir, 'etc', 'smb.conf');
    // Only the LDAP server; everything the DC writes stays in the temp dir (pid file, sockets,
    // log). Simple binds over plain LDAP, as many Postfix sites still use them.
    const conf = readFileSync(smbConf, 'utf8')
      .replace(/^\s*server services = .*$/m, '')
      .replace(/^\s*log file = .*$/m, '')
      // Provision copies the host's resolver here; nothing in the namespace may reach it.
      .replace(/^\s*dns forwarder = .*$/m, '')
      .replace(/^\[global\]$/m, [
        '[global]', '\tserver services = ldap', '\tldap server require strong auth = no',
        `\tlog file = ${join(dir, 'samba.log')}`, `\tpid directory = ${join(dir, 'run')}`,
        `\tncalrpc dir = ${join(dir, 'ncalrpc')}`, `\twinbindd socket directory = ${join(dir, 'winbindd')}`,
      ].join('\n'));
    writeFileSync(smbConf, conf);
    mkdirSync(join(dir, 'run'), { recursive: true });

    t = Date.now();
    writeFileSync(join(dir, 'load.py'), LOADER);
    writeFileSync(join(dir, 'data.ldif'), opts.ldif ?? '');
    writeFileSync(join(dir, 'users.tsv'), [[BIND_USER, BIND_PW], ...(opts.users ?? [])].map((u) => u.join('\t')).join('\n') + '\n');
    await must(SYSTEM_PYTHON, [join(dir, 'load.py'), smbConf, join(dir, 'private', 'sam.ldb'), join(dir, 'data.ldif'), join(dir, 'users.tsv')], undefined, 300_000);
    const loadMs = Date.now() - t;

    t = Date.now();
    mkdirSync(netnsEtc, { recursive: true });
    const hosts = (also: string[], address = '127.0.0.1'): string => {
      const own = [DNS_DOMAIN, `vm.${DNS_DOMAIN}`, 'vm', ...(address === '127.0.0.1' ? also : [])];
      return `127.0.0.1 localhost\n127.0.0.1 ${own.join(' ')}\n${address !== '127.0.0.1' && also.length > 0 ? `${address} ${also.join(' ')}\n` : ''}`;
    };
    let dropped: string | undefined;
    writeFileSync(join(netnsEtc, 'hosts'), hosts([]));
    await must(IP, ['netns', 'add', ns]);
    await must(IP, ['netns', 'exec', ns, IP, 'link', 'set', 'lo', 'up']);
    const proc: ChildProcess = spawn(IP, ['netns', 'exec', ns, SAMBA, '-i', '-s', smbConf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let errText = '';
    proc.stderr?.on('data', (d: Buffer) => { errText += d.toString(); });
    const prefix = (): string[] => [IP, 'netns', 'exec', ns];
    const exec = (cmd: string, args: string[], input?: string, timeoutMs?: number): Promise<RunResult> =>
      run(IP, ['netns', 'exec', ns, cmd, ...args], input, timeoutMs);
    const admin = ['-x', '-H', 'ldap://127.0.0.1/', '-D', `Administrator@${DNS_DOMAIN}`, '-w', ADMIN_PW];
    for (let i = 0; ; i++) {
      const r = await exec(LDAPSEARCH, [...admin, '-b', '', '-s', 'base', '1.1'], undefined, 10_000);
      if (r.code === 0) break;
      if (proc.exitCode !== null || i > 120) throw new Error(`samba did not start (exit ${proc.exitCode}):\n${errText}`);
      await new Promise((r2) => setTimeout(r2, 250));
    }
    const caFile = join(dir, 'private', 'tls', 'ca.pem');
    const startMs = Date.now() - t;

    return {
      ns, dir, smbConf, caFile,
      timings: { provisionMs, loadMs, startMs },
      exec,
      prefix,
      resolveAlso(names, address) { writeFileSync(join(netnsEtc, 'hosts'), hosts(names, address)); },
      async dropAddress() {
        if (dropped === undefined) {
          const inNs = (...args: string[]): Promise<RunResult> => must(IP, ['netns', 'exec', ns, IP, ...args]);
          await inNs('link', 'add', 'lsmdrop0', 'type', 'veth', 'peer', 'name', 'lsmdrop1');
          await inNs('addr', 'add', '192.0.2.254/24', 'dev', 'lsmdrop0');
          await inNs('link', 'set', 'lsmdrop0', 'up');
          await inNs('link', 'set', 'lsmdrop1', 'up');
          const mac = (await must(IP, ['netns', 'exec', ns, '/bin/cat', '/sys/class/net/lsmdrop1/address'])).stdout.trim();
          // A known neighbour: no ARP failure (which would end the connect early), the SYNs just vanish.
          await inNs('neigh', 'replace', '192.0.2.1', 'lladdr', mac, 'dev', 'lsmdrop0', 'nud', 'permanent');
          dropped = '192.0.2.1';
        }
        return dropped;
      },
      async modify(ldif) { await must(IP, ['netns', 'exec', ns, LDAPMODIFY, ...admin], ldif); },
      async search(base, scope, filter, attrs = []) {
        return (await must(IP, ['netns', 'exec', ns, LDAPSEARCH, ...admin, '-o', 'ldif-wrap=no', '-b', base, '-s', scope, filter, ...attrs])).stdout;
      },
      postmap(confDir, table, key) {
        return run(IP, ['netns', 'exec', ns, '/bin/sh', '-c', `trap '' PIPE; exec ${POSTMAP} -c "$1" -q "$2" "$3"`, 'sh', confDir, key, table], undefined, 120_000);
      },
      async destroy() {
        cleanupSync(l);
        await new Promise((r2) => setTimeout(r2, 100));
      },
    };
  } catch (err) {
    cleanupSync(l);
    throw err;
  }
}

/** One `postmap -q` per key inside the namespace, `parallel` at a time, results in key order. */
export async function postmapAllIn(ad: SambaAd, confDir: string, table: string, keys: string[], parallel = 8): Promise<Map<string, RunResult>> {
  const out = new Map<string, RunResult>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++] as string;
      out.set(key, await ad.postmap(confDir, table, key));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, keys.length)) }, worker));
  return new Map(keys.map((k) => [k, out.get(k) as RunResult]));
}
