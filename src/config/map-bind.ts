/**
 * How a map connects and authenticates: the bind, SASL and TLS parameters of ldap_table(5),
 * read in the order and with the checks of dict_ldap_open() (called from map-config.ts).
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { SUPPORTED_SASL_MECHS } from '../ldap/sasl-bind.js';
import type { SaslTarget, TlsTarget } from '../ldap/target.js';
import { asciiLower, cfGetBool, cfGetInt, cfGetOptStr, cfGetStr, cfHas, errnoText, splitList, whereOf, type CfSource } from './cf-file.js';
import { ConfigError, type ConfigWarning, warningAt } from './errors.js';

export type BindMode = 'simple' | 'none' | 'sasl';

export interface MapConfigOptions {
  /** File mode of the .cf file, for the "readable by others" bind_pw warning. */
  mode?: number;
  /** Directory relative bind_pw_file paths are resolved against (default: the .cf file's). */
  baseDir?: string;
}

/** bind: yes/simple, no/none, sasl (case-insensitive); other → fatal. */
export function readBindMode(cf: CfSource): BindMode {
  const bindValue = cfGetStr(cf, 'bind', 'yes', 1, 0);
  switch (asciiLower(bindValue)) {
    case 'yes':
    case 'simple':
      return 'simple';
    case 'no':
    case 'none':
      return 'none';
    case 'sasl':
      return 'sasl';
    default:
      throw new ConfigError(`unsupported parameter value '${bindValue}' (use yes, simple, no or none)`, whereOf(cf, 'bind'));
  }
}

/**
 * sasl_mechs, sasl_realm, sasl_authz_id, sasl_minssf (read by Postfix only with bind = sasl).
 * A mechanism we cannot perform is refused here rather than failing every lookup later.
 */
export function readSasl(cf: CfSource, warn: (key: string, message: string) => void): SaslTarget {
  // Cyrus reads mechanism names as runs of letters, digits, '-' and '_', in any case.
  const mechs = cfGetStr(cf, 'sasl_mechs', '').split(/[^A-Za-z0-9_-]+/).filter((m) => m !== '').map((m) => m.toUpperCase());
  if (mechs.length === 0) {
    throw new ConfigError(
      `bind = sasl needs sasl_mechs (ldap-socketmap does not ask the server which mechanisms it offers); set one of: ${SUPPORTED_SASL_MECHS.join(', ')}`,
      whereOf(cf, cfHas(cf, 'sasl_mechs') ? 'sasl_mechs' : 'bind'),
    );
  }
  const unsupported = mechs.filter((m) => !SUPPORTED_SASL_MECHS.includes(m));
  if (unsupported.length > 0) {
    throw new ConfigError(
      `SASL mechanism ${unsupported.join(', ')} is not supported by ldap-socketmap (supported: ${SUPPORTED_SASL_MECHS.join(', ')}); ` +
        'use sasl_mechs = EXTERNAL over ldapi:// (slapd maps the peer uid/gid with authz-regexp) or with a client certificate (tls_cert, tls_key), ' +
        'SCRAM-SHA-256 or DIGEST-MD5 with bind_dn and bind_pw, PLAIN over TLS or ldapi://, or bind = simple with bind_dn and bind_pw_file',
      whereOf(cf, 'sasl_mechs'),
    );
  }
  const minSsf = cfGetInt(cf, 'sasl_minssf', 0, 0, 4096);
  if (minSsf > 0) {
    // Measured with postmap on Debian 12 (libldap 2.5, Cyrus 2.1.28): every mechanism binds
    // with sasl_minssf = 300 over plain ldap://, EXTERNAL over ldapi:// (ssf 71) too.
    warn('sasl_minssf', `${minSsf} is not enforced, as Postfix's own ldap: table does not enforce it either; protect the connection with ldaps://, start_tls = yes or ldapi://`);
  }
  return { mechs, realm: cfGetStr(cf, 'sasl_realm', ''), authzId: cfGetStr(cf, 'sasl_authz_id', ''), minSsf };
}

/** bind_pw, or our bind_pw_file extension. No message ever contains the password. */
export function readBindPw(cf: CfSource, options: MapConfigOptions, warnings: ConfigWarning[]): string {
  const hasPw = cfHas(cf, 'bind_pw');
  const hasPwFile = cfHas(cf, 'bind_pw_file');
  if (hasPw && hasPwFile) {
    throw new ConfigError('bind_pw and bind_pw_file are both set; use only one', whereOf(cf, 'bind_pw_file'));
  }
  if (hasPwFile) {
    const where = whereOf(cf, 'bind_pw_file');
    const name = cfGetStr(cf, 'bind_pw_file', '');
    if (name === '') throw new ConfigError('value must not be empty', where);
    const path = resolve(options.baseDir ?? dirname(cf.file), name);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
      const mode = statSync(path).mode;
      if ((mode & 0o004) !== 0) {
        warnings.push(warningAt(where, `${path} is readable by other users; restrict it (chmod o-r)`));
      }
    } catch (err) {
      throw new ConfigError(`cannot read password file ${path}: ${errnoText(err)}`, where, { cause: err });
    }
    if (text.endsWith('\r\n')) text = text.slice(0, -2);
    else if (text.endsWith('\n')) text = text.slice(0, -1);
    if (text === '') warnings.push(warningAt(where, `password file ${path} is empty`));
    return text;
  }
  const pw = cfGetStr(cf, 'bind_pw', '');
  if (pw !== '' && options.mode !== undefined && (options.mode & 0o004) !== 0) {
    warnings.push(
      warningAt(
        whereOf(cf, 'bind_pw'),
        'this file contains a password and is readable by other users; restrict it (chmod o-r) or move the password to a file named by bind_pw_file',
      ),
    );
  }
  return pw;
}

/** The tls_* parameters; `usesTls`: start_tls = yes or an ldaps:// server (else they are ignored, with a warning). */
export function readTls(cf: CfSource, usesTls: boolean, warn: (key: string, message: string) => void): TlsTarget {
  const tls: TlsTarget = { requireCert: cfGetBool(cf, 'tls_require_cert', false) };
  const caCertFile = cfGetOptStr(cf, 'tls_ca_cert_file');
  if (caCertFile !== undefined) tls.caCertFile = caCertFile;
  const caCertDir = cfGetOptStr(cf, 'tls_ca_cert_dir');
  if (caCertDir !== undefined) tls.caCertDir = caCertDir;
  const cert = cfGetOptStr(cf, 'tls_cert');
  if (cert !== undefined) tls.cert = cert;
  const key = cfGetOptStr(cf, 'tls_key');
  if (key !== undefined) tls.key = key;
  const cipherSuite = cfGetOptStr(cf, 'tls_cipher_suite');
  if (cipherSuite !== undefined) tls.cipherSuite = cipherSuite;
  if (cfGetOptStr(cf, 'tls_random_file') !== undefined) {
    warn('tls_random_file', 'ignored (Node.js does not need a random seed file)');
  }
  if (!usesTls) {
    const tlsKeys = ['tls_ca_cert_file', 'tls_ca_cert_dir', 'tls_cert', 'tls_key', 'tls_cipher_suite', 'tls_require_cert'];
    const setKey = tlsKeys.find((k) => cfHas(cf, k));
    if (setKey !== undefined) {
      warn(setKey, 'TLS settings apply only with start_tls = yes or an ldaps:// server; ignored');
    }
  }
  return tls;
}
