/**
 * Error reasons travel to Postfix inside replies and end up in its log. They come from our own
 * code and from LDAP server messages, so they are cleaned here: a control byte could end a
 * tcp_table line early or smuggle fake log lines, and an unbounded reason could push a reply
 * past the client's size limit.
 */
export const MAX_REASON_BYTES = 512;

/** Reason as UTF-8 bytes without bytes < 0x20, at most `maxBytes` long, cut on a character boundary. */
export function sanitizeReason(reason: string, maxBytes = MAX_REASON_BYTES): Buffer {
  const limit = Math.max(0, Math.floor(maxBytes));
  // Skip encoding megabytes we would throw away; generous so stripped bytes rarely under-fill.
  const source = reason.length > limit * 8 + 64 ? reason.slice(0, limit * 8 + 64) : reason;
  const bytes = Buffer.from(source, 'utf8');
  const kept = stripControlBytes(bytes);
  return bytes.subarray(0, kept > limit ? utf8Boundary(bytes, limit) : kept);
}

/** Compacts `b` in place, returns the new length. Bytes >= 0x80 are kept: they are UTF-8. */
function stripControlBytes(b: Buffer): number {
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c >= 0x20) b[n++] = c;
  }
  return n;
}

/** Largest cut <= `cut` that does not split a UTF-8 sequence, so logs never see half a character. */
function utf8Boundary(b: Buffer, cut: number): number {
  let i = cut;
  while (i > 0 && (b[i]! & 0xc0) === 0x80) i--;
  return i;
}
