/** What a cache is told (options), what it tells (observer), and what the change watcher may ask of it. */
import type { AnswerKind, LookupResult } from '../contracts/result.js';
import type { Dependencies } from './dependencies.js';

export interface CacheOptions {
  /** Lifetime of a FOUND answer, seconds; 0 = do not cache FOUND answers. */
  ttlSec: number;
  /** Lifetime of a NOTFOUND answer, seconds; 0 = do not cache NOTFOUND answers. */
  negativeTtlSec: number;
  /** Entry bound (includes entries kept only for stale-if-error). 0 = cache nothing. */
  maxEntries: number;
  /** Byte bound over key + value + ENTRY_OVERHEAD_BYTES per entry. 0 = cache nothing. */
  maxBytes: number;
  /** How long past expiry an answer may still be served when LDAP fails; 0 = never. */
  staleIfErrorSec: number;
  /** Fraction of the TTL after which a hit triggers a background refresh; >= 1 disables. Default 0.8. */
  refreshAheadFraction?: number;
  /**
   * Clock for expiry decisions (ms); tests inject one. Default: the monotonic clock
   * (performance.now(), not moved by wall-clock steps), whose reading also times the lookup.
   */
  now?: () => number;
  /**
   * Record which DNs and searches each answer was built from (a LookupTrace on every inner
   * lookup), so the change watcher can invalidate only what a directory change touched.
   * The recorded dependencies count towards maxBytes. Default false.
   */
  trackDependencies?: boolean;
}

/**
 * Decides, for the change watcher, whether a cached answer may be affected by what changed.
 * `deps` is undefined when dependencies are not tracked.
 */
export type InvalidationMatcher = (deps: Dependencies | undefined, negative: boolean) => boolean;

/** What the change watcher needs of a cache: expire what a change touched, and list the DNs answers were built from. */
export interface InvalidatableCache {
  invalidate(match: InvalidationMatcher): number;
  trackedEntryDns(): Set<string>;
  /** blind_cache_ttl: while the watcher is blind, answers stay fresh at most `ms` (undefined lifts the cap). */
  capFreshness(ms: number | undefined): number;
}

/** How many recent invalidations are remembered for lookups that were running when they happened. */
export const INVALIDATION_LOG = 64;

export type CacheSource = 'cache' | 'ldap' | 'stale';

export type CacheHitKind = 'fresh' | 'stale' | 'negative';

/**
 * Observations for metrics. Per lookup exactly one of `hit` / `miss` is called, then `lookup`
 * once with the answer the caller got, where it came from and how long it took.
 */
export interface CacheObserver {
  lookup?(map: string, result: AnswerKind, source: CacheSource, seconds: number): void;
  /** fresh: cached FOUND; negative: cached NOTFOUND; stale: expired answer served on TEMP/TIMEOUT. */
  hit?(map: string, kind: CacheHitKind): void;
  /** The answer came from the inner map (including coalesced waiters and failed lookups). */
  miss?(map: string): void;
  /** A refresh-ahead lookup finished (for debugging/metrics; optional). */
  refresh?(map: string, result: LookupResult): void;
}

/**
 * Per-entry cost beyond key and value bytes: the entry object, the key and value string
 * headers, the Map node and lru-cache's slots. Measured at about 200 bytes on Node 20 (heap
 * after GC, 100k entries); rounded up so `maxBytes` bounds the real heap use rather than
 * underestimating it. lru-cache also preallocates about 40 bytes per possible entry, so the
 * entry bound passed to it is capped at maxBytes / ENTRY_OVERHEAD_BYTES (more could never fit).
 */
export const ENTRY_OVERHEAD_BYTES = 256;

export const DEFAULT_REFRESH_AHEAD = 0.8;

/** Daemon/map settings (seconds, counts, bytes) → CachedMap options. */
export function cacheOptionsFrom(settings: {
  cacheTtl: number;
  cacheNegativeTtl: number;
  cacheMaxEntries: number;
  cacheMaxBytes: number;
  staleIfError: number;
  refreshAhead?: number;
}): CacheOptions {
  return {
    ttlSec: settings.cacheTtl,
    negativeTtlSec: settings.cacheNegativeTtl,
    maxEntries: settings.cacheMaxEntries,
    maxBytes: settings.cacheMaxBytes,
    staleIfErrorSec: settings.staleIfError,
    refreshAheadFraction: settings.refreshAhead ?? DEFAULT_REFRESH_AHEAD,
  };
}
