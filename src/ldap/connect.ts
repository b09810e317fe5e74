import net from 'node:net';
import tls from 'node:tls';
import { Client } from 'ldapts';
import { LdapFailure, toLdapFailure } from './errors.js';
import { clean } from './ldapts-fixes.js';
import { resultCodeName } from './result-codes.js';
import { certificateNameFor } from './local-hostname.js';
import { installLayer } from './sasl/layer-install.js';
import { saslBind } from './sasl-bind.js';
import type { SaslTarget, ServerTarget, TlsTarget } from './target.js';
import { tlsOptions } from './tls-options.js';

export type { SaslTarget, ServerTarget, TlsTarget } from './target.js';

/** What a connection needs: the connection-level ldap_table parameters (spec §2.4). */
export interface ConnectionSettings {
  servers: ServerTarget[];
  timeoutSec: number;
  bind: 'simple' | 'none' | 'sasl';
  /** With bind = sasl. */
  sasl?: SaslTarget;
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
  /** The SASL mechanism the bind used (bind = sasl). */
  saslMechanism?: string;
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
 * A failure during StartTLS (refused, handshake, certificate). Postfix issues StartTLS on the
 * connection libldap opened from the server_host list; when it fails the lookup fails, and the
 * next server in the list is not tried (measured). An ldaps:// handshake failure, by contrast,
 * is part of opening the connection: libldap goes on to the next URL.
 */
export class StartTlsFailure extends LdapFailure {}

function connectSocket(server: ServerTarget, settings: ConnectionSettings, ms: number, checkName: string | undefined): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let sock: net.Socket;
    let ready = 'connect';
    try {
      if (server.scheme === 'ldapi') {
        sock = net.connect({ path: server.socketPath ?? '' });
      } else if (server.scheme === 'ldaps') {
        sock = tls.connect({ host: server.host, port: server.port, ...tlsOptions(settings.tls, server.host, checkName) });
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
  const usesTls = server.scheme === 'ldaps' || settings.startTls;
  // libldap checks the name in the URL, or the canonical host name for "localhost".
  const checkName = usesTls && settings.tls.requireCert ? await certificateNameFor(server.host) : undefined;
  const socket = await connectSocket(server, settings, ms, checkName);
  const client = new Client({
    url: 'ldap://ldap-socketmap.invalid',
    strictDN: false,
    createConnection: (() => socket) as unknown as typeof net.connect,
  });
  const giveUp = (): void => { socket.destroy(); };
  let stage = 'bind';
  let saslMechanism: string | undefined;
  try {
    if (settings.startTls) {
      try {
        // host and servername are passed explicitly: without them Node checks "localhost".
        const opts = { ...tlsOptions(settings.tls, server.host, checkName), host: server.host };
        await withDeadline(client.startTLS(opts), ms, `StartTLS with ${server.url}`, giveUp);
      } catch (err) {
        giveUp();
        const f = toLdapFailure(err, { server: server.url, connectionLost: socket.destroyed });
        const message = f.code !== undefined ? `StartTLS refused: ${describeResultCode(f.code, f.message)}` : `StartTLS failed: ${f.message}`;
        throw new StartTlsFailure(f.kind === 'noSuchObject' ? 'error' : f.kind, `${server.url}: ${message}`, f.code, server.url);
      }
    }
    stage = `bind as ${settings.bindDn === '' ? '(anonymous)' : settings.bindDn}`;
    if (settings.bind === 'simple') {
      await withDeadline(client.bind(settings.bindDn, settings.bindPw), ms, `bind to ${server.url}`, giveUp);
    } else if (settings.bind === 'sasl' && settings.sasl !== undefined) {
      stage = `SASL bind (${settings.sasl.mechs.join(' ')})`;
      const overTls = server.scheme === 'ldaps' || settings.startTls;
      const transport = server.scheme === 'ldapi'
        ? { externalId: true, secure: true, host: 'localhost' }
        : { externalId: overTls && settings.tls.cert !== undefined, secure: overTls, host: server.host ?? 'localhost' };
      const bound = await withDeadline(saslBind(client, settings.sasl, transport, settings.bindDn, settings.bindPw), ms, `SASL bind to ${server.url}`, giveUp);
      saslMechanism = bound.mechanism;
      if (bound.layer) {
        installLayer(client, bound.layer);
        saslMechanism += ` with a security layer (${bound.layer.describe})`;
      }
    }
  } catch (err) {
    // Whether the server went away is read before we close the socket ourselves: a bind our
    // side gives up on (no usable mechanism, a server that fails SCRAM's proof) is a refusal,
    // not an outage, and must not open the circuit breaker.
    const lost = socket.destroyed;
    giveUp();
    if (err instanceof StartTlsFailure) throw err;
    const f = toLdapFailure(err, { server: server.url, connectionLost: lost });
    // A refusal from the server: say what was refused and why, in libldap's words, like
    // Postfix's "Unable to bind to server ... with dn ...: 49 (Invalid credentials)".
    const message = f.code !== undefined ? `${stage} refused: ${describeResultCode(f.code, err instanceof Error ? clean(err.message) : '')}` : f.message;
    throw new LdapFailure(f.kind === 'noSuchObject' ? 'error' : f.kind, `${server.url}: ${message}`, f.code, server.url);
  }
  return { client, socket, server: server.url, ...(saslMechanism !== undefined ? { saslMechanism } : {}) };
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
  const text = RESULT_TEXT[code] ?? resultCodeName(code);
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
      // Nor after a failed StartTLS (see StartTlsFailure).
      if (last.code !== undefined || err instanceof StartTlsFailure) break;
    }
  }
  throw last ?? new LdapFailure('down', 'no usable server_host');
}
