/**
 * The DIGEST-MD5 security layer (RFC 2831 2.3, 2.4), pure: bytes in, bytes out, no socket.
 * After a bind with qop=auth-int or auth-conf every LDAP byte travels in frames of
 * `length(4) | body | 0x0001 | sequence number(4)`, each direction with its own keys and
 * sequence numbers:
 *
 * - auth-int: body = message | HMAC-MD5(Ki, seq | message)[0..9]
 * - auth-conf: body = CIPHER(Kc, message | pad | HMAC-MD5(Ki, seq | message)[0..9]), the
 *   cipher's state running on from one frame to the next, as Cyrus SASL keeps it. rc4 (and
 *   rc4-56, rc4-40) is a stream without padding; 3des is DES-EDE2-CBC with 1-8 bytes of pad.
 *
 * Keys: Ki = MD5(H(A1) | "Digest session key to client-to-server signing key magic constant"),
 * Kc = MD5(H(A1)[0..n-1] | "Digest H(A1) to client-to-server sealing key magic constant"),
 * n = 16, 7 or 5 for rc4, rc4-56, rc4-40 (and 16 for 3des); the same with server-to-client for
 * what comes back. rc4 is keyed with all of Kc; 3des with Kc's first 7 and next 7 bytes spread
 * over 8 bytes each (DES ignores the low bit), its IV Kc's last 8.
 *
 * RC4 is here in plain code because Node's OpenSSL 3 leaves it out, and it is what libldap's
 * Cyrus negotiates with slapd (whose own 3des refuses most keys under OpenSSL 3: "couldn't
 * init cipher '3des'", measured): this is only used when the server will take nothing else.
 *
 * A frame that fails its check (sequence, type, MAC, padding) throws DigestLayerError: the
 * connection is closed, never read on.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, timingSafeEqual, type Cipher, type Decipher } from 'node:crypto';
import { LAYER_MAXBUF, type DigestLayerParams, type LayerCipher } from './digest-md5.js';

export class DigestLayerError extends Error {}

const MAGIC = {
  client: { sign: 'Digest session key to client-to-server signing key magic constant', seal: 'Digest H(A1) to client-to-server sealing key magic constant' },
  server: { sign: 'Digest session key to server-to-client signing key magic constant', seal: 'Digest H(A1) to server-to-client sealing key magic constant' },
};
const MAC_BYTES = 10;
/** 0x0001 and the sequence number. */
const TRAILER_BYTES = 6;
const BLOCK = 8;
/** Larger frames than this are refused outright: we announced LAYER_MAXBUF. */
const MAX_FRAME = 4 * LAYER_MAXBUF;

const md5 = (...parts: (Buffer | string)[]): Buffer => {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** 7 bytes of key material → an 8-byte DES key, 7 bits per byte (the low, parity bit unused). */
export function desKey(k: Buffer): Buffer {
  const out = Buffer.alloc(8);
  out[0] = k[0]!;
  for (let i = 1; i < 7; i++) out[i] = ((k[i - 1]! << (8 - i)) | (k[i]! >> i)) & 0xff;
  out[7] = (k[6]! << 1) & 0xff;
  return out;
}

/** RC4 as a running stream (the state carries on from one call to the next). */
export class Rc4 {
  private readonly s = new Uint8Array(256);
  private i = 0;
  private j = 0;

  constructor(key: Buffer) {
    for (let k = 0; k < 256; k++) this.s[k] = k;
    for (let k = 0, j = 0; k < 256; k++) {
      j = (j + this.s[k]! + key[k % key.length]!) & 0xff;
      [this.s[k], this.s[j]] = [this.s[j]!, this.s[k]!];
    }
  }

  update(data: Buffer): Buffer {
    const out = Buffer.allocUnsafe(data.length);
    const s = this.s;
    let { i, j } = this;
    for (let n = 0; n < data.length; n++) {
      i = (i + 1) & 0xff;
      j = (j + s[i]!) & 0xff;
      const t = s[i]!;
      s[i] = s[j]!;
      s[j] = t;
      out[n] = data[n]! ^ s[(s[i]! + t) & 0xff]!;
    }
    this.i = i;
    this.j = j;
    return out;
  }
}

/** How many bytes of H(A1) key each cipher's Kc. */
const SEAL_BYTES: Record<LayerCipher, number> = { rc4: 16, '3des': 16, 'rc4-56': 7, 'rc4-40': 5 };

interface Direction {
  sign: Buffer;
  seq: number;
  /** auth-conf: the running cipher, and whether it works in 8-byte blocks (3des). */
  cipher?: { update(data: Buffer): Buffer };
  block?: boolean;
}

function direction(p: DigestLayerParams, who: 'client' | 'server', decrypt: boolean): Direction {
  const m = MAGIC[who];
  const d: Direction = { sign: md5(p.ha1, m.sign), seq: 0 };
  if (p.qop === 'auth-conf') {
    const cipher = p.cipher ?? 'rc4';
    const kc = md5(p.ha1.subarray(0, SEAL_BYTES[cipher]), m.seal);
    if (cipher === '3des') {
      const key = Buffer.concat([desKey(kc.subarray(0, 7)), desKey(kc.subarray(7, 14))]);
      const iv = kc.subarray(8, 16);
      const c: Cipher | Decipher = decrypt ? createDecipheriv('des-ede-cbc', key, iv) : createCipheriv('des-ede-cbc', key, iv);
      c.setAutoPadding(false);
      d.cipher = c;
      d.block = true;
    } else {
      d.cipher = new Rc4(kc);
    }
  }
  return d;
}

function mac(sign: Buffer, seq: number, msg: Buffer): Buffer {
  const s = Buffer.alloc(4);
  s.writeUInt32BE(seq >>> 0);
  return createHmac('md5', sign).update(s).update(msg).digest().subarray(0, MAC_BYTES);
}

export class DigestLayer {
  private readonly out: Direction;
  private readonly in: Direction;
  private pending: Buffer = Buffer.alloc(0);
  /** The largest message chunk one frame carries, so that no frame exceeds the peer's maxbuf. */
  private readonly chunk: number;

  /** `side` 'server' plays the other end (tests). */
  constructor(private readonly params: DigestLayerParams, side: 'client' | 'server' = 'client') {
    const peer = side === 'client' ? 'server' : 'client';
    this.out = direction(params, side, false);
    this.in = direction(params, peer, true);
    this.chunk = Math.max(1, params.sendMax - TRAILER_BYTES - MAC_BYTES - BLOCK);
  }

  /** The frames that carry `data`, in order. */
  wrap(data: Buffer): Buffer {
    if (data.length <= this.chunk) return this.frame(data);
    const frames: Buffer[] = [];
    for (let i = 0; i < data.length; i += this.chunk) frames.push(this.frame(data.subarray(i, i + this.chunk)));
    return Buffer.concat(frames);
  }

  private frame(msg: Buffer): Buffer {
    const seq = this.out.seq;
    this.out.seq = (this.out.seq + 1) >>> 0;
    const tag = mac(this.out.sign, seq, msg);
    let body: Buffer;
    if (this.out.cipher) {
      const padLen = this.out.block ? BLOCK - ((msg.length + MAC_BYTES) % BLOCK) : 0;
      body = this.out.cipher.update(Buffer.concat([msg, Buffer.alloc(padLen, padLen), tag]));
    } else {
      body = Buffer.concat([msg, tag]);
    }
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length + TRAILER_BYTES);
    const trailer = Buffer.alloc(TRAILER_BYTES);
    trailer.writeUInt16BE(1, 0);
    trailer.writeUInt32BE(seq, 2);
    return Buffer.concat([head, body, trailer]);
  }

  /** Bytes from the peer → the messages of the frames they complete (a partial frame waits). */
  unwrap(data: Buffer): Buffer {
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    const out: Buffer[] = [];
    while (this.pending.length >= 4) {
      const len = this.pending.readUInt32BE(0);
      if (len < MAC_BYTES + TRAILER_BYTES || len > MAX_FRAME) throw new DigestLayerError(`DIGEST-MD5 layer: a frame of ${len} bytes`);
      if (this.pending.length < 4 + len) break;
      out.push(this.open(this.pending.subarray(4, 4 + len)));
      this.pending = this.pending.subarray(4 + len);
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  private open(frame: Buffer): Buffer {
    const body = frame.subarray(0, frame.length - TRAILER_BYTES);
    const type = frame.readUInt16BE(frame.length - TRAILER_BYTES);
    const seq = frame.readUInt32BE(frame.length - 4);
    if (type !== 1) throw new DigestLayerError(`DIGEST-MD5 layer: message type ${type}`);
    if (seq !== this.in.seq) throw new DigestLayerError(`DIGEST-MD5 layer: sequence number ${seq}, expected ${this.in.seq}`);
    this.in.seq = (this.in.seq + 1) >>> 0;
    let msg: Buffer;
    let tag: Buffer;
    if (this.in.cipher) {
      if (this.in.block && body.length % BLOCK !== 0) throw new DigestLayerError(`DIGEST-MD5 layer: ${body.length} encrypted bytes are not whole blocks`);
      const plain = this.in.cipher.update(body);
      tag = plain.subarray(plain.length - MAC_BYTES);
      const padded = plain.subarray(0, plain.length - MAC_BYTES);
      if (this.in.block) {
        const padLen = padded[padded.length - 1] ?? 0;
        if (padLen < 1 || padLen > BLOCK || padLen > padded.length) throw new DigestLayerError('DIGEST-MD5 layer: bad padding (wrong key?)');
        msg = padded.subarray(0, padded.length - padLen);
      } else {
        msg = padded;
      }
    } else {
      msg = body.subarray(0, body.length - MAC_BYTES);
      tag = body.subarray(body.length - MAC_BYTES);
    }
    if (!timingSafeEqual(tag, mac(this.in.sign, seq, msg))) throw new DigestLayerError('DIGEST-MD5 layer: a frame failed its integrity check');
    return Buffer.from(msg);
  }

  /** For logs and `check`: "auth-int", or "auth-conf, rc4". */
  get describe(): string {
    return this.params.qop === 'auth-conf' ? `auth-conf, ${this.params.cipher ?? 'rc4'}` : 'auth-int';
  }
}
