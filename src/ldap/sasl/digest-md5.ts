/**
 * DIGEST-MD5 (RFC 2831) as a client, pure: parse the server's challenge, compute the response,
 * check the server's rspauth. qop=auth whenever the server offers it: Cyrus would negotiate a
 * security layer (auth-conf) then too, which changes nothing in the answers and would cost a
 * cipher on every byte. A server that offers nothing but a layer (sasl-secprops minssf > 0 on
 * a plain connection) gets one, as libldap does: integrity (auth-int) when offered, else
 * confidentiality with the strongest cipher both have (sasl/digest-layer.ts frames the
 * traffic). A server offering only single DES is refused (DigestLayerRequired): Node's OpenSSL
 * has none.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export type Directives = Map<string, string[]>;

/** The directives of a challenge: name=value or name="quoted\"value", comma separated; names repeat (realm). */
export function parseDirectives(text: string): Directives {
  const out: Directives = new Map();
  let i = 0;
  const skip = (): void => { while (i < text.length && /[\s,]/.test(text[i]!)) i++; };
  for (skip(); i < text.length; skip()) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`DIGEST-MD5: malformed challenge near ${JSON.stringify(text.slice(i, i + 20))}`);
    const name = text.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    let value = '';
    if (text[i] === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) value += text[i] === '\\' ? text[++i] ?? '' : text[i];
      if (text[i] !== '"') throw new Error('DIGEST-MD5: unterminated quoted string in challenge');
      i++;
    } else {
      const end = text.indexOf(',', i);
      value = text.slice(i, end < 0 ? text.length : end).trim();
      i = end < 0 ? text.length : end;
    }
    out.set(name, [...(out.get(name) ?? []), value]);
  }
  return out;
}

export class DigestLayerRequired extends Error {}

export interface DigestInput {
  challenge: string;
  authcid: string;
  password: string;
  authzid: string;
  /** sasl_realm, used only when the server offers no realm or several. */
  realm: string;
  /** "ldap/<host>". */
  digestUri: string;
  /** For tests: a fixed client nonce. */
  cnonce?: string;
}

export type Qop = 'auth' | 'auth-int' | 'auth-conf';

/** The auth-conf ciphers we can run, strongest first (Cyrus picks the strongest). */
export const LAYER_CIPHERS = ['rc4', '3des', 'rc4-56', 'rc4-40'] as const;
export type LayerCipher = (typeof LAYER_CIPHERS)[number];

/** What a negotiated security layer needs (sasl/digest-layer.ts). */
export interface DigestLayerParams {
  qop: 'auth-int' | 'auth-conf';
  /** auth-conf only. */
  cipher?: LayerCipher;
  /** H(A1), binary: the keys derive from it. */
  ha1: Buffer;
  /** The server's maxbuf: the largest frame (without its length) it takes. */
  sendMax: number;
}

/** The largest frame we take, sent as our maxbuf. */
export const LAYER_MAXBUF = 65536;

export interface DigestStep {
  response: string;
  /** The rspauth the server must send back. */
  rspauth: string;
  /** Set when the server demanded a security layer: install it once the bind succeeded. */
  layer?: DigestLayerParams;
}

const md5 = (data: Buffer | string): Buffer => createHash('md5').update(data).digest();
const hex = (b: Buffer): string => b.toString('hex');
const quote = (s: string): string => `"${s.replace(/(["\\])/g, '\\$1')}"`;

export function digestResponse(input: DigestInput): DigestStep {
  const d = parseDirectives(input.challenge);
  const one = (name: string): string | undefined => d.get(name)?.[0];
  const nonce = one('nonce');
  if (nonce === undefined) throw new Error('DIGEST-MD5: the challenge has no nonce');
  if ((one('algorithm') ?? '').toLowerCase() !== 'md5-sess') throw new Error('DIGEST-MD5: the challenge does not offer algorithm=md5-sess');
  const qops = (one('qop') ?? 'auth').split(',').map((q) => q.trim().toLowerCase());
  const ciphers = (one('cipher') ?? '').split(',').map((c) => c.trim().toLowerCase());
  // Cyrus' order: the strongest cipher both sides have (single DES: Node's OpenSSL has none).
  const cipher = LAYER_CIPHERS.find((c) => ciphers.includes(c));
  const qop: Qop | undefined = qops.includes('auth') ? 'auth' : qops.includes('auth-int') ? 'auth-int'
    : qops.includes('auth-conf') && cipher !== undefined ? 'auth-conf' : undefined;
  if (qop === undefined) {
    throw new DigestLayerRequired(
      `DIGEST-MD5: the server offers only qop ${qops.join(',')}${ciphers[0] ? ` with cipher ${ciphers.join(',')}` : ''}, a SASL security layer ldap-socketmap cannot provide (it has integrity, rc4, 3des, rc4-56 and rc4-40); protect the connection with ldaps://, start_tls = yes or ldapi:// and let the server accept qop=auth`,
    );
  }
  const serverMaxbuf = Number(one('maxbuf') ?? 65536);
  const utf8 = (one('charset') ?? '').toLowerCase() === 'utf-8';
  // Without charset=utf-8 the strings are ISO 8859-1 (RFC 2831 2.1.2), when they fit.
  const enc = (s: string): Buffer => Buffer.from(s, utf8 || /[^\u0000-\u00ff]/.test(s) ? 'utf8' : 'latin1');
  const realms = d.get('realm') ?? [];
  // Cyrus takes the one realm the server offers without asking Postfix's callback (measured:
  // sasl_realm = other.realm still authenticates in the server's realm).
  const realm = realms.length === 1 ? realms[0]! : input.realm !== '' ? input.realm : realms[0] ?? '';
  const cnonce = input.cnonce ?? randomBytes(24).toString('base64');
  const nc = '00000001';
  const authzid = input.authzid !== '' && input.authzid !== input.authcid ? input.authzid : '';
  const secret = md5(Buffer.concat([enc(input.authcid), Buffer.from(':'), enc(realm), Buffer.from(':'), enc(input.password)]));
  const a1 = Buffer.concat([secret, Buffer.from(`:${nonce}:${cnonce}`), authzid !== '' ? Buffer.concat([Buffer.from(':'), enc(authzid)]) : Buffer.alloc(0)]);
  const ha1Bytes = md5(a1);
  const ha1 = hex(ha1Bytes);
  // With a layer, A2 ends in a zero entity-body hash (RFC 2831 2.1.2.1).
  const a2Tail = qop === 'auth' ? '' : ':00000000000000000000000000000000';
  const kd = (a2: string): string => hex(md5(`${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${hex(md5(a2 + a2Tail))}`));
  const parts = [
    ...(utf8 ? ['charset=utf-8'] : []),
    `username=${quote(input.authcid)}`,
    ...(realm !== '' ? [`realm=${quote(realm)}`] : []),
    `nonce=${quote(nonce)}`,
    `nc=${nc}`,
    `cnonce=${quote(cnonce)}`,
    `digest-uri=${quote(input.digestUri)}`,
    `response=${kd(`AUTHENTICATE:${input.digestUri}`)}`,
    `qop=${qop}`,
    ...(qop === 'auth-conf' ? [`cipher=${cipher}`] : []),
    ...(qop !== 'auth' ? [`maxbuf=${LAYER_MAXBUF}`] : []),
    ...(authzid !== '' ? [`authzid=${quote(authzid)}`] : []),
  ];
  const layer: DigestLayerParams | undefined = qop === 'auth' ? undefined : {
    qop,
    ...(qop === 'auth-conf' && cipher !== undefined ? { cipher } : {}),
    ha1: ha1Bytes,
    sendMax: Number.isSafeInteger(serverMaxbuf) && serverMaxbuf > 64 ? serverMaxbuf : 65536,
  };
  return { response: parts.join(','), rspauth: kd(`:${input.digestUri}`), ...(layer ? { layer } : {}) };
}

/** The server's second challenge must carry the rspauth computed with our secret (mutual authentication). */
export function checkRspauth(serverFinal: string, expected: string): void {
  const got = parseDirectives(serverFinal).get('rspauth')?.[0];
  if (got === undefined || got.length !== expected.length || !timingSafeEqual(Buffer.from(got), Buffer.from(expected))) {
    throw new Error('DIGEST-MD5: the server did not prove that it knows the password (rspauth mismatch)');
  }
}
