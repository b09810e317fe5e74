import {
  AndFilter,
  EqualityFilter,
  type Entry,
  type Filter,
  NotFilter,
  OrFilter,
  PresenceFilter,
  SubstringFilter,
} from 'ldapts';
import { parseFilter } from '../ldap/filter.js';
import { rdnsOf } from '../ldap/dn.js';

/**
 * "Could this changed entry now be in the result of that search?" — decided on our side from
 * the entry's attributes, so one changed entry costs no extra search per cached answer.
 *
 * The answer errs towards yes. Three-valued evaluation (true / false / unknown) over the filter:
 * equality and substring assertions are compared after a loose normalization of both sides
 * (NFKC, lower case, all white space and hyphens removed). That normalization keeps every match
 * that caseIgnoreMatch, caseExactMatch, IA5 matching, numericStringMatch, telephoneNumberMatch
 * and distinguishedNameMatch would find, so "false" is only said when no common matching rule
 * could match. Ordering (>=, <=), approximate and extensible assertions are "unknown", as is an
 * objectClass equality the entry does not list (the server also matches superclasses). A filter
 * that does not parse is "unknown". An attribute absent from the entry makes its assertions false
 * (common aliases such as commonName/cn are resolved).
 */

const enum Tri { False = 0, True = 1, Unknown = 2 }

const ALIASES: Record<string, string> = {
  commonname: 'cn',
  surname: 'sn',
  rfc822mailbox: 'mail',
  userid: 'uid',
  domaincomponent: 'dc',
  organizationname: 'o',
  organizationalunitname: 'ou',
  localityname: 'l',
  stateorprovincename: 'st',
  countryname: 'c',
  gn: 'givenname',
  streetaddress: 'street',
};

function attrKey(description: string): string {
  const base = description.split(';', 1)[0]!.toLowerCase();
  return ALIASES[base] ?? base;
}

export function loose(s: string): string {
  return s.normalize('NFKC').toLowerCase().replace(/[\s-]+/g, '');
}

/** A changed entry prepared for matching: attribute (alias-resolved, options dropped) → loose values. */
export class ChangedEntry {
  readonly attrs = new Map<string, string[]>();

  constructor(readonly dn: string, entry: Entry) {
    for (const [name, raw] of Object.entries(entry)) {
      if (name === 'dn') continue;
      const list = Array.isArray(raw) ? raw : [raw];
      const key = attrKey(name);
      let values = this.attrs.get(key);
      if (!values) this.attrs.set(key, (values = []));
      for (const v of list) values.push(loose(Buffer.isBuffer(v) ? v.toString('utf8') : String(v)));
    }
  }
}

/** Most parsed filters (and split bases) one FilterCache holds; it starts over when full. */
const FILTER_CACHE_MAX = 1024;

/**
 * Parsed filters and split search bases, per invalidation pass. Bases and nested searches'
 * filters repeat across answers; a map's query filter is different for every key, so the cache
 * is bounded: one pass over 100 000 answers must not keep 100 000 parsed filters.
 */
export class FilterCache {
  private parsed = new Map<string, Filter | null>();
  private split = new Map<string, string[]>();

  get(filter: string): Filter | null {
    let f = this.parsed.get(filter);
    if (f === undefined) {
      try {
        f = parseFilter(filter);
      } catch {
        f = null;
      }
      if (this.parsed.size >= FILTER_CACHE_MAX) this.parsed = new Map();
      this.parsed.set(filter, f);
    }
    return f;
  }

  /** rdnsOf(base), for a normalized search base. */
  rdns(base: string): string[] {
    let r = this.split.get(base);
    if (r === undefined) {
      r = rdnsOf(base);
      if (this.split.size >= FILTER_CACHE_MAX) this.split = new Map();
      this.split.set(base, r);
    }
    return r;
  }
}

/** True unless the entry certainly does not match the filter. */
export function mayMatch(filter: Filter | null, entry: ChangedEntry): boolean {
  return filter === null || evaluate(filter, entry) !== Tri.False;
}

function evaluate(f: Filter, e: ChangedEntry): Tri {
  if (f instanceof AndFilter) {
    let r = Tri.True;
    for (const c of f.filters) {
      const v = evaluate(c, e);
      if (v === Tri.False) return Tri.False;
      if (v === Tri.Unknown) r = Tri.Unknown;
    }
    return r;
  }
  if (f instanceof OrFilter) {
    let r = Tri.False;
    for (const c of f.filters) {
      const v = evaluate(c, e);
      if (v === Tri.True) return Tri.True;
      if (v === Tri.Unknown) r = Tri.Unknown;
    }
    return r;
  }
  if (f instanceof NotFilter) {
    const v = evaluate(f.filter, e);
    return v === Tri.Unknown ? Tri.Unknown : v === Tri.True ? Tri.False : Tri.True;
  }
  if (f instanceof PresenceFilter) {
    const key = attrKey(f.attribute);
    if (key === 'objectclass') return Tri.True;
    return e.attrs.has(key) ? Tri.True : Tri.False;
  }
  if (f instanceof EqualityFilter) {
    const key = attrKey(f.attribute);
    const want = loose(Buffer.isBuffer(f.value) ? f.value.toString('utf8') : String(f.value));
    const values = e.attrs.get(key);
    if (values?.includes(want)) return Tri.True;
    return key === 'objectclass' ? Tri.Unknown : Tri.False;
  }
  if (f instanceof SubstringFilter) {
    const values = e.attrs.get(attrKey(f.attribute));
    if (!values) return Tri.False;
    const initial = loose(f.initial ?? '');
    const final = loose(f.final ?? '');
    const any = (f.any ?? []).map(loose);
    return values.some((v) => substringMatch(v, initial, any, final)) ? Tri.True : Tri.False;
  }
  return Tri.Unknown;
}

function substringMatch(v: string, initial: string, any: string[], final: string): boolean {
  if (!v.startsWith(initial)) return false;
  let pos = initial.length;
  for (const a of any) {
    const at = v.indexOf(a, pos);
    if (at < 0) return false;
    pos = at + a.length;
  }
  return v.length - pos >= final.length && v.endsWith(final);
}
