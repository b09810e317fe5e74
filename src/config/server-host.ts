/**
 * `server_host` items → servers to connect to (docs/postfix-ldap-semantics §2.1, dict_ldap_open
 * with OpenLDAP):
 *
 * - an LDAP URL (`ldap://`, `ldaps://`, `ldapi://`, scheme case-insensitive, optionally wrapped
 *   as `<…>` and/or prefixed `URL:`) is parsed like `ldap_url_parse`; a malformed URL is logged
 *   and skipped (a warning here);
 * - otherwise an item containing `:` becomes `ldap://ITEM` (plain LDAP, server_port ignored; a
 *   bracketed IPv6 literal without port gets the library default 389);
 * - otherwise it becomes `ldap://ITEM:server_port`.
 *
 * Postfix hands the converted items to `ldap_initialize()` unchecked; if one of them is not a
 * valid URL, that call fails and *every* lookup of the map is a temporary error. We refuse such
 * a configuration at startup instead (ConfigError), which is the more useful form of the same
 * outcome.
 */
import type { ServerTarget } from '../ldap/target.js';
import { splitList } from './cf-file.js';
import { ConfigError, type ConfigWarning, type ConfigWhere, warningAt } from './errors.js';

/** OpenLDAP's default host when a URL names none. */
export const DEFAULT_LDAP_HOST = 'localhost';
/** Debian's libldap default LDAPI socket (used for `ldapi://` with an empty path). */
export const DEFAULT_LDAPI_SOCKET = '/var/run/slapd/ldapi';

type UrlParse = { ok: true; spec: ServerTarget } | { ok: false; reason: string };

/** `ldap_is_ldap_url`: returns the URL without `<`/`URL:` prefix, or undefined. */
function ldapUrlBody(item: string): { body: string; enclosed: boolean } | undefined {
  let body = item;
  let enclosed = false;
  if (body.startsWith('<')) {
    body = body.slice(1);
    enclosed = true;
  }
  if (/^URL:/i.test(body)) body = body.slice(4);
  if (!/^ldap[si]?:\/\//i.test(body)) return undefined;
  return { body, enclosed };
}

/** Percent-decoding as OpenLDAP does for host and port (strict: bad escapes are errors). */
function unescape(text: string): string | undefined {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

const SCOPES = new Set(['', 'base', 'one', 'onelevel', 'sub', 'subtree', 'subord', 'subordinate', 'children']);

/** A simplified `ldap_url_parse` sufficient to decide validity and extract the endpoint. */
export function parseLdapUrl(item: string): UrlParse {
  const wrapped = ldapUrlBody(item);
  if (wrapped === undefined) return { ok: false, reason: 'not an LDAP URL' };
  let body = wrapped.body;
  if (wrapped.enclosed) {
    if (!body.endsWith('>')) return { ok: false, reason: "missing '>' after '<'" };
    body = body.slice(0, -1);
  }
  const sepIndex = body.indexOf('://');
  const scheme = body.slice(0, sepIndex).toLowerCase() as ServerTarget['scheme'];
  let rest = body.slice(sepIndex + 3);

  let hostport: string;
  let tail = '';
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    hostport = rest.slice(0, slash);
    tail = rest.slice(slash + 1);
    // DN, then ?attrs?scope?filter?extensions
    const fields = tail.split('?');
    if (fields.length > 5) return { ok: false, reason: "too many '?' separated fields" };
    const scope = (fields[2] ?? '').toLowerCase();
    if (!SCOPES.has(scope)) return { ok: false, reason: `bad scope '${fields[2] ?? ''}'` };
  } else {
    const q = rest.indexOf('?');
    hostport = q >= 0 ? rest.slice(0, q) : rest;
    rest = q >= 0 ? rest.slice(q + 1) : '';
    // "Novell kludge": ?attrs?scope?filter?extensions with no DN
    if (rest !== '') {
      const fields = rest.split('?');
      if (fields.length > 4) return { ok: false, reason: "too many '?' separated fields" };
      const scope = (fields[1] ?? '').toLowerCase();
      if (!SCOPES.has(scope)) return { ok: false, reason: `bad scope '${fields[1] ?? ''}'` };
    }
  }

  let rawHost: string;
  let rawPort: string | undefined;
  if (hostport.startsWith('[')) {
    const close = hostport.indexOf(']');
    if (close < 0) return { ok: false, reason: "missing ']' after IPv6 address" };
    rawHost = hostport.slice(1, close);
    const after = hostport.slice(close + 1);
    if (after.startsWith(':')) rawPort = after.slice(1);
    else if (after !== '') return { ok: false, reason: "unexpected text after ']'" };
  } else {
    const colon = hostport.indexOf(':');
    rawHost = colon >= 0 ? hostport.slice(0, colon) : hostport;
    if (colon >= 0) rawPort = hostport.slice(colon + 1);
  }

  const host = unescape(rawHost);
  if (host === undefined) return { ok: false, reason: 'bad %-escape in host' };
  let port: number | undefined;
  if (rawPort !== undefined) {
    const p = unescape(rawPort);
    if (p === undefined || !/^[0-9]+$/.test(p)) return { ok: false, reason: `bad port '${rawPort}'` };
    port = Number(p);
    if (port < 1 || port > 65535) return { ok: false, reason: `port ${p} out of range 1..65535` };
  }

  const url = body;
  if (scheme === 'ldapi') {
    return { ok: true, spec: { url, scheme, socketPath: host === '' ? DEFAULT_LDAPI_SOCKET : host } };
  }
  return {
    ok: true,
    spec: {
      url,
      scheme,
      host: host === '' ? DEFAULT_LDAP_HOST : host,
      port: port ?? (scheme === 'ldaps' ? 636 : 389),
    },
  };
}

/**
 * Parses the `server_host` value. `where` names server_host, `portWhere` names server_port
 * (used when a bare host needs it). Malformed URL items are skipped with a warning; an empty
 * result is a ConfigError.
 */
export function parseServerHost(
  value: string,
  serverPort: number,
  where: ConfigWhere,
  portWhere: ConfigWhere,
  warnings: ConfigWarning[],
): ServerTarget[] {
  const specs: ServerTarget[] = [];
  for (const item of splitList(value)) {
    if (ldapUrlBody(item) !== undefined) {
      const r = parseLdapUrl(item);
      if (r.ok) specs.push(r.spec);
      else warnings.push(warningAt(where, `error parsing URL ${item}: ${r.reason}; skipping`));
      continue;
    }
    if (item.includes(':')) {
      const url = `ldap://${item}`;
      const r = parseLdapUrl(url);
      if (!r.ok) {
        const hint = !item.startsWith('[') && item.split(':').length > 2 ? ' (write an IPv6 address in brackets: [::1] or [::1]:389)' : '';
        throw new ConfigError(`item '${item}' becomes ${url}, which is not a valid LDAP URL: ${r.reason}${hint}`, where);
      }
      specs.push(r.spec);
      continue;
    }
    const url = `ldap://${item}:${serverPort}`;
    if (serverPort < 1 || serverPort > 65535) {
      throw new ConfigError(`port ${serverPort} out of range 1..65535 (needed for server_host item '${item}')`, portWhere);
    }
    const r = parseLdapUrl(url);
    if (!r.ok) throw new ConfigError(`item '${item}' becomes ${url}, which is not a valid LDAP URL: ${r.reason}`, where);
    specs.push(r.spec);
  }
  if (specs.length === 0) throw new ConfigError('no usable LDAP server in the list', where);
  return specs;
}
