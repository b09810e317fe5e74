/**
 * The SASL mechanisms' messages against their RFCs' own examples, plus the edges a server can
 * push (quoting, several realms, a layer-only qop, a forged proof, a hostile iteration count).
 */
import { describe, expect, it } from 'vitest';
import { cramResponse } from '../../src/ldap/sasl/cram-md5.js';
import { checkRspauth, digestResponse, DigestLayerRequired, parseDirectives } from '../../src/ldap/sasl/digest-md5.js';
import { MAX_ITERATIONS, ScramClient, scramHashOf } from '../../src/ldap/sasl/scram.js';

describe('CRAM-MD5', () => {
  it('RFC 2195 example', () => {
    expect(cramResponse('<1896.697170952@postoffice.reston.mci.net>', 'tim', 'tanstaaftanstaaf')).toBe('tim b913a602c7eda7a495b4e6e7334d3890');
  });
});

describe('DIGEST-MD5', () => {
  const challenge = 'realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8';
  const base = { challenge, authcid: 'chris', password: 'secret', authzid: '', realm: '', digestUri: 'imap/elwood.innosoft.com', cnonce: 'OA6MHXh6VqTrRk' };

  it('RFC 2831 example: response and rspauth', () => {
    const { response, rspauth } = digestResponse(base);
    const d = parseDirectives(response);
    expect(d.get('response')).toEqual(['d388dad90d4bbd760a152321f2143af7']);
    expect(d.get('realm')).toEqual(['elwood.innosoft.com']);
    expect(d.get('nc')).toEqual(['00000001']);
    expect(d.get('qop')).toEqual(['auth']);
    expect(d.get('charset')).toEqual(['utf-8']);
    expect(rspauth).toBe('ea40f60335c427b5527b84dbabcdfffd');
    expect(() => checkRspauth('rspauth=ea40f60335c427b5527b84dbabcdfffd', rspauth)).not.toThrow();
    expect(() => checkRspauth('rspauth=00000000000000000000000000000000', rspauth)).toThrow(/rspauth mismatch/);
    expect(() => checkRspauth('', rspauth)).toThrow(/rspauth mismatch/);
  });

  it('the one realm offered wins over sasl_realm; with several, sasl_realm picks', () => {
    expect(parseDirectives(digestResponse({ ...base, realm: 'other' }).response).get('realm')).toEqual(['elwood.innosoft.com']);
    const two = 'realm="a.example",realm="b.example",nonce="n",qop="auth",algorithm=md5-sess';
    expect(parseDirectives(digestResponse({ ...base, challenge: two, realm: 'b.example' }).response).get('realm')).toEqual(['b.example']);
    const none = 'nonce="n",qop="auth",algorithm=md5-sess';
    expect(parseDirectives(digestResponse({ ...base, challenge: none }).response).has('realm')).toBe(false);
  });

  it('quotes names with quotes and backslashes, and reads them back', () => {
    const { response } = digestResponse({ ...base, authcid: 'a"b\\c,d', authzid: 'x"y' });
    expect(parseDirectives(response).get('username')).toEqual(['a"b\\c,d']);
    expect(parseDirectives(response).get('authzid')).toEqual(['x"y']);
  });

  it('an authzid equal to the authcid is left out, as Cyrus does', () => {
    expect(parseDirectives(digestResponse({ ...base, authzid: 'chris' }).response).has('authzid')).toBe(false);
  });

  it('a server offering only a security layer gets one: integrity first, else the strongest cipher; single DES alone is refused with advice', () => {
    const intConf = digestResponse({ ...base, challenge: 'realm="r",nonce="n",qop="auth-int,auth-conf",cipher="rc4-40,rc4,des,3des",maxbuf=4096,algorithm=md5-sess' });
    expect(parseDirectives(intConf.response).get('qop')).toEqual(['auth-int']);
    expect(parseDirectives(intConf.response).has('cipher')).toBe(false);
    expect(parseDirectives(intConf.response).get('maxbuf')).toEqual(['65536']);
    expect(intConf.layer).toMatchObject({ qop: 'auth-int', sendMax: 4096 });
    expect(intConf.layer!.ha1).toHaveLength(16);
    const conf = digestResponse({ ...base, challenge: 'realm="r",nonce="n",qop="auth-conf",cipher="rc4-56,rc4,3des",algorithm=md5-sess' });
    expect(parseDirectives(conf.response).get('qop')).toEqual(['auth-conf']);
    expect(parseDirectives(conf.response).get('cipher')).toEqual(['rc4']);
    expect(conf.layer).toMatchObject({ qop: 'auth-conf', cipher: 'rc4', sendMax: 65536 });
    const des3 = digestResponse({ ...base, challenge: 'realm="r",nonce="n",qop="auth-conf",cipher="des,3des,rc4-40",algorithm=md5-sess' });
    expect(des3.layer).toMatchObject({ qop: 'auth-conf', cipher: '3des' });
    // The layer's qop enters the response and rspauth (A2 with the zero body hash).
    expect(parseDirectives(conf.response).get('response')).not.toEqual(parseDirectives(intConf.response).get('response'));
    expect(digestResponse(base).layer).toBeUndefined();
    const des = 'realm="r",nonce="n",qop="auth-conf",cipher="des",algorithm=md5-sess';
    expect(() => digestResponse({ ...base, challenge: des })).toThrow(DigestLayerRequired);
    expect(() => digestResponse({ ...base, challenge: des })).toThrow(/cipher des, a SASL security layer ldap-socketmap cannot provide .*protect the connection/);
  });

  it('malformed challenges fail loudly', () => {
    expect(() => digestResponse({ ...base, challenge: 'realm="r",qop="auth",algorithm=md5-sess' })).toThrow(/no nonce/);
    expect(() => digestResponse({ ...base, challenge: 'nonce="n",qop="auth"' })).toThrow(/md5-sess/);
    expect(() => parseDirectives('nonce="unterminated')).toThrow(/unterminated/);
    expect(() => parseDirectives('garbage')).toThrow(/malformed/);
  });
});

describe('SCRAM', () => {
  it('maps mechanism names to hashes', () => {
    expect(scramHashOf('SCRAM-SHA-1')).toBe('sha1');
    expect(scramHashOf('SCRAM-SHA-512')).toBe('sha512');
    expect(scramHashOf('SCRAM-SHA-1-PLUS')).toBeUndefined();
  });

  it('RFC 5802 example (SHA-1)', async () => {
    const c = new ScramClient('sha1', 'user', 'pencil', '', 'fyko+d2lbbFgONRv9qkxdawL');
    expect(c.clientFirst()).toBe('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
    const final = await c.clientFinal('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096');
    expect(final).toBe('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=');
    expect(() => c.checkServerFinal('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=')).not.toThrow();
    expect(() => c.checkServerFinal('v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=')).toThrow(/signature mismatch/);
    expect(() => c.checkServerFinal('')).toThrow(/signature mismatch/);
    expect(() => c.checkServerFinal('e=invalid-proof')).toThrow(/invalid-proof/);
  });

  it('RFC 7677 example (SHA-256)', async () => {
    const c = new ScramClient('sha256', 'user', 'pencil', '', 'rOprNGfwEbeRWgbNEkqO');
    const final = await c.clientFinal('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
    expect(final).toBe('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    expect(() => c.checkServerFinal('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')).not.toThrow();
  });

  it('escapes = and , in names, and sends the authzid in the GS2 header', () => {
    expect(new ScramClient('sha1', 'a=b,c', 'p', 'z,=', 'N').clientFirst()).toBe('n,a=z=2C=3D,n=a=3Db=2Cc,r=N');
  });

  it('refuses a nonce that does not extend ours, extensions, and hostile iteration counts', async () => {
    const c = new ScramClient('sha1', 'u', 'p', '', 'abc');
    await expect(c.clientFinal('r=xyz123,s=QSXCR+Q6sek8bf92,i=4096')).rejects.toThrow(/does not extend/);
    await expect(c.clientFinal('r=abc,s=QSXCR+Q6sek8bf92,i=4096')).rejects.toThrow(/does not extend/);
    await expect(c.clientFinal('m=ext,r=abcd,s=QSXCR+Q6sek8bf92,i=4096')).rejects.toThrow(/extension/);
    await expect(c.clientFinal(`r=abcd,s=QSXCR+Q6sek8bf92,i=${MAX_ITERATIONS + 1}`)).rejects.toThrow(/iterations/);
    await expect(c.clientFinal('r=abcd,s=QSXCR+Q6sek8bf92,i=0')).rejects.toThrow(/malformed/);
    await expect(c.clientFinal('r=abcd,i=4096')).rejects.toThrow(/malformed/);
  });
});
