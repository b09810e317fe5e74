/**
 * The daemon side: a socketmap client (one request at a time per connection, a few
 * connections), and starting a daemon of our own with the same configuration on a free
 * loopback port when no running one is named.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { encodeNetstring, NetstringDecoder } from '../protocol/netstring.js';
import type { Listen } from '../config/listen.js';
import { socketmapAnswer, type Answer } from './answer.js';

/** The reply limit plus room: verify reports what the daemon sends, whatever its size. */
const MAX_REPLY = 16 * 1024 * 1024;

class Connection {
  #socket: net.Socket | undefined;
  #decoder = new NetstringDecoder(MAX_REPLY);
  #waiting: ((a: Answer) => void) | undefined;

  constructor(private readonly listen: Listen) {}

  async #open(): Promise<net.Socket> {
    if (this.#socket !== undefined && !this.#socket.destroyed) return this.#socket;
    this.#decoder = new NetstringDecoder(MAX_REPLY);
    const s = this.listen.kind === 'unix' ? net.connect({ path: this.listen.path }) : net.connect({ host: this.listen.host, port: this.listen.port });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    s.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try { frames = this.#decoder.push(chunk); } catch (e) { this.#fail(`bad reply: ${(e as Error).message}`); return; }
      for (const f of frames) {
        const w = this.#waiting;
        this.#waiting = undefined;
        w?.(socketmapAnswer(f.toString('utf8')));
      }
    });
    s.on('error', (e) => this.#fail(e.message));
    s.on('close', () => this.#fail('connection closed by the daemon'));
    this.#socket = s;
    return s;
  }

  #fail(why: string): void {
    this.#socket?.destroy();
    this.#socket = undefined;
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.({ kind: 'error', detail: why });
  }

  async ask(map: string, key: string, timeoutMs: number): Promise<Answer> {
    let s: net.Socket;
    try { s = await this.#open(); } catch (e) { return { kind: 'error', detail: `cannot connect to the daemon: ${(e as Error).message}` }; }
    return new Promise<Answer>((resolve) => {
      const timer = setTimeout(() => this.#fail(`no reply within ${timeoutMs} ms`), timeoutMs);
      this.#waiting = (a) => { clearTimeout(timer); resolve(a); };
      s.write(encodeNetstring(Buffer.from(`${map} ${key}`, 'utf8')));
    });
  }

  close(): void {
    this.#socket?.destroy();
  }
}

/** A few socketmap connections to one daemon; each carries one request at a time. */
export class SocketmapPool {
  #free: Connection[];
  #queue: ((c: Connection) => void)[] = [];
  readonly #all: Connection[];

  constructor(listen: Listen, size: number) {
    this.#all = Array.from({ length: Math.max(1, size) }, () => new Connection(listen));
    this.#free = [...this.#all];
  }

  async ask(map: string, key: string, timeoutMs = 120_000): Promise<Answer> {
    const c = this.#free.pop() ?? (await new Promise<Connection>((r) => this.#queue.push(r)));
    try {
      return await c.ask(map, key, timeoutMs);
    } finally {
      const next = this.#queue.shift();
      if (next) next(c);
      else this.#free.push(c);
    }
  }

  close(): void {
    for (const c of this.#all) c.close();
  }
}

export interface OwnDaemon {
  listen: Listen;
  log: string[];
  stop(): Promise<void>;
}

/** The CLI entry point (dist/cli/main.js), run as a child with the same Node. */
export function cliPath(): string {
  return fileURLToPath(new URL('../cli/main.js', import.meta.url));
}

/**
 * `serve --config FILE` on 127.0.0.1 port 0, without the config's other listeners (they may be
 * in use by the production daemon); resolves once it logged "ready:" with its port.
 */
export async function startOwnDaemon(configFile: string, timeoutMs = 30_000): Promise<OwnDaemon> {
  const child: ChildProcess = spawn(process.execPath, [
    cliPath(), 'serve', '--config', configFile,
    '--socketmap', 'inet:127.0.0.1:0', '--metrics', '', '--set', 'tcp_table_listen=',
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, JOURNAL_STREAM: '' } });
  const log: string[] = [];
  let buf = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`the daemon did not get ready within ${timeoutMs} ms:\n${log.join('\n')}`)); }, timeoutMs);
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        log.push(line);
        const m = /ready: .*socketmap inet:[^ ,]*:(\d+)/.exec(line);
        if (m) { clearTimeout(timer); resolve(Number(m[1])); }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the daemon exited (${code}) before it was ready:\n${log.join('\n')}`)); });
  });
  return {
    listen: { kind: 'inet', host: '127.0.0.1', port },
    log,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}
