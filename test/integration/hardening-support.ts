/**
 * Small helpers shared by the hardening-*.test.ts files: a raw socketmap client that survives
 * hostile use, /metrics scraping, RSS of a process, and polling.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { startDaemon, type RunningDaemon } from '../support/daemon.js';
export { prng as rng } from '../support/prng.js';
import { prng as rng } from '../support/prng.js';

export function frame(s: string | Buffer): Buffer {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from(`${b.length}:`), b, Buffer.from(',')]);
}

/** A raw socketmap client: sends bytes, returns complete reply payloads, notices close. */
export class SmClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  connected = false;
  closedAt = 0;
  readonly sock: net.Socket;

  constructor(port: number, host = '127.0.0.1') {
    this.sock = net.connect(port, host);
    this.sock.setNoDelay(true);
    this.sock.on('connect', () => { this.connected = true; this.wake(); });
    this.sock.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.wake(); });
    this.sock.on('close', () => { this.closed = true; this.closedAt = Date.now(); this.wake(); });
    this.sock.on('error', () => undefined);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private wait(ms: number): Promise<void> {
    return new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      this.waiters.push(() => { clearTimeout(t); r(); });
    });
  }

  async ready(ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (!this.connected && !this.closed && Date.now() < end) await this.wait(100);
    if (!this.connected) throw new Error('could not connect');
  }

  send(b: Buffer | string): void {
    if (!this.sock.destroyed) this.sock.write(b);
  }

  /** One complete reply payload (utf8), or throws on close/timeout. */
  async reply(ms = 10_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const colon = this.buf.indexOf(0x3a);
      if (colon > 0) {
        const len = Number(this.buf.subarray(0, colon).toString());
        if (this.buf.length >= colon + 2 + len) {
          const payload = this.buf.subarray(colon + 1, colon + 1 + len).toString('utf8');
          if (this.buf[colon + 1 + len] !== 0x2c) throw new Error('bad reply terminator');
          this.buf = this.buf.subarray(colon + 2 + len);
          return payload;
        }
      }
      if (this.closed) throw new Error('connection closed');
      const left = end - Date.now();
      if (left <= 0) throw new Error('no reply');
      await this.wait(Math.min(left, 200));
    }
  }

  async ask(map: string, key: string | Buffer, ms?: number): Promise<string> {
    const k = Buffer.isBuffer(key) ? key : Buffer.from(key, 'utf8');
    this.send(frame(Buffer.concat([Buffer.from(`${map} `), k])));
    return this.reply(ms);
  }

  /** Bytes received and not yet taken as replies. */
  get pending(): Buffer {
    return this.buf;
  }

  async waitClosed(ms = 5_000): Promise<boolean> {
    const end = Date.now() + ms;
    while (!this.closed && Date.now() < end) await this.wait(Math.min(100, end - Date.now()));
    return this.closed;
  }

  end(): void {
    this.sock.destroy();
  }
}

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
