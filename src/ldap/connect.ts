import { readFileSync, readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { Client } from 'ldapts';
import { LdapFailure, toLdapFailure } from './errors.js';

/** One server_host item after parsing (see config/map-config.ts). */
export interface ServerTarget {
  url: string;
  scheme: 'ldap' | 'ldaps' | 'ldapi';
  host?: string;
  port?: number;
  socketPath?: string;
}

export interface TlsTarget {
  caCertFile?: string;
  caCertDir?: string;
  cert?: string;
  key?: string;
  requireCert: boolean;
  cipherSuite?: string;
}

/** What a connection needs: the connection-level ldap_table parameters (spec §2.4). */
export interface ConnectionSettings {
  servers: ServerTarget[];
  timeoutSec: number;
  bind: 'simple' | 'none';
  bindDn: string;
  bindPw: string;
  startTls: boolean;
  tls: TlsTarget;
  /** chase_referrals: follow referrals and search references (see referral.ts). */
  chaseReferrals?: boolean;
  /** range_retrieval (daemon setting): fetch the rest of ranged values (see range.ts). */
  rangeRetrieval?: boolean;
}

export interface OpenConnection {
  client: Client;
  socket: net.Socket;
  server: string;
}

/** Resolves or rejects `p`, or rejects with a timeout LdapFailure after `ms`. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout?.();
      reject(new LdapFailure('timeout', `${what}: timed out after ${ms} ms`));
    }, ms);
    p.then(
      (v) => { clearTimeout(timer); resolve(v); },
      (e: unknown) => { clearTimeout(timer); reject(e); },
    );
  });
}

/**
 * Node's TLS options from the tls_* parameters. Like OpenLDAP with tls_require_cert = no
 * (LDAP_OPT_X_TLS_NEVER), "no" checks neither the chain nor the name.
 */
export function tlsOptions(t: TlsTarget, servername?: string): tls.ConnectionOptions {
  const o: tls.ConnectionOptions = { rejectUnauthorized: t.requireCert };
  if (!t.requireCert) o.checkServerIdentity = () => undefined;
  if (servername && net.isIP(servername) === 0) o.servername = servername;
  const ca: Buffer[] = [];
  if (t.caCertFile) ca.push(readFileSync(t.caCertFile));
  if (t.caCertDir) {
    for (const name of readdirSync(t.caCertDir)) {
      const path = join(t.caCertDir, name);
      // Hashed CA directories hold symlinks (abcd1234.0) next to the PEM files; read each file once.
      if (/\.(pem|crt|\d+)$/.test(name) && statSync(path).isFile()) ca.push(readFileSync(path));
    }
  }
  if (ca.length > 0) o.ca = ca;
  if (t.cert) o.cert = readFileSync(t.cert);
  if (t.key) o.key = readFileSync(t.key);
  if (t.cipherSuite) o.ciphers = t.cipherSuite;
  return o;
}

function connectSocket(server: ServerTarget, settings: ConnectionSettings, ms: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let sock: net.Socket;
    let ready = 'connect';
    try {
      if (server.scheme === 'ldapi') {
        sock = net.connect({ path: server.socketPath ?? '' });
      } else if (server.scheme === 'ldaps') {
        sock = tls.connect({ host: server.host, port: server.port, ...tlsOptions(settings.tls, server.host) });
        ready = 'secureConnect';
      } else {
        sock = net.connect({ host: server.host, port: server.port ?? 389 });
      }
    } catch (err) {
      reject(err);
      return;
    }
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new LdapFailure('timeout', `connect to ${server.url}: timed out after ${ms} ms`, undefined, server.url));
    }, ms);
    sock.once(ready, () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      // ldapts attaches its own listeners only on its first operation; until then (and after it
      // lets go) a reset must not become an unhandled 'error' event. The pool watches 'close'.
      sock.on('error', () => undefined);
      resolve(sock);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      sock.destroy();
      reject(new LdapFailure('down', `connect to ${server.url}: ${err.message}`, undefined, server.url));
    });
  });
}

/**
 * Connects to one server: socket (plain, TLS or Unix), StartTLS when asked, then the bind that
 * Postfix performs on every (re)connect — a simple bind even with empty DN and password when
 * bind = yes. ldapts is handed the already-connected socket, so connect timeouts, failover and
 * Unix sockets stay in our hands.
 */
export async function connectServer(server: ServerTarget, settings: ConnectionSettings): Promise<OpenConnection> {
  const ms = settings.timeoutSec * 1000;
  const socket = await connectSocket(server, settings, ms);
  const client = new Client({
    url: 'ldap://ldap-socketmap.invalid',
    strictDN: false,
    createConnection: (() => socket) as unknown as typeof net.connect,
  });
  const giveUp = (): void => { socket.destroy(); };
  let stage = 'StartTLS';
  try {
    if (settings.startTls) {
      const opts = tlsOptions(settings.tls, server.host);
      await withDeadline(client.startTLS(opts), ms, `StartTLS with ${server.url}`, giveUp);
    }
    stage = `bind as ${settings.bindDn === '' ? '(anonymous)' : settings.bindDn}`;
    if (settings.bind === 'simple') {
      await withDeadline(client.bind(settings.bindDn, settings.bindPw), ms, `bind to ${server.url}`, giveUp);
    }
  } catch (err) {
    giveUp();
    const f = toLdapFailure(err, { server: server.url, connectionLost: socket.destroyed });
    // A refusal from the server: say what was refused and why, in libldap's words, like
    // Postfix's "Unable to bind to server ... with dn ...: 49 (Invalid credentials)".
    const message = f.code !== undefined ? `${stage} refused: ${describeResultCode(f.code, f.message)}` : f.message;
    throw new LdapFailure(f.kind === 'noSuchObject' ? 'error' : f.kind, `${server.url}: ${message}`, f.code, server.url);
  }
  return { client, socket, server: server.url };
}

/** libldap's ldap_err2string() texts for the result codes a connect or bind can get. */
const RESULT_TEXT: Readonly<Record<number, string>> = {
  1: 'Operations error',
  2: 'Protocol error',
  7: 'Authentication method not supported',
  8: 'Strong(er) authentication required',
  13: 'Confidentiality required',
  14: 'SASL bind in progress',
  32: 'No such object',
  34: 'Invalid DN syntax',
  48: 'Inappropriate authentication',
  49: 'Invalid credentials',
  50: 'Insufficient access',
  51: 'Server is busy',
  52: 'Server is unavailable',
  53: 'Server is unwilling to perform',
  80: 'Internal (implementation specific) error',
};

/**
 * `49 (Invalid credentials)`, plus the server's diagnostic message when it sent one. ldapts
 * formats its messages as `<diagnostic> Code: 0x31`; only the diagnostic part is kept.
 */
export function describeResultCode(code: number, ldaptsMessage: string): string {
  const diagnostic = ldaptsMessage.replace(/\s*Code: 0x[0-9a-f]+\s*$/i, '').trim();
  const text = RESULT_TEXT[code] ?? 'LDAP error';
  return diagnostic === '' || diagnostic === text ? `${code} (${text})` : `${code} (${text}): ${diagnostic}`;
}

/**
 * Tries the servers in order and returns the first that connects and binds, as OpenLDAP does
 * with the URL list Postfix hands it. Servers that failed recently go to the back of the line.
 */
export async function connectAny(
  settings: ConnectionSettings,
  order: ServerTarget[],
  onServerFailure: (server: ServerTarget, err: LdapFailure) => void,
): Promise<OpenConnection> {
  if (settings.timeoutSec <= 0) {
    // OpenLDAP rejects a zero timeout as a parameter error: every lookup is a temporary error.
    throw new LdapFailure('error', `timeout = ${settings.timeoutSec} is not usable`);
  }
  let last: LdapFailure | undefined;
  for (const server of order) {
    try {
      return await connectServer(server, settings);
    } catch (err) {
      last = toLdapFailure(err, { server: server.url });
      onServerFailure(server, last);
      // A bind refusal is an answer from a live server; OpenLDAP does not try the next URL then.
      if (last.code !== undefined) break;
    }
  }
  throw last ?? new LdapFailure('down', 'no usable server_host');
}
