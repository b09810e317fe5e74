/**
 * Puts a negotiated SASL security layer between ldapts and the connection, right after the
 * bind that negotiated it and before anything else is sent (the server frames everything after
 * its bind response). ldapts reads the socket through its `socketDataHandler` and writes with
 * `socket.write`; those two are taken over on this one socket. This file is the one place that
 * knows that about ldapts: test/integration/sasl.test.ts (the minssf servers) fails if an
 * upgrade moves them.
 */
import type net from 'node:net';
import type { Client } from 'ldapts';
import type { DigestLayer } from './digest-layer.js';

type DataHandler = (data: Buffer) => void;

export function installLayer(client: Client, layer: DigestLayer): void {
  // The client's own socket: the TLS one after StartTLS, the one we handed it otherwise.
  const own = client as unknown as { socketDataHandler?: DataHandler; socket?: net.Socket };
  const handler = own.socketDataHandler;
  const socket = own.socket;
  if (typeof handler !== 'function' || socket === undefined || !socket.listeners('data').includes(handler)) {
    throw new Error('ldapts no longer reads the connection through socketDataHandler: the DIGEST-MD5 security layer cannot be installed');
  }
  socket.removeListener('data', handler);
  socket.on('data', (chunk: Buffer) => {
    let plain: Buffer;
    try {
      plain = layer.unwrap(chunk);
    } catch (err) {
      socket.destroy(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (plain.length > 0) handler(plain);
  });
  const write = socket.write.bind(socket) as (data: Buffer, cb?: (err?: Error | null) => void) => boolean;
  socket.write = ((data: Buffer | string, ...rest: unknown[]): boolean => {
    const cb = rest.find((r): r is (err?: Error | null) => void => typeof r === 'function');
    const bytes = typeof data === 'string' ? Buffer.from(data, typeof rest[0] === 'string' ? (rest[0] as BufferEncoding) : 'utf8') : data;
    return write(layer.wrap(bytes), cb);
  }) as typeof socket.write;
}
