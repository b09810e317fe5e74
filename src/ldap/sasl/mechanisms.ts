/**
 * Which SASL mechanism libldap's Cyrus client takes from sasl_mechs.
 *
 * libldap does not ask the server when a list is given. Cyrus keeps its client mechanisms
 * sorted strongest first and takes the first one of that order that is in the list and usable
 * on this connection; the order of sasl_mechs does not matter, and a mechanism the server then
 * refuses is not followed by another one. Measured with postmap against slapd, every pair both
 * ways, over ldapi://, ldaps:// with and without a client certificate, and plain ldap://
 * (test/integration/sasl.test.ts keeps the cases):
 * SCRAM-SHA-512 > -384 > -256 > -224 > -1 > DIGEST-MD5 > EXTERNAL > CRAM-MD5 > PLAIN.
 * "SCRAM-SHA-1 SCRAM-SHA-224" against a server without SCRAM-SHA-224 fails natively.
 */

/** Cyrus SASL's client order (strongest first) of the mechanisms ldap-socketmap performs. */
export const MECHANISM_ORDER = [
  'SCRAM-SHA-512', 'SCRAM-SHA-384', 'SCRAM-SHA-256', 'SCRAM-SHA-224', 'SCRAM-SHA-1',
  'DIGEST-MD5', 'EXTERNAL', 'CRAM-MD5', 'PLAIN',
] as const;

export type SaslMechanism = (typeof MECHANISM_ORDER)[number];

export function isSupportedMechanism(name: string): name is SaslMechanism {
  return (MECHANISM_ORDER as readonly string[]).includes(name);
}

/** What the connection below the SASL bind provides (libldap tells Cyrus before binding). */
export interface SaslTransport {
  /**
   * An external identity exists: the ldapi:// peer credentials, or our client certificate
   * on a TLS connection.
   */
  externalId: boolean;
  /**
   * An external security layer exists (ldapi:// or TLS). Without one, libldap's default
   * security properties (noplaintext) rule PLAIN out on the client side.
   */
  secure: boolean;
  /** The host for DIGEST-MD5's digest-uri ("localhost" over ldapi://). */
  host: string;
}

/**
 * The mechanism Cyrus' client picks, or undefined when none is usable. EXTERNAL is picked even
 * without an external identity (measured: "EXTERNAL PLAIN" over TLS without a client
 * certificate and "EXTERNAL CRAM-MD5" over plain LDAP both fail natively with -6, Unknown
 * authentication method); saslBind then fails the same way.
 */
export function chooseMechanism(mechs: readonly string[], t: Pick<SaslTransport, 'secure'>): SaslMechanism | undefined {
  return MECHANISM_ORDER.find((m) => mechs.includes(m) && (m !== 'PLAIN' || t.secure));
}
