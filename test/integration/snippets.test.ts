/**
 * postfix-snippets/ is what admins copy: it must be accepted by Postfix without a single
 * warning, and the example daemon config and ldap .cf files must pass `ldap-socketmap check`.
 * (The end-to-end mail test runs mail through exactly these files.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO, runCli } from '../support/daemon.js';
import { backdate } from '../support/postfix.js';
import { POSTCONF, parseMainCf, parseMasterCf } from '../support/postfix-instance.js';
import { startSlapd, directoryLdif, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';
import { runCommand } from '../support/run.js';
import { fleetAliasesCf, fleetDaemonConf, fleetSnippet } from '../support/fleet.js';

const SNIPPETS = resolve(REPO, 'postfix-snippets');
const STOCK_MASTER_CF = '/etc/postfix/master.cf';

function snippet(name: string): string {
  return readFileSync(join(SNIPPETS, name), 'utf8');
}

/**
 * A config directory as an admin would build it: a minimal main.cf plus the snippet
 * appended; the stock Debian master.cf with its `virtual` entry replaced by the snippet's;
 * the example ldap .cf files next to them (postconf checks their parameter names too).
 * `/etc/postfix/` is replaced by the directory. With `before`, main.cf names the .cf files
 * as ldap: tables instead of the daemon's socketmaps: the configuration before migrating.
 */
function buildConfigDir(before = false): string {
  const dir = makeTmpDir(before ? 'snippet-before-' : 'snippet-after-');
  const here = (text: string) => text.replaceAll('/etc/postfix/', `${dir}/`);
  for (const name of ['ldap-aliases.cf', 'ldap-mailboxes.cf']) writeFileSync(join(dir, name), snippet(name));
  let main = here(snippet('main.cf'));
  if (before) {
    main = main
      .replace('socketmap:inet:127.0.0.1:9054:aliases', `ldap:${dir}/ldap-aliases.cf`)
      .replace('socketmap:inet:127.0.0.1:9054:mailboxes', `ldap:${dir}/ldap-mailboxes.cf`);
  }
  writeFileSync(join(dir, 'main.cf'), `# base\ncompatibility_level = 3.6\nmyhostname = mx.example.test\n\n${main}`);
  const out: string[] = [];
  let skipping = false;
  for (const l of readFileSync(STOCK_MASTER_CF, 'utf8').split('\n')) {
    if (/^virtual\s+unix\s/.test(l)) { skipping = true; continue; }
    if (skipping && /^\s+\S/.test(l) && !/^\s*#/.test(l)) continue; // its -o lines, if any
    skipping = false;
    out.push(l);
  }
  writeFileSync(join(dir, 'master.cf'), out.join('\n').trimEnd() + '\n\n' + here(snippet('master.cf')));
  for (const f of ['main.cf', 'master.cf', 'ldap-aliases.cf', 'ldap-mailboxes.cf']) backdate(join(dir, f));
  return dir;
}

describe('postfix-snippets accepted by postconf', () => {
  let dir: string;
  beforeAll(() => {
    if (!existsSync(STOCK_MASTER_CF)) throw new Error(`${STOCK_MASTER_CF} missing: install the Debian package 'postfix'`);
    dir = buildConfigDir();
  });

  it('before the switch: the example .cf files as ldap: tables pass postconf -n without warnings', async () => {
    const before = buildConfigDir(true);
    const r = await runCommand(POSTCONF, ['-c', before, '-n']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`virtual_alias_maps = ldap:${before}/ldap-aliases.cf`);
    expect(r.stdout).toContain(`virtual_mailbox_maps = ldap:${before}/ldap-mailboxes.cf`);
  });

  it('main.cf: postconf -n shows every snippet parameter and warns about nothing', async () => {
    const r = await runCommand(POSTCONF, ['-c', dir, '-n']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const shown = parseMainCf(r.stdout);
    const params = parseMainCf(snippet('main.cf').replaceAll('/etc/postfix/', `${dir}/`));
    for (const [k, v] of params) expect(shown.get(k), k).toBe(v);
    expect(params.get('virtual_alias_maps')).toBe('socketmap:inet:127.0.0.1:9054:aliases');
    expect(params.get('virtual_mailbox_maps')).toBe('socketmap:inet:127.0.0.1:9054:mailboxes');
    expect(params.get('virtual_transport')).toBe('virtual');
    expect(params.get('virtual_uid_maps')).toMatch(/^static:\d+$/);
    expect(params.get('virtual_gid_maps')).toMatch(/^static:\d+$/);
    for (const k of ['virtual_mailbox_domains', 'local_recipient_maps', 'virtual_mailbox_base', 'virtual_alias_domains']) {
      expect(params.has(k), k).toBe(true);
    }
  });

  it('main.cf: every parameter name is one Postfix knows (postconf -d)', async () => {
    const names = [...parseMainCf(snippet('main.cf')).keys()];
    const r = await runCommand(POSTCONF, ['-c', dir, '-d', ...names]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('master.cf: postconf -M parses the combined file without warnings; virtual(8) gets the ldap: override', async () => {
    const r = await runCommand(POSTCONF, ['-c', dir, '-M']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const virtual = r.stdout.split('\n').filter((l) => /^virtual\s+unix\s/.test(l));
    expect(virtual).toEqual([
      expect.stringMatching(/^virtual\s+unix\s+-\s+n\s+n\s+-\s+-\s+virtual -o virtual_mailbox_maps=ldap:\S+\/ldap-mailboxes\.cf$/),
    ]);
    const p = await runCommand(POSTCONF, ['-c', dir, '-P', 'virtual/unix/virtual_mailbox_maps']);
    expect(p.stderr).toBe('');
    expect(p.stdout.trim()).toBe(`virtual/unix/virtual_mailbox_maps = ldap:${dir}/ldap-mailboxes.cf`);
    expect(snippet('master.cf')).toContain('-o virtual_mailbox_maps=ldap:/etc/postfix/ldap-mailboxes.cf');
    // The snippet file holds exactly one service entry.
    expect(parseMasterCf(snippet('master.cf')).map((e) => e.key)).toEqual(['virtual/unix']);
  });

  it('master.cf: the override reads the same file the daemon serves as map "mailboxes"', () => {
    const conf = snippet('ldap-socketmap.conf');
    expect(conf).toMatch(/^map\.mailboxes = \/etc\/postfix\/ldap-mailboxes\.cf$/m);
    expect(conf).toMatch(/^map\.aliases = \/etc\/postfix\/ldap-aliases\.cf$/m);
    expect(conf).toMatch(/^socketmap_listen = inet:127\.0\.0\.1:9054$/m);
  });
});

describe('example daemon config and ldap .cf files', () => {
  let slapd: Slapd | undefined;
  let conf = '';
  beforeAll(async () => {
    slapd = await startSlapd({ ldif: directoryLdif() });
    const dir = makeTmpDir('snippet-daemon-');
    chmodSync(dir, 0o755);
    for (const name of ['ldap-aliases.cf', 'ldap-mailboxes.cf']) {
      const text = snippet(name).replace(/^server_host = .*$/m, `server_host = ${slapd.url}`);
      writeFileSync(join(dir, name), text);
    }
    // Only paths and the metrics listener differ from the example.
    conf = join(dir, 'ldap-socketmap.conf');
    writeFileSync(
      conf,
      snippet('ldap-socketmap.conf')
        .replaceAll('/etc/postfix/', `${dir}/`)
        .replace(/^metrics_listen = .*$/m, 'metrics_listen ='),
    );
  });
  afterAll(async () => {
    await slapd?.destroy();
  });

  it('pass `ldap-socketmap check` with no warning', async () => {
    const r = await runCli(['check', '--config', conf]);
    const out = r.stdout + r.stderr;
    expect(r.code, out).toBe(0);
    expect(out).not.toMatch(/warning|error|FAILED/i);
    expect(out).toMatch(/map aliases: .*ldap-aliases\.cf/);
    expect(out).toMatch(/map mailboxes: .*ldap-mailboxes\.cf/);
  });

  it('answer the documented lookups (`ldap-socketmap query`)', async () => {
    const [sales, alice, tagged] = await Promise.all([
      runCli(['query', '--config', conf, 'aliases', 'sales@example.org']),
      runCli(['query', '--config', conf, 'mailboxes', 'alice@example.org']),
      runCli(['query', '--config', conf, 'mailboxes', 'alice+tag@example.org']),
    ]);
    expect(sales.stdout.trim()).toBe('alice@example.org,robert@example.org,Bob.Builder@Example.ORG,bob@example.org,sales-archive@elsewhere.net');
    expect(alice.stdout.trim()).toBe('alice');
    // The example turns on fallback = address with recipient_delimiter + for mailboxes, and
    // propagate_extension = no: the mailbox name comes back without the extension.
    expect(tagged.stdout.trim()).toBe('alice');
  });

  it('`query NAME -` reads keys from stdin like postmap -q -; a key starting with "-" goes after "--"', async () => {
    const batch = await runCli(['query', '--config', conf, 'mailboxes', '-'], { input: 'alice@example.org\nnobody@example.org\n-dash@example.org\n' });
    expect(batch.stderr).toBe('');
    expect(batch.stdout).toBe('alice@example.org\talice\n');
    expect(batch.code).toBe(0);
    // Not found (exit 1), but asked: before, yargs took "-dash@example.org" for an option (exit 2).
    const dash = await runCli(['query', '--config', conf, 'mailboxes', '--', '-dash@example.org']);
    expect({ code: dash.code, stderr: dash.stderr }).toEqual({ code: 1, stderr: '' });
    const explained = await runCli(['explain', '--json', '--config', conf, 'mailboxes', '--', '-dash@example.org']);
    expect((JSON.parse(explained.stdout) as { key: string }).key).toBe('-dash@example.org');
  });
});

describe('postfix-snippets/fleet: the local replica on each MTA host', () => {
  // fleet.test.ts runs these files against a real provider and consumer; here each is checked
  // on its own, as an admin would before starting anything.
  let slapd: Slapd | undefined;
  beforeAll(async () => {
    slapd = await startSlapd({ ldif: directoryLdif(), ldapi: true });
  });
  afterAll(async () => {
    await slapd?.destroy();
  });

  it('slapd-consumer.conf, as copied, passes slaptest in a consumer slapd.conf', async () => {
    const dir = makeTmpDir('snippet-fleet-slapd-');
    const text = fleetSnippet('slapd-consumer.conf');
    const at = text.search(/^# --- database section/m);
    expect(at).toBeGreaterThan(0);
    const conf = join(dir, 'slapd.conf');
    writeFileSync(conf, [
      ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include /etc/ldap/schema/${s}.schema`),
      `include ${join(REPO, 'test/fixtures/ldap/socketmap-test.schema')}`,
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      text.slice(0, at),
      'database mdb',
      'suffix "dc=example,dc=org"',
      'rootdn "cn=admin,dc=example,dc=org"',
      `directory ${dir}`,
      text.slice(at),
    ].join('\n'));
    const r = await runCommand('/usr/sbin/slaptest', ['-u', '-f', conf]);
    expect(r.output).toMatch(/config file testing succeeded/);
    expect(r.code, r.output).toBe(0);
    for (const directive of [/^syncrepl rid=\d+$/m, /^\s+type=refreshAndPersist$/m, /^updateref /m, /^overlay syncprov$/m, /^authz-regexp /m, /^access to \*$/m]) {
      expect(text).toMatch(directive);
    }
  });

  it('ldap-socketmap.conf and ldap-aliases.cf (ldapi, SASL EXTERNAL) pass `ldap-socketmap check --strict` and answer', async () => {
    const dir = makeTmpDir('snippet-fleet-');
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'ldap-aliases.cf'), fleetAliasesCf(slapd!));
    const conf = join(dir, 'ldap-socketmap.conf');
    writeFileSync(conf, fleetDaemonConf(dir, { metrics_listen: '' }));
    expect(fleetSnippet('ldap-aliases.cf')).toMatch(/^server_host = ldapi:\/\/%2F\S+$/m);
    const r = await runCli(['check', '--strict', '--config', conf]);
    const out = r.stdout + r.stderr;
    expect(r.code, out).toBe(0);
    expect(out).not.toMatch(/warning|error|FAILED/i);
    expect(out).toMatch(/map aliases: .*ldap-aliases\.cf/);
    const sales = await runCli(['query', '--config', conf, 'aliases', 'sales@example.org']);
    expect(sales.stdout.trim()).toBe('alice@example.org,robert@example.org,Bob.Builder@Example.ORG,bob@example.org,sales-archive@elsewhere.net');
  });
});
