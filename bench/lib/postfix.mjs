// Postfix's own postmap(1) as the real client: native `ldap:` tables and `socketmap:` against
// the daemon. Postfix sleeps before reading a main.cf or .cf file younger than about a second,
// so every file written here is backdated.
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, runSync } from './proc.mjs';

export const POSTMAP = '/usr/sbin/postmap';

function backdate(file) {
  const t = new Date(Date.now() - 10_000);
  utimesSync(file, t, t);
}

/** A directory with a minimal main.cf for `postmap -c DIR`. */
export function makeConfDir(dir) {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'main.cf');
  writeFileSync(file, 'compatibility_level = 3.6\nsmtputf8_enable = yes\n');
  backdate(file);
  return dir;
}

/** Writes DIR/NAME.cf from a `.cf.in` template with @LDAP_URL@ substituted. */
export function writeCf(dir, name, templateFile, vars) {
  const body = readFileSync(templateFile, 'utf8').replace(/@([A-Z][A-Z0-9_]*)@/g, (_m, k) => {
    if (vars[k] === undefined) throw new Error(`${templateFile}: no value for @${k}@`);
    return vars[k];
  });
  const file = join(dir, `${name}.cf`);
  writeFileSync(file, body);
  backdate(file);
  return file;
}

/** Parses `postmap -q -` output ("KEY\tVALUE" lines) into a Map. */
export function parseBatch(stdout) {
  const m = new Map();
  for (const line of stdout.toString('utf8').split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) m.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return m;
}

/**
 * `postmap -c DIR -q - TABLE < keys`: one process, keys looked up one after the other over one
 * table connection, exactly as Postfix programs do. Throws when the batch was cut short.
 */
export async function postmapBatch(confDir, table, keys, timeoutMs = 300_000) {
  const r = await run(POSTMAP, ['-c', confDir, '-q', '-', table], { input: keys.map((k) => `${k}\n`).join(''), timeoutMs, name: 'postmap' });
  if (/postmap: (fatal|panic):/.test(r.stderr)) throw new Error(`postmap -q - ${table} failed: ${r.stderr.slice(0, 1000)}`);
  return { ms: r.ms, found: parseBatch(r.stdout), stderr: r.stderr };
}

/** `postmap -c DIR -q KEY TABLE`: exit 0 found, 1 not found; a fatal line is an error. */
export async function postmapOne(confDir, table, key, timeoutMs = 120_000) {
  const r = await run(POSTMAP, ['-c', confDir, '-q', key, table], { timeoutMs, name: 'postmap' });
  if (/postmap: (fatal|panic):/.test(r.stderr)) throw new Error(`postmap -q ${key} ${table} failed: ${r.stderr.slice(0, 1000)}`);
  const out = r.stdout.toString('utf8');
  return { ms: r.ms, code: r.code, value: out.endsWith('\n') ? out.slice(0, -1) : out };
}

export function postfixVersion() {
  return runSync('/usr/sbin/postconf', ['-d', '-h', 'mail_version']);
}
