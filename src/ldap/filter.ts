/**
 * RFC 4515 string filter -> ldapts Filter objects, with the acceptance rules and value bytes of
 * OpenLDAP's libldap (ldap_pvt_put_filter, libraries/libldap/filter.c, 2.5), which is what
 * Postfix's native ldap: table uses to encode query_filter.
 *
 * Why not ldapts's own FilterParser: it turns `\XX` into one JS char per byte and the value is
 * then UTF-8 encoded again, so `\c3\bc` (ü) goes out as 4 wrong bytes. Here the filter string is
 * turned into its UTF-8 bytes once and parsed as bytes, exactly like libldap parses its char *:
 * every filter metacharacter is ASCII, so raw non-ASCII text passes through as its UTF-8 bytes
 * and `\XX` is one byte. Values are handed to ldapts as Buffers.
 *
 * libldap behaviour reproduced (and cross-checked against ldapsearch 2.5, see
 * test/integration/filter-bytes.test.ts):
 *
 * - Top level: `(...)` must be the whole string, nothing may follow it, not even a space.
 *   A string not starting with `(` is one simple item, `mail=x` (everything up to the end is
 *   the item, so a trailing space is part of the value). A leading space is an error (libldap
 *   skips one space and then stops parsing; an all-blank filter would send no filter at all,
 *   which is rejected here as well). Empty -> error.
 * - After `(`, and between the items of `&` `|` `!`, blanks (SP, TAB, LF) are skipped. `(&)` and
 *   `(|)` (RFC 4526 absolute true/false) are accepted. `!` takes exactly one item, followed
 *   directly by its `)`. `((` is an error.
 * - Simple items split at the FIRST `=`: `<=` `>=` `~=` by the byte before it, `:=` extensible,
 *   else equality / presence (value exactly `*`) / substrings.
 * - The attribute description must be `ALPHA *(ALPHA/DIGIT/-)` or a numeric OID, optionally
 *   followed by `;option`s (LDH); it is sent as written (case kept). No blanks around it.
 * - Extensible `type[:dn][:rule]:=value` or `[:dn]:rule:=value`; `dn` is case-insensitive; the
 *   rule is a descriptor or numeric OID; `cn:dn::=x` is `cn:dn:=x` (libldap quirk).
 * - Values: `\XX` (2 hex digits, any case) is one byte; the RFC 1960 escapes `\(` `\)` `\*` `\\`
 *   are that char; any other `\c`, a lone `\XY` with non-hex Y, a trailing `\`, and raw `(` `)`
 *   (and raw `*` outside substring/presence) are errors. Everything else, including blanks and
 *   `=`, is kept byte for byte. Empty values are allowed except for the `any` pieces of a
 *   substring filter (`a**b` is an error).
 * - The string ends at a NUL, as a C string does.
 *
 * Errors throw FilterError; libldap's ldap_search_ext returns LDAP_FILTER_ERROR (-7) for them,
 * which Postfix treats as a temporary lookup failure.
 *
 * One pass over the bytes (recursive descent, no regexes); each simple item is scanned once to
 * find its end and once to decode it. The parser stays one file (just over 400 lines): it is one
 * unit, read side by side with libldap's filter.c.
 */
import { AndFilter, type Filter, NotFilter, OrFilter, PresenceFilter } from 'ldapts';
import {
  BytesApproximateFilter,
  BytesEqualityFilter,
  BytesExtensibleFilter,
  BytesGreaterThanEqualsFilter,
  BytesLessThanEqualsFilter,
  BytesSubstringFilter,
} from './filter-bytes.js';

/** libldap's result code for a filter it cannot encode (returned by ldap_search_ext). */
export const LDAP_FILTER_ERROR = -7;

export class FilterError extends Error {
  /** LDAP_FILTER_ERROR, what libldap would have returned; a temporary error for Postfix. */
  readonly code = LDAP_FILTER_ERROR;

  constructor(
    /** What is wrong, without the filter. */
    readonly reason: string,
    /** The filter string as given. */
    readonly filter: string,
    /** Byte offset (in the UTF-8 form of the filter) where the problem was found. */
    readonly offset: number,
  ) {
    super(`bad search filter ${JSON.stringify(filter)}: ${reason} (at byte ${offset})`);
    this.name = 'FilterError';
  }
}

// ---------------------------------------------------------------------------------------------
// Character classes (libldap's LDAP_SPACE, LDAP_ALPHA, LDAP_DIGIT, LDAP_LDH, LDAP_HEX on bytes).

const C_LPAREN = 0x28;
const C_RPAREN = 0x29;
const C_STAR = 0x2a;
const C_BACKSLASH = 0x5c;
const C_EQUALS = 0x3d;
const C_COLON = 0x3a;
const C_SEMI = 0x3b;
const C_DOT = 0x2e;
const C_SPACE = 0x20;

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a;
}
function isAlpha(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isLdh(c: number): boolean {
  return isAlpha(c) || isDigit(c) || c === 0x2d;
}
/** Value of a hex digit, or -1. */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
/** The old (RFC 1960) one-character escapes libldap still accepts: \( \) \* \\ */
function isOldEscape(c: number): boolean {
  return c === C_LPAREN || c === C_RPAREN || c === C_STAR || c === C_BACKSLASH;
}

// ---------------------------------------------------------------------------------------------

interface Parsed {
  filter: Filter;
  /** Offset just past the closing ')'. */
  next: number;
}

class Parser {
  constructor(
    private readonly src: string,
    private readonly b: Buffer,
    /** End of the string (the first NUL, or the length). */
    private readonly n: number,
  ) {}

  fail(reason: string, at: number): never {
    throw new FilterError(reason, this.src, at);
  }

  /** The whole filter string. */
  top(): Filter {
    const { b, n } = this;
    if (n === 0) this.fail('empty filter', 0);
    const c = b[0]!;
    if (c === C_LPAREN) {
      const { filter, next } = this.paren(0);
      if (next !== n) this.fail("characters after the filter's closing ')'", next);
      return filter;
    }
    if (c === C_SPACE) this.fail('leading space', 0);
    if (c === C_RPAREN) this.fail("unbalanced ')'", 0);
    // libldap: a string not starting with '(' is one simple item, up to the end.
    return this.simple(0, n);
  }

  /** `(` ... `)` starting at b[i] === '('. */
  paren(i: number): Parsed {
    const { b, n } = this;
    let j = i + 1;
    while (j < n && isBlank(b[j]!)) j++;
    if (j >= n) this.fail("missing ')'", j);
    const c = b[j]!;
    if (c === 0x26 /* & */ || c === 0x7c /* | */) {
      const filters: Filter[] = [];
      j++;
      for (;;) {
        while (j < n && isBlank(b[j]!)) j++;
        if (j >= n) this.fail("missing ')'", j);
        const d = b[j]!;
        if (d === C_RPAREN) break;
        if (d !== C_LPAREN) this.fail(`expected '(' or ')' in '${String.fromCharCode(c)}' list`, j);
        const item = this.paren(j);
        filters.push(item.filter);
        j = item.next;
      }
      return { filter: c === 0x26 ? new AndFilter({ filters }) : new OrFilter({ filters }), next: j + 1 };
    }
    if (c === 0x21 /* ! */) {
      j++;
      while (j < n && isBlank(b[j]!)) j++;
      if (j >= n) this.fail("missing ')'", j);
      if (b[j] !== C_LPAREN) this.fail("'!' must be followed by one parenthesised filter", j);
      const item = this.paren(j);
      j = item.next;
      if (j >= n) this.fail("missing ')'", j);
      if (b[j] !== C_RPAREN) this.fail("'!' takes exactly one filter, directly followed by ')'", j);
      return { filter: new NotFilter({ filter: item.filter }), next: j + 1 };
    }
    if (c === C_LPAREN) this.fail("'(' where an attribute or '&', '|', '!' was expected", j);
    // Simple item: it ends at the first ')' not preceded by an (unescaped) backslash. A raw '('
    // inside it can never be valid (libldap would balance it and then reject the item).
    const start = j;
    let escape = false;
    for (;;) {
      if (j >= n) this.fail("missing ')'", j);
      const d = b[j]!;
      if (escape) {
        escape = false;
      } else if (d === C_BACKSLASH) {
        escape = true;
      } else if (d === C_RPAREN) {
        break;
      } else if (d === C_LPAREN) {
        this.fail("unescaped '(' in a value", j);
      }
      j++;
    }
    return { filter: this.simple(start, j), next: j + 1 };
  }

  /** A simple item `attr op value` in b[start, stop). */
  simple(start: number, stop: number): Filter {
    const { b } = this;
    let eq = start;
    while (eq < stop && b[eq] !== C_EQUALS) eq++;
    if (eq >= stop) this.fail("no '=' in a simple filter", start);
    if (eq === start) this.fail("no attribute before '='", start);
    const op = b[eq - 1]!;
    switch (op) {
      case 0x3c /* < */:
        return new BytesLessThanEqualsFilter(this.desc(start, eq - 1), this.unescape(eq + 1, stop));
      case 0x3e /* > */:
        return new BytesGreaterThanEqualsFilter(this.desc(start, eq - 1), this.unescape(eq + 1, stop));
      case 0x7e /* ~ */:
        return new BytesApproximateFilter(this.desc(start, eq - 1), this.unescape(eq + 1, stop));
      case C_COLON:
        return this.extensible(start, eq - 1, eq + 1, stop);
      default:
        return this.assertion(this.desc(start, eq), eq + 1, stop);
    }
  }

  /** `attr=value`: equality, presence or substrings; the value is b[v, stop). */
  assertion(attribute: string, v: number, stop: number): Filter {
    const star = this.wildcard(v, stop);
    if (star === stop) return new BytesEqualityFilter(attribute, this.unescape(v, stop));
    if (star === v && stop === v + 1) return new PresenceFilter({ attribute });
    const initial = star > v ? this.unescape(v, star) : undefined;
    const any: Buffer[] = [];
    let fin: Buffer | undefined;
    let p = star + 1;
    while (p < stop) {
      const s = this.wildcard(p, stop);
      if (s === stop) {
        fin = this.unescape(p, stop);
        break;
      }
      if (s === p) this.fail("empty substring between two '*'", p);
      any.push(this.unescape(p, s));
      p = s + 1;
    }
    return new BytesSubstringFilter(attribute, initial, any, fin);
  }

  /** `type[:dn][:rule]` in b[start, stop) (the ':' before '=' excluded), value b[v, end). */
  extensible(start: number, stop: number, v: number, end: number): Filter {
    const { b } = this;
    let c1 = start;
    while (c1 < stop && b[c1] !== C_COLON) c1++;
    let rule = '';
    let dn = false;
    if (c1 < stop) {
      let c2 = c1 + 1;
      while (c2 < stop && b[c2] !== C_COLON) c2++;
      if (c2 >= stop) {
        // One colon: "type:dn" or "type:rule" / ":rule" (an empty rule, "cn::=x", is no rule).
        if (this.isDn(c1 + 1, stop)) {
          dn = true;
          if (!this.isDesc(start, c1)) this.fail("':dn' needs an attribute description", start);
        } else {
          rule = this.latin1(c1 + 1, stop);
          if (rule !== '' && !this.isOid(c1 + 1, stop)) this.fail('bad matching rule', c1 + 1);
        }
      } else {
        // Two colons: "type:dn:rule" / ":dn:rule" (an empty rule, "cn:dn::=x", is no rule).
        if (!this.isDn(c1 + 1, c2)) this.fail("expected 'dn' between the colons", c1 + 1);
        dn = true;
        rule = this.latin1(c2 + 1, stop);
        if (rule !== '' && !this.isOid(c2 + 1, stop)) this.fail('bad matching rule', c2 + 1);
      }
    }
    const type = this.latin1(start, c1);
    if (type === '' && rule === '') this.fail('extensible filter needs an attribute or a matching rule', start);
    if (type !== '' && !this.isDesc(start, c1)) this.fail('bad attribute description', start);
    return new BytesExtensibleFilter(type, rule, dn, this.unescape(v, end));
  }

  /** The attribute description b[start, stop), validated. */
  desc(start: number, stop: number): string {
    if (!this.isDesc(start, stop)) this.fail('bad attribute description', start);
    return this.latin1(start, stop);
  }

  latin1(start: number, stop: number): string {
    return this.b.toString('latin1', start, stop);
  }

  /** b[start, stop) is "dn", any case. */
  isDn(start: number, stop: number): boolean {
    const { b } = this;
    return stop - start === 2 && (b[start]! | 0x20) === 0x64 && (b[start + 1]! | 0x20) === 0x6e;
  }

  /** libldap ldap_is_desc: (descr / numericoid) *(";" option), option = 1*LDH. */
  isDesc(start: number, stop: number): boolean {
    const { b } = this;
    if (start >= stop) return false;
    let i = start;
    const c = b[i]!;
    if (isAlpha(c)) {
      for (i++; i < stop && b[i] !== C_SEMI; i++) if (!isLdh(b[i]!)) return false;
    } else if (isDigit(c)) {
      let dot = false;
      for (i++; i < stop && b[i] !== C_SEMI; i++) {
        const d = b[i]!;
        if (isDigit(d)) dot = false;
        else if (d === C_DOT && !dot) dot = true;
        else return false;
      }
      if (dot) return false;
    } else {
      return false;
    }
    // Options: each ';' must be followed by at least one LDH.
    while (i < stop) {
      i++; // the ';'
      if (i >= stop || !isLdh(b[i]!)) return false;
      for (i++; i < stop && b[i] !== C_SEMI; i++) if (!isLdh(b[i]!)) return false;
    }
    return true;
  }

  /** libldap ldap_is_oid: descr (ALPHA *LDH) or numericoid. */
  isOid(start: number, stop: number): boolean {
    const { b } = this;
    if (start >= stop) return false;
    const c = b[start]!;
    if (isAlpha(c)) {
      for (let i = start + 1; i < stop; i++) if (!isLdh(b[i]!)) return false;
      return true;
    }
    if (isDigit(c)) {
      let dot = false;
      for (let i = start + 1; i < stop; i++) {
        const d = b[i]!;
        if (isDigit(d)) dot = false;
        else if (d === C_DOT && !dot) dot = true;
        else return false;
      }
      return !dot;
    }
    return false;
  }

  /**
   * libldap ldap_pvt_find_wildcard: offset of the first unescaped '*' in b[i, stop), or stop
   * when there is none. Throws on a raw parenthesis or a bad escape before it.
   */
  wildcard(i: number, stop: number): number {
    const { b } = this;
    for (; i < stop; i++) {
      const c = b[i]!;
      if (c === C_STAR) return i;
      if (c === C_LPAREN || c === C_RPAREN) this.fail(`unescaped '${String.fromCharCode(c)}' in a value`, i);
      if (c === C_BACKSLASH) {
        if (i + 1 >= stop) this.fail("'\\' at the end of a value", i);
        const e = b[i + 1]!;
        if (i + 2 < stop && hexValue(e) >= 0 && hexValue(b[i + 2]!) >= 0) i += 2;
        else if (isOldEscape(e)) i += 1;
        else this.fail('bad escape in a value', i);
      }
    }
    return stop;
  }

  /** libldap ldap_pvt_filter_value_unescape of b[i, stop) into bytes. */
  unescape(i: number, stop: number): Buffer {
    const { b } = this;
    const out = Buffer.allocUnsafe(stop - i);
    let r = 0;
    for (; i < stop; i++) {
      const c = b[i]!;
      if (c === C_BACKSLASH) {
        i++;
        if (i >= stop) this.fail("'\\' at the end of a value", i - 1);
        const e = b[i]!;
        const hi = hexValue(e);
        if (hi >= 0) {
          const lo = i + 1 < stop ? hexValue(b[i + 1]!) : -1;
          if (lo < 0) this.fail('escape needs two hex digits', i - 1);
          out[r++] = (hi << 4) | lo;
          i++;
        } else if (isOldEscape(e)) {
          out[r++] = e;
        } else {
          this.fail('bad escape in a value', i - 1);
        }
      } else if (c === C_LPAREN || c === C_RPAREN || c === C_STAR) {
        this.fail(`unescaped '${String.fromCharCode(c)}' in a value`, i);
      } else {
        out[r++] = c;
      }
    }
    return r === out.length ? out : out.subarray(0, r);
  }
}

/**
 * Parses an RFC 4515 filter string the way libldap's ldap_pvt_put_filter does and returns ldapts
 * Filter objects whose BER encoding carries exactly libldap's value bytes. Throws FilterError
 * where libldap would fail with LDAP_FILTER_ERROR (and for an empty/all-blank filter, for which
 * libldap would send a search request without a filter).
 */
export function parseFilter(s: string): Filter {
  const b = Buffer.from(s, 'utf8');
  const nul = b.indexOf(0);
  return new Parser(s, b, nul < 0 ? b.length : nul).top();
}
