import { describe, it, expect } from 'vitest';
import { ProtocolError, PROTOCOL_ERROR_REASONS } from '../../src/protocol/errors.js';
import {
  MAX_LENGTH_DIGITS,
  NetstringDecoder,
  encodeNetstring,
  encodeNetstringWithPrefix,
} from '../../src/protocol/netstring.js';
import { prng } from '../support/prng.js';
import { thrownBy } from '../support/throws.js';
import { splitAt } from '../support/chunks.js';


const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const strs = (frames: Buffer[]): string[] => frames.map((f) => f.toString('latin1'));

function decodeAll(chunks: Buffer[], max = 1000): Buffer[] {
  const d = new NetstringDecoder(max);
  return chunks.flatMap((c) => d.push(c));
}

/**
 * Whole-input reference decoder written straight from the Postfix rules (netstring_get_length,
 * netstring_get_data), used to check the incremental decoder under arbitrary chunking.
 */
function referenceDecode(input: Buffer, max: number): { frames: Buffer[]; error?: string } {
  const frames: Buffer[] = [];
  let pos = 0;
  while (pos < input.length) {
    let length = 0;
    let digits = 0;
    for (;;) {
      if (pos >= input.length) return { frames };
      const c = input[pos++]!;
      if (c === 0x3a) break;
      if (c < 0x30 || c > 0x39) return { frames, error: 'bad_length' };
      length = length * 10 + (c - 0x30);
      if (length > max) return { frames, error: 'too_long' };
      if (++digits > MAX_LENGTH_DIGITS) return { frames, error: 'bad_length' };
    }
    if (pos + length >= input.length) return { frames };
    const payload = input.subarray(pos, pos + length);
    pos += length;
    if (input[pos] !== 0x2c) return { frames, error: 'bad_terminator' };
    pos++;
    frames.push(payload);
  }
  return { frames };
}

describe('encodeNetstring', () => {
  it('encodes empty, ASCII and binary payloads exactly', () => {
    expect(encodeNetstring('')).toEqual(b('0:,'));
    expect(encodeNetstring('hello')).toEqual(b('5:hello,'));
    expect(encodeNetstring(Buffer.from([0, 0x2c, 0x3a, 0xff]))).toEqual(Buffer.from([0x34, 0x3a, 0, 0x2c, 0x3a, 0xff, 0x2c]));
  });

  it('counts UTF-8 bytes, not characters, for string payloads', () => {
    expect(encodeNetstring('é€')).toEqual(Buffer.concat([b('5:'), Buffer.from('é€', 'utf8'), b(',')]));
  });

  it('uses a multi-digit length for large payloads', () => {
    const payload = Buffer.alloc(12345, 0x61);
    const frame = encodeNetstring(payload);
    expect(frame.subarray(0, 6)).toEqual(b('12345:'));
    expect(frame.length).toBe(6 + 12345 + 1);
    expect(frame[frame.length - 1]).toBe(0x2c);
  });

  it('encodeNetstringWithPrefix counts the prefix in the length', () => {
    expect(encodeNetstringWithPrefix('OK ', b('a@b'))).toEqual(b('6:OK a@b,'));
    expect(encodeNetstringWithPrefix('', b(''))).toEqual(b('0:,'));
  });
});

describe('NetstringDecoder: valid input', () => {
  it('decodes a single frame', () => {
    expect(strs(decodeAll([b('5:hello,')]))).toEqual(['hello']);
  });

  it('decodes empty payloads with and without a length digit (Postfix reads "" as 0)', () => {
    expect(strs(decodeAll([b('0:,')]))).toEqual(['']);
    expect(strs(decodeAll([b(':,')]))).toEqual(['']);
    expect(strs(decodeAll([b('000:,')]))).toEqual(['']);
  });

  it('accepts leading zeros', () => {
    expect(strs(decodeAll([b('005:hello,')]))).toEqual(['hello']);
  });

  it('returns every frame of a chunk in order', () => {
    const input = b('1:a,2:bb,0:,3:c,d,11:hello world,');
    expect(strs(decodeAll([input]))).toEqual(['a', 'bb', '', 'c,d', 'hello world']);
  });

  it('keeps payload bytes verbatim, including ":", "," and NUL', () => {
    const payload = Buffer.from([0x3a, 0x2c, 0x00, 0xff, 0x0a, 0x0d]);
    expect(decodeAll([encodeNetstring(payload)])).toEqual([payload]);
  });

  it('decodes a frame split at every byte boundary', () => {
    const input = b('11:hello world,');
    for (let i = 0; i <= input.length; i++) {
      const d = new NetstringDecoder(100);
      const frames = [...d.push(input.subarray(0, i)), ...d.push(input.subarray(i))];
      expect(strs(frames), `split at ${i}`).toEqual(['hello world']);
      expect(d.bufferedBytes).toBe(0);
    }
  });

  it('decodes several frames split at every pair of byte boundaries', () => {
    const input = b('3:abc,0:,10:0123456789,');
    for (let i = 0; i <= input.length; i++) {
      for (let j = i; j <= input.length; j++) {
        const frames = decodeAll(splitAt(input, [i, j]), 100);
        expect(strs(frames), `splits at ${i},${j}`).toEqual(['abc', '', '0123456789']);
      }
    }
  });

  it('decodes when fed one byte at a time', () => {
    const input = b('3:abc,5:de:f,,1:x,');
    const chunks = [...input].map((c) => Buffer.from([c]));
    expect(strs(decodeAll(chunks))).toEqual(['abc', 'de:f,', 'x']);
  });

  it('returns nothing for empty chunks and keeps state across them', () => {
    const d = new NetstringDecoder(10);
    expect(d.push(b(''))).toEqual([]);
    expect(d.push(b('2:a'))).toEqual([]);
    expect(d.push(b(''))).toEqual([]);
    expect(strs(d.push(b('b,')))).toEqual(['ab']);
  });
});

describe('NetstringDecoder: limits', () => {
  it('accepts a payload of exactly maxPayload bytes', () => {
    const payload = Buffer.alloc(100, 0x78);
    expect(decodeAll([encodeNetstring(payload)], 100)).toEqual([payload]);
  });

  it('rejects maxPayload + 1 as soon as the length digits prove it, before any data', () => {
    const d = new NetstringDecoder(100);
    expect(d.push(b('10'))).toEqual([]);
    expect(thrownBy(ProtocolError, () => d.push(b('1'))).reason).toBe('too_long');
  });

  it('rejects a length with more digits than the maximum needs without waiting for ":"', () => {
    const d = new NetstringDecoder(99);
    expect(d.push(b('99'))).toEqual([]);
    expect(thrownBy(ProtocolError, () => d.push(b('0'))).reason).toBe('too_long');
  });

  it('with maxPayload 0 accepts only empty payloads', () => {
    expect(strs(decodeAll([b('0:,')], 0))).toEqual(['']);
    expect(thrownBy(ProtocolError, () => decodeAll([b('1')], 0)).reason).toBe('too_long');
  });

  it('handles a limit as large as the socketmap one (100000) exactly at and one past', () => {
    const ok = Buffer.alloc(100000, 0x61);
    expect(decodeAll([encodeNetstring(ok)], 100000)[0]!.length).toBe(100000);
    expect(thrownBy(ProtocolError, () => decodeAll([b('100001:')], 100000)).reason).toBe('too_long');
  });

  it(`allows ${MAX_LENGTH_DIGITS} length digits but not one more, even if they are zeros`, () => {
    const okHeader = '0'.repeat(MAX_LENGTH_DIGITS - 1) + '1:';
    expect(strs(decodeAll([b(okHeader + 'x,')]))).toEqual(['x']);
    expect(thrownBy(ProtocolError, () => decodeAll([b('0'.repeat(MAX_LENGTH_DIGITS + 1))])).reason).toBe('bad_length');
  });

  it('never buffers more than the declared payload plus its header', () => {
    const d = new NetstringDecoder(10);
    d.push(b('10:'));
    expect(d.bufferedBytes).toBe(3);
    d.push(b('01234'));
    expect(d.bufferedBytes).toBe(8);
    d.push(b('56789'));
    expect(d.bufferedBytes).toBe(13);
    expect(strs(d.push(b(',')))).toEqual(['0123456789']);
    expect(d.bufferedBytes).toBe(0);
  });

  it('reports 0 buffered bytes for a fresh decoder and between frames', () => {
    const d = new NetstringDecoder(10);
    expect(d.bufferedBytes).toBe(0);
    d.push(b('1:a,1:'));
    expect(d.bufferedBytes).toBe(2);
  });

  it('rejects invalid maxPayload values', () => {
    expect(() => new NetstringDecoder(-1)).toThrow(RangeError);
    expect(() => new NetstringDecoder(1.5)).toThrow(RangeError);
    expect(() => new NetstringDecoder(Number.NaN)).toThrow(RangeError);
  });
});

describe('NetstringDecoder: malformed input', () => {
  const cases: Array<[string, string, string]> = [
    ['minus sign', '-1:a,', 'bad_length'],
    ['plus sign', '+1:a,', 'bad_length'],
    ['leading space', ' 1:a,', 'bad_length'],
    ['space before colon', '1 :a,', 'bad_length'],
    ['CR in length', '1\r:a,', 'bad_length'],
    ['hex digit', 'a:0123456789,', 'bad_length'],
    ['newline between frames', '1:a,\n1:b,', 'bad_length'],
    ['CRLF between frames', '1:a,\r\n', 'bad_length'],
    ['comma instead of colon', '1,a,', 'bad_length'],
    ['payload longer than declared', '3:abcd,', 'bad_terminator'],
    ['payload shorter than declared', '5:abc,,x', 'bad_terminator'],
    ['wrong terminator', '3:abc;', 'bad_terminator'],
    ['newline terminator', '3:abc\n', 'bad_terminator'],
    ['empty payload without comma', '0:x', 'bad_terminator'],
  ];
  for (const [name, input, reason] of cases) {
    it(`rejects ${name} with ${reason}`, () => {
      const err = thrownBy(ProtocolError, () => decodeAll([b(input)], 100));
      expect(err.reason).toBe(reason);
      expect(err.name).toBe('ProtocolError');
      expect(PROTOCOL_ERROR_REASONS).toContain(err.reason);
    });

    it(`rejects ${name} with ${reason} whatever the chunking`, () => {
      const bytes = b(input);
      for (let i = 0; i <= bytes.length; i++) {
        expect(thrownBy(ProtocolError, () => decodeAll(splitAt(bytes, [i]), 100)).reason, `split at ${i}`).toBe(reason);
      }
    });
  }

  it('stays dead after an error and rethrows the same error', () => {
    const d = new NetstringDecoder(100);
    const first = thrownBy(ProtocolError, () => d.push(b('x')));
    const second = thrownBy(ProtocolError, () => d.push(b('1:a,')));
    expect(second).toBe(first);
    expect(second.reason).toBe('bad_length');
  });
});

describe('NetstringDecoder: buffer ownership', () => {
  it('returns payloads that lie inside one chunk without copying', () => {
    const chunk = b('5:hello,');
    const [payload] = new NetstringDecoder(10).push(chunk);
    expect(payload!.buffer).toBe(chunk.buffer);
    expect(payload!.byteOffset).toBe(chunk.byteOffset + 2);
  });

  it('does not keep references into a chunk of an unfinished frame', () => {
    const d = new NetstringDecoder(20);
    const first = b('10:01234');
    d.push(first);
    first.fill(0x5a);
    const second = b('56789,');
    const [payload] = d.push(second);
    second.fill(0x5a);
    expect(payload!.toString('latin1')).toBe('0123456789');
  });

  it('does not keep a reference to a complete payload whose comma is still missing', () => {
    const d = new NetstringDecoder(20);
    const chunk = b('5:hello');
    d.push(chunk);
    chunk.fill(0x5a);
    expect(strs(d.push(b(',')))).toEqual(['hello']);
  });
});

describe('NetstringDecoder: fuzz', () => {
  const ALPHABET = b('0123456789::,,,abc \r\n-');

  function randomInput(rand: () => number): Buffer {
    const mode = rand();
    if (mode < 0.3) {
      // Pure noise over bytes that matter to the grammar.
      const n = Math.floor(rand() * 40);
      return Buffer.from(Array.from({ length: n }, () => ALPHABET[Math.floor(rand() * ALPHABET.length)]!));
    }
    if (mode < 0.4) {
      const n = Math.floor(rand() * 40);
      return Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
    }
    // Valid frames, then perhaps one mutation.
    const frames: Buffer[] = [];
    const count = Math.floor(rand() * 5);
    for (let i = 0; i < count; i++) {
      const n = Math.floor(rand() * 70);
      frames.push(encodeNetstring(Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)))));
    }
    const bytes = Buffer.concat(frames);
    if (bytes.length > 0 && rand() < 0.5) {
      const at = Math.floor(rand() * bytes.length);
      const op = rand();
      if (op < 0.33) bytes[at] = Math.floor(rand() * 256);
      else if (op < 0.66) return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
      else return Buffer.concat([bytes.subarray(0, at), ALPHABET.subarray(0, 1 + Math.floor(rand() * 3)), bytes.subarray(at)]);
    }
    return bytes;
  }

  function randomCuts(rand: () => number, length: number): number[] {
    const count = Math.floor(rand() * 6);
    return Array.from({ length: count }, () => Math.floor(rand() * (length + 1)));
  }

  it('matches the whole-input reference under random chunking, 5000 cases', () => {
    const rand = prng(0x5eed);
    const max = 64;
    let errors = 0;
    let framesSeen = 0;
    for (let iteration = 0; iteration < 5000; iteration++) {
      const input = randomInput(rand);
      const expected = referenceDecode(input, max);
      const decoder = new NetstringDecoder(max);
      const got: Buffer[] = [];
      let error: string | undefined;
      for (const chunk of splitAt(input, randomCuts(rand, input.length))) {
        try {
          got.push(...decoder.push(chunk));
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
          error = err.reason;
          break;
        }
        expect(decoder.bufferedBytes).toBeLessThanOrEqual(MAX_LENGTH_DIGITS + 1 + max);
      }
      expect(error, `iteration ${iteration}: ${input.toString('hex')}`).toBe(expected.error);
      // A throwing push drops the frames completed earlier in the same chunk: a prefix, in order.
      const want = error ? expected.frames.slice(0, got.length) : expected.frames;
      expect(got, `iteration ${iteration}: ${input.toString('hex')}`).toEqual(want);
      if (error) errors++;
      framesSeen += got.length;
    }
    // The generator must exercise both outcomes, or this test proves little.
    expect(errors).toBeGreaterThan(500);
    expect(framesSeen).toBeGreaterThan(2000);
  });

  it('round-trips random payloads through encode and randomly chunked decode', () => {
    const rand = prng(42);
    for (let iteration = 0; iteration < 500; iteration++) {
      const payloads = Array.from({ length: 1 + Math.floor(rand() * 8) }, () =>
        Buffer.from(Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256))),
      );
      const stream = Buffer.concat(payloads.map((p) => encodeNetstring(p)));
      expect(decodeAll(splitAt(stream, randomCuts(rand, stream.length)), 300)).toEqual(payloads);
    }
  });
});
