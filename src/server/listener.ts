import { existsSync, lstatSync, unlinkSync, chmodSync, chownSync } from 'node:fs';
import net from 'node:net';
import type { Listen } from '../config/listen.js';
import { log } from '../log.js';

/** A configured listen address, or a listening socket inherited from systemd (it is systemd's: never unlinked by us). */
export type ListenSpec = Listen | { kind: 'fd'; fd: number; name: string };

export interface UnixSocketOptions {
  mode?: number;
  uid?: number;
  gid?: number;
}

export function describeListen(l: ListenSpec): string {
  if (l.kind === 'fd') return `fd:${l.fd}(${l.name})`;
  return l.kind === 'unix' ? `unix:${l.path}` : `inet:${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;
}

/** Is something accepting connections on this Unix socket path right now? */
function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect({ path });
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

/**
 * A listening socket in Postfix notation. A Unix socket file left behind by a crash is replaced;
 * one that still answers belongs to a running daemon and is not stolen.
 */
export async function listen(spec: ListenSpec, onConnection: (s: net.Socket) => void, unix: UnixSocketOptions = {}): Promise<net.Server> {
  const server = net.createServer({ noDelay: true }, onConnection);
  if (spec.kind === 'unix' && existsSync(spec.path)) {
    if (!lstatSync(spec.path).isSocket()) throw new Error(`${spec.path} exists and is not a socket`);
    if (await socketIsLive(spec.path)) throw new Error(`${spec.path} is in use by a running process`);
    unlinkSync(spec.path);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (spec.kind === 'unix') server.listen(spec.path, () => resolve());
    else if (spec.kind === 'fd') server.listen({ fd: spec.fd }, () => resolve());
    else server.listen(spec.port, spec.host, () => resolve());
  });
  server.on('error', (err) => log.error(`listener ${describeListen(spec)}: ${err.message}`));
  if (spec.kind === 'unix') {
    if (unix.mode !== undefined) chmodSync(spec.path, unix.mode);
    if (unix.uid !== undefined || unix.gid !== undefined) chownSync(spec.path, unix.uid ?? -1, unix.gid ?? -1);
  }
  return server;
}

/** The address actually bound (port 0 resolved), in Postfix notation. */
export function boundAddress(server: net.Server, spec: ListenSpec): ListenSpec {
  const a = server.address();
  if (spec.kind === 'inet' && a && typeof a === 'object') return { kind: 'inet', host: spec.host, port: a.port };
  // An inherited socket: report what it really is.
  if (spec.kind === 'fd' && a && typeof a === 'object') return { kind: 'inet', host: a.address, port: a.port };
  if (spec.kind === 'fd' && typeof a === 'string') return { kind: 'unix', path: a };
  return spec;
}

export function closeServer(server: net.Server, spec: ListenSpec): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      if (spec.kind === 'unix') {
        try { unlinkSync(spec.path); } catch { /* already gone */ }
      }
      resolve();
    });
  });
}
