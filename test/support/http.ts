import http from 'node:http';

export interface HttpReply {
  status: number;
  /** The Content-Type header ("undefined" when there is none). */
  type: string;
  body: string;
}

/** One plain HTTP request to 127.0.0.1:PORT; `timeoutMs` bounds a hung server (none if not given). */
export function httpRequest(port: number, path: string, method = 'GET', timeoutMs?: number): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
