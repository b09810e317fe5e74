/**
 * The Debian package, as CI and an admin use it: `npm run deb` builds it, lintian finds nothing
 * (remaining tags are overridden with a reason in packaging/deb/lintian-overrides), `dpkg -i`
 * installs it on this machine, the INSTALLED /usr/bin/ldap-socketmap serves a real lookup as the
 * packaged service user against a private slapd (asked through `postmap -q ... socketmap:`, and
 * compared with Postfix's own ldap: table), then `dpkg --purge` leaves nothing behind: no files,
 * no user or group, no /etc directory, no systemd state.
 *
 * It installs a system package, so it refuses to run where ldap-socketmap is already installed
 * (it would purge the admin's installation), and afterAll purges whatever it installed, also
 * when a test failed. dpkg's lock may be held by another apt run on this machine: it waits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../support/daemon.js';
import { backdate, makePostfixConfigDir, postmapQuery } from '../support/postfix.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';
import { type CommandRun, runCommand, type RunOptions } from '../support/run.js';
import { sleep } from '../support/wait.js';

const PKG = 'ldap-socketmap';
const USER = 'ldap-socketmap';
const DPKG_LOCK_WAIT_MS = 300_000;

/** Package tools get two minutes by default. */
const run = (cmd: string, args: string[], opts: RunOptions = {}): Promise<CommandRun> => runCommand(cmd, args, { timeoutMs: 120_000, ...opts });

/** dpkg, waiting while another package operation on this machine holds its lock. */
async function dpkg(args: string[]): Promise<CommandRun> {
  const until = Date.now() + DPKG_LOCK_WAIT_MS;
  for (;;) {
    const r = await run('dpkg', args, { env: { DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.code === 0 || !/lock/i.test(r.stderr) || Date.now() > until) return r;
    await sleep(2_000);
  }
}

async function packageState(): Promise<string> {
  const r = await run('dpkg-query', ['-W', '-f', '${db:Status-Status}', PKG]);
  return r.code === 0 ? r.stdout.trim() : 'not-installed';
}

function getent(db: 'passwd' | 'group', name: string): Promise<CommandRun> {
  return run('getent', [db, name]);
}

let deb = '';
let installedByUs = false;
let slapd: Slapd | undefined;
let daemon: ChildProcess | undefined;

beforeAll(async () => {
  for (const tool of ['dpkg-deb', 'lintian', 'setpriv']) {
    const r = await run('sh', ['-c', `command -v ${tool}`]);
    if (r.code !== 0) throw new Error(`${tool} not found: run scripts/install-deps.sh (Debian packages dpkg, lintian, util-linux)`);
  }
  if (process.getuid?.() !== 0) throw new Error('the package test installs a Debian package: run it as root (CI does)');
  const state = await packageState();
  if (state !== 'not-installed') {
    throw new Error(`${PKG} is already on this machine (${state}); this test installs and purges it, so it will not touch that installation`);
  }
  const r = await run('npm', ['run', '--silent', 'deb'], { cwd: REPO, timeoutMs: 600_000 });
  expect(r.code, r.stderr).toBe(0);
  deb = r.stdout.trim().split('\n').pop() ?? '';
  expect(deb).toMatch(new RegExp(`^${REPO}/build/deb/${PKG}_[0-9.]+_all\\.deb$`));
}, 600_000);

afterAll(async () => {
  daemon?.kill('SIGKILL');
  await slapd?.destroy();
  if (installedByUs && (await packageState()) !== 'not-installed') await dpkg(['--purge', PKG]);
}, DPKG_LOCK_WAIT_MS + 60_000);

describe('Debian package', () => {
  it('is small, reproducible in its metadata, and holds the promised files', async () => {
    const size = statSync(deb).size;
    expect(size).toBeLessThan(3 * 1024 * 1024);
    const info = await run('dpkg-deb', ['-f', deb]);
    const engines = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    expect(info.stdout).toMatch(new RegExp(`^Depends: nodejs \\(>= ${engines.replace(/^>=\s*/, '').replace(/\./g, '\\.')}\\), adduser, init-system-helpers`, 'm'));
    expect(info.stdout).toMatch(/^Architecture: all$/m);
    const list = (await run('dpkg-deb', ['-c', deb])).stdout;
    for (const path of [
      './usr/bin/ldap-socketmap', './usr/lib/ldap-socketmap/dist/cli/main.js', './usr/lib/ldap-socketmap/package.json',
      './usr/lib/ldap-socketmap/node_modules/ldapts/package.json', './lib/systemd/system/ldap-socketmap.service',
      './lib/systemd/system/ldap-socketmap.socket', './etc/ldap-socketmap/ldap-socketmap.conf',
      './usr/share/man/man8/ldap-socketmap.8.gz', './usr/share/man/man5/ldap-socketmap.conf.5.gz',
      './usr/share/ldap-socketmap/ldap-socketmap.rules.yml', './usr/share/ldap-socketmap/dashboards/ldap-socketmap.json',
      './usr/share/doc/ldap-socketmap/copyright', './usr/share/doc/ldap-socketmap/changelog.gz',
    ]) expect(list, path).toContain(` ${path}\n`);
    expect(list).not.toMatch(/\.map\n/);
    expect(list).not.toMatch(/node_modules\/(vitest|typescript|@types)\//);
    const conffiles = (await run('sh', ['-c', `dpkg-deb --ctrl-tarfile '${deb}' | tar -xO ./conffiles`])).stdout;
    expect(conffiles).toBe('/etc/ldap-socketmap/ldap-socketmap.conf\n');
  });

  it('passes lintian: no error, no warning, no info left unexplained', async () => {
    // lintian leaves its MLDBM scratch files (mldbm-elf-*) in TMPDIR: give it one of ours.
    const r = await run('lintian', ['--pedantic', '--display-info', '--display-experimental', deb], { timeoutMs: 300_000, env: { TMPDIR: makeTmpDir('lintian-') } });
    const tags = (r.stdout + r.stderr).split('\n').filter((l) => /^[EWIPX]: /.test(l));
    expect(tags).toEqual([]);
    expect(r.code).toBe(0);
  }, 300_000);

  it('npm pack ships the LICENSE and no source maps pointing at an unshipped src/', async () => {
    const r = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO });
    expect(r.code, r.stderr).toBe(0);
    const files = (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    expect(files).toContain('LICENSE');
    expect(files).toContain('man/ldap-socketmap.8');
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('src/'))).toEqual([]);
  });

  it('installs with dpkg -i: user in group postfix, conffile readable by it, service not enabled', async () => {
    installedByUs = true;
    const r = await dpkg(['-i', deb]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(await packageState()).toBe('installed');
    expect((await getent('passwd', USER)).stdout).toMatch(new RegExp(`^${USER}:x:\\d+:\\d+:[^:]*:/nonexistent:/usr/sbin/nologin$`, 'm'));
    const groups = (await run('id', ['-nG', USER])).stdout.trim().split(/\s+/);
    expect(groups).toContain(USER);
    if ((await getent('group', 'postfix')).code === 0) expect(groups).toContain('postfix');
    const conf = statSync('/etc/ldap-socketmap/ldap-socketmap.conf');
    expect(conf.mode & 0o777).toBe(0o640);
    expect(conf.uid).toBe(0);
    expect(String(conf.gid)).toBe((await run('id', ['-g', USER])).stdout.trim());
    expect(existsSync('/etc/systemd/system/multi-user.target.wants/ldap-socketmap.service')).toBe(false);
    const version = await run('/usr/bin/ldap-socketmap', ['--version']);
    expect(version.stdout.trim()).toBe((JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version);
    // The packaged default config parses, and says loudly that it has no maps yet.
    const check = await run('/usr/bin/ldap-socketmap', ['check', '--config', '/etc/ldap-socketmap/ldap-socketmap.conf']);
    expect(check.code).toBe(2);
    expect(check.stderr).toContain('/etc/ldap-socketmap/ldap-socketmap.conf: no maps to check');
    // The man pages are where man(1) looks, and render.
    const man = await run('sh', ['-c', 'zcat /usr/share/man/man5/ldap-socketmap.conf.5.gz | mandoc -T ascii']);
    expect(man.stdout).toMatch(/cache_ttl/);
  }, DPKG_LOCK_WAIT_MS + 60_000);

  it('the installed command serves a real lookup as the service user, equal to Postfix\'s ldap: table', async () => {
    expect(await packageState()).toBe('installed');
    slapd = await startSlapd({ ldif: directoryLdif() });
    const dir = makeTmpDir('deb-serve-');
    chmodSync(dir, 0o755);
    const cf = join(dir, 'ldap-aliases.cf');
    writeFileSync(cf, readFileSync(join(REPO, 'postfix-snippets', 'ldap-aliases.cf'), 'utf8').replace(/^server_host = .*$/m, `server_host = ${slapd.url}`));
    chmodSync(cf, 0o644);
    backdate(cf);
    const conf = join(dir, 'ldap-socketmap.conf');
    writeFileSync(conf, `socketmap_listen = inet:127.0.0.1:0\nmap.aliases = ${cf}\n`);
    chmodSync(conf, 0o644);

    const strict = await run('setpriv', ['--reuid', USER, '--regid', USER, '--init-groups', '--', '/usr/bin/ldap-socketmap', 'check', '--strict', '--config', conf]);
    expect(strict.stdout + strict.stderr).toMatch(/LDAP: connected/);
    expect(strict.code).toBe(0);

    // setpriv execs: the pid is the daemon's (after /usr/bin/ldap-socketmap execs node).
    const proc = spawn('setpriv', ['--reuid', USER, '--regid', USER, '--init-groups', '--', '/usr/bin/ldap-socketmap', 'serve', '--config', conf], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, JOURNAL_STREAM: '' },
    });
    daemon = proc;
    let log = '';
    proc.stderr!.on('data', (d: Buffer) => { log += d.toString('utf8'); });
    const port = await new Promise<number>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`no ready line:\n${log}`)), 20_000);
      const check = () => {
        const m = /ready: .*listening on socketmap inet:127\.0\.0\.1:(\d+)/.exec(log);
        if (m) { clearTimeout(t); res(Number(m[1])); }
      };
      proc.stderr!.on('data', check);
      proc.once('exit', (code) => { clearTimeout(t); rej(new Error(`daemon exited ${code}:\n${log}`)); });
    });
    const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
    const uid = (await run('id', ['-u', USER])).stdout.trim();
    expect(status).toMatch(new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, 'm'));
    expect(readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0')).toContain('/usr/lib/ldap-socketmap/dist/cli/main.js');

    const pfdir = await makePostfixConfigDir();
    for (const key of ['sales@example.org', 'nope@example.org']) {
      const viaDaemon = await postmapQuery(pfdir, `socketmap:inet:127.0.0.1:${port}:aliases`, key);
      const native = await postmapQuery(pfdir, `ldap:${cf}`, key);
      expect({ code: viaDaemon.code, stdout: viaDaemon.stdout }, key).toEqual({ code: native.code, stdout: native.stdout });
    }
    const found = await postmapQuery(pfdir, `socketmap:inet:127.0.0.1:${port}:aliases`, 'sales@example.org');
    expect(found.stdout).toBe('alice@example.org,robert@example.org,Bob.Builder@Example.ORG,bob@example.org,sales-archive@elsewhere.net\n');

    proc.kill('SIGTERM');
    const code = await new Promise<number | null>((res) => (proc.exitCode !== null ? res(proc.exitCode) : proc.once('exit', res)));
    expect(code).toBe(0);
    daemon = undefined;
  }, 120_000);

  it('dpkg --remove keeps the conffile and user; dpkg --purge leaves nothing behind', async () => {
    expect(await packageState()).toBe('installed');
    const removed = await dpkg(['--remove', PKG]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await packageState()).toBe('config-files');
    expect(existsSync('/usr/lib/ldap-socketmap')).toBe(false);
    expect(existsSync('/etc/ldap-socketmap/ldap-socketmap.conf')).toBe(true);
    expect((await getent('passwd', USER)).code).toBe(0);

    const purged = await dpkg(['--purge', PKG]);
    expect(purged.code, purged.stderr).toBe(0);
    expect(await packageState()).toBe('not-installed');
    for (const path of [
      '/usr/lib/ldap-socketmap', '/usr/bin/ldap-socketmap', '/etc/ldap-socketmap', '/usr/share/ldap-socketmap',
      '/usr/share/doc/ldap-socketmap', '/lib/systemd/system/ldap-socketmap.service', '/lib/systemd/system/ldap-socketmap.socket',
      '/usr/share/man/man8/ldap-socketmap.8.gz', '/usr/share/man/man5/ldap-socketmap.conf.5.gz', '/usr/share/lintian/overrides/ldap-socketmap',
    ]) expect(existsSync(path), path).toBe(false);
    expect((await getent('passwd', USER)).code).not.toBe(0);
    expect((await getent('group', USER)).code).not.toBe(0);
    const postfixGroup = await getent('group', 'postfix');
    if (postfixGroup.code === 0) expect(postfixGroup.stdout).not.toMatch(new RegExp(`[:,]${USER}(,|$)`, 'm'));
    const state = '/var/lib/systemd/deb-systemd-helper-enabled';
    if (existsSync(state)) expect(readdirSync(state, { recursive: true }).map(String).filter((f) => f.includes(PKG))).toEqual([]);
    installedByUs = false;
  }, 2 * DPKG_LOCK_WAIT_MS);
});
