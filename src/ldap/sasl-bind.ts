/**
 * bind = sasl as Postfix performs it (dict_ldap_bind_sasl): ldap_sasl_interactive_bind_s with
 * an empty DN, the sasl_mechs list, and Cyrus SASL's callbacks answering authcid = bind_dn,
 * password = bind_pw, realm = sasl_realm, authzid = sasl_authz_id.
 *
 * ldapts sends one SASL bind request with the given credentials; that is exactly what the
 * single-step mechanisms need, so EXTERNAL and PLAIN are done here. Multi-step mechanisms
 * (DIGEST-MD5, SCRAM-*, GSSAPI) are refused when the configuration is read (map-config.ts).
 *
 * - EXTERNAL: the identity is the one the transport proves (the peer uid/gid over ldapi://, the
 *   client certificate over TLS); the credentials are the authzid to assert, or empty.
 * - PLAIN (RFC 4616): authzid NUL authcid NUL password. Cyrus' PLAIN client does not use the
 *   realm.
 */
import type { Client } from 'ldapts';
import type { SaslTarget } from './target.js';

/** The SASL mechanisms ldap-socketmap can perform (saslBind below). */
export const SUPPORTED_SASL_MECHS: readonly string[] = ['EXTERNAL', 'PLAIN'];

/** What the connection below the SASL bind provides (libldap tells Cyrus before binding). */
export interface SaslTransport {
  /**
   * An external identity exists: the ldapi:// peer credentials, or our client certificate
   * on a TLS connection. Without one, Cyrus does not offer EXTERNAL at all.
   */
  externalId: boolean;
  /**
   * An external security layer exists (ldapi:// or TLS). Without one, libldap's default
   * security properties (noplaintext) rule PLAIN out on the client side.
   */
  secure: boolean;
}

/**
 * The mechanism Cyrus SASL's client picks from sasl_mechs. libldap does not ask the server
 * when a list is given; Cyrus takes, among the listed mechanisms usable on this connection,
 * the strongest by its security flags, so EXTERNAL (no plaintext, no dictionary attack) wins
 * over PLAIN whatever the order (measured with postmap: "PLAIN EXTERNAL" with a wrong
 * password still binds over ldapi:// and over TLS with a client certificate).
 */
export function chooseMechanism(mechs: readonly string[], t: SaslTransport): string | undefined {
  // Measured: with EXTERNAL listed but no external identity (TLS without a client
  // certificate, plain LDAP), libldap fails with -6 (Unknown authentication method) even when
  // PLAIN is listed too; it does not fall back.
  if (mechs.includes('EXTERNAL')) return t.externalId ? 'EXTERNAL' : undefined;
  if (t.secure && mechs.includes('PLAIN')) return 'PLAIN';
  return undefined;
}

export function saslCredentials(mech: string, s: SaslTarget, bindDn: string, bindPw: string): string {
  if (mech === 'EXTERNAL') return s.authzId;
  if (mech === 'PLAIN') return `${s.authzId}\u0000${bindDn}\u0000${bindPw}`;
  throw new Error(`SASL mechanism ${mech} is not supported`);
}

export async function saslBind(client: Client, s: SaslTarget, t: SaslTransport, bindDn: string, bindPw: string): Promise<string> {
  const mech = chooseMechanism(s.mechs, t);
  // libldap: LDAP_AUTH_UNKNOWN (-6) before anything is sent.
  if (mech === undefined) throw new Error(`SASL(-4): no mechanism available: none of ${s.mechs.join(' ')} is usable on this connection`);
  await client.bindSASL(mech, saslCredentials(mech, s, bindDn, bindPw));
  return mech;
}
