import type net from 'node:net';
import { ProtocolError } from '../protocol/errors.js';
import { log, RateLimitedLog } from '../log.js';

/** A reply as sent: bytes, or a latin1 string (one char per byte, e.g. a reply stored in the cache). */
export type Reply = Buffer | string;

export interface Decoder<Req> {
  push(chunk: Buffer): Req[];
  /** Bytes of an unfinished request held right now (0 between requests): for the slowloris guard. */
  readonly bufferedBytes?: number;
}

export interface ConnectionHooks {
  opened?(): void;
  closed?(): void;
  protocolError?(reason: string): void;
  /** The daemon closed the connection: idle too long, or a request too slow to arrive. */
  timedOut?(kind: 'idle' | 'read'): void;
}

export interface ConnectionOptions {
  /** Close a connection that has sent nothing for this long (Postfix itself lets go after 10 s). */
  idleTimeoutMs: number;
  /**
   * Close a connection whose partly received request is still incomplete this long after its
   * first byte (slowloris: bytes trickled to hold a connection open). 0 or absent: never.
   */
  requestReadTimeoutMs?: number;
  /** The max_request_size in force, named in the log when a request is over it. */
  maxRequestSize?: number;
  hooks?: ConnectionHooks;
  label: string;
}

/**
 * Complaints about clients, at most one line per listener and reason per period: a hostile or
 * broken client opening connections in a loop must not flood the log.
 */
const clientLog = new RateLimitedLog(10_000);

/** At most this many decoded requests wait; beyond that the socket stops being read. */
const MAX_QUEUED = 32;

/**
 * The requests of one connection waiting for their turn: a ring buffer that grows when full,
 * because an array used with push()/shift() reallocates its storage as it empties and fills
 * again, i.e. on every request.
 */
class Fifo<T> {
  private items: (T | undefined)[] = new Array<T | undefined>(8).fill(undefined);
  private head = 0;
  length = 0;

  push(item: T): void {
    if (this.length === this.items.length) {
      const n = this.items.length;
      this.items = [...this.items.slice(this.head), ...this.items.slice(0, this.head), ...new Array<T | undefined>(n).fill(undefined)];
      this.head = 0;
    }
    this.items[(this.head + this.length) % this.items.length] = item;
    this.length++;
  }

  shift(): T {
    const item = this.items[this.head] as T;
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.length--;
    return item;
  }

  clear(): void {
    this.items.fill(undefined);
    this.head = 0;
    this.length = 0;
  }
}

/**
 * One client connection: bytes in → decoder → requests answered strictly in order → bytes out.
 * Postfix never pipelines, but nothing breaks if a client does. A malformed request closes this
 * connection only; a clean EOF between requests is normal (Postfix reconnects all the time).
 *
 * `handle` may answer synchronously (a cache hit): the reply is then written in the same tick
 * the request arrived in, with no Promise involved; a Promise is waited for.
 */
export function serveConnection<Req>(
  socket: net.Socket,
  decoder: Decoder<Req>,
  handle: (req: Req) => Reply | Promise<Reply>,
  opts: ConnectionOptions,
): { drain(): Promise<void> } {
  const queue = new Fifo<Req>();
  let busy = false;
  let idleWaiters: (() => void)[] = [];
  opts.hooks?.opened?.();

  // Idle guard. Not socket.setTimeout(): that re-arms a timer on every read and every write
  // (two timer-list insertions per request); here a request notes the time (one clock read) and
  // a timer looks at it once per idle_timeout. A connection waiting for its answer is not idle.
  const idleMs = opts.idleTimeoutMs;
  // [0]: time of the last activity, in a typed array so that noting it allocates nothing.
  const lastActive = new Float64Array([performance.now()]);
  let idleTimer: NodeJS.Timeout | undefined;
  const armIdle = (ms: number): void => {
    idleTimer = setTimeout(onIdleTimer, ms);
    idleTimer.unref();
  };
  const onIdleTimer = (): void => {
    idleTimer = undefined;
    if (socket.destroyed) return;
    const quietMs = performance.now() - lastActive[0]!;
    if (busy || quietMs < idleMs) {
      armIdle(busy ? idleMs : idleMs - quietMs);
      return;
    }
    opts.hooks?.timedOut?.('idle');
    log.debug(`${opts.label}: idle for ${idleMs / 1000} s (idle_timeout); closing connection`);
    socket.destroy();
  };
  if (idleMs > 0) armIdle(idleMs);

  // Slowloris guard: the clock starts with a request's first byte and is not reset by more
  // bytes of the same request, so trickling cannot hold a connection (and its memory) forever.
  const readTimeoutMs = opts.requestReadTimeoutMs ?? 0;
  let readTimer: NodeJS.Timeout | undefined;
  const partial = (): boolean => (decoder.bufferedBytes ?? 0) > 0;
  const onReadTimeout = (): void => {
    readTimer = undefined;
    if (socket.destroyed || !partial()) return;
    // A pipelined request waiting behind ours, or a socket we paused: the slow side is us.
    if (busy || socket.isPaused()) {
      readTimer = setTimeout(onReadTimeout, readTimeoutMs);
      return;
    }
    opts.hooks?.timedOut?.('read');
    clientLog.emit(
      'warn',
      `read:${opts.label}`,
      `${opts.label}: request still incomplete after ${readTimeoutMs / 1000} s (request_read_timeout); closing connection`,
    );
    socket.destroy();
  };
  const watchPartial = (): void => {
    if (readTimeoutMs <= 0) return;
    if (!partial()) {
      if (readTimer) clearTimeout(readTimer);
      readTimer = undefined;
    } else if (!readTimer) {
      readTimer = setTimeout(onReadTimeout, readTimeoutMs);
    }
  };

  socket.on('error', (err) => log.debug(`${opts.label}: ${err.message}`));
  socket.once('close', () => {
    if (readTimer) clearTimeout(readTimer);
    readTimer = undefined;
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = undefined;
    opts.hooks?.closed?.();
    queue.clear();
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  });

  const fail = (err: unknown): void => {
    if (err instanceof ProtocolError) {
      opts.hooks?.protocolError?.(err.reason);
      const limit = (err.reason === 'too_long' || err.reason === 'line_too_long') && opts.maxRequestSize !== undefined
        ? ` (max_request_size = ${opts.maxRequestSize})`
        : '';
      clientLog.emit('warn', `proto:${opts.label}:${err.reason}`, `${opts.label}: malformed request (${err.reason}): ${err.message}${limit}; closing connection`);
    } else {
      log.error(`${opts.label}: ${err instanceof Error ? err.stack ?? err.message : String(err)}; closing connection`);
    }
    socket.destroy();
  };

  const send = (reply: Reply): void => {
    if (typeof reply === 'string') socket.write(reply, 'latin1');
    else socket.write(reply);
    if (queue.length < MAX_QUEUED / 2 && socket.isPaused()) socket.resume();
  };
  const idle = (): void => {
    busy = false;
    if (idleWaiters.length === 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };
  /** Answers the queued requests in order; `busy` stays true until the queue is empty (or the socket gone). */
  const run = (): void => {
    try {
      while (queue.length > 0 && !socket.destroyed) {
        const reply = handle(queue.shift());
        if (typeof reply !== 'string' && !(reply instanceof Uint8Array)) {
          reply.then(
            (r) => {
              try {
                lastActive[0] = performance.now();
                if (!socket.destroyed) send(r);
              } catch (err) {
                fail(err);
                idle();
                return;
              }
              run();
            },
            (err: unknown) => {
              fail(err);
              idle();
            },
          );
          return;
        }
        send(reply);
      }
    } catch (err) {
      fail(err);
    }
    idle();
  };
  const pump = (): void => {
    if (busy) return;
    busy = true;
    run();
  };

  socket.on('data', (chunk: Buffer) => {
    // A reply answered at once is written in this same tick: this also stands for its write.
    lastActive[0] = performance.now();
    let reqs: Req[];
    try {
      reqs = decoder.push(chunk);
    } catch (err) {
      fail(err);
      return;
    }
    watchPartial();
    if (reqs.length === 0) return;
    for (let i = 0; i < reqs.length; i++) queue.push(reqs[i]!);
    if (queue.length >= MAX_QUEUED) socket.pause();
    pump();
  });

  return {
    /** Resolves once no request is being answered (for graceful shutdown). */
    drain: () => (busy || queue.length > 0) && !socket.destroyed ? new Promise<void>((r) => idleWaiters.push(r)) : Promise.resolve(),
  };
}
