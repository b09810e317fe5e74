/**
 * The DIGEST-MD5 security layer codec, client against a server-side instance of itself (the
 * keys of each direction differ, so a mix-up fails), for integrity and every cipher: framing,
 * the cipher state running across frames, frames split and merged by TCP, messages over the peer's maxbuf, and
 * every check a forged or replayed frame must fail. The real proof is test/integration/sasl.test.ts
 * against slapd's Cyrus SASL.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { desKey, DigestLayer, DigestLayerError, Rc4 } from '../../src/ldap/sasl/digest-layer.js';
import type { DigestLayerParams } from '../../src/ldap/sasl/digest-md5.js';

const ha1 = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

const LAYERS: Omit<DigestLayerParams, 'ha1' | 'sendMax'>[] = [
  { qop: 'auth-int' }, { qop: 'auth-conf', cipher: 'rc4' }, { qop: 'auth-conf', cipher: '3des' },
  { qop: 'auth-conf', cipher: 'rc4-56' }, { qop: 'auth-conf', cipher: 'rc4-40' },
];

for (const layer of LAYERS) {
  const { qop } = layer;
  describe(`DIGEST-MD5 layer, ${qop} ${layer.cipher ?? ''}`, () => {
    const params: DigestLayerParams = { ...layer, ha1, sendMax: 65536 };
    const pair = () => ({ client: new DigestLayer(params), server: new DigestLayer(params, 'server') });

    it('carries messages both ways, in order, across many frames', () => {
      const { client, server } = pair();
      for (let i = 0; i < 50; i++) {
        const msg = randomBytes(1 + (i * 37) % 300);
        expect(server.unwrap(client.wrap(msg))).toEqual(msg);
        const back = randomBytes(1 + (i * 53) % 500);
        expect(client.unwrap(server.wrap(back))).toEqual(back);
      }
    });

    it('frames as length | body | 0x0001 | seq, and hides the message only with auth-conf', () => {
      const { client } = pair();
      const msg = Buffer.from('0\u0005\u0002\u0001\u0002B\u0000'.repeat(3), 'latin1');
      const f1 = client.wrap(msg);
      const f2 = client.wrap(msg);
      expect(f1.readUInt32BE(0)).toBe(f1.length - 4);
      expect(f1.readUInt16BE(f1.length - 6)).toBe(1);
      expect(f1.readUInt32BE(f1.length - 4)).toBe(0);
      expect(f2.readUInt32BE(f2.length - 4)).toBe(1);
      if (qop === 'auth-int') {
        expect(f1.subarray(4, 4 + msg.length)).toEqual(msg);
        expect(f1.length).toBe(4 + msg.length + 10 + 6);
      } else {
        expect(f1.includes(msg)).toBe(false);
        if (layer.cipher === '3des') expect((f1.length - 4 - 6) % 8).toBe(0);
        else expect(f1.length).toBe(4 + msg.length + 10 + 6);
        // The cipher runs on: the same message encrypts differently the second time.
        expect(f2.subarray(4, -6)).not.toEqual(f1.subarray(4, -6));
      }
    });

    it('reassembles frames split byte by byte, and several frames in one read', () => {
      const { client, server } = pair();
      const msgs = [randomBytes(10), randomBytes(200), randomBytes(7)];
      const wire = Buffer.concat(msgs.map((m) => server.wrap(m)));
      const got: Buffer[] = [];
      for (let i = 0; i < wire.length; i++) got.push(client.unwrap(wire.subarray(i, i + 1)));
      expect(Buffer.concat(got)).toEqual(Buffer.concat(msgs));
      const { client: c2, server: s2 } = pair();
      expect(c2.unwrap(Buffer.concat(msgs.map((m) => s2.wrap(m))))).toEqual(Buffer.concat(msgs));
    });

    it("splits a message longer than the peer's maxbuf into frames it takes", () => {
      const small: DigestLayerParams = { ...layer, ha1, sendMax: 1000 };
      const client = new DigestLayer(small);
      const server = new DigestLayer(small, 'server');
      const msg = randomBytes(10_000);
      const wire = client.wrap(msg);
      for (let off = 0; off < wire.length;) {
        const len = wire.readUInt32BE(off);
        expect(len).toBeLessThanOrEqual(1000);
        off += 4 + len;
      }
      expect(server.unwrap(wire)).toEqual(msg);
    });

    it('refuses a tampered, replayed, reordered or foreign frame', () => {
      const tampered = (() => { const { client, server } = pair(); const f = Buffer.from(server.wrap(Buffer.from('hello world'))); f[6] = f[6]! ^ 1; return () => client.unwrap(f); })();
      expect(tampered).toThrow(DigestLayerError);
      const { client, server } = pair();
      const a = server.wrap(Buffer.from('one'));
      const b = server.wrap(Buffer.from('two'));
      expect(() => client.unwrap(b)).toThrow(/sequence number 1, expected 0/);
      const { client: c2, server: s2 } = pair();
      const first = s2.wrap(Buffer.from('one'));
      c2.unwrap(first);
      expect(() => c2.unwrap(first)).toThrow(/sequence number 0, expected 1/);
      // Our own frames, echoed back: the other direction's keys.
      const { client: c3 } = pair();
      expect(() => c3.unwrap(c3.wrap(Buffer.from('echo')))).toThrow(DigestLayerError);
      const other = new DigestLayer({ ...layer, ha1: Buffer.alloc(16, 7), sendMax: 65536 }, 'server');
      expect(() => pair().client.unwrap(other.wrap(Buffer.from('stranger')))).toThrow(DigestLayerError);
      expect(a.length).toBeGreaterThan(0);
      expect(() => pair().client.unwrap(Buffer.from([0, 0, 0, 3, 1, 2, 3]))).toThrow(/a frame of 3 bytes/);
    });
  });
}

describe('3des key expansion', () => {
  // Cyrus' slidebits leaves leftover bits in the parity positions; DES ignores them.
  const keyBits = (b: Buffer): Buffer => Buffer.from(b.map((x) => x & 0xfe));

  it('spreads 56 bits over 8 bytes, 7 per byte, in order', () => {
    expect(keyBits(desKey(Buffer.from('ffffffffffffff', 'hex')))).toEqual(Buffer.from('fefefefefefefefe', 'hex'));
    expect(desKey(Buffer.from('00000000000000', 'hex'))).toEqual(Buffer.alloc(8));
    // Bit i of the 56 goes to byte floor(i / 7), position 7 - (i % 7).
    for (let bit = 0; bit < 56; bit++) {
      const k = Buffer.alloc(7);
      k[bit >> 3] = 0x80 >> (bit & 7);
      const expected = Buffer.alloc(8);
      expected[Math.floor(bit / 7)] = 0x80 >> (bit % 7);
      expect(keyBits(desKey(k))).toEqual(expected);
    }
  });
});

describe('RC4', () => {
  it('known vectors, and the stream runs on across calls', () => {
    expect(new Rc4(Buffer.from('Key')).update(Buffer.from('Plaintext')).toString('hex')).toBe('bbf316e8d940af0ad3');
    expect(new Rc4(Buffer.from('Wiki')).update(Buffer.from('pedia')).toString('hex')).toBe('1021bf0420');
    const r = new Rc4(Buffer.from('Secret'));
    const parts = Buffer.concat([r.update(Buffer.from('Attack ')), r.update(Buffer.from('at dawn'))]);
    expect(parts.toString('hex')).toBe('45a01f645fc35b383552544b9bf5');
  });
});
