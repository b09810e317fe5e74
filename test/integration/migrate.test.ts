/**
 * migrate + verify on a private Postfix configuration directory with a dozen ldap: tables
 * over a private slapd: migrate writes the daemon config, the daemon started with it answers
 * every key exactly like native `postmap -q … ldap:` (verify exits 0), a planted difference
 * makes verify exit 1 showing both answers, and --apply switches a config directory with
 * backups and `postfix check`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, startDaemon, type RunningDaemon } from '../support/daemon.js';
import { cfVars } from '../support/fixtures.js';
import { backdate, writeFixtureCf } from '../support/postfix.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';
import { type CommandRun, runCommand } from '../support/run.js';

/** migrate and verify walk whole Postfix configs: four minutes by default. */
const run = (cmd: string, args: string[]) => runCommand(cmd, args, { timeoutMs: 240_000 });
const cli = (args: string[]) => run(process.execPath, [CLI, ...args]);
const postconf = (dir: string, args: string[]) => run('/usr/sbin/postconf', ['-c', dir, ...args]);

let slapd: Slapd;
let daemon: RunningDaemon | undefined;
let pfDir: string;

/** A Postfix config_directory with 13 ldap: tables in main.cf and master.cf. */
function buildPostfixDir(): string {
  const dir = makeTmpDir('migrate-pf-');
  const vars = cfVars(slapd);
  for (const n of ['aliases', 'terminal', 'mailboxes', 'scope-one', 'utf8-mailalias', 'fmt-smtp-domain', 'leaf', 'fmt-localpart',
    'dynamic-base', 'fmt-ok-suffix', 'domain-list', 'expansion-limit-3', 'scope-base', 'recursion-limit-3']) {
    writeFixtureCf(dir, n, vars);
  }
  mkdirSync(join(dir, 'queue'));
  mkdirSync(join(dir, 'data'));
  const main = `compatibility_level = 3.6
smtputf8_enable = yes
queue_directory = ${dir}/queue
data_directory = ${dir}/data
mydestination =
recipient_delimiter = +
virtual_alias_domains =
virtual_alias_maps = proxy:ldap:${dir}/aliases.cf, ldap:${dir}/terminal.cf
virtual_mailbox_maps = ldap:${dir}/mailboxes.cf
relay_recipient_maps = ldap:${dir}/mailboxes.cf
virtual_uid_maps = ldap:${dir}/scope-one.cf
virtual_gid_maps = static:5000
smtpd_sender_login_maps = ldap:${dir}/utf8-mailalias.cf
transport_maps = ldap:${dir}/fmt-smtp-domain.cf
canonical_maps = ldap:${dir}/leaf.cf
sender_canonical_maps = ldap:${dir}/fmt-localpart.cf
recipient_canonical_maps = ldap:${dir}/recursion-limit-3.cf
relocated_maps = ldap:${dir}/dynamic-base.cf
alias_maps = ldap:${dir}/domain-list.cf
alias_database =
my_access = ldap:${dir}/fmt-ok-suffix.cf
smtpd_recipient_restrictions = permit_mynetworks, check_recipient_access $my_access, reject_unauth_destination
`;
  const master = `smtp      inet  n       -       n       -       -       smtpd
submission inet n       -       n       -       -       smtpd
  -o smtpd_client_restrictions=check_client_access,ldap:${dir}/expansion-limit-3.cf
  -o smtpd_sender_login_maps=ldap:${dir}/scope-base.cf
cleanup   unix  n       -       n       -       0       cleanup
rewrite   unix  -       -       n       -       -       trivial-rewrite
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
`;
  writeFileSync(join(dir, 'main.cf'), main);
  writeFileSync(join(dir, 'master.cf'), master);
  backdate(join(dir, 'main.cf'));
  backdate(join(dir, 'master.cf'));
  return dir;
}

beforeAll(async () => {
  slapd = await startSlapd({ ldif: directoryLdif() });
  pfDir = buildPostfixDir();
});

afterAll(async () => {
  await daemon?.stop();
  await slapd?.destroy();
});

describe('migrate', () => {
  let out: string;
  let result: CommandRun;

  beforeAll(async () => {
    out = makeTmpDir('migrate-out-');
    result = await cli(['migrate', '--postfix-config', pfDir, '--out', out]);
  });

  it('writes the daemon config, the postconf commands and the master.cf overrides, and leaves Postfix alone', async () => {
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['ldap-socketmap.conf', 'master.cf-overrides', 'postconf-commands.sh']);
    // Postfix's files are untouched without --apply.
    expect((await postconf(pfDir, ['-h', 'virtual_alias_maps'])).stdout.trim()).toBe(`proxy:ldap:${pfDir}/aliases.cf, ldap:${pfDir}/terminal.cf`);
    expect(readdirSync(pfDir).filter((f) => f.includes('before-ldap-socketmap'))).toEqual([]);

    const conf = readFileSync(join(out, 'ldap-socketmap.conf'), 'utf8');
    const maps = [...conf.matchAll(/^map\.([A-Za-z0-9_-]+) = (.*)$/gm)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(maps)).toEqual({
      virtual_alias_maps: `${pfDir}/aliases.cf`,
      virtual_alias_maps_2: `${pfDir}/terminal.cf`,
      virtual_mailbox_maps: `${pfDir}/mailboxes.cf`,
      smtpd_sender_login_maps: `${pfDir}/utf8-mailalias.cf`,
      transport_maps: `${pfDir}/fmt-smtp-domain.cf`,
      canonical_maps: `${pfDir}/leaf.cf`,
      sender_canonical_maps: `${pfDir}/fmt-localpart.cf`,
      recipient_canonical_maps: `${pfDir}/recursion-limit-3.cf`,
      relocated_maps: `${pfDir}/dynamic-base.cf`,
      alias_maps: `${pfDir}/domain-list.cf`,
      my_access: `${pfDir}/fmt-ok-suffix.cf`,
      smtpd_client_restrictions: `${pfDir}/expansion-limit-3.cf`,
      smtpd_sender_login_maps_2: `${pfDir}/scope-base.cf`,
    });
    // Address maps emulate the fallback keys; alias lists propagate the extension, mailboxes do not.
    expect(conf).toMatch(/^map\.virtual_alias_maps\.fallback = address\nmap\.virtual_alias_maps\.recipient_delimiter = \+\nmap\.virtual_alias_maps\.propagate_extension = yes$/m);
    expect(conf).toMatch(/^map\.virtual_mailbox_maps\.fallback = address\nmap\.virtual_mailbox_maps\.recipient_delimiter = \+\nmap\.virtual_mailbox_maps\.propagate_extension = no$/m);
    expect(conf).toMatch(/^map\.transport_maps\.fallback = none$/m);
    expect(conf).toMatch(/^map\.my_access\.fallback = none$/m);
    expect(conf).toMatch(/^smtputf8 = yes$/m);
    // The same file for virtual_mailbox_maps and relay_recipient_maps is one map.
    expect(conf).toMatch(/# map virtual_mailbox_maps: written in virtual_mailbox_maps, relay_recipient_maps/);

    const script = readFileSync(join(out, 'postconf-commands.sh'), 'utf8');
    expect(script).toContain(`postconf -c ${pfDir} -e 'virtual_alias_maps = socketmap:inet:127.0.0.1:9054:virtual_alias_maps, socketmap:inet:127.0.0.1:9054:virtual_alias_maps_2'`);
    expect(script).toContain(`postconf -c ${pfDir} -e 'relay_recipient_maps = socketmap:inet:127.0.0.1:9054:virtual_mailbox_maps'`);
    expect(script).toContain(`-e 'my_access = socketmap:inet:127.0.0.1:9054:my_access'`);
    expect(script).toContain(`-P submission/inet/smtpd_client_restrictions=check_client_access,socketmap:inet:127.0.0.1:9054:smtpd_client_restrictions`);
    expect(script).toContain(`-P virtual/unix/virtual_mailbox_maps=ldap:${pfDir}/mailboxes.cf`);
    expect(script).toContain(`-P local/unix/alias_maps=ldap:${pfDir}/domain-list.cf`);
    expect(script).not.toMatch(/virtual_uid_maps = socketmap/);

    const master = readFileSync(join(out, 'master.cf-overrides'), 'utf8');
    expect(master).toContain('virtual(8) opens virtual_mailbox_maps as security-sensitive and refuses socketmap tables');
    expect(master).toContain(`  -o virtual_mailbox_maps=ldap:${pfDir}/mailboxes.cf`);
    expect(master).toContain(`  -o alias_maps=ldap:${pfDir}/domain-list.cf`);
    expect(master).toMatch(/virtual_uid_maps: ldap:\S+scope-one\.cf: only virtual\(8\) reads virtual_uid_maps/);

    expect(result.stdout).toMatch(/^13 maps for the daemon/);
    expect(result.stdout).toContain('warnings (lookups a socketmap is never asked):');
    expect(result.stdout).toContain('Postfix configuration unchanged');
  });

  it('the daemon started with the generated config answers every key as native postmap (verify exits 0)', async () => {
    daemon = await startDaemon(['--config', join(out, 'ldap-socketmap.conf'), '--socketmap', 'inet:127.0.0.1:0']);
    const keys = join(out, 'keys.txt');
    writeFileSync(keys, 'sales@example.org\nSales+Tag@Example.ORG\nnobody@example.org\nalice+x@example.org\n');
    const t0 = Date.now();
    const r = await cli(['verify', '--config', join(out, 'ldap-socketmap.conf'), '--daemon', `inet:127.0.0.1:${daemon.ports[0]}`,
      '--postfix-config', pfDir, '--keys', `virtual_alias_maps=${keys}`, '--keys', `virtual_mailbox_maps=${keys}`,
      '--max-keys', '60', '--rate', '400', '--parallel', '4', '--timeout', '200']);
    const ms = Date.now() - t0;
    console.log(`verify of 13 maps against a running daemon: ${ms} ms\n${r.stdout.split('\n').slice(-18).join('\n')}`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('EQUAL: the daemon answered every key exactly as the native ldap: table');
    expect(r.code).toBe(0);
    const total = /^total\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(r.stdout);
    expect(total).not.toBeNull();
    const [, keysN, asked, equal, differ, found, notfound, temp] = total!.map(Number);
    expect(asked).toBe(keysN);
    expect(equal).toBe(asked);
    expect(differ).toBe(0);
    // The directory gave real keys: many found, misses not found, and loops temporary on both sides.
    expect(found).toBeGreaterThan(100);
    expect(notfound).toBeGreaterThan(50);
    expect(temp).toBeGreaterThan(0);
    for (const m of ['virtual_alias_maps', 'virtual_mailbox_maps', 'smtpd_sender_login_maps', 'relocated_maps', 'my_access']) {
      expect(r.stdout).toMatch(new RegExp(`^${m}\\s+[1-9]`, 'm'));
    }
  });

  it('a planted difference (loop_handling = expand_once) makes verify exit 1 with both answers and explain', async () => {
    const planted = join(out, 'planted.conf');
    writeFileSync(planted, readFileSync(join(out, 'ldap-socketmap.conf'), 'utf8') + 'map.virtual_alias_maps.loop_handling = expand_once\n');
    const keys = join(out, 'loop-keys.txt');
    writeFileSync(keys, 'sales@example.org\nloop-a\n');
    const r = await cli(['verify', '--config', planted, '--postfix-config', pfDir, '--keys', `virtual_alias_maps=${keys}`,
      '--max-keys', '0', '--rate', '200', '--timeout', '120']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('DIFFERENCE map virtual_alias_maps key "loop-a"');
    expect(r.stdout).toMatch(/native \(postmap -q … ldap:\): temporary error \(.*query error/);
    expect(r.stdout).toMatch(/daemon \(socketmap\):\s+found "/);
    expect(r.stdout).toMatch(/explain \(ldap-socketmap explain --config \S+planted\.conf virtual_alias_maps -- "loop-a"\), exit 0:/);
    expect(r.stdout).toContain('lookup of "loop-a"');
    expect(r.stdout).not.toContain('key "sales@example.org"');
    expect(r.stdout).toMatch(/^1 DIFFERENCE$/m);
    // The daemon it started is gone.
    expect(r.stdout).toContain('(started by verify)');
  });

  it('verify --json reports the same, machine-readable', async () => {
    const keys = join(out, 'keys-json.txt');
    writeFileSync(keys, 'sales@example.org\nnobody@example.org\n');
    const r = await cli(['verify', '--config', join(out, 'ldap-socketmap.conf'), '--postfix-config', pfDir, '--keys', `my_access=${keys}`, '--max-keys', '0', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { equal: boolean; differences: unknown[]; tallies: { map: string; asked: number; equal: number }[] };
    expect(j.equal).toBe(true);
    expect(j.differences).toEqual([]);
    expect(j.tallies.find((t) => t.map === 'my_access')).toMatchObject({ asked: 2, equal: 2 });
  });

  it('usage errors exit 2', async () => {
    expect((await cli(['verify', '--config', join(out, 'ldap-socketmap.conf'), '--keys', 'nosuchmap=/dev/null'])).code).toBe(2);
    expect((await cli(['migrate', '--postfix-config', join(out, 'nowhere'), '--out', join(out, 'x')])).code).toBe(2);
  });
});

describe('migrate --apply', () => {
  it('backs up main.cf and master.cf, switches them with postconf and passes postfix check', async () => {
    const dir = makeTmpDir('migrate-apply-');
    cpSync(pfDir, dir, { recursive: true });
    // The copy's own paths (queue_directory and the .cf files) point into the copy.
    for (const f of ['main.cf', 'master.cf']) {
      writeFileSync(join(dir, f), readFileSync(join(dir, f), 'utf8').replaceAll(pfDir, dir));
      backdate(join(dir, f));
    }
    const out = makeTmpDir('migrate-apply-out-');
    const r = await cli(['migrate', '--postfix-config', dir, '--out', out, '--apply', '--listen', 'unix:/run/ldap-socketmap/socketmap.sock']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('postfix check: ok');
    const backups = readdirSync(dir).filter((f) => f.includes('.before-ldap-socketmap.'));
    expect(backups.map((b) => b.replace(/\..*$/, '')).sort()).toEqual(['main', 'master']);
    expect(readFileSync(join(dir, backups.find((b) => b.startsWith('main'))!), 'utf8')).toContain(`virtual_alias_maps = proxy:ldap:${dir}/aliases.cf`);

    const h = async (p: string) => (await postconf(dir, ['-h', p])).stdout.trim();
    const sm = 'socketmap:unix:/run/ldap-socketmap/socketmap.sock';
    expect(await h('virtual_alias_maps')).toBe(`${sm}:virtual_alias_maps, ${sm}:virtual_alias_maps_2`);
    expect(await h('relay_recipient_maps')).toBe(`${sm}:virtual_mailbox_maps`);
    expect(await h('virtual_uid_maps')).toBe(`ldap:${dir}/scope-one.cf`);
    expect(await h('smtpd_recipient_restrictions')).toBe('permit_mynetworks, check_recipient_access $my_access, reject_unauth_destination');
    expect(await h('my_access')).toBe(`${sm}:my_access`);
    const services = (await postconf(dir, ['-P'])).stdout;
    expect(services).toContain(`virtual/unix/virtual_mailbox_maps = ldap:${dir}/mailboxes.cf`);
    expect(services).toContain(`local/unix/alias_maps = ldap:${dir}/domain-list.cf`);
    expect(services).toContain(`submission/inet/smtpd_sender_login_maps = ${sm}:smtpd_sender_login_maps_2`);
    expect((await run('/usr/sbin/postfix', ['-c', dir, 'check'])).code).toBe(0);
    expect(readFileSync(join(out, 'ldap-socketmap.conf'), 'utf8')).toMatch(/^socketmap_listen = unix:\/run\/ldap-socketmap\/socketmap\.sock\n#[^\n]*\nunix_socket_group = postfix$/m);
  });

  it('restores both files when postfix check fails', async () => {
    const dir = makeTmpDir('migrate-apply-bad-');
    cpSync(pfDir, dir, { recursive: true });
    const main = readFileSync(join(dir, 'main.cf'), 'utf8').replace(/^queue_directory = .*$/m, `queue_directory = ${dir}/no-such-queue`);
    writeFileSync(join(dir, 'main.cf'), main);
    backdate(join(dir, 'main.cf'));
    const master = readFileSync(join(dir, 'master.cf'), 'utf8');
    const r = await cli(['migrate', '--postfix-config', dir, '--out', makeTmpDir('migrate-apply-bad-out-'), '--apply']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/postfix -c \S+ check failed .*restored from/);
    expect(readFileSync(join(dir, 'main.cf'), 'utf8')).toBe(main);
    expect(readFileSync(join(dir, 'master.cf'), 'utf8')).toBe(master);
    expect(existsSync(join(dir, 'no-such-queue'))).toBe(false);
  });
});
