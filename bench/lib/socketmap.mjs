// Minimal socketmap client side: netstring framing (`LEN:PAYLOAD,`) as Postfix's dict_sockmap
// speaks it, over a real TCP connection, one request at a time per connection.
import net from 'node:net';

const COLON = 0x3a;
const COMMA = 0x2c;

/** `LEN:NAME KEY,` */
export function encodeRequest(map, key) {
  const payload = Buffer.from(`${map} ${key}`, 'utf8');
  const head = Buffer.from(`${payload.length}:`, 'latin1');
  return Buffer.concat([head, payload, Buffer.from([COMMA])]);
}

/**
 * Incremental netstring parser. `onFrame(payload)` is called per complete frame; payloads that
 * lie inside one chunk are subarrays of it (no copy). Throws on malformed input.
 */
export class NetstringParser {
  constructor(onFrame, maxPayload = 1 << 20) {
    this.onFrame = onFrame;
    this.maxPayload = maxPayload;
    this.buf = null; // pending bytes of an unfinished frame
  }

  push(chunk) {
    let data = chunk;
    if (this.buf) { data = Buffer.concat([this.buf, chunk]); this.buf = null; }
    let pos = 0;
    while (pos < data.length) {
      let len = 0;
      let i = pos;
      for (; i < data.length; i++) {
        const c = data[i];
        if (c === COLON) break;
        if (c < 0x30 || c > 0x39) throw new Error(`bad netstring length byte 0x${c.toString(16)}`);
        len = len * 10 + (c - 0x30);
        if (len > this.maxPayload) throw new Error(`netstring too long (${len})`);
      }
      if (i >= data.length || i + 1 + len >= data.length) {
        // incomplete: length digits, payload or comma still missing
        this.buf = Buffer.from(data.subarray(pos));
        return;
      }
      const start = i + 1;
      const end = start + len;
      if (data[end] !== COMMA) throw new Error('netstring not terminated by a comma');
      this.onFrame(data.subarray(start, end));
      pos = end + 1;
    }
  }
}

/** Splits a reply payload into status word and the rest. */
export function splitReply(payload) {
  const s = payload.indexOf(0x20);
  if (s < 0) return { status: payload.toString('latin1'), value: '' };
  return { status: payload.toString('latin1', 0, s), value: payload.toString('utf8', s + 1) };
}

/** A promise-based client for single requests (timing of individual lookups). */
export function connectClient(host, port, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`connect ${host}:${port} timed out`)); }, timeoutMs);
    let waiting = null;
    const parser = new NetstringParser((payload) => {
      const w = waiting;
      waiting = null;
      if (w) { clearTimeout(w.timer); w.resolve({ ...splitReply(payload), bytes: payload.length, ms: Number(process.hrtime.bigint() - w.started) / 1e6 }); }
    }, 4 << 20);
    sock.on('data', (c) => {
      try { parser.push(c); } catch (e) { sock.destroy(e); }
    });
    sock.on('error', (e) => { if (waiting) { clearTimeout(waiting.timer); waiting.reject(e); waiting = null; } });
    sock.on('close', () => { if (waiting) { clearTimeout(waiting.timer); waiting.reject(new Error('connection closed')); waiting = null; } });
    sock.once('connect', () => {
      clearTimeout(timer);
      resolve({
        request(map, key, reqTimeoutMs = 120_000) {
          if (waiting) return Promise.reject(new Error('one request at a time'));
          return new Promise((res, rej) => {
            waiting = {
              resolve: res,
              reject: rej,
              started: process.hrtime.bigint(),
              timer: setTimeout(() => { sock.destroy(new Error(`no reply within ${reqTimeoutMs} ms`)); }, reqTimeoutMs),
            };
            sock.write(encodeRequest(map, key));
          });
        },
        close() { sock.destroy(); },
      });
    });
    sock.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}
