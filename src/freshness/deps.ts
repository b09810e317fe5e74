import type { LookupTrace } from '../lookup/ldap-map.js';
import type { SearchRequest } from '../ldap/pool.js';
import { normalizeDn } from './dn.js';

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
 */
export interface Dependencies {
  readonly entries: readonly string[];
  readonly bases: readonly string[];
  readonly searches: readonly DependentSearch[];
}

export interface DependentSearch {
  readonly base: string;
  readonly scope: 'one' | 'sub';
  readonly filter: string;
}

/** Accounted bytes per string/record held in Dependencies beyond its characters. */
const ITEM_OVERHEAD_BYTES = 40;

/** A LookupTrace that records the DNs and searches of one (possibly multi-step) lookup. */
export class DependencyCollector implements LookupTrace {
  private readonly entrySet = new Set<string>();
  private readonly baseSet = new Set<string>();
  private readonly searchMap = new Map<string, DependentSearch>();

  search(_id: number, _parent: number | undefined, req: SearchRequest): void {
    if (req.scope === 'base') {
      this.baseSet.add(normalizeDn(req.base));
      return;
    }
    const id = `${req.scope}\u0000${req.base}\u0000${req.filter}`;
    if (!this.searchMap.has(id)) this.searchMap.set(id, { base: normalizeDn(req.base), scope: req.scope, filter: req.filter });
  }

  entry(_id: number, dn: string): void {
    this.entrySet.add(normalizeDn(dn));
  }

  result(): { deps: Dependencies; bytes: number } {
    const entries = [...this.entrySet];
    // A base search that found its entry is already covered by the entry itself.
    const bases = [...this.baseSet].filter((b) => !this.entrySet.has(b));
    const searches = [...this.searchMap.values()];
    let bytes = 0;
    for (const s of entries) bytes += s.length + ITEM_OVERHEAD_BYTES;
    for (const s of bases) bytes += s.length + ITEM_OVERHEAD_BYTES;
    for (const s of searches) bytes += s.base.length + s.filter.length + 2 * ITEM_OVERHEAD_BYTES;
    return { deps: { entries, bases, searches }, bytes };
  }
}

const TRACE_METHODS = ['key', 'domain', 'suppressed', 'search', 'searchDone', 'entry', 'value', 'limit', 'loop'] as const;

/** One trace that forwards every call to both (the cache's collector and a caller's own trace). */
export function teeTrace(a: LookupTrace, b: LookupTrace): LookupTrace {
  const out: Record<string, (...args: unknown[]) => void> = {};
  for (const m of TRACE_METHODS) {
    const fa = a[m] as ((...args: unknown[]) => void) | undefined;
    const fb = b[m] as ((...args: unknown[]) => void) | undefined;
    if (!fa && !fb) continue;
    out[m] = (...args: unknown[]) => {
      fa?.apply(a, args);
      fb?.apply(b, args);
    };
  }
  return out as LookupTrace;
}
