/**
 * Small helpers shared by the hardening-*.test.ts files: /metrics scraping, RSS of a process.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { startDaemon, type RunningDaemon } from '../support/daemon.js';
export { prng as rng } from '../support/prng.js';
import { prng as rng } from '../support/prng.js';

export function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export async function metricsText(port: number): Promise<string> {
  return (await httpGet(port, '/metrics')).body;
}

/** Sum of the samples of `name` whose labels include all of `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[3] ?? '';
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) sum += Number(m[4]);
  }
  return sum;
}

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
