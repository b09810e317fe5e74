/** Listen addresses in Postfix's notation: `inet:HOST:PORT`, `inet:[IPv6]:PORT`, `unix:/path`. */
import { isSpace } from './cf-file.js';
import { ConfigError, type ConfigWhere } from './errors.js';

export type Listen = { kind: 'inet'; host: string; port: number } | { kind: 'unix'; path: string };

/**
 * Parses a listen address in Postfix notation: `inet:host:port`, `inet:[::1]:port`,
 * `unix:/path`, bare `host:port` / `[::1]:port` (= inet) or a bare absolute path (= unix).
 * Port 0 (let the OS choose) is allowed. Errors name the spec; `where` says where it came from.
 */
export function parseListen(spec: string, where: ConfigWhere = { file: 'listen address' }): Listen {
  const fail = (reason: string): never => {
    throw new ConfigError(`invalid listen address '${spec}': ${reason}`, where);
  };
  if (spec === '') fail('empty');
  for (const ch of spec) if (isSpace(ch)) fail('contains whitespace');
  if (/^unix:/i.test(spec)) {
    const path = spec.slice(5);
    if (path === '') fail('missing socket path after unix:');
    return { kind: 'unix', path };
  }
  if (spec.startsWith('/')) return { kind: 'unix', path: spec };
  const rest = /^inet:/i.test(spec) ? spec.slice(5) : spec;
  let host: string;
  let portText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) return fail("missing ']' after IPv6 address");
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (!after.startsWith(':')) return fail("expected ':port' after ']'");
    portText = after.slice(1);
    if (host === '') fail('empty IPv6 address');
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon < 0) return fail('expected host:port, inet:host:port or unix:/path');
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
    if (host.includes(':')) fail('write an IPv6 address in brackets, e.g. inet:[::1]:10001');
    if (host === '') fail('missing host (use 0.0.0.0 or [::] for all addresses)');
  }
  if (!/^[0-9]+$/.test(portText)) fail(`bad port '${portText}'`);
  const port = Number(portText);
  if (port > 65535) fail(`port ${port} out of range 0..65535`);
  return { kind: 'inet', host, port };
}

export function formatListen(l: Listen): string {
  if (l.kind === 'unix') return `unix:${l.path}`;
  return l.host.includes(':') ? `inet:[${l.host}]:${l.port}` : `inet:${l.host}:${l.port}`;
}
