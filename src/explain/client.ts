import http from 'node:http';
import type { ExplainReport } from './types.js';

/** An error answer of the admin listener (unknown map: 404, not loopback: 403, ...). */
export class ExplainHttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'ExplainHttpError';
  }
}

/**
 * Client side of GET /explain on the daemon's admin listener, for `explain --daemon`.
 * Resolves with the daemon's report.
 */
export function requestExplain(target: { host: string; port: number }, map: string, key: string, timeoutMs = 120_000): Promise<ExplainReport> {
  const query = new URLSearchParams({ map, key }).toString();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: target.host, port: target.port, method: 'GET', path: `/explain?${query}`, timeout: timeoutMs },
      (res) => {
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
          if (res.statusCode === 200 && body && typeof body === 'object' && 'lookups' in body) {
            resolve(body as ExplainReport);
            return;
          }
          const error = body && typeof body === 'object' && 'error' in body ? String((body as { error: unknown }).error) : text.trim();
          reject(new ExplainHttpError(res.statusCode ?? 0, `explain: HTTP ${res.statusCode}: ${error}`));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`explain: no answer from ${target.host}:${target.port} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
