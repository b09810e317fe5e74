import type { LookupResult } from '../contracts/result.js';
import { ProtocolError } from './errors.js';
import { sanitizeReason } from './reason.js';

/**
 * Postfix tcp_table (util/dict_tcp.c, util/hex_quote.c): requests are `get KEY\n`, replies are
 * `NNN TEXT\n`, with KEY and TEXT %XX-quoted. Only the first status digit matters to Postfix:
 * 2 found, 5 not found, anything else a temporary error.
 */

const PERCENT = 0x25;
const NEWLINE = 0x0a;
const CR = 0x0d;
const UPPER_HEX = Buffer.from('0123456789ABCDEF', 'latin1');

/** Reply bound including the newline: Postfix reads at most 4095 bytes of text (DICT_TCP_MAXLEN). */
export const TCP_MAX_REPLY = 4096;

const GET = Buffer.from('get ', 'latin1');
const NOT_FOUND_LINE = '500 not%20found\n';

/** hex_quote() quotes '%', whitespace and everything not printable ASCII: 0x00-0x20, 0x7F-0xFF. */
const NEEDS_QUOTE = (() => {
  const table = new Uint8Array(256);
  for (let c = 0; c < 256; c++) table[c] = c === PERCENT || c <= 0x20 || c >= 0x7f ? 1 : 0;
  return table;
})();

/** Nibble value of a hex digit in either case, -1 for anything else. */
const HEX_VALUE = (() => {
  const table = new Int8Array(256).fill(-1);
  for (let i = 0; i < 10; i++) table[0x30 + i] = i;
  for (let i = 0; i < 6; i++) {
    table[0x41 + i] = 10 + i;
    table[0x61 + i] = 10 + i;
  }
  return table;
})();

function quotedLength(b: Buffer): number {
  let n = b.length;
  for (let i = 0; i < b.length; i++) n += NEEDS_QUOTE[b[i]!]! * 2;
  return n;
}

/** Writes the quoted form of `src` into `dst` at `at`; returns the offset after it. */
function hexQuoteInto(src: Buffer, dst: Buffer, at: number): number {
  let o = at;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (NEEDS_QUOTE[c] === 0) {
      dst[o++] = c;
    } else {
      dst[o++] = PERCENT;
      dst[o++] = UPPER_HEX[c >> 4]!;
      dst[o++] = UPPER_HEX[c & 0x0f]!;
    }
  }
  return o;
}

/** Postfix hex_quote(), byte for byte (uppercase hex). Always returns a new buffer. */
export function hexQuote(b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(quotedLength(b));
  hexQuoteInto(b, out, 0);
  return out;
}

/**
 * Postfix hex_unquote(): `%` plus two hex digits of either case is one byte, every other byte is
 * literal. Returns `b` itself when it contains no `%`, so unquoted keys cost no copy.
 */
export function hexUnquote(b: Buffer): Buffer {
  let i = b.indexOf(PERCENT);
  if (i < 0) return b;
  const out = Buffer.allocUnsafe(b.length);
  let o = b.copy(out, 0, 0, i);
  while (i < b.length) {
    const c = b[i]!;
    if (c !== PERCENT) {
      out[o++] = c;
      i++;
      continue;
    }
    out[o++] = decodeEscape(b, i);
    i += 3;
  }
  return out.subarray(0, o);
}

function decodeEscape(b: Buffer, at: number): number {
  const hi = at + 1 < b.length ? HEX_VALUE[b[at + 1]!]! : -1;
  const lo = at + 2 < b.length ? HEX_VALUE[b[at + 2]!]! : -1;
  if (hi < 0 || lo < 0) {
    throw new ProtocolError('bad_escape', `'%' at offset ${at} is not followed by two hex digits`);
  }
  return (hi << 4) | lo;
}

export interface TcpRequest {
  kind: 'get';
  /** The unquoted key. May be a subarray of a pushed chunk when the key needed no unquoting. */
  key: Buffer;
}

/**
 * Incremental tcp_table request decoder. `maxLine` bounds a request line INCLUDING its newline
 * (the same convention as TCP_MAX_REPLY); a longer line fails with 'line_too_long' as soon as
 * the buffered bytes prove it, so at most `maxLine - 1` bytes are ever held.
 *
 * Bytes of an unfinished line are copied, so the decoder never pins a caller's chunk. After a
 * ProtocolError the decoder is dead and rethrows that error on every push; requests completed
 * earlier in the failing chunk are dropped with it (the connection must close anyway).
 */
export class TcpTableDecoder {
  readonly #maxLine: number;
  #parts: Buffer[] = [];
  #partBytes = 0;
  #failure: ProtocolError | undefined;

  constructor(maxLine: number) {
    if (!Number.isSafeInteger(maxLine) || maxLine < 1) {
      throw new RangeError(`maxLine must be a positive safe integer, got ${maxLine}`);
    }
    this.#maxLine = maxLine;
  }

  /** Bytes of the current, unfinished line held (0 between lines): for slowloris limits. */
  get bufferedBytes(): number {
    return this.#partBytes;
  }

  push(chunk: Buffer): TcpRequest[] {
    if (this.#failure) throw this.#failure;
    try {
      return this.#consume(chunk);
    } catch (err) {
      if (err instanceof ProtocolError) this.#die(err);
      throw err;
    }
  }

  #consume(chunk: Buffer): TcpRequest[] {
    const requests: TcpRequest[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, pos);
      if (newline < 0) {
        this.#keep(chunk.subarray(pos));
        break;
      }
      requests.push(parseTcpRequest(this.#takeLine(chunk, pos, newline)));
      pos = newline + 1;
    }
    return requests;
  }

  /** Line content without its newline; enforces the limit counting the newline. */
  #takeLine(chunk: Buffer, start: number, newline: number): Buffer {
    const length = this.#partBytes + (newline - start);
    if (length + 1 > this.#maxLine) throw this.#tooLong();
    if (this.#parts.length === 0) return chunk.subarray(start, newline);
    this.#parts.push(chunk.subarray(start, newline));
    const line = Buffer.concat(this.#parts, length);
    this.#parts = [];
    this.#partBytes = 0;
    return line;
  }

  /** A held line of maxLine bytes could only end in a newline past the limit, so fail now. */
  #keep(tail: Buffer): void {
    if (this.#partBytes + tail.length >= this.#maxLine) throw this.#tooLong();
    this.#parts.push(Buffer.from(tail));
    this.#partBytes += tail.length;
  }

  #tooLong(): ProtocolError {
    return new ProtocolError('line_too_long', `tcp_table request line exceeds ${this.#maxLine} bytes`);
  }

  #die(err: ProtocolError): void {
    this.#failure = err;
    this.#parts = [];
    this.#partBytes = 0;
  }
}

/** `get ` + quoted key; one trailing CR is tolerated because some test clients send CRLF. */
function parseTcpRequest(rawLine: Buffer): TcpRequest {
  const line = rawLine.length > 0 && rawLine[rawLine.length - 1] === CR ? rawLine.subarray(0, -1) : rawLine;
  if (line.length < GET.length || line.compare(GET, 0, GET.length, 0, GET.length) !== 0) {
    throw new ProtocolError('bad_request', 'tcp_table request is not "get <key>"');
  }
  return { kind: 'get', key: hexUnquote(line.subarray(GET.length)) };
}

export interface TcpReply {
  line: Buffer;
  /** Set when a found value did not fit: the line size (with newline) that would have been needed. */
  oversize?: number;
}

/**
 * Encodes a lookup result as one reply line. Every error kind becomes 400: tcp_table has no
 * configuration-error code and Postfix treats any 4xx as temporary. An empty found value goes
 * out as not found because Postfix's maps_find() treats an empty found value as a configuration
 * error; a value too long for the client's 4096-byte read goes out as 400 rather than a line the
 * client would retry ten times and then fail anyway.
 */
export function encodeTcpReply(result: LookupResult, maxLine = TCP_MAX_REPLY): TcpReply {
  if (maxLine < NOT_FOUND_LINE.length) throw new RangeError(`maxLine must be at least ${NOT_FOUND_LINE.length}`);
  switch (result.kind) {
    case 'found':
      return encodeFound(result.value, maxLine);
    case 'notfound':
      return { line: Buffer.from(NOT_FOUND_LINE, 'latin1') };
    case 'temp':
    case 'timeout':
    case 'perm':
      return { line: encodeTempLine(result.reason, maxLine) };
  }
}

function encodeFound(value: Buffer, maxLine: number): TcpReply {
  if (value.length === 0) return { line: Buffer.from(NOT_FOUND_LINE, 'latin1') };
  const size = '200 '.length + quotedLength(value) + 1;
  if (size > maxLine) return { line: encodeTempLine(`reply too large (${size} bytes)`, maxLine), oversize: size };
  const line = Buffer.allocUnsafe(size);
  line.write('200 ', 0, 'latin1');
  line[hexQuoteInto(value, line, 4)] = NEWLINE;
  return { line };
}

function encodeTempLine(reason: string, maxLine: number): Buffer {
  const quoted = hexQuote(sanitizeReason(reason));
  const text = quoted.subarray(0, escapeBoundary(quoted, maxLine - '400 \n'.length));
  const line = Buffer.allocUnsafe(4 + text.length + 1);
  line.write('400 ', 0, 'latin1');
  text.copy(line, 4);
  line[line.length - 1] = NEWLINE;
  return line;
}

/** Largest cut <= `limit` that does not split a %XX escape, so the text still unquotes cleanly. */
function escapeBoundary(quoted: Buffer, limit: number): number {
  if (quoted.length <= limit) return quoted.length;
  if (limit >= 1 && quoted[limit - 1] === PERCENT) return limit - 1;
  if (limit >= 2 && quoted[limit - 2] === PERCENT) return limit - 2;
  return limit;
}
