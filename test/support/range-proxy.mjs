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
import { children, intOf, octets, relay, tlv } from './ldap-relay.mjs';

const [listenPort, upstreamPort, maxArg] = process.argv.slice(2).map(Number);
const MAX = maxArg || 1500;

const RANGE = /^(.*?);range=(\d+)-(\d+|\*)$/i;

// ---- one client connection ----

function session() {
  /** msgid -> Map(lower-case type -> {low, high}) of ranged attributes asked for. */
  const asked = new Map();
  return { request: rewriteRequest, response: rewriteResponse };

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

relay(listenPort, upstreamPort, session);
