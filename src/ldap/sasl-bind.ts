/**
 * bind = sasl as Postfix performs it (dict_ldap_bind_sasl): ldap_sasl_interactive_bind_s with
 * an empty DN, the sasl_mechs list, and Cyrus SASL's callbacks answering authcid = bind_dn,
 * password = bind_pw, realm = sasl_realm, authzid = sasl_authz_id. The mechanism is chosen
 * as Cyrus chooses it (sasl/mechanisms.ts); each one's messages are in its own file.
 *
 * - EXTERNAL: the identity is the one the transport proves (the peer uid/gid over ldapi://, the
 *   client certificate over TLS); the credentials are the authzid to assert, or empty.
 * - PLAIN (RFC 4616): authzid NUL authcid NUL password. Cyrus' PLAIN client does not use the
 *   realm.
 * - CRAM-MD5, DIGEST-MD5, SCRAM-SHA-*: challenge and response (sasl/cram-md5.ts,
 *   sasl/digest-md5.ts, sasl/scram.ts); DIGEST-MD5 and SCRAM also check the server's proof.
 */
import type { Client } from 'ldapts';
import { checkRspauth, digestResponse } from './sasl/digest-md5.js';
import { DigestLayer } from './sasl/digest-layer.js';
import { cramResponse } from './sasl/cram-md5.js';
import { SaslExchange } from './sasl/exchange.js';
import { chooseMechanism, MECHANISM_ORDER, type SaslMechanism, type SaslTransport } from './sasl/mechanisms.js';
import { ScramClient, scramHashOf } from './sasl/scram.js';
import type { SaslTarget } from './target.js';

export { chooseMechanism, type SaslTransport } from './sasl/mechanisms.js';

/** The SASL mechanisms ldap-socketmap can perform, in Cyrus' order of preference. */
export const SUPPORTED_SASL_MECHS: readonly string[] = MECHANISM_ORDER;

export function saslCredentials(mech: 'EXTERNAL' | 'PLAIN', s: SaslTarget, bindDn: string, bindPw: string): string {
  return mech === 'EXTERNAL' ? s.authzId : `${s.authzId}\u0000${bindDn}\u0000${bindPw}`;
}

export interface SaslBound {
  mechanism: SaslMechanism;
  /** The security layer the server demanded (DIGEST-MD5 only): every later byte goes through it. */
  layer?: DigestLayer;
}

/** Binds with the mechanism Cyrus would pick; resolves to its name (and layer), rejects as libldap fails. */
export async function saslBind(client: Client, s: SaslTarget, t: SaslTransport, bindDn: string, bindPw: string): Promise<SaslBound> {
  const mech = chooseMechanism(s.mechs, t);
  // libldap: LDAP_AUTH_UNKNOWN (-6) before anything is sent.
  if (mech === undefined) throw new Error(`SASL(-4): no mechanism available: none of ${s.mechs.join(' ')} is usable on this connection`);
  if (mech === 'EXTERNAL' && !t.externalId) throw new Error('SASL(-4): no mechanism available: EXTERNAL needs ldapi:// or a TLS client certificate (tls_cert, tls_key)');
  if (mech === 'EXTERNAL' || mech === 'PLAIN') {
    await client.bindSASL(mech, saslCredentials(mech, s, bindDn, bindPw));
    return { mechanism: mech };
  }
  // Cyrus refuses to start these without an authentication identity (measured: TEMP natively).
  if (bindDn === '') throw new Error(`SASL(-1): ${mech} needs an authentication identity: set bind_dn`);
  const exchange = new SaslExchange(client);
  let layer: DigestLayer | undefined;
  try {
    if (mech === 'CRAM-MD5') {
      const first = await exchange.step(mech, undefined);
      if (first.done) throw new Error('CRAM-MD5: the server sent no challenge');
      await exchange.step(mech, cramResponse(first.serverCreds, bindDn, bindPw));
    } else if (mech === 'DIGEST-MD5') {
      const first = await exchange.step(mech, undefined);
      if (first.done) throw new Error('DIGEST-MD5: the server sent no challenge');
      const { response, rspauth, layer: params } = digestResponse({
        challenge: first.serverCreds, authcid: bindDn, password: bindPw, authzid: s.authzId, realm: s.realm, digestUri: `ldap/${t.host}`,
      });
      const second = await exchange.step(mech, response);
      checkRspauth(second.serverCreds, rspauth);
      if (!second.done) await exchange.step(mech, '');
      if (params) layer = new DigestLayer(params);
    } else {
      const scram = new ScramClient(scramHashOf(mech)!, bindDn, bindPw, s.authzId);
      const first = await exchange.step(mech, scram.clientFirst());
      if (first.done) throw new Error(`${mech}: the server ended the exchange before its challenge`);
      const final = await exchange.step(mech, await scram.clientFinal(first.serverCreds));
      scram.checkServerFinal(final.serverCreds);
      if (!final.done) await exchange.step(mech, '');
    }
  } finally {
    exchange.close();
  }
  return { mechanism: mech, ...(layer ? { layer } : {}) };
}
