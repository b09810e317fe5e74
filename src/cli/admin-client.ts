/**
 * The command line's side of the daemon's admin listener (`cache flush`, `explain --daemon`):
 * one request helper, so both commands fail and time out the same way.
 */
import http from 'node:http';
import type { ExplainReport } from '../explain/types.js';

/** An error answer of the admin listener (unknown map: 404, not loopback: 403, ...). */
export class AdminHttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'AdminHttpError';
  }
}

interface Target {
  host: string;
  port: number;
}

/** Sends one request; resolves with the parsed JSON body of a 200 answer, rejects with the server's error text. */
function adminRequest(what: string, target: Target, method: 'GET' | 'POST', path: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: target.host, port: target.port, method, path, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        if (res.statusCode === 200 && body !== undefined) {
          resolve(body);
          return;
        }
        const error = body && typeof body === 'object' && 'error' in body ? String((body as { error: unknown }).error) : text.trim();
        reject(new AdminHttpError(res.statusCode ?? 0, `${what}: HTTP ${res.statusCode}: ${error}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${what}: no answer from ${target.host}:${target.port} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** POST /cache/flush: resolves with the number of entries flushed. */
export async function requestFlush(target: Target, map?: string, key?: string, timeoutMs = 10_000): Promise<number> {
  const params = new URLSearchParams();
  if (map !== undefined) params.set('map', map);
  if (key !== undefined) params.set('key', key);
  const query = params.toString();
  const body = await adminRequest('cache flush', target, 'POST', `/cache/flush${query ? `?${query}` : ''}`, timeoutMs);
  const flushed = (body as { flushed?: unknown } | null)?.flushed;
  if (typeof flushed !== 'number') throw new AdminHttpError(200, 'cache flush: the answer has no count');
  return flushed;
}

/** GET /explain: resolves with the daemon's report. */
export async function requestExplain(target: Target, map: string, key: string, timeoutMs = 120_000): Promise<ExplainReport> {
  const body = await adminRequest('explain', target, 'GET', `/explain?${new URLSearchParams({ map, key }).toString()}`, timeoutMs);
  if (!body || typeof body !== 'object' || !('lookups' in body)) throw new AdminHttpError(200, 'explain: the answer is not a report');
  return body as ExplainReport;
}
