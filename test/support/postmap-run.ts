/**
 * postmap run the way the random differential tests need it: not "found or not" (postfix.ts)
 * but everything a run can end in, including Postfix's own fatal errors and crashes, so that
 * those are reported and never compared as answers.
 */
import { spawn } from 'node:child_process';
import { POSTMAP } from './postfix.js';

export interface PostmapRun {
  code: number;
  stdout: Buffer;
  /** stderr, cut after about `stderrCap` characters. */
  stderr: string;
  /** The fatal line, if postmap died with one (it is killed right after it). */
  fatal?: string;
  /** Lines of stderr matching `countRe` (verbose lookups). */
  lookups: number;
  /** Signal or odd exit code that ended postmap (a crash), if any. */
  crashed?: string;
}

export interface PostmapRunOptions {
  /** Written to stdin (for `-q -`); stdin is closed otherwise. */
  input?: string;
  /** Lines of stderr to count into `lookups`. */
  countRe?: RegExp;
  timeoutMs: number;
  stderrCap: number;
  /**
   * A command postmap runs under (e.g. `ip netns exec NS`); it must exec, not fork, so that
   * killing the child at a fatal line kills postmap itself.
   */
  prefix?: string[];
}

/** The fatal line of a lookup that failed temporarily (the ldap: or socketmap: table said so). */
export const QUERY_ERROR_RE = /^postmap: fatal: table .*: query error/;

/** `postmap -c CONFDIR ARGS`; rejects only when it cannot be run or times out. */
export function postmapRun(confDir: string, args: string[], opts: PostmapRunOptions): Promise<PostmapRun> {
  return new Promise((resolve, reject) => {
    const argv = [...(opts.prefix ?? []), POSTMAP, '-c', confDir, ...args];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let errText = '';
    let partial = '';
    let lookups = 0;
    let fatal: string | undefined;
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs);
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => {
      const s = b.toString('utf8');
      if (errText.length < opts.stderrCap) errText += s;
      partial += s;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        if (opts.countRe?.test(line)) lookups++;
        if (fatal === undefined && /^postmap: (fatal|panic): /.test(line)) {
          fatal = line;
          // Postfix sleeps 1 s before a fatal exit; nothing else is printed after the line.
          child.kill('SIGKILL');
        }
      }
    });
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new Error(`postmap ${args.join(' ')} timed out`));
        return;
      }
      const stdout = Buffer.concat(out);
      // Postfix itself can crash (libldap assertion, SIGSEGV): reported, never compared.
      if (signal && fatal === undefined) resolve({ code: 128, stdout, stderr: errText, lookups, crashed: signal });
      else if (fatal === undefined && code !== null && code > 1) resolve({ code, stdout, stderr: errText, lookups, crashed: `exit ${code}` });
      else resolve({ code: fatal !== undefined ? 1 : code ?? 1, stdout, stderr: errText, fatal, lookups });
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {});
      child.stdin!.end(opts.input);
    }
  });
}

export type PostmapOutcome = 'found' | 'notfound' | 'temp' | 'crash' | 'other';

export function postmapOutcome(r: PostmapRun): PostmapOutcome {
  if (r.crashed !== undefined) return 'crash';
  if (r.fatal !== undefined) return QUERY_ERROR_RE.test(r.fatal) ? 'temp' : 'other';
  if (r.code === 0 && r.stdout.length > 0) return 'found';
  if (r.code === 1 && r.stdout.length === 0) return 'notfound';
  return 'other';
}

/** The outcome in words, with the value where there is one: what the differential tests compare. */
export function showPostmapRun(r: PostmapRun): string {
  const o = postmapOutcome(r);
  if (o === 'found') return `found ${JSON.stringify(r.stdout.toString('utf8'))}`;
  if (o === 'crash') return `crash (${r.crashed})`;
  if (o === 'other') return `other code=${r.code} ${JSON.stringify(r.stdout.toString('utf8'))} ${r.fatal ?? ''}`;
  return o;
}
