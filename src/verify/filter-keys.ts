/**
 * Keys worth asking, derived from a map's own query_filter: every equality assertion whose
 * value holds a key code (`(mail=%s)`, `(listName=%u)`, `(mail=%u@%d)`) names an attribute
 * whose directory values are exactly the keys that find something. Pure: the LDAP search for
 * the values is in directory-keys.ts.
 */

export interface KeyAssertion {
  attribute: string;
  /** The assertion value as written, e.g. `%u@%d`. */
  pattern: string;
}

/** Equality assertions with %s, %u, %d or %1-%9 in their value (approximate and ordering ones are skipped). */
export function keyAssertions(filter: string): KeyAssertion[] {
  const out: KeyAssertion[] = [];
  for (const m of filter.matchAll(/\(([A-Za-z][A-Za-z0-9;.-]*)=([^()]*)\)/g)) {
    const attr = m[1]!;
    const pattern = m[2]!;
    if (/[~<>:]$/.test(attr)) continue;
    if (!/%[sud1-9]/.test(pattern.replace(/%%/g, ''))) continue;
    if (!out.some((a) => a.attribute.toLowerCase() === attr.toLowerCase() && a.pattern === pattern)) out.push({ attribute: attr, pattern });
  }
  return out;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The key whose expansion of `pattern` equals `value`, if one can be told: %s gives the key,
 * %u and %d give localpart@domain, %u alone the bare localpart (Postfix's %u of a key without @
 * is the whole key), %d alone the domain. Domain labels (%1…) only constrain the match.
 */
export function keyFromValue(pattern: string, value: string): string | undefined {
  const codes: string[] = [];
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '%' && i + 1 < pattern.length) {
      const c = pattern[++i]!;
      if (c === '%') { re += '%'; continue; }
      if (c === 's') re += '(.+)';
      else if (c === 'u') re += '([^@]+)';
      else if (c === 'd') re += '([^@]+)';
      else if (/[1-9]/.test(c)) re += '([^@.]+)';
      else return undefined;
      codes.push(c);
      continue;
    }
    re += escapeRe(ch);
  }
  const m = new RegExp(`${re}$`, 'is').exec(value);
  if (m === null) return undefined;
  const got = (c: string) => { const i = codes.indexOf(c); return i < 0 ? undefined : m[i + 1]; };
  const s = got('s');
  if (s !== undefined) return s;
  const u = got('u');
  const d = got('d');
  if (u !== undefined && d !== undefined) return `${u}@${d}`;
  if (u !== undefined) return u;
  if (d !== undefined) return d;
  return undefined;
}

/**
 * The code-free part of a search_base (`ou=%d,ou=Domains,dc=x` → `ou=Domains,dc=x`): where to
 * look for values when the base itself depends on the key.
 */
export function staticBase(searchBase: string): string {
  const rdns = searchBase.split(/(?<!\\),/);
  let i = 0;
  while (i < rdns.length && /%[sud1-9SUD]/.test(rdns[i]!)) i++;
  return rdns.slice(i).join(',').trim();
}
