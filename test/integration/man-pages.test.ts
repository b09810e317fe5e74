/**
 * The man pages the package installs: lint-clean for the real `mandoc -T lint`, ldap-socketmap.conf(5)
 * documents exactly the settings the code accepts (its settings lists are generated from the
 * tables in src/config/settings.ts and limits.ts, read here from the build), and ldap-socketmap(8) covers
 * every command the CLI offers and every signal `serve` handles.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO, runCli } from '../support/daemon.js';
import { makeTmpDir } from '../support/tmp.js';
import { runCommand } from '../support/run.js';

const MANDOC = '/usr/bin/mandoc';
const PAGE8 = resolve(REPO, 'man/ldap-socketmap.8');
const PAGE5 = resolve(REPO, 'man/ldap-socketmap.conf.5');

const mandoc = (args: string[]) => runCommand(MANDOC, args).catch((e: Error) => { throw new Error(`${e.message} (Debian package 'mandoc')`); });

interface SettingDef { name: string }
interface ConfigModule {
  MAP_SETTING_DEFS: Record<string, SettingDef>;
  DAEMON_LIMIT_DEFS: Record<string, SettingDef>;
  DAEMON_KEYS: readonly string[];
}

async function configModule(): Promise<ConfigModule> {
  const load = async (m: string) => (await import(pathToFileURL(resolve(REPO, `dist/config/${m}.js`)).href)) as Partial<ConfigModule>;
  return { ...(await load('settings')), ...(await load('limits')), ...(await load('daemon-config')) } as ConfigModule;
}

/** The names a page documents: the first word of every `.TP` tag line (font macros stripped). */
function documentedNames(page: string): string[] {
  const lines = page.split('\n');
  const out: string[] = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    if (lines[i] !== '.TP') continue;
    // `.BI map. NAME . SETTING " = ..."` alternates fonts word by word: join the name's words.
    const tag = lines[i + 1]!.replace(/^\.(BR|BI|B|IR|I)\s+/, '').replace(/^map\. NAME( \. SETTING)?/, (_m, s?: string) => (s ? 'map.NAME.SETTING' : 'map.NAME'));
    const word = tag.split(/\s+/)[0]!.replace(/"/g, '').replace(/\\-/g, '-');
    out.push(word);
  }
  return out;
}

/** Names in ldap-socketmap.conf(5) that are settings (not FILES entries). */
function settingNames(page: string): string[] {
  return documentedNames(page.slice(page.indexOf('.SH DAEMON SETTINGS'), page.indexOf('.SH EXAMPLES')));
}

describe('man pages', () => {
  it('pass mandoc -T lint -W all without a single message', async () => {
    for (const page of [PAGE8, PAGE5]) {
      const r = await mandoc(['-T', 'lint', '-W', 'all', page]);
      expect(r.output, page).toBe('');
      expect(r.code, page).toBe(0);
    }
    // The linter is live: a broken page is reported.
    const bad = join(makeTmpDir('man-lint-'), 'bad.8');
    writeFileSync(bad, readFileSync(PAGE8, 'utf8').replace('.SH NAME', '.SH NAME\n.BR\n.TP\n.TP'));
    const broken = await mandoc(['-T', 'lint', '-W', 'all', bad]);
    expect(broken.output).toMatch(/WARNING|ERROR/);
    expect(broken.code).not.toBe(0);
  });

  it('ldap-socketmap.conf(5) is what scripts/gen-man-conf.mjs writes from the code (no drift)', async () => {
    const r = await runCommand(process.execPath, [resolve(REPO, 'scripts/gen-man-conf.mjs'), '--check']);
    expect(r.output).toBe('');
    expect(r.code).toBe(0);
  });

  it('ldap-socketmap.conf(5) documents exactly the settings the daemon accepts, with their defaults', async () => {
    const cfg = await configModule();
    const inCode = [
      ...cfg.DAEMON_KEYS,
      ...Object.values(cfg.MAP_SETTING_DEFS).map((d) => d.name),
      'map.NAME',
      'map.NAME.SETTING',
    ].sort();
    const page = readFileSync(PAGE5, 'utf8');
    const documented = settingNames(page).sort();
    expect(documented).toEqual(inCode);
    // Every limit in DAEMON_KEYS comes from DAEMON_LIMIT_DEFS: those are documented too.
    for (const d of Object.values(cfg.DAEMON_LIMIT_DEFS)) expect(documented).toContain(d.name);
    // Defaults as the code has them.
    const gen = (await import(pathToFileURL(resolve(REPO, 'scripts/gen-man-conf.mjs')).href)) as { renderDefs(defs: object): string };
    expect(page).toContain(gen.renderDefs(cfg.MAP_SETTING_DEFS));
    expect(page).toContain(gen.renderDefs(cfg.DAEMON_LIMIT_DEFS));
    expect(page).toMatch(/^\.BR cache_ttl " = 300"$/m);
    // The comparison is not vacuous: a page missing an entry differs.
    const without = page.replace(/\.TP\n\.BR pool_size [^\n]*\n/, '');
    expect(settingNames(without).sort()).not.toEqual(inCode);
  });

  it('ldap-socketmap(8) covers every command, every signal serve handles, the exit codes and files', async () => {
    const page = readFileSync(PAGE8, 'utf8');
    const help = await runCli(['--help']);
    const commands = [...help.output.matchAll(/^\s+ldap-socketmap ([a-z]+(?: [a-z]+)?)(?= |$)/gm)].map((m) => m[1]!).filter((c) => c !== 'completion');
    expect(commands.sort()).toEqual(['cache flush', 'check', 'explain', 'migrate', 'query', 'serve', 'verify']);
    for (const c of commands) expect(page, c).toMatch(new RegExp(`^\\.SS ${c}$`, 'm'));
    const serve = readFileSync(resolve(REPO, 'src/cli/serve.ts'), 'utf8');
    const signals = [...new Set([...serve.matchAll(/process\.on\('(SIG[A-Z0-9]+)'/g)].map((m) => m[1]!))];
    expect(signals.length).toBeGreaterThanOrEqual(4);
    const sigSection = page.slice(page.indexOf('.SH SIGNALS'), page.indexOf('.SH EXIT STATUS'));
    for (const s of signals) expect(sigSection, s).toContain(s);
    const exit = page.slice(page.indexOf('.SH EXIT STATUS'), page.indexOf('.SH ENVIRONMENT'));
    for (const code of ['0', '1', '2', '75']) expect(exit).toMatch(new RegExp(`\\b${code}\\b`));
    for (const f of ['/etc/ldap-socketmap/ldap-socketmap.conf', '/lib/systemd/system/ldap-socketmap.service', '/usr/lib/ldap-socketmap/']) {
      expect(page.slice(page.indexOf('.SH FILES'))).toContain(f);
    }
  });
});
