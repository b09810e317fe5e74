/**
 * Node TLS options from the ldap_table tls_* parameters, with libldap's (GnuTLS backend)
 * semantics as Postfix sets them (dict_ldap_set_tls_options):
 *
 * - tls_require_cert = no is LDAP_OPT_X_TLS_NEVER: neither the chain nor the name is checked.
 *   yes is DEMAND: a trusted, unexpired chain and libldap's name rules (hostname-check.ts).
 * - tls_ca_cert_dir is loaded like gnutls_certificate_set_x509_trust_dir: every file in the
 *   directory whose name does not start with a dot, whatever it is called (no hash links
 *   needed), certificates that do not parse are skipped. tls_ca_cert_file is loaded as well.
 * - A CA file, certificate or key that cannot be read, or tls_cert without tls_key (or the
 *   reverse), makes libldap's TLS context fail: every connection fails, so every lookup is a
 *   temporary error. Same here (TlsSetupError), and map-config warns at startup.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import type tls from 'node:tls';
import { certNames, libldapNameMatches } from './hostname-check.js';
import type { TlsTarget } from './target.js';

export class TlsSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsSetupError';
  }
}

const PEM_CERT = /-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----[\s\S]*?-----END (?:X509 |TRUSTED )?CERTIFICATE-----/g;

function readOrFail(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TlsSetupError(`TLS: could not use ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** The CA certificates (PEM blocks) of tls_ca_cert_file and tls_ca_cert_dir. */
export function loadCaCertificates(t: Pick<TlsTarget, 'caCertFile' | 'caCertDir'>): string[] {
  const out: string[] = [];
  if (t.caCertDir !== undefined) {
    let names: string[] = [];
    try {
      names = readdirSync(t.caCertDir);
    } catch {
      // GnuTLS only warns about an unusable directory; the chain check then fails on its own.
    }
    for (const name of names.sort()) {
      if (name.startsWith('.')) continue;
      const path = join(t.caCertDir, name);
      try {
        if (!statSync(path).isFile()) continue;
        out.push(...(readFileSync(path, 'latin1').match(PEM_CERT) ?? []));
      } catch {
        /* unreadable entries are skipped, as GnuTLS does */
      }
    }
  }
  if (t.caCertFile !== undefined) {
    const pem = readOrFail(t.caCertFile, 'CA certificate file').toString('latin1').match(PEM_CERT);
    // GnuTLS loads zero certificates from such a file with only a warning.
    out.push(...(pem ?? []));
  }
  return [...new Set(out)];
}

/**
 * Options for tls.connect (ldaps) or the StartTLS upgrade. `sniHost` is the URL's host (sent as
 * SNI unless it is an IP address, as libldap does); `checkName` is the name the certificate
 * must carry (certificateNameFor). Throws TlsSetupError where libldap's TLS context would fail.
 */
export function tlsOptions(t: TlsTarget, sniHost: string | undefined, checkName: string | undefined): tls.ConnectionOptions {
  const o: tls.ConnectionOptions = { rejectUnauthorized: t.requireCert };
  if (sniHost !== undefined && sniHost !== '' && net.isIP(sniHost) === 0) o.servername = sniHost;
  if (!t.requireCert || checkName === undefined) {
    o.checkServerIdentity = () => undefined;
  } else {
    o.checkServerIdentity = (_host, cert) =>
      libldapNameMatches(checkName, certNames(cert as Parameters<typeof certNames>[0]))
        ? undefined
        : new Error(`TLS: hostname (${checkName}) does not match name in peer certificate`);
  }
  const ca = loadCaCertificates(t);
  // An empty list would mean "trust nothing" to Node; libldap then still has no CA either.
  if (ca.length > 0 || t.caCertFile !== undefined || t.caCertDir !== undefined) o.ca = ca;
  if ((t.cert === undefined) !== (t.key === undefined)) {
    throw new TlsSetupError(`TLS: only one of tls_cert and tls_key is set`);
  }
  if (t.cert !== undefined) o.cert = readOrFail(t.cert, 'certificate file');
  if (t.key !== undefined) o.key = readOrFail(t.key, 'private key file');
  if (t.cipherSuite !== undefined) o.ciphers = t.cipherSuite;
  return o;
}
