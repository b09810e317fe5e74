/**
 * DNs as the change watcher compares them. The same entry reaches us spelled in several ways: as
 * the server returns it (`uid=alice,ou=People,dc=example,dc=org`), as somebody typed it into a
 * `contact` value (`UID=Alice, ou=people,dc=example,dc=org`), with `\2C` or `\,` for a comma.
 * The canonical form below makes those equal: attribute types and values lower-cased (NFKC),
 * escapes decoded, insignificant spaces removed (around separators, leading, trailing, and runs
 * of inner spaces collapsed as caseIgnoreMatch does), multi-valued RDNs sorted, then re-escaped
 * one way.
 *
 * Lower-casing every value may make two DNs that differ only in the case of a case-sensitive
 * value look the same. For invalidation that errs on the safe side: an answer is dropped once
 * too often, never kept once too long. Attribute types given as OIDs are not mapped to names.
 *
 * Memory: every cached answer keeps the DNs it was built from, and one directory entry is part
 * of many answers (a person in dozens of lists). normalizeDn returns one shared string per
 * normalized DN (interned) instead of a new copy per answer, so an answer's dependencies cost a
 * pointer per DN. Both the raw → normalized memo and the intern table are bounded (two
 * generations of GENERATION entries each, roughly least recently used): a DN that fell out of
 * them is normalized again and may then exist twice, which costs memory, never correctness.
 */

/** Entries per generation of the memo and of the intern table (at most twice this many are held). */
const GENERATION = 16_384;

/** A bounded string → string map: two generations; a hit in the old one is carried over. */
class Generations {
  private young = new Map<string, string>();
  private old = new Map<string, string>();

  get(k: string): string | undefined {
    const v = this.young.get(k);
    if (v !== undefined) return v;
    const o = this.old.get(k);
    if (o !== undefined) this.set(k, o);
    return o;
  }

  set(k: string, v: string): void {
    if (this.young.size >= GENERATION) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(k, v);
  }
}

/** raw DN → its normalized (interned) form */
const memo = new Generations();
/** normalized DN → the one instance handed out */
const interned = new Generations();

export function normalizeDn(dn: string): string {
  let n = memo.get(dn);
  if (n === undefined) {
    n = internDn(canonical(dn) ?? dn.trim().toLowerCase());
    memo.set(dn, n);
  }
  return n;
}

/** The shared instance of an already normalized DN. */
export function internDn(normalized: string): string {
  const shared = interned.get(normalized);
  if (shared !== undefined) return shared;
  interned.set(normalized, normalized);
  return normalized;
}

/** The RDNs of a normalized DN, leaf first ('' has none). */
export function rdnsOf(normalized: string): string[] {
  if (normalized === '') return [];
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < normalized.length; i++) {
    const c = normalized[i];
    if (c === '\\') i++;
    else if (c === ',') {
      out.push(normalized.slice(start, i));
      start = i + 1;
    }
  }
  out.push(normalized.slice(start));
  return out;
}

export type Scope = 'base' | 'one' | 'sub';

/** Whether an entry (its RDNs, leaf first) is inside a search of `base` (normalized) with `scope`. */
export function withinScope(entryRdns: readonly string[], base: string, scope: Scope): boolean {
  return withinRdns(entryRdns, rdnsOf(base), scope);
}

/** withinScope with the base already split (rdnsOf). */
export function withinRdns(entryRdns: readonly string[], b: readonly string[], scope: Scope): boolean {
  const extra = entryRdns.length - b.length;
  if (extra < 0) return false;
  if (scope === 'base' && extra !== 0) return false;
  if (scope === 'one' && extra !== 1) return false;
  for (let i = 0; i < b.length; i++) if (entryRdns[extra + i] !== b[i]) return false;
  return true;
}

/** Whether normalized `dn` is `base` or below it. */
export function isUnder(dn: string, base: string): boolean {
  return base === '' || dn === base || withinScope(rdnsOf(dn), base, 'sub');
}

/**
 * The fixed tail of a search_base template: the RDNs after the last one holding a `%` expansion
 * (`ou=%d,ou=Domains,dc=example,dc=org` → `ou=Domains,dc=example,dc=org`). Every DN the map's
 * searches start from lies under it.
 */
export function staticBase(template: string): string {
  const parts = splitRaw(template);
  let i = parts.length;
  while (i > 0 && !parts[i - 1]!.includes('%')) i--;
  return parts.slice(i).join(',').trim();
}

/** Splits a DN string at unescaped commas/semicolons, without decoding anything. */
function splitRaw(dn: string): string[] {
  if (dn.trim() === '') return [];
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i];
    if (c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && (c === ',' || c === ';')) {
      out.push(dn.slice(start, i));
      start = i + 1;
    }
  }
  out.push(dn.slice(start));
  return out;
}

const HEX = /^[0-9a-fA-F]{2}$/;

/**
 * DNs whose canonical form is simply their lower-case form: printable ASCII values without
 * escapes, quotes, separators other than `,`, `+` or `=` inside values, a leading `#`, or spaces
 * other than single ones between words. What servers return is nearly always such a DN.
 */
const SIMPLE_DN = /^[A-Za-z][A-Za-z0-9-]*=[\w.@:/'*!?$%&~^|-]+(?: [\w.@:/'*!?$%&~^|-]+)*(?:,[A-Za-z][A-Za-z0-9-]*=[\w.@:/'*!?$%&~^|-]+(?: [\w.@:/'*!?$%&~^|-]+)*)*$/;

/** RFC 4514 (and RFC 1779 quoting) → canonical string, or undefined when it does not parse. */
export function canonical(dn: string): string | undefined {
  if (SIMPLE_DN.test(dn)) return dn.toLowerCase();
  return parsedCanonical(dn);
}

/** canonical() without the shortcut (exported for the tests comparing both). */
export function parsedCanonical(dn: string): string | undefined {
  const rdns: string[] = [];
  let i = 0;
  const n = dn.length;
  const skipSpaces = (): void => {
    while (i < n && (dn[i] === ' ' || dn[i] === '\t' || dn[i] === '\n' || dn[i] === '\r')) i++;
  };
  skipSpaces();
  if (i >= n) return '';
  for (;;) {
    const avas: string[] = [];
    for (;;) {
      skipSpaces();
      const eq = dn.indexOf('=', i);
      if (eq < 0) return undefined;
      const type = dn.slice(i, eq).trim().toLowerCase();
      if (type === '' || /[,+;"\\\s]/.test(type)) return undefined;
      i = eq + 1;
      skipSpaces();
      let value: string;
      if (dn[i] === '#') {
        let j = i + 1;
        while (j < n && /[0-9a-fA-F]/.test(dn[j]!)) j++;
        value = dn.slice(i, j).toLowerCase();
        i = j;
        skipSpaces();
      } else if (dn[i] === '"') {
        const bytes: number[] = [];
        i++;
        for (;;) {
          if (i >= n) return undefined;
          const c = dn[i]!;
          if (c === '"') { i++; break; }
          if (c === '\\') {
            if (i + 1 >= n) return undefined;
            i += 1 + pushChar(bytes, dn, i + 1);
            continue;
          }
          i += pushChar(bytes, dn, i);
        }
        skipSpaces();
        value = Buffer.from(bytes).toString('utf8');
      } else {
        const bytes: number[] = [];
        let significant = 0;
        while (i < n) {
          const c = dn[i]!;
          if (c === ',' || c === '+' || c === ';') break;
          if (c === '\\') {
            const pair = dn.slice(i + 1, i + 3);
            if (HEX.test(pair)) {
              bytes.push(parseInt(pair, 16));
              i += 3;
            } else {
              if (i + 1 >= n) return undefined;
              i += 1 + pushChar(bytes, dn, i + 1);
            }
            significant = bytes.length;
            continue;
          }
          i += pushChar(bytes, dn, i);
          if (c !== ' ') significant = bytes.length;
        }
        value = Buffer.from(bytes.slice(0, significant)).toString('utf8');
      }
      avas.push(`${type}=${escapeValue(foldValue(value))}`);
      if (dn[i] === '+') {
        i++;
        continue;
      }
      break;
    }
    avas.sort();
    rdns.push(avas.join('+'));
    if (i >= n) break;
    if (dn[i] === ',' || dn[i] === ';') {
      i++;
      continue;
    }
    return undefined;
  }
  return rdns.join(',');
}

/** Appends the UTF-8 bytes of the character at s[i] (a whole code point); returns its length in UTF-16 units. */
function pushChar(bytes: number[], s: string, i: number): number {
  const cp = s.codePointAt(i)!;
  if (cp < 0x80) {
    bytes.push(cp);
    return 1;
  }
  const ch = String.fromCodePoint(cp);
  for (const b of Buffer.from(ch, 'utf8')) bytes.push(b);
  return ch.length;
}

function foldValue(v: string): string {
  return v.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
}

function escapeValue(v: string): string {
  let out = v.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`);
  if (out.startsWith('#')) out = `\\${out}`;
  return out;
}
