import { describe, it, expect } from 'vitest';
import { found, NOTFOUND, perm, temp, timeout, type LookupResult } from '../../src/contracts/result.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { NetstringDecoder, encodeNetstring } from '../../src/protocol/netstring.js';
import {
  SOCKETMAP_MAX_REPLY,
  encodeSocketmapReply,
  parseSocketmapRequest,
  socketmapNameEnd,
} from '../../src/protocol/socketmap.js';
import { prng, randomBytes } from '../support/prng.js';
import { thrownBy } from '../support/throws.js';


const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** The one payload inside a reply frame, read the way the Postfix client reads it. */
function payloadOf(frame: Buffer): Buffer {
  const frames = new NetstringDecoder(SOCKETMAP_MAX_REPLY).push(frame);
  expect(frames).toHaveLength(1);
  return frames[0]!;
}

type ClientOutcome = { kind: 'found'; value: Buffer } | { kind: 'notfound' } | { kind: 'temp' } | { kind: 'config' };

/** dict_sockmap_lookup's reply classification (3.7+), to check what Postfix would make of a reply. */
function postfixClassify(payload: Buffer): ClientOutcome {
  const space = payload.indexOf(0x20);
  const word = payload.toString('latin1', 0, space < 0 ? payload.length : space);
  const rest = space < 0 ? Buffer.alloc(0) : payload.subarray(space + 1);
  if (word === 'OK' && space >= 0) return { kind: 'found', value: rest };
  if (word === 'NOTFOUND') return { kind: 'notfound' };
  if (word === 'PERM') return { kind: 'config' };
  return { kind: 'temp' };
}

describe('parseSocketmapRequest', () => {
  it('splits the map name from the key at the first space', () => {
    const req = parseSocketmapRequest(b('aliases user@example.com'));
    expect(req.mapName).toBe('aliases');
    expect(req.key).toEqual(b('user@example.com'));
  });

  it('keeps later spaces in the key verbatim', () => {
    expect(parseSocketmapRequest(b('m  a b  c ')).key).toEqual(b(' a b  c '));
  });

  it('keeps binary key bytes verbatim, including NUL, comma and colon', () => {
    const key = Buffer.from([0x00, 0x2c, 0x3a, 0xff, 0x0a, 0x25]);
    expect(parseSocketmapRequest(Buffer.concat([b('map '), key])).key).toEqual(key);
  });

  it('allows an empty key (the lookup layer answers NOTFOUND)', () => {
    const req = parseSocketmapRequest(b('virtual '));
    expect(req.mapName).toBe('virtual');
    expect(req.key.length).toBe(0);
  });

  it('rejects a payload without a space', () => {
    expect(thrownBy(ProtocolError, () => parseSocketmapRequest(b('aliases'))).reason).toBe('bad_request');
  });

  it('rejects an empty map name', () => {
    expect(thrownBy(ProtocolError, () => parseSocketmapRequest(b(' user@example.com'))).reason).toBe('bad_request');
    expect(thrownBy(ProtocolError, () => parseSocketmapRequest(b(' '))).reason).toBe('bad_request');
  });

  it('socketmapNameEnd: where the name ends, with the same errors', () => {
    expect(socketmapNameEnd(b('aliases user@example.com'))).toBe(7);
    expect(socketmapNameEnd(b('m  a'))).toBe(1);
    expect(thrownBy(ProtocolError, () => socketmapNameEnd(b('aliases'))).reason).toBe('bad_request');
    expect(thrownBy(ProtocolError, () => socketmapNameEnd(b(' x'))).reason).toBe('bad_request');
  });

  it('rejects an empty payload', () => {
    expect(thrownBy(ProtocolError, () => parseSocketmapRequest(b(''))).reason).toBe('bad_request');
  });

  it('decodes non-ASCII map names losslessly as latin1', () => {
    const req = parseSocketmapRequest(Buffer.from([0x6d, 0xe9, 0x20, 0x6b]));
    expect(req.mapName).toBe('m\u00e9');
    expect(Buffer.from(req.mapName, 'latin1')).toEqual(Buffer.from([0x6d, 0xe9]));
  });

  it('parses the request Postfix sends in the worked example, straight off the wire', () => {
    const [payload] = new NetstringDecoder(SOCKETMAP_MAX_REPLY).push(b('31:aliases Group*Sales@Example.COM,'));
    const req = parseSocketmapRequest(payload!);
    expect(req.mapName).toBe('aliases');
    expect(req.key.toString('latin1')).toBe('Group*Sales@Example.COM');
  });
});

describe('encodeSocketmapReply: exact bytes', () => {
  it('found → OK + value', () => {
    const reply = encodeSocketmapReply(found(b('a@example.com,b@example.com')));
    expect(reply.frame).toEqual(b('30:OK a@example.com,b@example.com,'));
    expect(reply.oversize).toBeUndefined();
  });

  it('notfound → "NOTFOUND " with its trailing space', () => {
    expect(encodeSocketmapReply(NOTFOUND)).toEqual({ frame: b('9:NOTFOUND ,') });
  });

  it('temp → TEMP + reason', () => {
    expect(encodeSocketmapReply(temp('ldap server unavailable')).frame).toEqual(b('28:TEMP ldap server unavailable,'));
  });

  it('timeout → TIMEOUT + reason', () => {
    expect(encodeSocketmapReply(timeout('search timed out')).frame).toEqual(b('24:TIMEOUT search timed out,'));
  });

  it('perm → PERM + reason', () => {
    expect(encodeSocketmapReply(perm('unknown map nope')).frame).toEqual(b('21:PERM unknown map nope,'));
  });

  it('error words keep their space even with an empty reason', () => {
    expect(encodeSocketmapReply(temp('')).frame).toEqual(b('5:TEMP ,'));
  });

  it('found with an empty value goes out as NOTFOUND, never as "OK "', () => {
    expect(encodeSocketmapReply(found(Buffer.alloc(0)))).toEqual({ frame: b('9:NOTFOUND ,') });
  });

  it('carries value bytes verbatim: spaces, commas, colons, NUL and high bytes', () => {
    const value = Buffer.from([0x20, 0x2c, 0x3a, 0x00, 0xc3, 0xa9, 0x0a]);
    const frame = encodeSocketmapReply(found(value)).frame;
    expect(frame).toEqual(Buffer.concat([b('10:OK '), value, b(',')]));
  });

  it('matches encodeNetstring of the equivalent string', () => {
    expect(encodeSocketmapReply(found(b('x'))).frame).toEqual(encodeNetstring('OK x'));
  });

  it('returns a fresh buffer each time, so mutating one reply cannot corrupt the next', () => {
    const first = encodeSocketmapReply(NOTFOUND).frame;
    first.fill(0);
    expect(encodeSocketmapReply(NOTFOUND).frame).toEqual(b('9:NOTFOUND ,'));
  });
});

describe('encodeSocketmapReply: size limit', () => {
  it('sends a value whose payload is exactly the client maximum', () => {
    const value = Buffer.alloc(SOCKETMAP_MAX_REPLY - 3, 0x61);
    const reply = encodeSocketmapReply(found(value));
    expect(reply.oversize).toBeUndefined();
    const payload = payloadOf(reply.frame);
    expect(payload.length).toBe(SOCKETMAP_MAX_REPLY);
    expect(payload.subarray(3)).toEqual(value);
  });

  it('answers TEMP, not an oversize frame, one byte past the maximum', () => {
    const value = Buffer.alloc(SOCKETMAP_MAX_REPLY - 2, 0x61);
    const reply = encodeSocketmapReply(found(value));
    expect(reply.oversize).toBe(SOCKETMAP_MAX_REPLY + 1);
    expect(reply.frame).toEqual(encodeNetstring(`TEMP reply too large (${SOCKETMAP_MAX_REPLY + 1} bytes)`));
  });

  it('honours a smaller custom limit at and one past it', () => {
    expect(encodeSocketmapReply(found(b('1234567')), 10)).toEqual({ frame: b('10:OK 1234567,') });
    const reply = encodeSocketmapReply(found(b('12345678')), 10);
    expect(reply.oversize).toBe(11);
    expect(reply.frame).toEqual(b('10:TEMP reply,'));
  });

  it('cuts error reasons to fit a small limit', () => {
    expect(encodeSocketmapReply(temp('abcdefghijk'), 12).frame).toEqual(b('12:TEMP abcdefg,'));
    expect(encodeSocketmapReply(timeout('abcdefghijk'), 9).frame).toEqual(b('9:TIMEOUT a,'));
  });

  it('refuses limits too small to carry any reply', () => {
    expect(() => encodeSocketmapReply(NOTFOUND, 8)).toThrow(RangeError);
    expect(encodeSocketmapReply(NOTFOUND, 9).frame).toEqual(b('9:NOTFOUND ,'));
  });
});

describe('encodeSocketmapReply: reason sanitizing', () => {
  it('strips control bytes so a reason cannot inject log lines', () => {
    expect(encodeSocketmapReply(temp('a\r\nb\0c\td\x1fe')).frame).toEqual(b('10:TEMP abcde,'));
  });

  it('keeps commas, colons and digits, which are safe inside a netstring', () => {
    const frame = encodeSocketmapReply(temp('3:x, 5:y,')).frame;
    expect(payloadOf(frame).toString('latin1')).toBe('TEMP 3:x, 5:y,');
  });

  it('caps a long reason at 512 bytes', () => {
    const payload = payloadOf(encodeSocketmapReply(temp('x'.repeat(5000))).frame);
    expect(payload.toString('latin1')).toBe('TEMP ' + 'x'.repeat(512));
  });

  it('cuts a multi-byte reason on a UTF-8 character boundary', () => {
    const payload = payloadOf(encodeSocketmapReply(temp('x' + 'é'.repeat(300))).frame);
    const text = payload.subarray(5).toString('utf8');
    expect(text).toBe('x' + 'é'.repeat(255));
    expect(payload.length - 5).toBe(511);
  });
});

describe('encodeSocketmapReply: what Postfix makes of it', () => {
  function expectedOutcome(result: LookupResult, max: number): ClientOutcome {
    switch (result.kind) {
      case 'found':
        if (result.value.length === 0) return { kind: 'notfound' };
        return result.value.length + 3 > max ? { kind: 'temp' } : { kind: 'found', value: result.value };
      case 'notfound':
        return { kind: 'notfound' };
      case 'temp':
      case 'timeout':
        return { kind: 'temp' };
      case 'perm':
        return { kind: 'config' };
    }
  }

  function randomResult(rand: () => number): LookupResult {
    const randomText = (n: number): string =>
      String.fromCharCode(...Array.from({ length: n }, () => Math.floor(rand() * 0x3000)));
    const pick = Math.floor(rand() * 5);
    if (pick === 0) return found(randomBytes(rand, Math.floor(rand() * 120)));
    if (pick === 1) return NOTFOUND;
    if (pick === 2) return temp(randomText(Math.floor(rand() * 200)));
    if (pick === 3) return timeout(randomText(Math.floor(rand() * 200)));
    return perm(randomText(Math.floor(rand() * 200)));
  }

  it('classifies every random reply as intended and always within the limit, 3000 cases', () => {
    const rand = prng(7);
    for (let i = 0; i < 3000; i++) {
      const max = 9 + Math.floor(rand() * 150);
      const result = randomResult(rand);
      const reply = encodeSocketmapReply(result, max);
      const frames = new NetstringDecoder(max).push(reply.frame);
      expect(frames, `case ${i}`).toHaveLength(1);
      expect(postfixClassify(frames[0]!), `case ${i}`).toEqual(expectedOutcome(result, max));
      if (result.kind !== 'found') {
        const text = frames[0]!.subarray(frames[0]!.indexOf(0x20) + 1);
        expect(text.some((c) => c < 0x20), `case ${i}`).toBe(false);
      }
    }
  });

  it('round-trips a request: encode as Postfix would, decode, parse', () => {
    const rand = prng(99);
    for (let i = 0; i < 500; i++) {
      const key = Buffer.from(Array.from({ length: Math.floor(rand() * 60) }, () => Math.floor(rand() * 256)));
      const wire = encodeNetstring(Buffer.concat([b('map'), b(String(i)), b(' '), key]));
      const [payload] = new NetstringDecoder(10000).push(wire);
      expect(parseSocketmapRequest(payload!)).toEqual({ mapName: `map${i}`, key });
    }
  });
});
