import type net from 'node:net';
import { ProtocolError } from '../protocol/errors.js';
import { log } from '../log.js';

export interface Decoder<Req> {
  push(chunk: Buffer): Req[];
}

export interface ConnectionHooks {
  opened?(): void;
  closed?(): void;
  protocolError?(reason: string): void;
}

export interface ConnectionOptions {
  /** Close a connection that has sent nothing for this long (Postfix itself lets go after 10 s). */
  idleTimeoutMs: number;
  hooks?: ConnectionHooks;
  label: string;
}

/** At most this many decoded requests wait; beyond that the socket stops being read. */
const MAX_QUEUED = 32;

/**
 * One client connection: bytes in → decoder → requests answered strictly in order → bytes out.
 * Postfix never pipelines, but nothing breaks if a client does. A malformed request closes this
 * connection only; a clean EOF between requests is normal (Postfix reconnects all the time).
 */
export function serveConnection<Req>(
  socket: net.Socket,
  decoder: Decoder<Req>,
  handle: (req: Req) => Promise<Buffer>,
  opts: ConnectionOptions,
): { drain(): Promise<void> } {
  const queue: Req[] = [];
  let busy = false;
  let idleWaiters: (() => void)[] = [];
  opts.hooks?.opened?.();

  socket.setTimeout(opts.idleTimeoutMs);
  socket.on('timeout', () => {
    if (!busy) socket.destroy();
  });
  socket.on('error', (err) => log.debug(`${opts.label}: ${err.message}`));
  socket.once('close', () => {
    opts.hooks?.closed?.();
    queue.length = 0;
    for (const w of idleWaiters) w();
    idleWaiters = [];
  });

  const fail = (err: unknown): void => {
    if (err instanceof ProtocolError) {
      opts.hooks?.protocolError?.(err.reason);
      log.warn(`${opts.label}: malformed request (${err.reason}): ${err.message}; closing connection`);
    } else {
      log.error(`${opts.label}: ${err instanceof Error ? err.stack ?? err.message : String(err)}; closing connection`);
    }
    socket.destroy();
  };

  const pump = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      while (queue.length > 0 && !socket.destroyed) {
        const req = queue.shift()!;
        const reply = await handle(req);
        if (socket.destroyed) break;
        socket.write(reply);
        if (queue.length < MAX_QUEUED / 2 && socket.isPaused()) socket.resume();
      }
    } catch (err) {
      fail(err);
    } finally {
      busy = false;
      for (const w of idleWaiters) w();
      idleWaiters = [];
    }
  };

  socket.on('data', (chunk: Buffer) => {
    let reqs: Req[];
    try {
      reqs = decoder.push(chunk);
    } catch (err) {
      fail(err);
      return;
    }
    if (reqs.length === 0) return;
    for (const r of reqs) queue.push(r);
    if (queue.length >= MAX_QUEUED) socket.pause();
    void pump();
  });

  return {
    /** Resolves once no request is being answered (for graceful shutdown). */
    drain: () => (busy || queue.length > 0) && !socket.destroyed ? new Promise<void>((r) => idleWaiters.push(r)) : Promise.resolve(),
  };
}
