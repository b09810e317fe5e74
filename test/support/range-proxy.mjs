#!/usr/bin/env node
/**
 * A plain TCP LDAP proxy that adds Windows' MaxValRange to a Samba DC (which does not enforce
 * it): an attribute with more than MAX values comes back as `type;range=0-(MAX-1)` with the
 * first MAX values, and a request for `type;range=L-H` (or `L-*`) is sent upstream as `type`
 * and answered with that slice as `type;range=L-END`, END being `*` for the last one — what a
 * Windows DC answers. Everything else passes byte for byte.
 *
 * Usage (inside the DC's namespace): node range-proxy.mjs LISTEN_PORT UPSTREAM_PORT [MAX]
 * Prints "listening" once it accepts connections. Plain JS so it runs without a build step.
 */
import net from 'node:net';

const [listenPort, upstreamPort, maxArg] = process.argv.slice(2).map(Number);
const MAX = maxArg || 1500;

// ---- BER, as much as LDAP messages need (single-byte tags, definite lengths) ----

function readTlv(buf, off) {
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

function children(content) {
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

const tlv = (tag, content) => Buffer.concat([Buffer.from([tag]), encLen(content.length), content]);
const octets = (s) => tlv(0x04, Buffer.from(s, 'utf8'));
const intOf = (content) => content.reduce((a, b) => a * 256 + b, 0);

const RANGE = /^(.*?);range=(\d+)-(\d+|\*)$/i;

// ---- one client connection ----

function proxy(client) {
  const upstream = net.connect({ host: '127.0.0.1', port: upstreamPort });
  /** msgid -> Map(lower-case type -> {low, high}) of ranged attributes asked for. */
  const asked = new Map();
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
    fromClient = each(Buffer.concat([fromClient, d]), (msg) => upstream.write(rewriteRequest(msg)));
  });
  upstream.on('data', (d) => {
    fromServer = each(Buffer.concat([fromServer, d]), (msg) => client.write(rewriteResponse(msg)));
  });
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());

  function rewriteRequest(msg) {
    const parts = children(msg.content);
    const op = parts[1];
    if (!op || op.tag !== 0x63) return msg.raw;
    const fields = children(op.content);
    const attrs = fields[fields.length - 1];
    const names = children(attrs.content).map((a) => a.content.toString('utf8'));
    const ranges = new Map();
    const plain = names.map((n) => {
      const m = RANGE.exec(n);
      if (!m) return n;
      ranges.set(m[1].toLowerCase(), { low: Number(m[2]), high: m[3] === '*' ? Infinity : Number(m[3]) });
      return m[1];
    });
    asked.set(intOf(parts[0].content), ranges);
    if (ranges.size === 0) return msg.raw;
    const newAttrs = tlv(0x30, Buffer.concat(plain.map(octets)));
    const newOp = tlv(0x63, Buffer.concat([...fields.slice(0, -1).map((f) => f.raw), newAttrs]));
    return tlv(0x30, Buffer.concat([parts[0].raw, newOp, ...parts.slice(2).map((p) => p.raw)]));
  }

  function rewriteResponse(msg) {
    const parts = children(msg.content);
    const op = parts[1];
    const id = intOf(parts[0].content);
    if (op && op.tag === 0x65) asked.delete(id); // SearchResultDone
    if (!op || op.tag !== 0x64) return msg.raw;
    const ranges = asked.get(id) ?? new Map();
    const [name, attrList] = children(op.content);
    let changed = false;
    const attrs = children(attrList.content).map((a) => {
      const [type, vals] = children(a.content);
      const t = type.content.toString('utf8');
      const values = children(vals.content);
      const r = ranges.get(t.toLowerCase());
      let low = 0;
      let high;
      if (r) { low = r.low; high = Math.min(r.high, low + MAX - 1); }
      else if (values.length > MAX) high = MAX - 1;
      else return a.raw;
      changed = true;
      const slice = values.slice(low, high + 1);
      const end = low + slice.length - 1 >= values.length - 1 ? '*' : String(low + slice.length - 1);
      return tlv(0x30, Buffer.concat([octets(`${t};range=${low}-${end}`), tlv(0x31, Buffer.concat(slice.map((v) => v.raw)))]));
    });
    if (!changed) return msg.raw;
    const newOp = tlv(0x64, Buffer.concat([name.raw, tlv(0x30, Buffer.concat(attrs))]));
    return tlv(0x30, Buffer.concat([parts[0].raw, newOp, ...parts.slice(2).map((p) => p.raw)]));
  }
}

const server = net.createServer(proxy);
server.listen({ host: '127.0.0.1', port: listenPort }, () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => process.exit(0));
