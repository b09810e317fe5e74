/**
 * systemd/ldap-socketmap.service and .socket: valid units (`systemd-analyze verify`, Debian
 * package `systemd`), the hardening the README promises, and two checks that the hardening
 * does not break Node itself, which no unit linter can see:
 *
 * - every system call the daemon makes under a realistic workload (strace -f) is allowed by
 *   the unit's SystemCallFilter= (expanded with `systemd-analyze syscall-filter`), and every
 *   socket family it opens is in RestrictAddressFamilies=;
 * - MemoryDenyWriteExecute= must stay "no": Node's JIT aborts under the kernel's W^X
 *   enforcement (prctl PR_SET_MDWE), while `node --jitless` survives it.
 *
 * PID 1 here is not systemd, so the units cannot be started for real.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO, CLI } from '../support/daemon.js';
import { backdate, classify, makePostfixConfigDir, postmapQuery, valueOf } from '../support/postfix.js';
import { startSlapd, directoryLdif, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';
import { httpRequest } from '../support/http.js';
import { runCommand } from '../support/run.js';

const UNITS = resolve(REPO, 'systemd');
const SERVICE = join(UNITS, 'ldap-socketmap.service');
const SOCKET = join(UNITS, 'ldap-socketmap.socket');
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const STRACE = '/usr/bin/strace';
const PERL = '/usr/bin/perl';

function requireTool(path: string, pkg: string): void {
  if (!existsSync(path)) throw new Error(`${path} not found: install the Debian package '${pkg}'`);
}

/** `Key=value` assignments of a unit file, in order (comments and section headers dropped). */
function unitAssignments(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#') || t.startsWith(';') || t.startsWith('[')) continue;
    const eq = t.indexOf('=');
    if (eq < 0) continue;
    out.push([t.slice(0, eq).trim(), t.slice(eq + 1).trim()]);
  }
  return out;
}

function unitValues(text: string, key: string): string[] {
  return unitAssignments(text).filter(([k]) => k === key).map(([, v]) => v);
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The files to verify. ExecStart names /usr/bin/node (Debian's nodejs package), and verify
 * rejects a unit whose binary is missing; on a machine whose node lives elsewhere, verify a
 * copy that names this node instead (that path is an install-time choice, nothing else changes).
 */
function unitsForVerify(): { service: string; socket: string; note: string } {
  if (executable('/usr/bin/node')) return { service: SERVICE, socket: SOCKET, note: 'as shipped' };
  const dir = makeTmpDir('units-');
  const service = join(dir, 'ldap-socketmap.service');
  const socket = join(dir, 'ldap-socketmap.socket');
  writeFileSync(service, readFileSync(SERVICE, 'utf8').replaceAll('/usr/bin/node ', `${process.execPath} `));
  writeFileSync(socket, readFileSync(SOCKET, 'utf8'));
  return { service, socket, note: `ExecStart node replaced by ${process.execPath}` };
}

describe('systemd units', () => {
  beforeAll(() => requireTool(SYSTEMD_ANALYZE, 'systemd'));

  it('pass systemd-analyze verify (together and each alone) without a single message', async () => {
    const u = unitsForVerify();
    for (const files of [[u.service, u.socket], [u.service], [u.socket]]) {
      const r = await runCommand(SYSTEMD_ANALYZE, ['verify', '--man=no', ...files]);
      expect(r.stdout + r.stderr, `${files.join(' ')} (${u.note})`).toBe('');
      expect(r.code).toBe(0);
    }
  });

  it('verify does catch mistakes (the check above is not vacuous)', async () => {
    const dir = makeTmpDir('units-bad-');
    const bad = join(dir, 'ldap-socketmap.service');
    writeFileSync(bad, readFileSync(SERVICE, 'utf8').replace('ProtectSystem=strict', 'ProtectSystem=strickt\nProtectSistem=yes'));
    const r = await runCommand(SYSTEMD_ANALYZE, ['verify', '--man=no', bad]);
    expect(r.stderr).toMatch(/Failed to parse protect system value/);
    expect(r.stderr).toMatch(/Unknown key name 'ProtectSistem'|Unknown key 'ProtectSistem'/);
  });

  it('service: runs the CLI as an unprivileged user with the promised hardening', () => {
    const text = readFileSync(SERVICE, 'utf8');
    const one = (k: string) => {
      const v = unitValues(text, k);
      expect(v.length, k).toBe(1);
      return v[0];
    };
    expect(one('ExecStart')).toBe('/usr/bin/node /usr/lib/ldap-socketmap/dist/cli/main.js serve --config /etc/ldap-socketmap/ldap-socketmap.conf');
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(one('User')).toBe('ldap-socketmap');
    expect(one('RuntimeDirectory')).toBe('ldap-socketmap');
    expect(one('Restart')).toBe('on-failure');
    // A V8 heap limit, documented in bench/README.md ("Memory").
    expect(one('Environment')).toMatch(/^NODE_OPTIONS=--max-old-space-size=\d+$/);
    const expected: Record<string, string> = {
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectKernelLogs: 'yes',
      ProtectControlGroups: 'yes',
      RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6',
      CapabilityBoundingSet: '',
      SystemCallArchitectures: 'native',
      LockPersonality: 'yes',
      MemoryDenyWriteExecute: 'no',
    };
    for (const [k, v] of Object.entries(expected)) expect(one(k), k).toBe(v);
    expect(unitValues(text, 'SystemCallFilter')[0]?.split(/\s+/)).toContain('@system-service');
  });

  it('socket: one TCP listener on the snippets\' address, named for the daemon', () => {
    const text = readFileSync(SOCKET, 'utf8');
    expect(unitValues(text, 'ListenStream')).toEqual(['127.0.0.1:9054']);
    expect(unitValues(text, 'FileDescriptorName')).toEqual(['socketmap']);
    expect(unitValues(text, 'Service')).toEqual(['ldap-socketmap.service']);
    expect(unitValues(text, 'Accept')).toEqual(['no']);
  });

  it('systemd-analyze security rates the service OK or better', async () => {
    const r = await runCommand(SYSTEMD_ANALYZE, ['security', '--offline=yes', '--no-pager', SERVICE]);
    const m = /Overall exposure level for ldap-socketmap\.service: ([0-9.]+) (\S+)/.exec(r.stdout + r.stderr);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(2.5);
  });
});

// ---------------------------------------------------------------------------------------

/** Every syscall name in a `systemd-analyze syscall-filter` group, groups expanded. */
async function syscallGroups(): Promise<Map<string, string[]>> {
  const r = await runCommand(SYSTEMD_ANALYZE, ['syscall-filter', '--no-pager']);
  const groups = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of r.stdout.split('\n')) {
    if (/^@\S+$/.test(line)) {
      current = [];
      groups.set(line, current);
      continue;
    }
    const t = line.trim();
    if (!current || t === '' || t.startsWith('#')) continue;
    current.push(t);
  }
  return groups;
}

function expand(items: string[], groups: Map<string, string[]>, seen = new Set<string>()): Set<string> {
  const out = new Set<string>();
  for (const it of items) {
    if (it.startsWith('@')) {
      if (seen.has(it)) continue;
      seen.add(it);
      const g = groups.get(it);
      if (!g) throw new Error(`unknown syscall group ${it}`);
      for (const s of expand(g, groups, seen)) out.add(s);
    } else out.add(it);
  }
  return out;
}

/** The set SystemCallFilter= allows: the first allow list, minus every `~` deny list. */
async function allowedSyscalls(unitText: string): Promise<Set<string>> {
  const groups = await syscallGroups();
  const lines = unitValues(unitText, 'SystemCallFilter');
  const allow = new Set<string>();
  const deny = new Set<string>();
  for (const l of lines) {
    const neg = l.startsWith('~');
    const set = expand((neg ? l.slice(1) : l).trim().split(/\s+/), groups);
    for (const s of set) (neg ? deny : allow).add(s);
  }
  for (const s of deny) allow.delete(s);
  return allow;
}

describe('hardening vs. Node at run time', () => {
  let slapd: Slapd | undefined;
  let traced: ChildProcess | undefined;
  /** The node process strace runs (strace's child). Killing strace alone would leave it running. */
  let daemonPid: number | undefined;
  let traceFile: string | undefined;
  const tracedPid = (file: string): number | undefined => {
    try {
      // The first successful execve is strace's child becoming node. Matching on the script
      // name is not enough: strace cuts strings at -s bytes, and a long checkout path hides it.
      const line = readFileSync(file, 'utf8').split('\n').find((l) => /^\d+\s+execve\(.*\)\s*=\s*0\s*$/.test(l));
      const pid = Number(/^(\d+)/.exec(line ?? '')?.[1]);
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  const killTraced = () => {
    if (daemonPid === undefined && traceFile !== undefined && traced?.exitCode === null) daemonPid = tracedPid(traceFile);
    if (daemonPid !== undefined) {
      try { process.kill(daemonPid, 'SIGKILL'); } catch { /* gone */ }
    }
    if (traced && traced.exitCode === null && traced.signalCode === null) traced.kill('SIGKILL');
  };
  process.on('exit', killTraced);

  beforeAll(() => {
    requireTool(SYSTEMD_ANALYZE, 'systemd');
  });
  afterAll(async () => {
    killTraced();
    process.off('exit', killTraced);
    await slapd?.destroy();
  });

  it('every system call and socket family the daemon uses is allowed by the service unit', async () => {
    requireTool(STRACE, 'strace');
    slapd = await startSlapd({ ldif: directoryLdif() });
    const dir = makeTmpDir('strace-');
    chmodSync(dir, 0o755);
    for (const name of ['ldap-aliases.cf', 'ldap-mailboxes.cf']) {
      const text = readFileSync(join(REPO, 'postfix-snippets', name), 'utf8').replace(/^server_host = .*$/m, `server_host = ${slapd.url}`);
      writeFileSync(join(dir, name), text);
      backdate(join(dir, name));
    }
    const sock = join(dir, 'socketmap.sock');
    const conf = join(dir, 'ldap-socketmap.conf');
    writeFileSync(
      conf,
      readFileSync(join(REPO, 'postfix-snippets', 'ldap-socketmap.conf'), 'utf8')
        .replaceAll('/etc/postfix/', `${dir}/`)
        .replace(/^socketmap_listen = .*$/m, `socketmap_listen = inet:127.0.0.1:0, unix:${sock}`)
        .replace(/^metrics_listen = .*$/m, 'metrics_listen = 127.0.0.1:0'),
    );
    const trace = join(dir, 'trace');
    traceFile = trace;

    // With the environment the unit gives it (NODE_OPTIONS: the V8 heap limit).
    const unitEnv = Object.fromEntries(unitValues(readFileSync(SERVICE, 'utf8'), 'Environment').map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
    traced = spawn(STRACE, ['-f', '-qq', '-s', '4096', '-o', trace, '--', process.execPath, CLI, 'serve', '--config', conf], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...unitEnv } });
    const lines: string[] = [];
    const waitFor = (re: RegExp, ms = 20_000) =>
      new Promise<string>((res, rej) => {
        const t = setInterval(() => {
          const hit = lines.find((l) => re.test(l));
          if (hit !== undefined) { clearInterval(t); clearTimeout(to); res(hit); }
        }, 20);
        const to = setTimeout(() => { clearInterval(t); rej(new Error(`no ${re} in time:\n${lines.join('\n')}`)); }, ms);
      });
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      lines.push(...parts);
    };
    traced.stdout!.on('data', onData);
    traced.stderr!.on('data', onData);
    const exited = new Promise<number | null>((r) => traced!.once('exit', (c) => r(c)));

    const ready = await waitFor(/ready: /);
    // The traced node process: the pid of its execve in the trace (strace's own child is
    // not necessarily the tracee).
    daemonPid = tracedPid(trace);
    expect(daemonPid, 'pid of the node process under strace').toBeGreaterThan(0);
    expect(() => process.kill(daemonPid as number, 0)).not.toThrow();
    const port = Number(/socketmap inet:127\.0\.0\.1:(\d+)/.exec(ready)?.[1]);
    // stdout and stderr are separate pipes: the metrics line may come after "ready:".
    const metricsPort = Number(/metrics on [^ ]*:(\d+)/.exec(await waitFor(/metrics on /))?.[1]);
    expect(port).toBeGreaterThan(0);
    expect(metricsPort).toBeGreaterThan(0);

    // Workload: lookups over TCP and the unix socket (found, not found, nested list,
    // non-ASCII), metrics and health, a reload, more lookups, a clean stop.
    const pc = await makePostfixConfigDir();
    const workload = async () => {
      const sales = await postmapQuery(pc, `socketmap:inet:127.0.0.1:${port}:aliases`, 'sales@example.org');
      expect(classify(sales)).toBe('found');
      const viaUnix = await postmapQuery(pc, `socketmap:unix:${sock}:mailboxes`, 'alice@example.org');
      expect(valueOf(viaUnix)).toBe('alice');
      await Promise.all([
        postmapQuery(pc, `socketmap:inet:127.0.0.1:${port}:aliases`, 'eng@example.org'),
        postmapQuery(pc, `socketmap:inet:127.0.0.1:${port}:aliases`, 'JÜRGEN-LISTE@example.org'),
        postmapQuery(pc, `socketmap:inet:127.0.0.1:${port}:mailboxes`, 'nobody@example.org'),
        postmapQuery(pc, `socketmap:unix:${sock}:mailboxes`, 'alice+tag@example.org'),
      ]);
      expect((await httpRequest(metricsPort, '/metrics')).status).toBe(200);
      await httpRequest(metricsPort, '/healthz');
    };
    await workload();
    process.kill(daemonPid as number, 'SIGHUP');
    await waitFor(/reload/i);
    await workload();
    process.kill(daemonPid as number, 'SIGTERM');
    expect(await exited).toBe(0);
    daemonPid = undefined;

    // strace -f -o: "PID name(args) = ret", "PID name(args <unfinished ...>",
    // "PID <... name resumed>...". Signals and exits are not system calls.
    const text = readFileSync(trace, 'utf8');
    const used = new Set<string>();
    const families = new Set<string>();
    for (const line of text.split('\n')) {
      const m = /^\d+\s+([a-z_][a-z0-9_]*)\(/.exec(line) ?? /^\d+\s+<\.\.\. ([a-z_][a-z0-9_]*) resumed>/.exec(line);
      if (m) used.add(m[1] as string);
      const f = /^\d+\s+socket\((AF_[A-Z0-9]+)/.exec(line);
      if (f) families.add(f[1] as string);
    }
    expect(used.size).toBeGreaterThan(30);

    const unit = readFileSync(SERVICE, 'utf8');
    const allowed = await allowedSyscalls(unit);
    const refused = [...used].filter((s) => !allowed.has(s)).sort();
    expect(refused, `system calls outside SystemCallFilter= of ${SERVICE}`).toEqual([]);
    const allowedFamilies = (unitValues(unit, 'RestrictAddressFamilies')[0] ?? '').split(/\s+/);
    expect([...families].filter((f) => !allowedFamilies.includes(f)).sort()).toEqual([]);
    expect([...families].sort()).toEqual(expect.arrayContaining(['AF_INET', 'AF_UNIX']));
  }, 60_000);

  it('MemoryDenyWriteExecute=no is required: node aborts under W^X enforcement, node --jitless does not', async (ctx) => {
    // prctl(PR_SET_MDWE = 65, PR_MDWE_REFUSE_EXEC_GAIN = 1) via perl's syscall(); prctl is
    // syscall 157 on x86_64. Kernels before 6.3 lack PR_SET_MDWE: nothing to show there.
    if (process.arch !== 'x64' || !existsSync(PERL)) ctx.skip();
    const mdwe = (nodeArgs: string[]) =>
      runCommand(PERL, ['-e', 'syscall(157, 65, 1, 0, 0, 0) == 0 or exit 99; exec @ARGV or exit 98', '--', process.execPath, ...nodeArgs]);
    const hot = 'let s = 0; for (let i = 0; i < 1e7; i++) s += i % 7; console.log("done", s);';
    const jit = await mdwe(['-e', hot]);
    if (jit.code === 99) ctx.skip();
    expect(jit.code === 0 && jit.signal === null, `node exited ${jit.code}/${jit.signal}`).toBe(false);
    expect(jit.stdout).not.toContain('done');
    const jitless = await mdwe(['--jitless', '-e', hot]);
    expect(jitless.code, jitless.stderr).toBe(0);
    expect(jitless.stdout).toContain('done');
  });
});
