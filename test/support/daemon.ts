import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

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

/** One raw socketmap request to 127.0.0.1:PORT (or a unix socket path); resolves with the whole reply frame. */
export function socketmapFrame(port: number | string, map: string, key: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(`${map} ${key}`, 'utf8');
    const s = net.connect(typeof port === 'string' ? { path: port } : { host: '127.0.0.1', port }, () => {
      s.write(Buffer.concat([Buffer.from(`${payload.length}:`), payload, Buffer.from(',')]));
    });
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const colon = buf.indexOf(0x3a);
      if (colon < 0) return;
      const end = colon + 1 + Number(buf.toString('latin1', 0, colon)) + 1;
      if (buf.length >= end) {
        s.destroy();
        resolve(buf.subarray(0, end));
      }
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`socketmap connection closed before a reply (${JSON.stringify(key)})`)));
  });
}
