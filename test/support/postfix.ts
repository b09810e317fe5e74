/**
 * Postfix's own tools as a test oracle: `postmap -q` against a native `ldap:` table.
 *
 * Observed here (Postfix 3.7.11, Debian 12), for `postmap -c DIR -q KEY ldap:FILE`:
 *   found     exit 0, stdout = VALUE + "\n", stderr may carry warnings
 *             (e.g. "postmap: warning: dict_ldap_get_values[1]: DN ... not found, skipping ")
 *   notfound  exit 1, stdout empty, stderr empty or warnings only (no "fatal:")
 *   temp      exit 1, stdout empty, stderr ends with
 *             "postmap: fatal: table ldap:FILE: query error: <strerror text>"
 *             after ~1 s (every fatal exit of a Postfix program sleeps 1 s first).
 * With `-q -` (batch) the output is "KEY\tVALUE\n" per found key, and the first
 * temporary error aborts the whole batch with the same fatal line.
 *
 * Postfix re-reads (and sleeps 1 s for) any main.cf or .cf file modified less than about
 * a second ago, so every file written here is backdated by 10 s.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync, readFileSync, utimesSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES_DIR } from './slapd.js';
import { makeTmpDir } from './tmp.js';

export const POSTMAP = '/usr/sbin/postmap';
export const POSTFIX_LDAP_MODULE = '/usr/lib/postfix/postfix-ldap.so';

export interface PostmapResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type Outcome = 'found' | 'notfound' | 'temp' | 'other';

function requirePostfix(): void {
  if (!existsSync(POSTMAP)) throw new Error(`${POSTMAP} not found: install the Debian package 'postfix' (see .ci/run)`);
  if (!existsSync(POSTFIX_LDAP_MODULE)) throw new Error(`${POSTFIX_LDAP_MODULE} not found: install the Debian package 'postfix-ldap' (see .ci/run)`);
}

/** Set a file's mtime/atime 10 s into the past so Postfix does not wait for it to settle. */
export function backdate(file: string, seconds = 10): void {
  const t = new Date(Date.now() - seconds * 1000);
  utimesSync(file, t, t);
}

/**
 * A temp directory holding a minimal main.cf for `postmap -c DIR`.
 * Defaults: compatibility_level = 3.6, smtputf8_enable = yes; any parameter set in
 * `extraMainCf` replaces the default of the same name. The directory lives under the
 * per-process scratch root (removed when the worker process is gone).
 */
export async function makePostfixConfigDir(extraMainCf = ''): Promise<string> {
  requirePostfix();
  const dir = makeTmpDir('pfconf-');
  const extra = extraMainCf.replace(/\r\n/g, '\n');
  const overridden = new Set(
    extra.split('\n').map((l) => /^([A-Za-z0-9_]+)\s*=/.exec(l)?.[1]).filter((x): x is string => !!x),
  );
  const defaults: Record<string, string> = {
    compatibility_level: '3.6',
    smtputf8_enable: 'yes',
  };
  const lines = Object.entries(defaults)
    .filter(([k]) => !overridden.has(k))
    .map(([k, v]) => `${k} = ${v}`);
  const text = lines.join('\n') + '\n' + (extra ? extra.trimEnd() + '\n' : '');
  const file = join(dir, 'main.cf');
  writeFileSync(file, text);
  backdate(file);
  return dir;
}

function tableArg(table: string): string {
  // Accept "ldap:/path", "socketmap:...", "tcp:..." or a bare absolute path (taken as ldap:).
  return table.startsWith('/') ? `ldap:${table}` : table;
}

function runPostmap(args: string[], input: string | undefined, timeoutMs: number): Promise<PostmapResult> {
  return new Promise((res, rej) => {
    // postmap does not ignore SIGPIPE (Postfix's daemons do): a server dropping a TLS connection
    // mid-write would kill it silently (exit 141). Ignored here, as in the daemons, so that the
    // outcome is a temporary error with its message. An ignored signal stays ignored across exec.
    const child = spawn('/bin/sh', ['-c', `trap '' PIPE; exec "$0" "$@"`, POSTMAP, ...args], { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.once('error', (e) => { clearTimeout(timer); rej(new Error(`postmap could not be run: ${e.message}`)); });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (timedOut || signal) {
        rej(new Error(`postmap ${args.join(' ')} killed (${timedOut ? `timeout after ${timeoutMs} ms` : signal}); stderr: ${stderr}`));
        return;
      }
      res({ code: code ?? 1, stdout, stderr });
    });
    if (input !== undefined && child.stdin) {
      // postmap stops reading stdin at the first temporary error: ignore EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(input);
    }
  });
}

/** `postmap -c DIR -q KEY TABLE` (TABLE like `ldap:/path/aliases.cf`; a bare path means ldap:). */
export async function postmapQuery(confDir: string, table: string, key: string, timeoutMs = 120_000): Promise<PostmapResult> {
  requirePostfix();
  return runPostmap(['-c', confDir, '-q', key, tableArg(table)], undefined, timeoutMs);
}

/**
 * One `postmap -q KEY` per key with bounded parallelism (a batch stops at the first temporary
 * error, so this is what differential tests should use). Map keys are the keys as given.
 */
export async function postmapQueryAll(
  confDir: string,
  table: string,
  keys: string[],
  parallel = 8,
): Promise<Map<string, PostmapResult>> {
  const results = new Map<string, PostmapResult>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++] as string;
      results.set(key, await postmapQuery(confDir, table, key));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, keys.length)) }, worker));
  // Return in input order.
  return new Map(keys.map((k) => [k, results.get(k) as PostmapResult]));
}

/** `postmap -c DIR -q - TABLE` with the keys on stdin, one per line. Output lines are "KEY\tVALUE". */
export async function postmapBatch(confDir: string, table: string, keys: string[], timeoutMs = 300_000): Promise<PostmapResult> {
  requirePostfix();
  return runPostmap(['-c', confDir, '-q', '-', tableArg(table)], keys.map((k) => k + '\n').join(''), timeoutMs);
}

/** Parse postmapBatch stdout into key → value. */
export function parseBatch(stdout: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    const tab = line.indexOf('\t');
    if (tab < 0) continue;
    m.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return m;
}

const TEMP_RE = /(^|\n)postmap: fatal: .*(query error|lookup error)/;

/**
 * found: exit 0 with output; notfound: exit 1, no fatal line; temp: exit 1 with
 * "postmap: fatal: table ...: query error" (or "lookup error"); anything else: other.
 */
export function classify(r: PostmapResult): Outcome {
  if (r.code === 0 && r.stdout.length > 0) return 'found';
  if (r.code === 1 && TEMP_RE.test(r.stderr)) return 'temp';
  if (r.code === 1 && r.stdout === '' && !/(^|\n)postmap: (fatal|panic): /.test(r.stderr)) return 'notfound';
  return 'other';
}

/** The value of a found single-key result (stdout without its trailing newline). */
export function valueOf(r: PostmapResult): string {
  return r.stdout.endsWith('\n') ? r.stdout.slice(0, -1) : r.stdout;
}

/** What `postmap -q` answered: how it ended, and the value when found. */
export interface Answer {
  kind: Outcome;
  value: string;
}

export function answerFrom(r: PostmapResult): Answer {
  const kind = classify(r);
  return { kind, value: kind === 'found' ? valueOf(r) : '' };
}

/** `postmap -q KEY TABLE` as an Answer. */
export async function answerOf(confDir: string, table: string, key: string): Promise<Answer> {
  return answerFrom(await postmapQuery(confDir, table, key));
}

const PLACEHOLDER_RE = /@([A-Z][A-Z0-9_]*)@/g;

/** Substitute `@NAME@` placeholders; throws if one has no value. */
export function expandTemplate(body: string, vars: Record<string, string>): string {
  return body.replace(PLACEHOLDER_RE, (_m, name: string) => {
    const v = vars[name];
    if (v === undefined) throw new Error(`template placeholder @${name}@ has no value`);
    return v;
  });
}

/**
 * Write DIR/NAME from a template body with `@LDAP_URL@`-style placeholders (an unknown
 * placeholder is an error), backdated so Postfix does not sleep. Returns the file's path.
 */
export function writeCf(dir: string, name: string, body: string, vars: Record<string, string>): string {
  const file = join(dir, name);
  writeFileSync(file, expandTemplate(body, vars));
  backdate(file);
  return file;
}

/** Read test/fixtures/ldap/<name>.cf.in (name with or without `.cf.in`). */
export function cfTemplate(name: string): string {
  const base = name.replace(/\.cf\.in$/, '').replace(/\.cf$/, '');
  return readFileSync(join(FIXTURES_DIR, `${base}.cf.in`), 'utf8');
}

/** writeCf from a fixture template: writes DIR/<name>.cf and returns its path. */
export function writeFixtureCf(dir: string, name: string, vars: Record<string, string>): string {
  const base = name.replace(/\.cf\.in$/, '').replace(/\.cf$/, '');
  return writeCf(dir, `${base}.cf`, cfTemplate(base), vars);
}

/** `postconf -d mail_version`, e.g. "3.7.11". */
export function postfixVersion(): string {
  const r = spawnSync('/usr/sbin/postconf', ['-d', '-h', 'mail_version'], { encoding: 'utf8' });
  return (r.stdout ?? '').trim();
}
