/**
 * DIGEST-MD5 (RFC 2831) as a client, pure: parse the server's challenge, compute the response,
 * check the server's rspauth. Only qop=auth: Cyrus would negotiate a security layer (auth-conf)
 * when the server offers one, which changes nothing in the answers; a server that offers
 * nothing but a layer is refused with a message that says so (see DigestLayerRequired).
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

export interface DigestStep {
  response: string;
  /** The rspauth the server must send back. */
  rspauth: string;
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
  if (!qops.includes('auth')) {
    throw new DigestLayerRequired(
      `DIGEST-MD5: the server offers only qop ${qops.join(',')} (a SASL security layer), which ldap-socketmap does not implement; protect the connection with ldaps://, start_tls = yes or ldapi:// and let the server accept qop=auth`,
    );
  }
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
  const ha1 = hex(md5(a1));
  const kd = (a2: string): string => hex(md5(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${hex(md5(a2))}`));
  const parts = [
    ...(utf8 ? ['charset=utf-8'] : []),
    `username=${quote(input.authcid)}`,
    ...(realm !== '' ? [`realm=${quote(realm)}`] : []),
    `nonce=${quote(nonce)}`,
    `nc=${nc}`,
    `cnonce=${quote(cnonce)}`,
    `digest-uri=${quote(input.digestUri)}`,
    `response=${kd(`AUTHENTICATE:${input.digestUri}`)}`,
    'qop=auth',
    ...(authzid !== '' ? [`authzid=${quote(authzid)}`] : []),
  ];
  return { response: parts.join(','), rspauth: kd(`:${input.digestUri}`) };
}

/** The server's second challenge must carry the rspauth computed with our secret (mutual authentication). */
export function checkRspauth(serverFinal: string, expected: string): void {
  const got = parseDirectives(serverFinal).get('rspauth')?.[0];
  if (got === undefined || got.length !== expected.length || !timingSafeEqual(Buffer.from(got), Buffer.from(expected))) {
    throw new Error('DIGEST-MD5: the server did not prove that it knows the password (rspauth mismatch)');
  }
}
