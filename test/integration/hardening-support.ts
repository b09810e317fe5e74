/**
 * Small helpers shared by the hardening-*.test.ts files: RSS and fd limit of a process,
 * a bounded worker pool, the daemon started with its admin listener.
 */
import { readFileSync } from 'node:fs';
import { startDaemon, type RunningDaemon } from '../support/daemon.js';
export { prng as rng } from '../support/prng.js';
import { prng as rng } from '../support/prng.js';

/** VmRSS of a process in kB (Linux /proc). */
export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Open file descriptors of a process. */
export function fdLimit(pid: number): number {
  const m = /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Runs `f` over `items` with at most `n` at once. */
export async function pool<T, R>(items: T[], n: number, f: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!, i);
    }
  }));
  return out;
}


/** startDaemon with `--metrics 127.0.0.1:0` added; waits for the metrics line and sets metricsPort. */
export async function startDaemonWithMetrics(args: string[], opts: Parameters<typeof startDaemon>[1] = {}): Promise<RunningDaemon> {
  const d = await startDaemon([...args, '--metrics', '127.0.0.1:0'], opts);
  const line = await d.waitForLog(/metrics on \S+:\d+/);
  d.metricsPort = Number(/:(\d+)\s*$/.exec(line)![1]);
  return d;
}
