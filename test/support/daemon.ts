import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CommandRun, runCommand, type RunOptions } from './run.js';
import { metricsText, metricValue } from './metrics.js';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '../..');
export const CLI = resolve(REPO, 'dist/cli/main.js');

export interface RunningDaemon {
  proc: ChildProcess;
  /** socketmap listeners' inet ports, in the order given. */
  ports: number[];
  /** tcp_table listeners' inet ports, in the order given. */
  tcpPorts: number[];
  metricsPort?: number;
  log: string[];
  /** `socketmap:inet:127.0.0.1:PORT:NAME` for the first socketmap listener. */
  table(name: string): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  waitForLog(re: RegExp, ms?: number): Promise<string>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => { for (const p of running) p.kill('SIGKILL'); });

/** Runs the built CLI (`node dist/cli/main.js ARGS`) to its end, like runCommand. */
export function runCli(args: string[], opts: RunOptions = {}): Promise<CommandRun> {
  return runCommand(process.execPath, [CLI, ...args], opts);
}

/**
 * Starts the built CLI (`node dist/cli/main.js serve ...`) — the program users run — and waits
 * for its "ready:" line, from which the ports bound with port 0 are read.
 */
export async function startDaemon(
  args: string[],
  /** prefix: a command the daemon runs under, e.g. `ip netns exec NS` (it must exec, not fork). */
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; prefix?: string[] } = {},
): Promise<RunningDaemon> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run the build (npm test runs tsc first)`);
  const argv = [...(opts.prefix ?? []), process.execPath, CLI, 'serve', ...args];
  const proc = spawn(argv[0] as string, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, JOURNAL_STREAM: '', ...opts.env },
  });
  running.add(proc);
  const log: string[] = [];
  let buf = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    buf += d.toString('utf8');
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      log.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    for (const l of listeners) l();
  };
  proc.stderr!.on('data', onData);
  proc.stdout!.on('data', onData);
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => { running.delete(proc); for (const l of listeners) l(); r(code); }));

  const waitForLog = (re: RegExp, ms = opts.timeoutMs ?? 15_000): Promise<string> =>
    new Promise((resolveWait, reject) => {
      const check = () => {
        const hit = log.find((l) => re.test(l));
        if (hit !== undefined) { done(); resolveWait(hit); return; }
        if (proc.exitCode !== null) { done(); reject(new Error(`daemon exited (${proc.exitCode}) before ${re}:\n${log.join('\n')}`)); }
      };
      const timer = setTimeout(() => { done(); reject(new Error(`timed out waiting for ${re}:\n${log.join('\n')}`)); }, ms);
      const done = () => { clearTimeout(timer); listeners.delete(check); };
      listeners.add(check);
      check();
    });

  const ready = await waitForLog(/ready: /);
  const listening = ready.replace(/^.*listening on /, '');
  const ports: number[] = [];
  const tcpPorts: number[] = [];
  for (const m of listening.matchAll(/(socketmap|tcp_table) inet:[^ ,]*:(\d+)/g)) (m[1] === 'socketmap' ? ports : tcpPorts).push(Number(m[2]));
  // The admin listener starts after the socketmap listeners: wait for its line when asked for.
  if (args.includes('--metrics') && args[args.indexOf('--metrics') + 1] !== '') await waitForLog(/metrics on /);
  const metrics = /metrics on [^ ]*:(\d+)/.exec(log.join('\n'));
  return {
    proc,
    ports,
    tcpPorts,
    metricsPort: metrics ? Number(metrics[1]) : undefined,
    log,
    table: (name) => `socketmap:inet:127.0.0.1:${ports[0]}:${name}`,
    waitForLog,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

export type DaemonWithMetrics = RunningDaemon & {
  metricsPort: number;
  /** Scrapes /metrics now: the sum of `name` over the series whose labels include `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
};

/** startDaemon with its admin listener on `--metrics 127.0.0.1:0`; resolves once that listener is up. */
export async function startDaemonWithMetrics(args: string[], opts: Parameters<typeof startDaemon>[1] = {}): Promise<DaemonWithMetrics> {
  const d = await startDaemon([...args, '--metrics', '127.0.0.1:0'], opts);
  if (d.metricsPort === undefined) throw new Error(`no "metrics on" line from the daemon:\n${d.log.join('\n')}`);
  const port = d.metricsPort;
  return Object.assign(d, {
    metricsPort: port,
    metric: async (name: string, labels: Record<string, string> = {}) => metricValue(await metricsText(port), name, labels),
  });
}
