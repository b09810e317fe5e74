/**
 * Raw socketmap clients for the tests: netstring framing written independently of src/protocol,
 * so the daemon's codec is checked against a second implementation, not against itself.
 */
import net from 'node:net';

/** One netstring: `LEN:payload,` (a string is sent as UTF-8). */
export function frame(s: string | Buffer): Buffer {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from(`${b.length}:`), b, Buffer.from(',')]);
}

/**
 * A raw socketmap client that survives hostile use: sends any bytes, returns complete reply
 * payloads in order (pipelining welcome), notices close. Nothing is checked on send, so tests
 * can write broken frames.
 */
export class SocketmapClient {
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

  /** A client whose connection is established (rejects when it cannot connect). */
  static async connect(port: number, host?: string): Promise<SocketmapClient> {
    const c = new SocketmapClient(port, host);
    await c.ready();
    return c;
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

  /** One complete reply payload (utf8), or throws on close/timeout (`ms` may be Infinity). */
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

  /** Sends `MAP KEY` and returns the reply payload, e.g. "OK alice". */
  async ask(map: string, key: string | Buffer, ms?: number): Promise<string> {
    const k = Buffer.isBuffer(key) ? key : Buffer.from(key, 'utf8');
    this.send(frame(Buffer.concat([Buffer.from(`${map} `), k])));
    return this.reply(ms);
  }

  /** Sends all requests in one write (pipelined) and returns their replies in order. */
  async askMany(map: string, keys: string[], ms?: number): Promise<string[]> {
    this.send(Buffer.concat(keys.map((k) => frame(`${map} ${k}`))));
    const replies: string[] = [];
    for (let i = 0; i < keys.length; i++) replies.push(await this.reply(ms));
    return replies;
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

/** One raw socketmap request to 127.0.0.1:PORT on a connection of its own; resolves with the whole reply frame. */
export function socketmapFrame(port: number | string, map: string, key: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // A number: 127.0.0.1:PORT; a string: a unix socket path.
    const s = net.connect(typeof port === 'string' ? { path: port } : { host: '127.0.0.1', port }, () => {
      s.write(frame(`${map} ${key}`));
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
