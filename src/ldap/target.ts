/**
 * Where and how to connect: one server_host item, and the TLS parameters of a map. The config
 * layer parses ldap_table(5) into these; the connection code uses them as they are.
 */

/** One server_host item after parsing (config/server-host.ts). */
export interface ServerTarget {
  /** The URL as Postfix hands it to OpenLDAP (URL items without `<…>`/`URL:` wrapping). */
  url: string;
  scheme: 'ldap' | 'ldaps' | 'ldapi';
  /** ldap/ldaps: host name or IP address (IPv6 without brackets). */
  host?: string;
  /** ldap/ldaps: TCP port (explicit, else 389 for ldap and 636 for ldaps). */
  port?: number;
  /** ldapi: the percent-decoded socket path. */
  socketPath?: string;
}

/** The tls_* parameters of a map. */
export interface TlsTarget {
  caCertFile?: string;
  caCertDir?: string;
  cert?: string;
  key?: string;
  /** tls_require_cert: true → verify chain and name (DEMAND), false → no checks (NEVER). */
  requireCert: boolean;
  cipherSuite?: string;
}

/** bind = sasl (ldap_table(5) "LDAP SASL PARAMETERS"); see sasl-bind.ts. */
export interface SaslTarget {
  /** sasl_mechs, upper-cased, in the order given. */
  mechs: string[];
  realm: string;
  authzId: string;
  minSsf: number;
}
