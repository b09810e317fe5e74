import type { LookupTrace, SearchSpec } from '../contracts/trace.js';
import { internDn, normalizeDn } from '../ldap/dn.js';

/**
 * What one cached answer was built from, collected by watching the real walk (LookupTrace) while
 * the cache fills the entry. All DNs are normalized (normalizeDn).
 *
 * - `entries`: every entry a search returned (top-level results and every entry reached through
 *   special result attributes), whether or not it contributed a value. A change to one of them,
 *   or its deletion, may change the answer.
 * - `bases`: the DNs of base-scope searches (a special attribute naming a DN, a `base` LDAP URL):
 *   if such a DN did not exist when the answer was built, its creation changes the answer.
 * - `searches`: one-level and subtree searches (the map's own query, `sub`/`one` LDAP URLs): an
 *   entry added below their base, or modified into matching their filter, may join the result.
 *
 * Every cached answer holds one of these for as long as it is cached (100 000 answers are
 * normal), so they are kept small: DN strings are shared between answers (normalizeDn interns
 * them), empty lists are one shared array, and the first one/sub search — usually the only one,
 * the map's own query — is stored in the object itself rather than in an array of its own. A
 * NOTFOUND answer then costs one object plus its filter string.
 */
export interface Dependencies {
  readonly entries: readonly string[];
  readonly bases: readonly string[];
  /** Materialized on access (for tests and tools); the watcher uses forEachSearch. */
  readonly searches: readonly DependentSearch[];
  /** Calls fn for each one/sub search until it returns true; returns whether one did. */
  someSearch(fn: (base: string, scope: 'one' | 'sub', filter: string) => boolean): boolean;
}

export interface DependentSearch {
  readonly base: string;
  readonly scope: 'one' | 'sub';
  readonly filter: string;
}

const EMPTY: readonly never[] = Object.freeze([]);

class CompactDependencies implements Dependencies {
  constructor(
    readonly entries: readonly string[],
    readonly bases: readonly string[],
    /** The first one/sub search ('' base with undefined scope: none). */
    private readonly base: string,
    private readonly scope: 'one' | 'sub' | undefined,
    private readonly filter: string,
    /** The other one/sub searches. */
    private readonly more: readonly DependentSearch[],
  ) {}

  get searches(): readonly DependentSearch[] {
    if (this.scope === undefined) return EMPTY;
    return [{ base: this.base, scope: this.scope, filter: this.filter }, ...this.more];
  }

  someSearch(fn: (base: string, scope: 'one' | 'sub', filter: string) => boolean): boolean {
    if (this.scope === undefined) return false;
    if (fn(this.base, this.scope, this.filter)) return true;
    for (const s of this.more) if (fn(s.base, s.scope, s.filter)) return true;
    return false;
  }
}

/**
 * Accounted bytes (towards the cache's max bytes): the object with its fields, each array slot
 * and array, and each string's characters plus header. DN strings are shared between answers;
 * they are still counted for every answer naming them, so the bound stays an upper bound.
 */
const OBJECT_BYTES = 80;
const ARRAY_BYTES = 48;
const SLOT_BYTES = 8;
const STRING_HEADER_BYTES = 16;

/**
 * A LookupTrace that records the DNs and searches of one (possibly multi-step) lookup. It lives
 * only as long as the lookup; `result()` builds the compact record the cache keeps.
 */
export class DependencyCollector implements LookupTrace {
  private entrySet?: Set<string>;
  private baseSet?: Set<string>;
  /** One/sub searches, deduplicated by scope, normalized base and filter. */
  private searchList?: DependentSearch[];

  search(_id: number, _parent: number | undefined, req: SearchSpec): void {
    const base = normalizeDn(req.base);
    if (req.scope === 'base') {
      (this.baseSet ??= new Set()).add(base);
      return;
    }
    const list = (this.searchList ??= []);
    // A subordinate (children) search is watched as the subtree it is part of.
    const scope = req.scope === 'one' ? 'one' : 'sub';
    // Lookups make one or a few one/sub searches (the query, LDAP URLs): a scan is enough.
    for (const s of list) if (s.base === base && s.scope === scope && s.filter === req.filter) return;
    list.push({ base, scope, filter: req.filter });
  }

  entry(_id: number, dn: string): void {
    (this.entrySet ??= new Set()).add(normalizeDn(dn));
  }

  result(): { deps: Dependencies; bytes: number } {
    const entries = this.entrySet ? [...this.entrySet] : EMPTY;
    let bases: readonly string[] = EMPTY;
    if (this.baseSet) {
      // A base search that found its entry is already covered by the entry itself.
      const missing = [...this.baseSet].filter((b) => !this.entrySet?.has(b));
      if (missing.length > 0) bases = missing;
    }
    return compact(entries, bases, this.searchList ?? EMPTY);
  }
}

/**
 * Dependencies read back from a cache snapshot (already normalized, as they were recorded). DNs
 * are interned again so the restored answers share them with each other and with new ones.
 */
export function restoreDependencies(d: {
  entries: readonly string[];
  bases: readonly string[];
  searches: readonly DependentSearch[];
}): { deps: Dependencies; bytes: number } {
  const entries = d.entries.length > 0 ? d.entries.map(internDn) : EMPTY;
  const bases = d.bases.length > 0 ? d.bases.map(internDn) : EMPTY;
  const list = d.searches.map((s) => ({ base: internDn(s.base), scope: s.scope, filter: s.filter }));
  return compact(entries, bases, list);
}

/** The compact record and its accounted bytes. */
function compact(entries: readonly string[], bases: readonly string[], list: readonly DependentSearch[]): { deps: Dependencies; bytes: number } {
  const first = list[0];
  const more = list.length > 1 ? list.slice(1) : EMPTY;
  let bytes = OBJECT_BYTES;
  const str = (s: string): number => STRING_HEADER_BYTES + s.length;
  if (entries.length > 0) bytes += ARRAY_BYTES;
  for (const s of entries) bytes += SLOT_BYTES + str(s);
  if (bases.length > 0) bytes += ARRAY_BYTES;
  for (const s of bases) bytes += SLOT_BYTES + str(s);
  if (more.length > 0) bytes += ARRAY_BYTES;
  for (const s of list) bytes += (s === first ? 0 : SLOT_BYTES + OBJECT_BYTES / 2) + str(s.base) + str(s.filter);
  const deps = new CompactDependencies(entries, bases, first?.base ?? '', first?.scope, first?.filter ?? '', more);
  return { deps, bytes };
}
