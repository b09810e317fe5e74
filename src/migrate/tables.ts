/**
 * Finding `ldap:` tables inside Postfix parameter values, and replacing them in place.
 *
 * Postfix splits lookup-table lists and restriction lists at commas and whitespace
 * (CHARS_COMMA_SP), and treats `{ ... }` as one item (inline tables, grouped restriction
 * arguments). A table is one such item: `ldap:/etc/postfix/x.cf` or `proxy:ldap:/…`. The
 * main.cf-prefix form `ldap:name` (settings in main.cf as `name_server_host`, …) is found too,
 * but the daemon only reads `.cf` files, so it is reported and left alone.
 */

/** One item of a parameter value, with its position so it can be replaced in place. */
export interface ValueItem {
  text: string;
  start: number;
  end: number;
}

const SEPARATORS = new Set([',', ' ', '\t', '\r', '\n']);

/** Splits a value the way Postfix's mystrtokq(…, CHARS_COMMA_SP, "{}") does. */
export function splitItems(value: string): ValueItem[] {
  const out: ValueItem[] = [];
  let i = 0;
  while (i < value.length) {
    while (i < value.length && SEPARATORS.has(value[i]!)) i++;
    if (i >= value.length) break;
    const start = i;
    let depth = 0;
    while (i < value.length) {
      const ch = value[i]!;
      if (ch === '{') depth++;
      else if (ch === '}') depth = Math.max(0, depth - 1);
      else if (depth === 0 && SEPARATORS.has(ch)) break;
      i++;
    }
    out.push({ text: value.slice(start, i), start, end: i });
  }
  return out;
}

export interface LdapTableRef {
  /** The item as written, e.g. `proxy:ldap:/etc/postfix/aliases.cf`. */
  text: string;
  /** Through proxymap(8). */
  proxy: boolean;
  /** What follows `ldap:`: a path (file form) or a main.cf prefix name. */
  target: string;
  /** True for the `.cf` file form the daemon can serve (an absolute path). */
  isFile: boolean;
  start: number;
  end: number;
}

const LDAP_RE = /^(proxy:)?ldap:(.+)$/;

/** The `ldap:` / `proxy:ldap:` tables among the items of a value, in order. */
export function findLdapTables(value: string): LdapTableRef[] {
  const out: LdapTableRef[] = [];
  for (const item of splitItems(value)) {
    const m = LDAP_RE.exec(item.text);
    if (m === null) continue;
    const target = m[2]!;
    out.push({ text: item.text, proxy: m[1] !== undefined, target, isFile: target.startsWith('/'), start: item.start, end: item.end });
  }
  return out;
}

/** Replaces items in a value (positions from findLdapTables on the same value). */
export function replaceItems(value: string, replacements: { start: number; end: number; text: string }[]): string {
  let out = value;
  for (const r of [...replacements].sort((a, b) => b.start - a.start)) out = out.slice(0, r.start) + r.text + out.slice(r.end);
  return out;
}

/**
 * A value fit for a master.cf `-o name=value` (postconf -P refuses whitespace): list separators
 * become single commas, which Postfix reads the same way in every list-valued parameter.
 */
export function compactList(value: string): string {
  return splitItems(value).map((i) => i.text).join(',');
}
