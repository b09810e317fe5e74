import { execFile } from 'node:child_process';

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface CommandRun {
  /** Exit code; null when a signal ended the command. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout then stderr, for checks that do not care which one said it. */
  output: string;
}

/**
 * Runs a command to its end (stdin gets `input`, or is closed at once). Rejects when it cannot
 * be started or outlives `timeoutMs` (default 30 s); any exit, even by a signal, resolves.
 */
export function runCommand(cmd: string, args: string[], opts: RunOptions = {}): Promise<CommandRun> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024, cwd: opts.cwd, ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
        reject(new Error(`${cmd}: ${err.message}`));
        return;
      }
      if (err?.killed) {
        reject(new Error(`${cmd} ${args.join(' ')}: killed after ${timeoutMs} ms\n${stdout}${stderr}`));
        return;
      }
      const e = err as (Error & { code?: number | null; signal?: NodeJS.Signals | null }) | null;
      resolve({ code: e ? (e.code ?? null) : 0, signal: e?.signal ?? null, stdout: String(stdout), stderr: String(stderr), output: `${stdout}${stderr}` });
    });
    // A command that stops reading early (or never reads) must not fail the run with EPIPE.
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
  });
}
