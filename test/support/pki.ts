/**
 * A throwaway PKI made with the openssl CLI for TLS tests: a CA, server and client
 * certificates with chosen subject names and subjectAltNames, expired ones, and a hashed CA
 * directory as libldap's TLS_CACERTDIR expects (`openssl rehash`). EC P-256 keys: fast to make.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTmpDir } from './tmp.js';

const OPENSSL = '/usr/bin/openssl';

export interface CertFiles {
  cert: string;
  key: string;
}

export interface CertRequest {
  /** File name stem, e.g. 'server-localhost'. */
  name: string;
  /** Subject common name. */
  cn: string;
  /** subjectAltName entries, e.g. ['DNS:localhost', 'IP:127.0.0.1']; none: no SAN extension. */
  san?: string[];
  /** Validity in the past (expired) instead of from now for two days. */
  expired?: boolean;
}

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  /** A certificate signed by this CA. */
  issue(req: CertRequest): CertFiles;
  /** A directory holding the CA certificate under its subject hash name (abcd1234.0) only. */
  hashedCaDir(): string;
}

function openssl(args: string[], cwd?: string): string {
  if (!existsSync(OPENSSL)) throw new Error(`${OPENSSL} not found: install the Debian package 'openssl'`);
  return execFileSync(OPENSSL, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A new CA in a fresh temp directory. `name` is the CA's common name. */
export function makePki(name = 'ldap-socketmap test CA'): Pki {
  const dir = makeTmpDir('pki-');
  const caCert = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  openssl(['req', '-x509', ...KEY_ARGS, '-keyout', caKey, '-out', caCert, '-subj', `/CN=${name}`, '-days', '3',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  // `openssl x509 -req` cannot back-date a certificate; `openssl ca` can (-startdate/-enddate).
  mkdirSync(join(dir, 'newcerts'));
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  writeFileSync(join(dir, 'ca.cnf'), [
    '[ ca ]', 'default_ca = d', '[ d ]', `dir = ${dir}`, `database = ${dir}/index.txt`, `new_certs_dir = ${dir}/newcerts`,
    `serial = ${dir}/serial`, 'default_md = sha256', 'policy = p', 'unique_subject = no', 'copy_extensions = none',
    '[ p ]', 'commonName = supplied', '',
  ].join('\n'));

  const issue = (req: CertRequest): CertFiles => {
    const key = join(dir, `${req.name}.key`);
    const csr = join(dir, `${req.name}.csr`);
    const cert = join(dir, `${req.name}.crt`);
    const ext = join(dir, `${req.name}.ext`);
    openssl(['req', '-new', ...KEY_ARGS, '-keyout', key, '-out', csr, '-subj', `/CN=${req.cn}`]);
    writeFileSync(ext, [
      'basicConstraints = CA:FALSE',
      'keyUsage = critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage = serverAuth,clientAuth',
      ...(req.san && req.san.length > 0 ? [`subjectAltName = ${req.san.join(',')}`] : []),
      '',
    ].join('\n'));
    const dates = req.expired ? ['-startdate', '20200101000000Z', '-enddate', '20200201000000Z'] : ['-days', '2'];
    openssl(['ca', '-batch', '-notext', '-config', join(dir, 'ca.cnf'), '-cert', caCert, '-keyfile', caKey,
      '-in', csr, '-out', cert, '-extfile', ext, ...dates]);
    return { cert, key };
  };

  const hashedCaDir = (): string => {
    const d = join(dir, `hashed-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(d);
    const hash = openssl(['x509', '-hash', '-noout', '-in', caCert]).trim();
    writeFileSync(join(d, `${hash}.0`), openssl(['x509', '-in', caCert]));
    return d;
  };

  return { dir, caCert, caKey, issue, hashedCaDir };
}
