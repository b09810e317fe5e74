/**
 * What the test proxies in front of a Samba DC share: just enough BER for LDAP messages
 * (single-byte tags, definite lengths) and a relay that hands every whole message, each way,
 * to a rewrite function. Plain JS so the proxies run without a build step.
 */
import net from 'node:net';

export function readTlv(buf, off) {
  if (off + 2 > buf.length) return undefined;
  const tag = buf[off];
  let len = buf[off + 1];
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (off + 2 + n > buf.length) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i];
    hdr += n;
  }
  const start = off + hdr;
  const end = start + len;
  if (end > buf.length) return undefined;
  return { tag, start, end, raw: buf.subarray(off, end), content: buf.subarray(start, end) };
}

export function children(content) {
  const out = [];
  for (let off = 0; off < content.length;) {
    const t = readTlv(content, off);
    if (!t) throw new Error('truncated BER');
    out.push(t);
    off = t.end;
  }
  return out;
}

function encLen(n) {
  if (n < 0x80) return Buffer.from([n]);
  const bytes = [];
  while (n > 0) { bytes.unshift(n & 0xff); n = Math.floor(n / 256); }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export const tlv = (tag, content) => Buffer.concat([Buffer.from([tag]), encLen(content.length), content]);
export const octets = (s) => tlv(0x04, Buffer.from(s, 'utf8'));
export const intOf = (content) => content.reduce((a, b) => a * 256 + b, 0);

/**
 * Listens on 127.0.0.1:listenPort; each client gets its own upstream connection to
 * 127.0.0.1:upstreamPort. `session()` is called once per client and returns
 * { request(msg) → Buffer, response(msg) → Buffer } (msg as readTlv returns it).
 * Prints "listening" once it accepts connections.
 */
export function relay(listenPort, upstreamPort, session) {
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: upstreamPort });
    // One write per LDAP message: without this, Nagle's algorithm holds small replies back
    // for a delayed ACK (measured: 40-90 ms added to a lookup).
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const { request, response } = session();
    let fromClient = Buffer.alloc(0);
    let fromServer = Buffer.alloc(0);
    const each = (buf, fn) => {
      let off = 0;
      for (;;) {
        const t = readTlv(buf, off);
        if (!t) break;
        fn(t);
        off = t.end;
      }
      return buf.subarray(off);
    };
    client.on('data', (d) => {
      fromClient = each(Buffer.concat([fromClient, d]), (msg) => upstream.write(request(msg)));
    });
    upstream.on('data', (d) => {
      fromServer = each(Buffer.concat([fromServer, d]), (msg) => client.write(response(msg)));
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen({ host: '127.0.0.1', port: listenPort }, () => process.stdout.write('listening\n'));
  process.on('SIGTERM', () => process.exit(0));
  return server;
}
