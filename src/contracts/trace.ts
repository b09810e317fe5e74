/**
 * The observer of one lookup, step by step: `explain` records it as a tree, the cache records
 * which DNs an answer was built from. Maps call it only when given one, so the served path pays
 * nothing; observers see the real code path, never a re-enactment of it.
 *
 * The types here describe searches and failures in plain terms, so that this contract names
 * nothing of the LDAP client below it.
 */
import type { LookupResult } from './result.js';

export type SearchScope = 'base' | 'one' | 'sub' | 'children';

/** One search as the map asked for it. */
export interface SearchSpec {
  readonly base: string;
  readonly scope: SearchScope;
  readonly filter: string;
  readonly attributes: readonly string[];
  /** 0 never, 1 searching, 2 finding, 3 always (ldap_table `dereference`). */
  readonly deref: 0 | 1 | 2 | 3;
}

/** Why a search failed, as far as an observer needs to know. */
export interface SearchFailure {
  /** noSuchObject is the one outcome dict_ldap does not treat as an error everywhere. */
  readonly kind: 'noSuchObject' | 'timeout' | 'down' | 'error';
  readonly message: string;
  /** The LDAP result code, or libldap's negative client code. */
  readonly code?: number;
  readonly server?: string;
}

/** What happened to one attribute value during the walk. */
export type ValueAction =
  | 'appended'
  | 'skipped-empty'        // empty value, or result_format's %d / %u could not be filled from it
  | 'skipped-leaf'         // leaf attribute of a non-leaf entry
  | 'skipped-terminal'     // non-terminal attribute of a terminal entry
  | 'followed'             // special value: nested search started
  | 'skipped-url'          // LDAP URL naming none of the map's attributes: no search
  | 'skipped-repeat'       // loop_handling = expand_once: this search already ran
  | 'malformed-url';       // special value that is an LDAP URL that does not parse: the lookup fails

export type AttrClass = 'terminal' | 'leaf' | 'result' | 'special';

/** Which key of an address the fallback emulation asked (Postfix's order for fixed tables). */
export type LookupStep = 'key' | 'without extension' | 'catch-all @domain';

/** The answer a cache holds for a key: fresh, or expired but still servable on errors. */
export interface HeldAnswer {
  readonly result: LookupResult;
  readonly ageMs: number;
  /** Negative once expired. */
  readonly expiresInMs: number;
  /** Expired: how much longer it may be served while the directory fails. */
  readonly staleForMs?: number;
  /** Fresh: this hit starts (or, when only looking, would start) a background refresh. */
  readonly refreshAhead?: boolean;
}

/**
 * What the cache did with one request: answered from a fresh entry (hit), asked below (miss),
 * joined a lookup of the same key already running (shared), served an expired entry because
 * the lookup below failed (stale), or holds nothing at all (disabled).
 */
export interface CacheEvent {
  readonly outcome: 'hit' | 'miss' | 'shared' | 'stale' | 'disabled';
  readonly held?: HeldAnswer;
  /** A lookup of this key was already running when the request came. */
  readonly inFlight: boolean;
}

/**
 * A sticky flag of a walked entry (terminal, or non-leaf): not set, set by the entry's own
 * attributes, or carried over from an earlier entry of the same result (as dict_ldap does).
 */
export type FlagOrigin = 'no' | 'own' | 'carried';

export interface LookupTrace {
  /** The fallback emulation is about to ask this key (the first step is the key itself). */
  step?(step: LookupStep, key: Buffer): void;
  /** The cache's decision for this request. */
  cache?(event: CacheEvent): void;
  /** The request deadline ran out; the client is answered TIMEOUT while the lookup runs on. */
  deadline?(ms: number): void;
  key?(raw: Buffer, folded: string | undefined): void;
  domain?(domain: string | undefined, matched: boolean): void;
  suppressed?(reason: string): void;
  search?(id: number, parent: number | undefined, req: SearchSpec, depth: number, via?: { dn: string; attr: string; value: string }): void;
  searchDone?(id: number, outcome: { entries: number } | { failure: SearchFailure }, ms: number): void;
  entry?(id: number, dn: string, terminal: FlagOrigin, nonLeaf: FlagOrigin): void;
  /** `why`: for a skipped value, the reason the walk gave (result_format could not be filled, ...). */
  value?(id: number, dn: string, attr: string, cls: AttrClass, value: Buffer, action: ValueAction, child?: number, why?: string): void;
  limit?(kind: 'recursion' | 'expansion' | 'size', detail: string): void;
  loop?(path: string[]): void;
  /** The LDAP map's own answer to the key it was given (before any wrapper changes it). */
  answer?(result: LookupResult): void;
}

/**
 * Every event of LookupTrace, typed from the interface: a new event that is not listed here
 * fails to compile, so the fan-out below can never forget one.
 */
const TRACE_EVENTS: { readonly [K in keyof Required<LookupTrace>]: K } = {
  step: 'step',
  cache: 'cache',
  deadline: 'deadline',
  key: 'key',
  domain: 'domain',
  suppressed: 'suppressed',
  search: 'search',
  searchDone: 'searchDone',
  entry: 'entry',
  value: 'value',
  limit: 'limit',
  loop: 'loop',
  answer: 'answer',
};

type AnyEvent = (...args: unknown[]) => void;

/** One trace that forwards every event to each of the given traces (undefined ones are left out). */
export function fanOutTrace(...traces: (LookupTrace | undefined)[]): LookupTrace | undefined {
  const present = traces.filter((t): t is LookupTrace => t !== undefined);
  if (present.length <= 1) return present[0];
  const out: Partial<Record<keyof LookupTrace, AnyEvent>> = {};
  for (const event of Object.values(TRACE_EVENTS)) {
    const handlers = present.filter((t) => t[event] !== undefined);
    if (handlers.length === 0) continue;
    out[event] = (...args: unknown[]) => {
      for (const t of handlers) (t[event] as AnyEvent).apply(t, args);
    };
  }
  return out as LookupTrace;
}
