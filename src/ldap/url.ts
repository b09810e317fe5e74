/**
 * LDAP URLs as special_result_attribute values (spec §4.4), read the way libldap reads them for
 * dict_ldap: ldap_is_ldap_url decides whether a value is a URL at all (else it is a DN), and
 * ldap_url_parse (its "historic" flags: default scope base, empty DN allowed) extracts base DN,
 * attributes, scope and filter. Host, port and extensions are only checked for syntax: dict_ldap
 * sends the search over its own connection.
 *
 * libldap's quirks that decide answers, kept on purpose (each measured against postmap):
 * nothing is trimmed (a leading space makes a DN, a trailing one a bad filter or enclosure);
 * `<URL:ldap://…>` and `URL:ldap://…` are URLs, `URL:<ldap://…>` is not; pldap:// and pldaps://
 * are, cldap:// is not; a field is percent-decoded before the attribute list is split on commas;
 * a bad `%` escape empties the whole field; a decoded NUL ends it; empty attribute names are
 * dropped; `subord`, `subordinate` and `children` are the subordinate scope; an empty extension
 * list or a fifth `?` is an error; a URL without a `/` after the host (`ldap://host?x`) has no
 * DN at all, and libldap searches the empty DN.
 */
export type UrlScope = 'base' | 'one' | 'sub' | 'children';

export interface LdapUrl {
  dn: string;
  attributes: string[];
  scope: UrlScope;
  filter: string;
}

export class LdapUrlError extends Error {}

const PREFIXES: readonly [string, string][] = [
  ['ldap://', 'ldap'],
  ['pldap://', 'pldap'],
  ['ldaps://', 'ldaps'],
  ['pldaps://', 'pldaps'],
  ['ldapi://', 'ldapi'],
];

/** Where the part after `scheme://` starts, whether `<…>` encloses the URL, and the scheme. */
function skipPrefix(value: string): { at: number; enclosed: boolean; scheme: string } | undefined {
  let at = 0;
  const enclosed = value.startsWith('<');
  if (enclosed) at = 1;
  if (value.slice(at, at + 4).toLowerCase() === 'url:') at += 4;
  for (const [prefix, scheme] of PREFIXES) {
    if (value.slice(at, at + prefix.length).toLowerCase() === prefix) return { at: at + prefix.length, enclosed, scheme };
  }
  return undefined;
}

export function isLdapUrl(value: string): boolean {
  return skipPrefix(value) !== undefined;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/**
 * libldap's ldap_pvt_hex_unescape on a C string: `%XX` decoded; a `%` without two hex digits
 * after it empties the whole string; the result ends at its first NUL byte.
 */
export function hexUnescape(s: string): string {
  if (!s.includes('%')) return s;
  const src = Buffer.from(s, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c !== 0x25) {
      out.push(c);
      continue;
    }
    const h1 = src[i + 1];
    const h2 = src[i + 2];
    if (h1 === undefined || h2 === undefined || !isHex(h1) || !isHex(h2)) return '';
    out.push(parseInt(String.fromCharCode(h1, h2), 16));
    i += 2;
  }
  const nul = out.indexOf(0);
  return Buffer.from(nul >= 0 ? out.slice(0, nul) : out).toString('utf8');
}

const SCOPES: Readonly<Record<string, UrlScope>> = {
  base: 'base',
  one: 'one',
  onelevel: 'one',
  sub: 'sub',
  subtree: 'sub',
  subord: 'children',
  subordinate: 'children',
  children: 'children',
};

/** strtol(s, &end, 10) consuming the whole string (leading white space and a sign allowed). */
function isWholeNumber(s: string): boolean {
  return /^[ \t\n\v\f\r]*[+-]?[0-9]+$/.test(s);
}

const DEFAULT_FILTER = '(objectclass=*)';

/** An LDAP URL taken apart by libldap's rules (ldap_url_parse_ext), fields decoded. */
export interface UrlParts {
  scheme: string;
  /** Host as written, decoded ('' when absent; an IPv6 address without its brackets). */
  host: string;
  /** The port, when one is given. */
  port?: number;
  /** undefined when there is no "/" after the host; '' when the DN part is empty. */
  dn?: string;
  attributes: string[];
  /** undefined when not given. */
  scope?: UrlScope;
  /** undefined when not given. */
  filter?: string;
  extensions: string[];
}

export function parseUrlParts(value: string): UrlParts {
  const prefix = skipPrefix(value);
  if (!prefix) throw new LdapUrlError('not an LDAP URL');
  let url = value.slice(prefix.at);
  if (prefix.enclosed) {
    if (url === '' || !url.endsWith('>')) throw new LdapUrlError('unbalanced <> around URL');
    url = url.slice(0, -1);
  }
  const slash = url.indexOf('/');
  let hostport: string;
  let path: string | undefined;
  if (slash >= 0) {
    hostport = url.slice(0, slash);
    path = url.slice(slash + 1);
  } else {
    const q = url.indexOf('?');
    hostport = q >= 0 ? url.slice(0, q) : url;
  }
  const parts: UrlParts = { scheme: prefix.scheme, host: hostport, attributes: [], extensions: [] };
  if (prefix.scheme !== 'ldapi') {
    let host = hostport;
    let port: string | undefined;
    if (hostport.startsWith('[')) {
      const close = hostport.indexOf(']');
      if (close < 0) throw new LdapUrlError('unbalanced [ in host');
      const after = hostport.slice(close + 1);
      const colon = after.indexOf(':');
      if (colon > 0) throw new LdapUrlError('junk between ] and :port');
      if (colon === 0) port = after.slice(1);
      host = hostport.slice(1, close);
    } else {
      const colon = hostport.indexOf(':');
      if (colon >= 0) {
        port = hostport.slice(colon + 1);
        host = hostport.slice(0, colon);
      }
    }
    if (port !== undefined) {
      const p = hexUnescape(port);
      if (p === '' || !isWholeNumber(p)) throw new LdapUrlError(`bad port ${JSON.stringify(port)}`);
      parts.port = Number(p.trim());
    }
    parts.host = hexUnescape(host);
  }
  // No "/" after the host: no DN at all (libldap's search then uses the empty DN).
  if (path === undefined) return parts;

  const fields = path.split('?');
  if (fields.length > 5) throw new LdapUrlError('too many ? separated fields');
  const [dnField = '', attrField, scopeField, filterField, extField] = fields;
  parts.dn = hexUnescape(dnField);
  if (attrField !== undefined && attrField !== '') {
    parts.attributes = hexUnescape(attrField).split(',').filter((a) => a !== '');
  }
  if (scopeField !== undefined && scopeField !== '') {
    const scope = SCOPES[hexUnescape(scopeField).toLowerCase()];
    if (scope === undefined) throw new LdapUrlError(`bad scope ${JSON.stringify(scopeField)}`);
    parts.scope = scope;
  }
  if (filterField !== undefined && filterField !== '') {
    const filter = hexUnescape(filterField);
    if (filter === '') throw new LdapUrlError(`bad filter ${JSON.stringify(filterField)}`);
    parts.filter = filter;
  }
  if (extField !== undefined) {
    parts.extensions = extField.split(',').filter((e) => e !== '').map(hexUnescape);
    if (parts.extensions.length === 0) throw new LdapUrlError('empty extension list');
  }
  return parts;
}

/** A special_result_attribute URL value as dict_ldap searches it (ldap_url_parse's defaults). */
export function parseLdapUrl(value: string): LdapUrl {
  const p = parseUrlParts(value);
  return { dn: p.dn ?? '', attributes: p.attributes, scope: p.scope ?? 'base', filter: p.filter ?? DEFAULT_FILTER };
}
