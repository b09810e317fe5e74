import http from 'node:http';
import net from 'node:net';
import { renderReport } from '../explain/render.js';
import type { ExplainReport } from '../explain/types.js';
import type { Metrics } from '../metrics/metrics.js';

/**
 * The admin listener (`--metrics HOST:PORT`, loopback by default):
 *
 *   GET  /metrics                      Prometheus exposition
 *   GET  /healthz                      200 "ok" while the process serves HTTP at all
 *   GET  /readyz                       200 when every map is ready, else 503; JSON detail per map
 *   POST /cache/flush[?map=M[&key=K]]  flush everything, one map, or one key of a map; JSON {flushed}
 *   GET  /explain?map=M&key=K[&format=text]
 *                                      how the daemon answers K in map M right now (cache state
 *                                      included, LDAP asked, nothing cached): the explain report
 *
 * /cache/flush answers 403 to any client that is not on a loopback address, whatever address
 * the listener was bound to (defense in depth: binding it to a public address by mistake must
 * not let the world empty the cache and push the load onto LDAP). /explain likewise: it shows
 * directory data and makes LDAP searches.
 */

export interface MapHealth {
  ok: boolean;
  ldap: 'connected' | 'down';
  cacheEntries: number;
  detail?: string;
  /**
   * The change watcher keeping this map's cached answers fresh (absent when change_poll_interval
   * is 0). A watcher that has not polled successfully for long while LDAP answers lookups makes
   * the map not ready: its cached answers may be silently outdated.
   */
  watcher?: WatcherHealth;
  /** Servers of this map that lookups skip now (circuit breaker open), with why and since when. */
  failingServers?: { server: string; reason: string; openForSec: number }[];
}

export interface WatcherHealth {
  state: 'starting' | 'ok' | 'failing';
  /** `contextCSN` or `modifyTimestamp` per watched naming context. */
  markers: Record<string, string>;
  lastSuccessAgeSec: number;
  failingLong: boolean;
  error?: string;
  /** The server refuses the poll (result code by name): the watcher is blind until that is fixed. */
  refused?: string;
  /** The fix for the refusal. */
  advice?: string;
}

export interface Health {
  ok: boolean;
  maps: Record<string, MapHealth>;
}

export interface AdminDeps {
  metrics: Metrics;
  health: () => Promise<Health>;
  /**
   * Flushes the cache of one map (or all maps when `map` is undefined), one key when `key` is
   * given (the exact request key, UTF-8). Returns the number of entries removed. Throw an
   * `AdminError` (e.g. 404 for an unknown map) to choose the HTTP status.
   */
  flush: (map?: string, key?: string) => number;
  /** The explain report for one key (the exact request key, UTF-8); AdminError for an unknown map. */
  explain?: (map: string, key: string) => Promise<ExplainReport>;
}

export interface AdminServer {
  port: number;
  close(): Promise<void>;
}

/** Thrown by deps to answer with a specific status and message. */
export class AdminError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'AdminError';
  }
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
  if (net.isIPv4(a)) return a.startsWith('127.');
  return a === '::1';
}

function send(res: http.ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...extra,
  });
  res.end(body);
}

function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value)}\n`);
}

function methodNotAllowed(res: http.ServerResponse, allow: string): void {
  send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: allow });
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, deps: AdminDeps): Promise<void> {
  // No endpoint takes a body; drain whatever came so keep-alive connections stay usable.
  req.resume();
  const url = new URL(req.url ?? '/', 'http://admin.invalid');
  const method = req.method ?? 'GET';
  const isGet = method === 'GET' || method === 'HEAD';
  switch (url.pathname) {
    case '/metrics': {
      if (!isGet) return methodNotAllowed(res, 'GET, HEAD');
      const text = await deps.metrics.text();
      return send(res, 200, deps.metrics.contentType, text);
    }
    case '/healthz':
      if (!isGet) return methodNotAllowed(res, 'GET, HEAD');
      return send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
    case '/readyz': {
      if (!isGet) return methodNotAllowed(res, 'GET, HEAD');
      let health: Health;
      try {
        health = await deps.health();
      } catch (err) {
        return sendJson(res, 503, { ok: false, error: err instanceof Error ? err.message : String(err), maps: {} });
      }
      return sendJson(res, health.ok ? 200 : 503, health);
    }
    case '/cache/flush': {
      if (method !== 'POST') return methodNotAllowed(res, 'POST');
      if (!isLoopback(req.socket.remoteAddress)) {
        return sendJson(res, 403, { error: 'cache flush is only allowed from a loopback address' });
      }
      const map = url.searchParams.get('map') ?? undefined;
      const key = url.searchParams.get('key') ?? undefined;
      if (key !== undefined && map === undefined) return sendJson(res, 400, { error: 'key requires map' });
      try {
        return sendJson(res, 200, { flushed: deps.flush(map, key) });
      } catch (err) {
        if (err instanceof AdminError) return sendJson(res, err.status, { error: err.message });
        throw err;
      }
    }
    case '/explain': {
      if (!isGet) return methodNotAllowed(res, 'GET, HEAD');
      if (!isLoopback(req.socket.remoteAddress)) {
        return sendJson(res, 403, { error: 'explain is only allowed from a loopback address' });
      }
      if (!deps.explain) return sendJson(res, 404, { error: 'explain is not available here' });
      const map = url.searchParams.get('map');
      const key = url.searchParams.get('key');
      if (map === null || key === null) return sendJson(res, 400, { error: 'explain needs map and key' });
      try {
        const report = await deps.explain(map, key);
        if (url.searchParams.get('format') === 'text') return send(res, 200, 'text/plain; charset=utf-8', renderReport(report));
        return sendJson(res, 200, report);
      } catch (err) {
        if (err instanceof AdminError) return sendJson(res, err.status, { error: err.message });
        throw err;
      }
    }
    default:
      return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }
}

export async function startAdminHttp(listen: { host: string; port: number }, deps: AdminDeps): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    handle(req, res, deps).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) });
    });
  });
  // Scrapes are small and quick; do not let idle or slow clients pile up.
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(listen.port, listen.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : listen.port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
