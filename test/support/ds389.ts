/**
 * A real 389 Directory Server (Debian's `389-ds-base`) for the directory suites, created by the
 * test itself in a temp dir (no mocks, nothing under /etc, no systemd).
 *
 * How (see /work/shared/field-notes.md): `dscreate from-file` insists on the system paths unless
 * `$PREFIX` points at a tree holding its own `share/dirsrv/inf/defaults.inf`; that copy says
 * `with_systemd = 0` and puts every path under the temp dir. dscreate starts the server once to
 * finish the instance and leaves it stopped (`start = False`). Then, with the server stopped:
 * the project's test schema goes into the instance's schema dir (389's LDIF form), dse.ldif gets
 * the USN plugin (and optionally the retro changelog) switched on, an equality index on
 * `listName`, and unbuffered access logging (searches are counted from it); the data is loaded
 * with the offline import (`ns-slapd ldif2db`), and `ns-slapd -D DIR -d 0` is started in the
 * foreground as our child.
 *
 * Network: a private high port on 127.0.0.1 rather than a network namespace. 389-ds, unlike
 * Samba, takes any port from its config, so nothing needs 389/636; and postmap, the daemon and
 * the test's own HTTP clients all reach it without `ip netns exec` wrappers. A port taken
 * between our check and the server's bind is caught (the server exits) and another one tried.
 *
 * Cleanup: stop()/destroy() from the test, a synchronous exit hook, and a detached shell
 * watchdog that kills ns-slapd and removes the temp dir when this Node process is gone.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, TEST_SCHEMA } from './slapd.js';
import { makeTmpDir } from './tmp.js';
import { type CommandRun, runCommand, type RunOptions } from './run.js';
import { sleep } from './wait.js';

const DSCREATE = '/usr/sbin/dscreate';
const NS_SLAPD = '/usr/sbin/ns-slapd';
const SYSTEM_DEFAULTS = '/usr/share/dirsrv/inf/defaults.inf';
const SYSTEM_CONF = '/etc/dirsrv';
const SYSTEM_SCHEMA = '/usr/share/dirsrv/schema';
const INSTANCE = 'lsm';
const RETROCL_PLUGIN = 'cn=Retro Changelog Plugin,cn=plugins,cn=config';
const READY_TIMEOUT_MS = 60_000;

export interface Ds389Options {
  /** LDIF of the whole directory, suffix entry included (ACIs are added to it). */
  ldif: string;
  /** Default dc=example,dc=org */
  suffix?: string;
  /** Turn on the retro changelog plugin too (cn=changelog). Default false. */
  retroChangelog?: boolean;
  /**
   * More settings of the retro changelog plugin's entry (cn=Retro Changelog Plugin), e.g.
   * `nsslapd-changelogmaxage: '5s'`, `nsslapd-changelog-trim-interval: '1'` to see trimming.
   */
  retroChangelogConfig?: Record<string, string>;
  /** Turn on the USN plugin (entryusn / lastusn). Default true. */
  usn?: boolean;
  /** More cn=config settings before the first start, e.g. `nsslapd-syntaxcheck: 'off'`. */
  config?: Record<string, string>;
}

export interface Ds389 {
  url: string;
  host: string;
  port: number;
  suffix: string;
  rootDn: string;
  rootPw: string;
  /** An ordinary entry allowed to read and search the suffix (what Postfix binds as). */
  bindDn: string;
  bindPw: string;
  dir: string;
  /** Milliseconds dscreate took, and the offline import. */
  createMs: number;
  importMs: number;
  /** Entries in the imported LDIF. */
  entries: number;
  pid: number;
  accessLog: string;
  /** SRCH operations in the access log since the last reset (the harness' probes excluded). */
  searches(): Promise<{ conn: string; base: string; scope: number; filter: string }[]>;
  resetSearches(): void;
  /** ldapadd / ldapmodify / ldapdelete as the Directory Manager. */
  add(ldif: string): Promise<void>;
  modify(ldif: string): Promise<void>;
  delete(dn: string): Promise<void>;
  /** ldapsearch output (LDIF) as the given identity ('root' or 'user'). */
  search(as: 'root' | 'user', base: string, scope: 'base' | 'one' | 'sub', filter: string, attrs?: string[]): Promise<CommandRun>;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// cleanup registry (same three layers as slapd.ts)

interface Live { pid(): number | undefined; dir: string }
const live = new Set<Live>();
let hooked = false;

function installExitHook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const l of live) {
      const pid = l.pid();
      if (pid !== undefined) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      try { rmSync(l.dir, { recursive: true, force: true }); } catch { /* ignore */ }
    }
  });
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function spawnWatchdog(pid: number, dir: string): void {
  const script = `
    while kill -0 ${process.pid} 2>/dev/null && kill -0 ${pid} 2>/dev/null; do sleep 1; done
    if ! kill -0 ${process.pid} 2>/dev/null; then
      kill -TERM ${pid} 2>/dev/null; sleep 3; kill -KILL ${pid} 2>/dev/null
      rm -rf ${shq(dir)}
    fi`;
  spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
}

// ---------------------------------------------------------------------------------------
// helpers

/** 389-ds tools get two minutes by default. */
const run = (cmd: string, args: string[], opts: RunOptions = {}): Promise<CommandRun> => runCommand(cmd, args, { timeoutMs: 120_000, ...opts });

function requireDs389(): void {
  for (const [f, pkg] of [[DSCREATE, '389-ds-base'], [NS_SLAPD, '389-ds-base'], [SYSTEM_DEFAULTS, '389-ds-base'], ['/usr/bin/ldapsearch', 'ldap-utils']] as const) {
    if (!existsSync(f)) throw new Error(`${f} not found: install the Debian package '${pkg}' (scripts/install-deps.sh does). The 389-ds suite needs a real 389 Directory Server.`);
  }
}

/** Names (lower case) the 389-ds system schema already defines, per kind. */
function systemSchemaNames(): { attrs: Set<string>; classes: Set<string> } {
  const attrs = new Set<string>();
  const classes = new Set<string>();
  for (const f of readdirSync(SYSTEM_SCHEMA)) {
    if (!f.endsWith('.ldif')) continue;
    for (const l of readFileSync(join(SYSTEM_SCHEMA, f), 'utf8').split('\n')) {
      const m = /^(attributeTypes|objectClasses):\s*\(\s*\S+\s+NAME\s+(?:'([^']+)'|\(([^)]*)\))/i.exec(l);
      if (!m) continue;
      const names = m[2] !== undefined ? [m[2]] : (m[3] ?? '').match(/'[^']+'/g)?.map((x) => x.slice(1, -1)) ?? [];
      for (const n of names) (m[1]!.toLowerCase() === 'attributetypes' ? attrs : classes).add(n.toLowerCase());
    }
  }
  return { attrs, classes };
}

/**
 * OpenLDAP schema text (`attributetype ( … )` / `objectclass ( … )` spanning lines) → the
 * `cn=schema` LDIF 389-ds reads from its schema directory. 389-ds already defines some of the
 * names with other OIDs (memberURL, mailRecipient) and refuses a second definition: an attribute
 * type it has is used as it is; an object class it has is defined under a prefixed name, and the
 * returned renames are applied to the data's objectClass values.
 */
export function openldapSchemaTo389(text: string): { ldif: string; renamedClasses: Map<string, string> } {
  const sys = systemSchemaNames();
  const lines = text.split('\n').filter((l) => !l.startsWith('#'));
  const defs: { kind: 'attr' | 'class'; text: string }[] = [];
  for (const l of lines) {
    const m = /^(attributetype|objectclass)\s+(.*)$/i.exec(l);
    if (m) defs.push({ kind: m[1]!.toLowerCase() === 'attributetype' ? 'attr' : 'class', text: m[2]!.trim() });
    else if (defs.length > 0 && l.trim() !== '') defs[defs.length - 1]!.text += ` ${l.trim()}`;
  }
  const renamedClasses = new Map<string, string>();
  const out: string[] = [];
  for (const d of defs) {
    const name = /NAME\s+'([^']+)'/.exec(d.text)?.[1] ?? '';
    let t = d.text;
    if (d.kind === 'attr' && sys.attrs.has(name.toLowerCase())) continue;
    if (d.kind === 'class' && sys.classes.has(name.toLowerCase())) {
      const renamed = `lsm${name[0]!.toUpperCase()}${name.slice(1)}`;
      renamedClasses.set(name.toLowerCase(), renamed);
      t = t.replace(`NAME '${name}'`, `NAME '${renamed}'`);
    }
    t = t.replace(/\)\s*$/, "X-ORIGIN 'ldap-socketmap tests' )");
    out.push(`${d.kind === 'attr' ? 'attributeTypes' : 'objectClasses'}: ${t}`);
  }
  return { ldif: `dn: cn=schema\n${out.join('\n')}\n`, renamedClasses };
}

/** Applies openldapSchemaTo389's object class renames to an LDIF's objectClass lines. */
function renameClasses(ldif: string, renamed: Map<string, string>): string {
  return ldif.replace(/^objectClass:\s*(\S+)\s*$/gim, (line, name: string) => {
    const r = renamed.get(name.toLowerCase());
    return r ? `objectClass: ${r}` : line;
  });
}

/** Sets `attr: value` inside the dse.ldif entry `dn` (adds the line when absent). */
function dseSet(dse: string, dn: string, attr: string, value: string): string {
  const blocks = dse.split(/\n\n/);
  const i = blocks.findIndex((b) => b.toLowerCase().startsWith(`dn: ${dn.toLowerCase()}\n`));
  if (i < 0) throw new Error(`dse.ldif has no entry ${dn}`);
  const re = new RegExp(`^${attr}: .*$`, 'mi');
  blocks[i] = re.test(blocks[i]!) ? blocks[i]!.replace(re, `${attr}: ${value}`) : `${blocks[i]}\n${attr}: ${value}`;
  return blocks.join('\n\n');
}

function defaultsInf(root: string): string {
  const text = readFileSync(SYSTEM_DEFAULTS, 'utf8');
  const set: Record<string, string> = {
    with_systemd: '0',
    sysconf_dir: `${root}/etc`,
    initconfig_dir: `${root}/etc/default`,
    config_dir: `${root}/etc/dirsrv/slapd-{instance_name}`,
    local_state_dir: `${root}/var`,
    run_dir: `${root}/run`,
    ldapi: `${root}/run/slapd-{instance_name}.socket`,
    pid_file: `${root}/run/slapd-{instance_name}.pid`,
    inst_dir: `${root}/lib/dirsrv/slapd-{instance_name}`,
    tmpfiles_d: `${root}/tmpfiles.d`,
    tmp_dir: `${root}/tmp`,
    schema_dir: `${root}/etc/dirsrv/slapd-{instance_name}/schema`,
    cert_dir: `${root}/etc/dirsrv/slapd-{instance_name}`,
    lock_dir: `${root}/lock/slapd-{instance_name}`,
    log_dir: `${root}/log/slapd-{instance_name}`,
    access_log: `${root}/log/slapd-{instance_name}/access`,
    audit_log: `${root}/log/slapd-{instance_name}/audit`,
    error_log: `${root}/log/slapd-{instance_name}/errors`,
    security_log: `${root}/log/slapd-{instance_name}/security`,
    db_dir: `${root}/lib/slapd-{instance_name}/db`,
    db_home_dir: `${root}/lib/slapd-{instance_name}/db`,
    backup_dir: `${root}/lib/slapd-{instance_name}/bak`,
    ldif_dir: `${root}/lib/slapd-{instance_name}/ldif`,
  };
  const seen = new Set<string>();
  const out = text.split('\n').map((l) => {
    const m = /^([a-z_]+) = /.exec(l);
    if (m && set[m[1]!] !== undefined) {
      seen.add(m[1]!);
      return `${m[1]} = ${set[m[1]!]}`;
    }
    return l;
  });
  for (const k of Object.keys(set)) if (!seen.has(k)) throw new Error(`${SYSTEM_DEFAULTS} has no ${k}: this 389-ds version is laid out differently`);
  // Whatever path remains must not point into the system's instance folders.
  const leak = out.find((l) => /^[a-z_]+ = \/(etc|var|run)\//.test(l));
  if (leak) throw new Error(`defaults.inf path not redirected: ${leak}`);
  return out.join('\n');
}

const SRCH_RE = /conn=(\d+) op=\d+ SRCH base="((?:[^"\\]|\\.)*)" scope=(\d) filter="(.*?)" attrs=/;
const PROBE_FILTER = '(description=ldap-socketmap-ds389-probe)';

function countEntries(ldif: string): number {
  return ldif.split('\n').filter((l) => /^dn:/i.test(l)).length;
}

function withAcis(ldif: string, suffix: string, bindDn: string): string {
  const lines = ldif.split('\n');
  const i = lines.findIndex((l) => l.replace(/\s+/g, '').toLowerCase() === `dn:${suffix.replace(/\s+/g, '').toLowerCase()}`);
  if (i < 0) throw new Error(`startDs389: the LDIF must hold the suffix entry ${suffix}`);
  const aci = `aci: (targetattr="*")(version 3.0; acl "ldap-socketmap reader"; allow (read, search, compare) userdn="ldap:///${bindDn}";)`;
  lines.splice(i + 1, 0, aci);
  return lines.join('\n');
}

export async function startDs389(opts: Ds389Options): Promise<Ds389> {
  requireDs389();
  installExitHook();
  const suffix = opts.suffix ?? 'dc=example,dc=org';
  const rootDn = 'cn=Directory Manager';
  const rootPw = 'ds389-secret';
  const bindDn = `uid=postfix-reader,${suffix}`;
  const bindPw = 'reader-secret';

  const root = makeTmpDir('ds389-');
  // ns-slapd runs as the dirsrv user: every folder on the way must be traversable.
  chmodSync(root, 0o755);
  const rec: Live = { pid: () => undefined, dir: root };
  live.add(rec);
  try {
    for (const d of ['share/dirsrv/inf', 'etc/dirsrv', 'lib', 'log', 'lock', 'run', 'var', 'tmp']) mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
    for (const d of ['share', 'share/dirsrv', 'share/dirsrv/inf', 'etc', 'etc/dirsrv', 'lib', 'log', 'lock', 'run', 'var', 'tmp']) chmodSync(join(root, d), 0o755);
    writeFileSync(join(root, 'share/dirsrv/inf/defaults.inf'), defaultsInf(root));
    // dscreate copies the system's template config and schema folders from sysconf_dir.
    cpSync(join(SYSTEM_CONF, 'config'), join(root, 'etc/dirsrv/config'), { recursive: true });
    cpSync(join(SYSTEM_CONF, 'schema'), join(root, 'etc/dirsrv/schema'), { recursive: true });
    let port = await freePort();
    const inf = [
      '[general]', 'full_machine_name = localhost', 'start = False', 'strict_host_checking = False',
      '[slapd]', `instance_name = ${INSTANCE}`, `port = ${port}`, 'secure_port = 0', 'self_sign_cert = False', `root_password = ${rootPw}`,
      '[backend-userroot]', 'sample_entries = no', `suffix = ${suffix}`, 'create_suffix_entry = False', '',
    ].join('\n');
    writeFileSync(join(root, 'inst.inf'), inf, { mode: 0o600 });
    const t0 = performance.now();
    const created = await run(DSCREATE, ['from-file', join(root, 'inst.inf')], { env: { PREFIX: root } });
    const createMs = performance.now() - t0;
    if (created.code !== 0) throw new Error(`dscreate failed (exit ${created.code}):\n${created.stdout}${created.stderr}`);

    const confDir = join(root, `etc/dirsrv/slapd-${INSTANCE}`);
    const dseFile = join(confDir, 'dse.ldif');
    const accessLog = join(root, `log/slapd-${INSTANCE}/access`);
    const errorLog = join(root, `log/slapd-${INSTANCE}/errors`);
    const pidFile = join(root, `run/slapd-${INSTANCE}.pid`);

    const schema = openldapSchemaTo389(readFileSync(TEST_SCHEMA, 'utf8'));
    writeFileSync(join(confDir, 'schema/98socketmap-test.ldif'), schema.ldif);
    let dse = readFileSync(dseFile, 'utf8');
    if (opts.usn !== false) dse = dseSet(dse, 'cn=USN,cn=plugins,cn=config', 'nsslapd-pluginEnabled', 'on');
    if (opts.retroChangelog) dse = dseSet(dse, RETROCL_PLUGIN, 'nsslapd-pluginEnabled', 'on');
    for (const [attr, value] of Object.entries(opts.retroChangelogConfig ?? {})) dse = dseSet(dse, RETROCL_PLUGIN, attr, value);
    dse = dseSet(dse, 'cn=config', 'nsslapd-accesslog-logbuffering', 'off');
    for (const [attr, value] of Object.entries(opts.config ?? {})) dse = dseSet(dse, 'cn=config', attr, value);
    const indexBase = 'cn=index,cn=userroot,cn=ldbm database,cn=plugins,cn=config';
    dse = `${dse.trimEnd()}\n\ndn: cn=listName,${indexBase}\nobjectClass: top\nobjectClass: nsIndex\ncn: listName\nnsSystemIndex: false\nnsIndexType: eq\n\n`;
    writeFileSync(dseFile, dse);

    const data = withAcis(renameClasses(opts.ldif, schema.renamedClasses), suffix, bindDn) + `\n\ndn: ${bindDn}\nobjectClass: account\nobjectClass: simpleSecurityObject\nuid: postfix-reader\nuserPassword: ${bindPw}\n`;
    const ldifFile = join(root, 'lib', 'import.ldif');
    writeFileSync(ldifFile, data);
    chmodSync(ldifFile, 0o644);
    const t1 = performance.now();
    const imported = await run(NS_SLAPD, ['ldif2db', '-D', confDir, '-n', 'userRoot', '-i', ldifFile]);
    const importMs = performance.now() - t1;
    if (imported.code !== 0) throw new Error(`ns-slapd ldif2db failed (exit ${imported.code}):\n${imported.stdout}${imported.stderr}\n${tail(errorLog)}`);
    const rejected = /WARN.*(skipped|rejected|invalid)/i.exec(readFileSync(errorLog, 'utf8'));
    if (rejected) throw new Error(`ns-slapd ldif2db did not import everything:\n${tail(errorLog)}`);

    let child: ChildProcess | undefined;
    let exited = true;
    let exitPromise: Promise<void> = Promise.resolve();
    rec.pid = () => (exited ? undefined : child?.pid);

    const ldapArgs = (as: 'root' | 'user'): string[] => ['-x', '-H', `ldap://127.0.0.1:${port}/`, '-D', as === 'root' ? rootDn : bindDn, '-w', as === 'root' ? rootPw : bindPw];
    const probe = async (): Promise<boolean> => {
      const r = await run('/usr/bin/ldapsearch', [...ldapArgs('user'), '-o', 'nettimeout=2', '-b', '', '-s', 'base', PROBE_FILTER, '1.1'], { timeoutMs: 5000 }).catch(() => undefined);
      return r !== undefined && r.code === 0;
    };
    const launch = async (): Promise<void> => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const fd = openSync(join(root, 'ns-slapd.out'), 'a');
        // -d 0: stay in the foreground as our child (no fork, no systemd).
        const c = spawn(NS_SLAPD, ['-D', confDir, '-i', pidFile, '-d', '0'], { stdio: ['ignore', fd, fd] });
        closeSync(fd);
        child = c;
        exited = false;
        exitPromise = new Promise<void>((res) => {
          c.once('exit', () => { exited = true; res(); });
          c.once('error', () => { exited = true; res(); });
        });
        if (c.pid !== undefined) spawnWatchdog(c.pid, root);
        const deadline = Date.now() + READY_TIMEOUT_MS;
        while (Date.now() < deadline && !exited) {
          if (await probe()) return;
          await sleep(100);
        }
        await kill();
        if (!/Address already in use|bind.*failed/i.test(tail(errorLog))) break;
        // Someone took the port: move to another one.
        port = await freePort();
        writeFileSync(dseFile, dseSet(readFileSync(dseFile, 'utf8'), 'cn=config', 'nsslapd-port', String(port)));
      }
      throw new Error(`ns-slapd did not become ready on port ${port}:\n${tail(errorLog)}`);
    };
    const kill = async (): Promise<void> => {
      if (exited || !child?.pid) return;
      const pid = child.pid;
      try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
      const t = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }, 15_000);
      await exitPromise;
      clearTimeout(t);
    };
    await launch();

    let logOffset = statSync(accessLog).size;
    const tool = async (cmd: string, args: string[], input?: string): Promise<void> => {
      const r = await run(cmd, [...ldapArgs('root'), ...args], { input });
      if (r.code !== 0) throw new Error(`${cmd} failed (exit ${r.code}): ${r.stderr}${r.stdout}`);
    };
    return {
      get url() { return `ldap://127.0.0.1:${port}/`; },
      host: '127.0.0.1',
      get port() { return port; },
      suffix, rootDn, rootPw, bindDn, bindPw,
      dir: root,
      createMs, importMs,
      entries: countEntries(data),
      get pid() { return child?.pid ?? -1; },
      accessLog,
      async searches() {
        // The access log is unbuffered, but written by worker threads: let it settle.
        let size = -1;
        for (let i = 0; i < 40 && size !== statSync(accessLog).size; i++) { size = statSync(accessLog).size; await sleep(50); }
        const text = readFileSync(accessLog).subarray(logOffset).toString('utf8');
        const out: { conn: string; base: string; scope: number; filter: string }[] = [];
        for (const l of text.split('\n')) {
          const m = SRCH_RE.exec(l);
          if (m && m[4] !== PROBE_FILTER) out.push({ conn: m[1]!, base: m[2]!, scope: Number(m[3]), filter: m[4]! });
        }
        return out;
      },
      resetSearches() { logOffset = statSync(accessLog).size; },
      add: (ldif) => tool('/usr/bin/ldapadd', [], ldif),
      modify: (ldif) => tool('/usr/bin/ldapmodify', [], ldif),
      delete: (dn) => tool('/usr/bin/ldapdelete', [dn]),
      search: (as, base, scope, filter, attrs = []) => run('/usr/bin/ldapsearch', [...ldapArgs(as), '-LLL', '-o', 'ldif-wrap=no', '-b', base, '-s', scope, filter, ...attrs]),
      stop: kill,
      async start() { if (exited) await launch(); },
      async destroy() {
        await kill();
        live.delete(rec);
        rmSync(root, { recursive: true, force: true });
      },
    };
  } catch (e) {
    const pid = rec.pid();
    if (pid !== undefined) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    live.delete(rec);
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
}

function tail(file: string, lines = 30): string {
  try { return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n'); } catch { return `(no ${file})`; }
}

/** `ns-slapd` processes still alive that were started from `dir` (for cleanup assertions). */
export function nsSlapdUnder(dir: string): number[] {
  const r = spawnSync('/usr/bin/pgrep', ['-f', `ns-slapd -D ${dir}`], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').filter(Boolean).map(Number);
}

/** `n` people under ou=Bulk (mail bulkN@bulk.example.org): enough of them take a backend past the lookthrough limit. */
export function bulkLdif(n: number, suffix = 'dc=example,dc=org'): string {
  const out = [`dn: ou=Bulk,${suffix}\nobjectClass: organizationalUnit\nou: Bulk\n`];
  for (let i = 1; i <= n; i++) out.push(`dn: uid=bulk${i},ou=Bulk,${suffix}\nobjectClass: inetOrgPerson\nuid: bulk${i}\ncn: Bulk ${i}\nsn: Bulk\nmail: bulk${i}@bulk.example.org\n`);
  return out.join('\n');
}
