import { ProtocolError } from './errors.js';

/**
 * Netstrings as Postfix reads and writes them (util/netstring.c): `LEN:PAYLOAD,` where LEN is
 * decimal digits. Like Postfix, an empty LEN means 0 and leading zeros are fine; anything else
 * before ':' (sign, space, CR) is a format error. Pure: no sockets, no timers.
 */

const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const COMMA = 0x2c;

/**
 * Leading zeros do not grow the value, so the value check alone would let a peer trickle zeros
 * forever without a frame ever starting. Postfix never sends leading zeros; 16 digits is
 * generous and keeps every prefix far from Number's exact-integer range.
 */
export const MAX_LENGTH_DIGITS = 16;

const enum State {
  Length,
  Payload,
  Comma,
}

const EMPTY = Buffer.alloc(0);

/**
 * Incremental netstring decoder: feed it socket chunks, get back the payloads completed by each.
 *
 * Memory is bounded by construction: the declared length is checked digit by digit against
 * `maxPayload` before any payload byte is kept, so the decoder never holds more than
 * `maxPayload` payload bytes plus a short header.
 *
 * Ownership: a payload that lies wholly inside one chunk is returned as a subarray of that
 * chunk (the common case, zero-copy); callers that mutate or pool their chunks, or keep a
 * payload long-term, should copy it. The decoder itself never keeps a reference into a caller's
 * chunk after `push` returns: bytes of an unfinished frame are copied.
 *
 * After a ProtocolError the stream has lost framing; the decoder stays dead and every further
 * `push` rethrows the same error. Payloads completed earlier in the failing chunk are dropped
 * with it, which is harmless because the connection must be closed anyway.
 */
export class NetstringDecoder {
  readonly #maxPayload: number;
  #state: State = State.Length;
  #length = 0;
  #digits = 0;
  /** Copied pieces of a payload that spans chunks. */
  #parts: Buffer[] = [];
  #partBytes = 0;
  /** Complete payload waiting for its ',' (may alias the current chunk only during `push`). */
  #payload: Buffer = EMPTY;
  #payloadAliasesChunk = false;
  #frameBytes = 0;
  #failure: ProtocolError | undefined;

  constructor(maxPayload: number) {
    if (!Number.isSafeInteger(maxPayload) || maxPayload < 0) {
      throw new RangeError(`maxPayload must be a non-negative safe integer, got ${maxPayload}`);
    }
    this.#maxPayload = maxPayload;
  }

  /** Bytes of the current, unfinished frame received so far (0 between frames): for slowloris limits. */
  get bufferedBytes(): number {
    return this.#frameBytes;
  }

  push(chunk: Buffer): Buffer[] {
    if (this.#failure) throw this.#failure;
    const frames: Buffer[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.#state === State.Length) pos = this.#readLength(chunk, pos);
      else if (this.#state === State.Payload) pos = this.#readPayload(chunk, pos);
      else pos = this.#readComma(chunk, pos, frames);
    }
    this.#detachFromChunk();
    return frames;
  }

  #readLength(chunk: Buffer, pos: number): number {
    for (let i = pos; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (c === COLON) {
        this.#frameBytes += i + 1 - pos;
        this.#startPayload();
        return i + 1;
      }
      this.#addDigit(c);
    }
    this.#frameBytes += chunk.length - pos;
    return chunk.length;
  }

  #addDigit(c: number): void {
    if (c < ZERO || c > NINE) {
      throw this.#fail('bad_length', `netstring length contains non-digit byte 0x${hex2(c)}`);
    }
    const length = this.#length * 10 + (c - ZERO);
    if (length > this.#maxPayload) {
      throw this.#fail('too_long', `netstring length exceeds maximum ${this.#maxPayload}`);
    }
    if (++this.#digits > MAX_LENGTH_DIGITS) {
      throw this.#fail('bad_length', `netstring length has more than ${MAX_LENGTH_DIGITS} digits`);
    }
    this.#length = length;
  }

  #startPayload(): void {
    if (this.#length === 0) {
      this.#payload = EMPTY;
      this.#state = State.Comma;
    } else {
      this.#state = State.Payload;
    }
  }

  #readPayload(chunk: Buffer, pos: number): number {
    const need = this.#length - this.#partBytes;
    const available = chunk.length - pos;
    if (available < need) {
      this.#parts.push(Buffer.from(chunk.subarray(pos)));
      this.#partBytes += available;
      this.#frameBytes += available;
      return chunk.length;
    }
    const end = pos + need;
    if (this.#parts.length === 0) {
      this.#payload = chunk.subarray(pos, end);
      this.#payloadAliasesChunk = true;
    } else {
      this.#parts.push(chunk.subarray(pos, end));
      this.#payload = Buffer.concat(this.#parts, this.#length);
      this.#parts = [];
      this.#partBytes = 0;
    }
    this.#frameBytes += need;
    this.#state = State.Comma;
    return end;
  }

  #readComma(chunk: Buffer, pos: number, frames: Buffer[]): number {
    const c = chunk[pos]!;
    if (c !== COMMA) {
      throw this.#fail('bad_terminator', `netstring payload followed by 0x${hex2(c)} instead of ','`);
    }
    frames.push(this.#payload);
    this.#reset();
    return pos + 1;
  }

  #reset(): void {
    this.#state = State.Length;
    this.#length = 0;
    this.#digits = 0;
    this.#payload = EMPTY;
    this.#payloadAliasesChunk = false;
    this.#frameBytes = 0;
  }

  /** A payload whose ',' is still outstanding must not pin (or see changes to) the caller's chunk. */
  #detachFromChunk(): void {
    if (this.#payloadAliasesChunk) {
      this.#payload = Buffer.from(this.#payload);
      this.#payloadAliasesChunk = false;
    }
  }

  #fail(reason: ProtocolError['reason'], message: string): ProtocolError {
    this.#failure = new ProtocolError(reason, message);
    this.#parts = [];
    this.#payload = EMPTY;
    return this.#failure;
  }
}

function hex2(c: number): string {
  return c.toString(16).toUpperCase().padStart(2, '0');
}

/** `LEN:payload,` in a single allocation. */
export function encodeNetstring(payload: Buffer | string): Buffer {
  if (typeof payload !== 'string') return encodeNetstringWithPrefix('', payload);
  const length = Buffer.byteLength(payload, 'utf8');
  const header = `${length}:`;
  const out = Buffer.allocUnsafe(header.length + length + 1);
  out.write(header, 0, 'latin1');
  out.write(payload, header.length, 'utf8');
  out[out.length - 1] = COMMA;
  return out;
}

/**
 * `LEN:` + prefix + body + `,` in one allocation, so reply encoders never concatenate the body
 * into an intermediate string or buffer. `prefix` must be ASCII (it is written as latin1).
 */
export function encodeNetstringWithPrefix(prefix: string, body: Buffer): Buffer {
  const length = prefix.length + body.length;
  const header = `${length}:`;
  const out = Buffer.allocUnsafe(header.length + length + 1);
  let at = out.write(header, 0, 'latin1');
  at += out.write(prefix, at, 'latin1');
  at += body.copy(out, at);
  out[at] = COMMA;
  return out;
}
