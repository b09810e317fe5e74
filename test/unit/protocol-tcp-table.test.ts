import { describe, it, expect } from 'vitest';
import { found, NOTFOUND, perm, temp, timeout, type LookupResult } from '../../src/contracts/result.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import {
  TCP_MAX_REPLY,
  TcpTableDecoder,
  encodeTcpReply,
  hexQuote,
  hexUnquote,
} from '../../src/protocol/tcp-table.js';
import { prng, randomBytes } from '../support/prng.js';
import { thrownBy } from '../support/throws.js';
import { splitAt } from '../support/chunks.js';


const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const keys = (requests: Array<{ key: Buffer }>): string[] => requests.map((r) => r.key.toString('latin1'));

function decodeAll(chunks: Buffer[], maxLine = 1000): Buffer[] {
  const d = new TcpTableDecoder(maxLine);
  return chunks.flatMap((c) => d.push(c)).map((r) => r.key);
}

/** Postfix hex_quote() transcribed independently: '%', ISSPACE and !ISPRINT bytes are escaped. */
function postfixHexQuote(raw: Buffer): string {
  let out = '';
  for (const c of raw) {
    const isSpace = c === 0x20 || (c >= 0x09 && c <= 0x0d);
    const isPrint = c >= 0x20 && c <= 0x7e;
    out += c !== 0x25 && !isSpace && isPrint ? String.fromCharCode(c) : '%' + c.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

describe('hexQuote', () => {
  it('quotes each of the 256 byte values exactly like Postfix hex_quote', () => {
    for (let c = 0; c < 256; c++) {
      const raw = Buffer.from([c]);
      expect(hexQuote(raw).toString('latin1'), `byte 0x${c.toString(16)}`).toBe(postfixHexQuote(raw));
    }
  });

  it('quotes a buffer of all 256 byte values in one go', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const quoted = hexQuote(all);
    expect(quoted.toString('latin1')).toBe(postfixHexQuote(all));
    // 0x21-0x7E except '%' stay literal (93 bytes); the other 163 become three bytes each.
    expect(quoted.length).toBe(93 + 163 * 3);
  });

  it('leaves ordinary addresses alone and escapes the rest with uppercase hex', () => {
    expect(hexQuote(b('user+tag@example.com'))).toEqual(b('user+tag@example.com'));
    expect(hexQuote(b('a b'))).toEqual(b('a%20b'));
    expect(hexQuote(b('100%'))).toEqual(b('100%25'));
    expect(hexQuote(Buffer.from('é', 'utf8'))).toEqual(b('%C3%A9'));
    expect(hexQuote(b('\x7f\x00'))).toEqual(b('%7F%00'));
    expect(hexQuote(b(''))).toEqual(b(''));
  });
});

describe('hexUnquote', () => {
  it('inverts hexQuote for every byte value', () => {
    for (let c = 0; c < 256; c++) {
      const raw = Buffer.from([c]);
      expect(hexUnquote(hexQuote(raw))).toEqual(raw);
    }
  });

  it('inverts hexQuote for random buffers', () => {
    const rand = prng(3);
    for (let i = 0; i < 1000; i++) {
      const raw = randomBytes(rand, Math.floor(rand() * 50));
      expect(hexUnquote(hexQuote(raw))).toEqual(raw);
    }
  });

  it('accepts hex digits in either case', () => {
    expect(hexUnquote(b('%c3%A9%aB%Cd'))).toEqual(Buffer.from([0xc3, 0xa9, 0xab, 0xcd]));
  });

  it('takes every other byte literally, including raw spaces and CR', () => {
    expect(hexUnquote(b('a b\r%20c'))).toEqual(b('a b\r c'));
  });

  it('decodes %00 to a NUL byte', () => {
    expect(hexUnquote(b('a%00b'))).toEqual(Buffer.from([0x61, 0x00, 0x62]));
  });

  it('returns the input itself when there is nothing to unquote', () => {
    const input = b('plain@example.com');
    expect(hexUnquote(input)).toBe(input);
  });

  for (const bad of ['%', 'a%', '%4', 'x%4', '%4G', '%G4', '%%', '%%41', '% 41', '%-1', '%+F']) {
    it(`rejects the broken escape ${JSON.stringify(bad)}`, () => {
      expect(thrownBy(ProtocolError, () => hexUnquote(b(bad))).reason).toBe('bad_escape');
    });
  }
});

describe('TcpTableDecoder: valid input', () => {
  it('decodes a get request', () => {
    const requests = new TcpTableDecoder(100).push(b('get user@example.com\n'));
    expect(requests).toEqual([{ kind: 'get', key: b('user@example.com') }]);
  });

  it('unquotes the key', () => {
    expect(keys(new TcpTableDecoder(100).push(b('get a%20b%25c%C3%A9\n')))).toEqual([
      Buffer.from('a b%cé', 'utf8').toString('latin1'),
    ]);
  });

  it('strips one trailing CR, and only one', () => {
    expect(keys(new TcpTableDecoder(100).push(b('get a\r\n')))).toEqual(['a']);
    expect(keys(new TcpTableDecoder(100).push(b('get a\r\r\n')))).toEqual(['a\r']);
  });

  it('allows an empty key (the lookup layer answers not found)', () => {
    expect(keys(new TcpTableDecoder(100).push(b('get \n')))).toEqual(['']);
  });

  it('takes raw spaces in the key literally (lenient; Postfix would quote them)', () => {
    expect(keys(new TcpTableDecoder(100).push(b('get a b\n')))).toEqual(['a b']);
  });

  it('returns every request of a chunk in order', () => {
    const input = b('get a\nget b%20c\r\nget \nget d\n');
    expect(keys(new TcpTableDecoder(100).push(input))).toEqual(['a', 'b c', '', 'd']);
  });

  it('decodes a request split at every byte boundary', () => {
    const input = b('get a%20b@example.com\r\n');
    for (let i = 0; i <= input.length; i++) {
      const d = new TcpTableDecoder(100);
      const got = [...d.push(input.subarray(0, i)), ...d.push(input.subarray(i))];
      expect(keys(got), `split at ${i}`).toEqual(['a b@example.com']);
      expect(d.bufferedBytes).toBe(0);
    }
  });

  it('decodes several requests split at every pair of byte boundaries', () => {
    const input = b('get x\nget %41%42\nget y z\n');
    for (let i = 0; i <= input.length; i++) {
      for (let j = i; j <= input.length; j++) {
        expect(decodeAll(splitAt(input, [i, j])).map(String), `splits ${i},${j}`).toEqual(['x', 'AB', 'y z']);
      }
    }
  });

  it('decodes when fed one byte at a time', () => {
    const input = b('get a\nget b\n');
    expect(decodeAll([...input].map((c) => Buffer.from([c]))).map(String)).toEqual(['a', 'b']);
  });

  it('holds an unfinished line and reports its size', () => {
    const d = new TcpTableDecoder(100);
    expect(d.bufferedBytes).toBe(0);
    expect(d.push(b('get ab'))).toEqual([]);
    expect(d.bufferedBytes).toBe(6);
    expect(keys(d.push(b('c\nget')))).toEqual(['abc']);
    expect(d.bufferedBytes).toBe(3);
  });

  it('does not keep references into a chunk of an unfinished line', () => {
    const d = new TcpTableDecoder(100);
    const chunk = b('get abc');
    d.push(chunk);
    chunk.fill(0x5a);
    expect(keys(d.push(b('\n')))).toEqual(['abc']);
  });
});

describe('TcpTableDecoder: line limit (counts the newline)', () => {
  // maxLine 16: "get " + 11 key bytes + "\n" is exactly 16.
  it('accepts a line of exactly maxLine bytes including the newline', () => {
    expect(keys(new TcpTableDecoder(16).push(b('get abcdefghijk\n')))).toEqual(['abcdefghijk']);
  });

  it('rejects a line one byte longer', () => {
    expect(thrownBy(ProtocolError, () => new TcpTableDecoder(16).push(b('get abcdefghijkl\n'))).reason).toBe('line_too_long');
  });

  it('counts a CR as part of the line', () => {
    expect(keys(new TcpTableDecoder(16).push(b('get abcdefghij\r\n')))).toEqual(['abcdefghij']);
    expect(thrownBy(ProtocolError, () => new TcpTableDecoder(16).push(b('get abcdefghijk\r\n'))).reason).toBe('line_too_long');
  });

  it('fails as soon as maxLine bytes arrive without a newline, without waiting for more', () => {
    const d = new TcpTableDecoder(16);
    expect(d.push(b('get abcdefghijk'))).toEqual([]);
    expect(d.bufferedBytes).toBe(15);
    expect(thrownBy(ProtocolError, () => d.push(b('l'))).reason).toBe('line_too_long');
  });

  it('fails within a single big chunk without a newline', () => {
    expect(thrownBy(ProtocolError, () => new TcpTableDecoder(16).push(Buffer.alloc(100000, 0x61))).reason).toBe('line_too_long');
  });

  it('applies the limit per line, not per chunk', () => {
    const input = b('get abcdefghijk\n'.repeat(10));
    expect(decodeAll([input], 16)).toHaveLength(10);
  });

  it('at the limit, accepts whatever the chunking', () => {
    const input = b('get abcdefghijk\n');
    for (let i = 0; i <= input.length; i++) {
      expect(decodeAll(splitAt(input, [i]), 16).map(String), `split at ${i}`).toEqual(['abcdefghijk']);
    }
  });

  it('one past the limit, rejects whatever the chunking', () => {
    const input = b('get abcdefghijkl\n');
    for (let i = 0; i <= input.length; i++) {
      expect(thrownBy(ProtocolError, () => decodeAll(splitAt(input, [i]), 16)).reason, `split at ${i}`).toBe('line_too_long');
    }
  });

  it('rejects invalid maxLine values', () => {
    expect(() => new TcpTableDecoder(0)).toThrow(RangeError);
    expect(() => new TcpTableDecoder(2.5)).toThrow(RangeError);
  });
});

describe('TcpTableDecoder: malformed input', () => {
  const cases: Array<[string, string, string]> = [
    ['uppercase GET', 'GET a\n', 'bad_request'],
    ['another verb', 'put a b\n', 'bad_request'],
    ['bare get', 'get\n', 'bad_request'],
    ['get without space', 'geta\n', 'bad_request'],
    ['get with tab', 'get\ta\n', 'bad_request'],
    ['leading space', ' get a\n', 'bad_request'],
    ['empty line', '\n', 'bad_request'],
    ['CRLF only', '\r\n', 'bad_request'],
    ['broken escape', 'get a%2\n', 'bad_escape'],
    ['non-hex escape', 'get %zz\n', 'bad_escape'],
    ['escape cut by CR', 'get a%4\r\n', 'bad_escape'],
  ];
  for (const [name, input, reason] of cases) {
    it(`rejects ${name} with ${reason}, whatever the chunking`, () => {
      const bytes = b(input);
      for (let i = 0; i <= bytes.length; i++) {
        expect(thrownBy(ProtocolError, () => decodeAll(splitAt(bytes, [i]))).reason, `split at ${i}`).toBe(reason);
      }
    });
  }

  it('stays dead after an error and rethrows the same error', () => {
    const d = new TcpTableDecoder(100);
    const first = thrownBy(ProtocolError, () => d.push(b('bogus\n')));
    const second = thrownBy(ProtocolError, () => d.push(b('get a\n')));
    expect(second).toBe(first);
    expect(d.bufferedBytes).toBe(0);
  });
});

describe('encodeTcpReply: exact bytes', () => {
  it('found → 200 + quoted value', () => {
    expect(encodeTcpReply(found(b('a@example.com,b@example.com')))).toEqual({
      line: b('200 a@example.com,b@example.com\n'),
    });
  });

  it('quotes spaces, percent, newlines and binary bytes in found values', () => {
    const value = Buffer.from([0x61, 0x20, 0x25, 0x0a, 0x0d, 0x00, 0xff]);
    expect(encodeTcpReply(found(value)).line).toEqual(b('200 a%20%25%0A%0D%00%FF\n'));
  });

  it('notfound → 500 with text that unquotes to "not found"', () => {
    expect(encodeTcpReply(NOTFOUND)).toEqual({ line: b('500 not%20found\n') });
  });

  it('found with an empty value goes out as not found, never as "200 "', () => {
    expect(encodeTcpReply(found(Buffer.alloc(0)))).toEqual({ line: b('500 not%20found\n') });
  });

  it('temp, timeout and perm all become 400 with the quoted reason', () => {
    expect(encodeTcpReply(temp('ldap down')).line).toEqual(b('400 ldap%20down\n'));
    expect(encodeTcpReply(timeout('search timed out')).line).toEqual(b('400 search%20timed%20out\n'));
    expect(encodeTcpReply(perm('unknown map')).line).toEqual(b('400 unknown%20map\n'));
  });

  it('strips control bytes from reasons instead of quoting them', () => {
    expect(encodeTcpReply(temp('a\r\nb\0c')).line).toEqual(b('400 abc\n'));
  });

  it('caps a long reason at 512 bytes before quoting', () => {
    const line = encodeTcpReply(temp('x'.repeat(5000))).line;
    expect(line).toEqual(b('400 ' + 'x'.repeat(512) + '\n'));
  });

  it('returns a fresh buffer each time', () => {
    encodeTcpReply(NOTFOUND).line.fill(0);
    expect(encodeTcpReply(NOTFOUND).line).toEqual(b('500 not%20found\n'));
  });
});

describe('encodeTcpReply: size limit', () => {
  it('sends a found line of exactly 4096 bytes including the newline', () => {
    const reply = encodeTcpReply(found(Buffer.alloc(TCP_MAX_REPLY - 5, 0x61)));
    expect(reply.oversize).toBeUndefined();
    expect(reply.line.length).toBe(TCP_MAX_REPLY);
    expect(reply.line.subarray(0, 4)).toEqual(b('200 '));
  });

  it('answers 400 one byte past the limit and reports the size', () => {
    const reply = encodeTcpReply(found(Buffer.alloc(TCP_MAX_REPLY - 4, 0x61)));
    expect(reply.oversize).toBe(TCP_MAX_REPLY + 1);
    expect(reply.line).toEqual(b(`400 reply%20too%20large%20(${TCP_MAX_REPLY + 1}%20bytes)\n`));
  });

  it('measures the quoted size, not the raw size', () => {
    // 1363 bytes of 0xFF quote to 4089 bytes: 4094 with "200 " and "\n"; one more byte is 4097.
    expect(encodeTcpReply(found(Buffer.alloc(1363, 0xff))).line.length).toBe(4094);
    expect(encodeTcpReply(found(Buffer.alloc(1364, 0xff))).oversize).toBe(4097);
  });

  it('honours a custom limit', () => {
    expect(encodeTcpReply(found(b('abcdefghijk')), 16).line).toEqual(b('200 abcdefghijk\n'));
    const reply = encodeTcpReply(found(b('abcdefghijkl')), 16);
    expect(reply.oversize).toBe(17);
    expect(reply.line.length).toBeLessThanOrEqual(16);
    expect(reply.line.subarray(0, 4)).toEqual(b('400 '));
  });

  it('cuts a quoted reason to fit without splitting a %XX escape', () => {
    // maxLine 16 leaves 11 bytes of text.
    expect(encodeTcpReply(temp('abcdefghi j'), 16).line).toEqual(b('400 abcdefghi\n'));
    expect(encodeTcpReply(temp('abcdefghij k'), 16).line).toEqual(b('400 abcdefghij\n'));
    expect(encodeTcpReply(temp('abcdefgh ij'), 16).line).toEqual(b('400 abcdefgh%20\n'));
    expect(encodeTcpReply(temp('abcdefghijklm'), 16).line).toEqual(b('400 abcdefghijk\n'));
  });

  it('refuses limits too small to carry any reply', () => {
    expect(() => encodeTcpReply(NOTFOUND, 15)).toThrow(RangeError);
  });
});

describe('tcp_table: what Postfix makes of it', () => {
  type ClientOutcome = { kind: 'found'; value: Buffer } | { kind: 'notfound' } | { kind: 'temp' } | { kind: 'malformed' };

  /** dict_tcp_lookup: 3 digits, one whitespace, text that must hex_unquote; first digit decides. */
  function postfixRead(line: Buffer): ClientOutcome {
    if (line.length > TCP_MAX_REPLY || line[line.length - 1] !== 0x0a) return { kind: 'malformed' };
    const text = line.subarray(0, -1);
    if (text.includes(0x0a)) return { kind: 'malformed' };
    const digits = text.subarray(0, 3).toString('latin1');
    if (!/^[0-9]{3}$/.test(digits) || ![0x20, 0x09].includes(text[3]!)) return { kind: 'malformed' };
    let value: Buffer;
    try {
      value = hexUnquote(text.subarray(4));
    } catch {
      return { kind: 'malformed' };
    }
    if (digits[0] === '2') return { kind: 'found', value };
    if (digits[0] === '5') return { kind: 'notfound' };
    return { kind: 'temp' };
  }

  function randomResult(rand: () => number): LookupResult {
    const text = (n: number): string => String.fromCharCode(...Array.from({ length: n }, () => Math.floor(rand() * 0x3000)));
    const pick = Math.floor(rand() * 5);
    if (pick === 0) return found(randomBytes(rand, Math.floor(rand() * (rand() < 0.1 ? 3000 : 60))));
    if (pick === 1) return NOTFOUND;
    if (pick === 2) return temp(text(Math.floor(rand() * 700)));
    if (pick === 3) return timeout(text(Math.floor(rand() * 50)));
    return perm(text(Math.floor(rand() * 50)));
  }

  it('every random reply is one well-formed line that Postfix classifies as intended, 3000 cases', () => {
    const rand = prng(11);
    for (let i = 0; i < 3000; i++) {
      const result = randomResult(rand);
      const reply = encodeTcpReply(result);
      const outcome = postfixRead(reply.line);
      if (result.kind === 'found' && result.value.length > 0 && reply.oversize === undefined) {
        expect(outcome, `case ${i}`).toEqual({ kind: 'found', value: result.value });
      } else if (result.kind === 'found' || result.kind === 'notfound') {
        expect(outcome.kind, `case ${i}`).toBe(result.kind === 'found' && result.value.length > 0 ? 'temp' : 'notfound');
      } else {
        expect(outcome.kind, `case ${i}`).toBe('temp');
      }
    }
  });

  it('round-trips requests: quote as Postfix does, decode with random chunking', () => {
    const rand = prng(5);
    for (let i = 0; i < 500; i++) {
      const wanted = Array.from({ length: 1 + Math.floor(rand() * 5) }, () => randomBytes(rand, Math.floor(rand() * 40)));
      const wire = Buffer.concat(wanted.flatMap((k) => [b('get '), hexQuote(k), b('\n')]));
      const cuts = Array.from({ length: Math.floor(rand() * 5) }, () => Math.floor(rand() * (wire.length + 1)));
      expect(decodeAll(splitAt(wire, cuts), 200)).toEqual(wanted);
    }
  });
});

describe('TcpTableDecoder: fuzz', () => {
  const ALPHABET = b('get get %%0aF\n\n\r xyz');

  /** Whole-input reference: split on '\n', check the limit, then parse each line. */
  function referenceDecode(input: Buffer, maxLine: number): { keys: Buffer[]; error?: string } {
    const got: Buffer[] = [];
    let pos = 0;
    for (;;) {
      const nl = input.indexOf(0x0a, pos);
      if (nl < 0) return input.length - pos >= maxLine ? { keys: got, error: 'line_too_long' } : { keys: got };
      if (nl - pos + 1 > maxLine) return { keys: got, error: 'line_too_long' };
      let line = input.subarray(pos, nl);
      if (line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
      if (!line.subarray(0, 4).equals(b('get '))) return { keys: got, error: 'bad_request' };
      try {
        got.push(hexUnquote(line.subarray(4)));
      } catch (err) {
        return { keys: got, error: (err as ProtocolError).reason };
      }
      pos = nl + 1;
    }
  }

  function randomInput(rand: () => number): Buffer {
    if (rand() < 0.5) {
      const n = Math.floor(rand() * 60);
      return Buffer.from(Array.from({ length: n }, () => ALPHABET[Math.floor(rand() * ALPHABET.length)]!));
    }
    const lines = Array.from({ length: Math.floor(rand() * 4) }, () =>
      Buffer.concat([b('get '), hexQuote(randomBytes(rand, Math.floor(rand() * 12))), b(rand() < 0.2 ? '\r\n' : '\n')]),
    );
    const bytes = Buffer.concat(lines);
    if (bytes.length > 0 && rand() < 0.5) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
    return bytes;
  }

  it('matches the whole-input reference under random chunking, 5000 cases', () => {
    const rand = prng(0xfeed);
    let errors = 0;
    let requests = 0;
    for (let iteration = 0; iteration < 5000; iteration++) {
      const maxLine = 8 + Math.floor(rand() * 40);
      const input = randomInput(rand);
      const expected = referenceDecode(input, maxLine);
      const decoder = new TcpTableDecoder(maxLine);
      const got: Buffer[] = [];
      let error: string | undefined;
      const cuts = Array.from({ length: Math.floor(rand() * 6) }, () => Math.floor(rand() * (input.length + 1)));
      for (const chunk of splitAt(input, cuts)) {
        try {
          got.push(...decoder.push(chunk).map((r) => r.key));
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
          error = err.reason;
          break;
        }
        expect(decoder.bufferedBytes).toBeLessThan(maxLine);
      }
      const label = `iteration ${iteration} (maxLine ${maxLine}): ${input.toString('hex')}`;
      expect(error, label).toBe(expected.error);
      expect(got, label).toEqual(error ? expected.keys.slice(0, got.length) : expected.keys);
      if (error) errors++;
      requests += got.length;
    }
    expect(errors).toBeGreaterThan(500);
    expect(requests).toBeGreaterThan(1000);
  });
});
