import { LRUCache } from 'lru-cache';
import { DependencyCollector, teeTrace, type Dependencies } from '../freshness/deps.js';
import type { LookupTrace } from '../lookup/ldap-map.js';
import { found, NOTFOUND, type LookupMap, type LookupResult } from '../lookup/result.js';
import { encodeNetstringWithPrefix } from '../protocol/netstring.js';
import { encodeSocketmapReply, SOCKETMAP_MAX_REPLY } from '../protocol/socketmap.js';

/**
 * Per-map answer cache in front of any LookupMap (normally the LDAP map, possibly wrapped in the
 * address fallback). What it adds, and why it is safe for mail:
 *
 * - FOUND answers live `ttlSec`, NOTFOUND answers `negativeTtlSec`; a TTL of 0 disables caching
 *   of that kind. TEMP/TIMEOUT/PERM are never stored as answers: a deferral must not outlive
 *   the trouble that caused it.
 * - Coalescing: concurrent lookups of one key share one inner lookup (also when nothing is
 *   cached, so a burst for one key is one LDAP expansion).
 * - Stale-if-error: an expired answer is kept up to `staleIfErrorSec` past its expiry and served
 *   (source 'stale') only when a fresh lookup ends in TEMP or TIMEOUT. The retained entries
 *   count towards the byte bound like any other.
 * - Refresh-ahead: a hit on an entry older than `refreshAheadFraction` of its TTL starts one
 *   background refresh; the caller gets the cached answer at once.
 * - Memory: a plain LRU bounded by entries and by bytes (key + value + a fixed per-entry
 *   overhead). Expiry uses our own timestamps, never lru-cache's TTL/allowStale machinery, so
 *   when a stale answer is served is decided in one place below.
 *
 * Keys are the raw request bytes (`latin1` string of the Buffer: lossless, one byte per char),
 * so two spellings of a key that the LDAP map folds together are cached separately, exactly as
 * Postfix would ask for them.
 *
 * A FOUND answer is stored as its finished socketmap reply (`LEN:OK value,` as a latin1 string),
 * so the socketmap server answers a hit with `answerNow()`: synchronously, without a Promise,
 * a timer or any encoding, by writing the stored string (see src/server/handlers.ts).
 */

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

/** How many recent invalidations are remembered for lookups that were running when they happened. */
const INVALIDATION_LOG = 64;

export type CacheSource = 'cache' | 'ldap' | 'stale';

/** CachedMap.peek(): the cache's view of one key, for `explain`. */
export interface CachePeek {
  /** False when this map caches nothing (both TTLs 0, or no room). */
  enabled: boolean;
  /** fresh: a lookup now is answered from here; stale: expired, served only on TEMP/TIMEOUT. */
  state: 'fresh' | 'stale' | 'absent';
  result?: LookupResult;
  ageMs?: number;
  /** Time to expiry; negative once expired. */
  expiresInMs?: number;
  /** stale: how much longer it may be served while LDAP fails. */
  staleForMs?: number;
  /** A lookup of this key is running now; a new request would share its answer. */
  inFlight: boolean;
  /** fresh: a hit now would also start a background refresh. */
  refreshAhead?: boolean;
}

export type CacheHitKind = 'fresh' | 'stale' | 'negative';

/** What the observers need of an answer: its kind (a LookupResult or a CachedAnswer). */
export interface AnswerKind {
  readonly kind: LookupResult['kind'];
}

/** A fresh cached answer, ready to send (CachedMap.answerNow()). */
export interface CachedAnswer extends AnswerKind {
  readonly kind: 'found' | 'notfound';
  /**
   * The complete socketmap reply frame as a latin1 string (one char per byte): write it as is
   * with `socket.write(reply, 'latin1')`. NOTFOUND for an empty found value; TEMP when the value
   * is too large for socketmap (then `oversize` is set).
   */
  readonly reply: string;
  /** The socketmap payload size a found value would have needed, when over SOCKETMAP_MAX_REPLY. */
  readonly oversize: number | undefined;
  /** The answer as a LookupResult (a found value is copied into a new Buffer per call). */
  result(): LookupResult;
}

/** Maps that can answer some keys synchronously: CachedMap, and DeadlineMap over one. */
export interface AnswersNow {
  /**
   * A fresh cached answer for the key `key.subarray(start)` (the exact request bytes; `start`
   * spares the caller a subarray), counted as a hit like a lookup() that finds it (observers,
   * refresh-ahead); undefined when lookup() has to decide (absent, expired, cache disabled),
   * in which case nothing was counted.
   */
  answerNow(key: Buffer, start?: number): CachedAnswer | undefined;
}

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

const DEFAULT_REFRESH_AHEAD = 0.8;

/** Passed to every lru.get(): otherwise lru-cache allocates an empty options object per call. */
const GET_OPTIONS: LRUCache.GetOptions<string, Entry, unknown> = {};

/** Milliseconds (fractional) on the monotonic clock: not moved by wall-clock steps. */
function monotonicMs(): number {
  return performance.now();
}

/** The socketmap NOTFOUND reply, shared by every negative entry. */
const NOTFOUND_REPLY = encodeSocketmapReply(NOTFOUND).frame.toString('latin1');
const OK_PREFIX = 'OK ';

class Entry implements CachedAnswer {
  /** A refresh-ahead was already started for this entry (one per entry, success or not). */
  refreshStarted = false;

  constructor(
    /**
     * A FOUND value as its socketmap frame `LEN:OK value,` in a latin1 string (lossless, one
     * byte per char, compact on V8's heap and never a view into some larger buffer: a Buffer per
     * entry would cost ~350 bytes more of RSS), or undefined for NOTFOUND.
     */
    readonly frame: string | undefined,
    /** What socketmap sends: `frame`, or NOTFOUND_REPLY, or the TEMP sent instead of an oversize value. */
    readonly reply: string,
    readonly storedAt: number,
    public expiresAt: number,
    /** Last moment the entry may be served on TEMP/TIMEOUT; after it the entry is dropped. */
    readonly staleUntil: number,
    readonly oversize: number | undefined,
    /** What the answer was built from (trackDependencies only). */
    readonly deps: Dependencies | undefined,
  ) {}

  get kind(): 'found' | 'notfound' {
    return this.frame === undefined ? 'notfound' : 'found';
  }

  /** A cached answer as a new result (each caller gets its own Buffer). */
  result(): LookupResult {
    const f = this.frame;
    if (f === undefined) return NOTFOUND;
    return found(Buffer.from(f.slice(f.indexOf(':') + 1 + OK_PREFIX.length, f.length - 1), 'latin1'));
  }
}

/** The entry strings for a FOUND value: its frame, and what socketmap sends for it. */
function foundStrings(value: Buffer): { frame: string; reply: string; oversize?: number } {
  // Through a Buffer, so the string is one flat latin1 string from the start.
  const frame = encodeNetstringWithPrefix(OK_PREFIX, value).toString('latin1');
  if (value.length === 0) return { frame, reply: NOTFOUND_REPLY };
  if (OK_PREFIX.length + value.length <= SOCKETMAP_MAX_REPLY) return { frame, reply: frame };
  const tooLarge = encodeSocketmapReply(found(value));
  return { frame, reply: tooLarge.frame.toString('latin1'), oversize: tooLarge.oversize };
}

export class CachedMap implements LookupMap, AnswersNow {
  private readonly lru: LRUCache<string, Entry> | undefined;
  private readonly inflight = new Map<string, Promise<LookupResult>>();
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly staleMs: number;
  private readonly refreshFraction: number;
  private readonly now: () => number;
  /** `now` is monotonicMs: one clock reading serves both expiry and the lookup's duration. */
  private readonly ownClock: boolean;
  private readonly track: boolean;
  /** Bumped by every invalidate(); a fetch compares it with the value it started under. */
  private epoch = 0;
  private readonly invalidations: { epoch: number; match: InvalidationMatcher }[] = [];
  /** While the change watcher is blind: how long (ms) an answer stays fresh at most (blind_cache_ttl). */
  private freshCapMs: number | undefined;

  constructor(
    private readonly inner: LookupMap,
    opts: CacheOptions,
    private readonly observer: CacheObserver = {},
  ) {
    this.ttlMs = Math.max(0, opts.ttlSec) * 1000;
    this.negativeTtlMs = Math.max(0, opts.negativeTtlSec) * 1000;
    this.staleMs = Math.max(0, opts.staleIfErrorSec) * 1000;
    this.refreshFraction = opts.refreshAheadFraction ?? DEFAULT_REFRESH_AHEAD;
    this.now = opts.now ?? monotonicMs;
    this.ownClock = opts.now === undefined;
    this.track = opts.trackDependencies ?? false;
    const enabled = (this.ttlMs > 0 || this.negativeTtlMs > 0) && opts.maxEntries >= 1 && opts.maxBytes >= 1;
    this.lru = enabled
      ? new LRUCache<string, Entry>({
          max: Math.min(Math.floor(opts.maxEntries), Math.max(1, Math.floor(opts.maxBytes / ENTRY_OVERHEAD_BYTES))),
          maxSize: Math.floor(opts.maxBytes),
        })
      : undefined;
  }

  get name(): string {
    return this.inner.name;
  }

  /** Entries held, including expired ones kept for stale-if-error. */
  get size(): number {
    return this.lru?.size ?? 0;
  }

  /** Accounted bytes of the entries held (always <= maxBytes). */
  get bytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }

  answerNow(key: Buffer, start = 0): CachedAnswer | undefined {
    if (!this.lru) return undefined;
    const started = monotonicMs();
    const k = key.toString('latin1', start);
    const entry = this.lru.get(k, GET_OPTIONS);
    if (entry === undefined) return undefined;
    const now = this.ownClock ? started : this.now();
    // Expired (servable stale or to be dropped): lookup() decides.
    if (now >= entry.expiresAt) return undefined;
    this.hit(k, key, start, entry, now, started);
    return entry;
  }

  async lookup(key: Buffer, trace?: LookupTrace): Promise<LookupResult> {
    const started = monotonicMs();
    const k = key.toString('latin1');
    const now = this.ownClock ? started : this.now();
    const entry = this.current(k, now);
    if (entry && now < entry.expiresAt) {
      this.hit(k, key, 0, entry, now, started);
      return entry.result();
    }

    let result: LookupResult;
    try {
      result = await this.fetch(k, key, trace);
    } catch (err) {
      // The inner map threw (a bug, not LDAP trouble): propagate so the server logs it, but
      // still count the request.
      this.observer.miss?.(this.name);
      this.report({ kind: 'temp' }, 'ldap', started);
      throw err;
    }
    if (result.kind === 'temp' || result.kind === 'timeout') {
      // Re-read: a flush while we waited must not be undone by serving what it removed.
      const stale = this.current(k, this.now());
      if (stale) {
        this.observer.hit?.(this.name, 'stale');
        this.report(stale, 'stale', started);
        return stale.result();
      }
    }
    this.observer.miss?.(this.name);
    this.report(result, 'ldap', started);
    return result;
  }

  /**
   * Drops one key (the exact request bytes) or everything. Lookups already running finish,
   * but their answers are not stored. Returns how many entries were removed.
   */
  flush(key?: Buffer): number {
    if (key === undefined) {
      const n = this.size;
      this.lru?.clear();
      this.inflight.clear();
      return n;
    }
    const k = key.toString('latin1');
    this.inflight.delete(k);
    return this.lru?.delete(k) ? 1 : 0;
  }

  /**
   * What a lookup of `key` (the exact request bytes) would find right now, for `explain`:
   * changes nothing (no LRU reordering, no expiry, no refresh, no observer calls).
   */
  peek(key: Buffer): CachePeek {
    const k = key.toString('latin1');
    const inFlight = this.inflight.has(k);
    const e = this.lru?.peek(k);
    const now = this.now();
    if (!e || now > e.staleUntil || (now >= e.expiresAt && this.staleMs === 0)) {
      return { enabled: this.lru !== undefined, state: 'absent', inFlight };
    }
    const peeked: CachePeek = {
      enabled: true,
      state: now < e.expiresAt ? 'fresh' : 'stale',
      result: e.result(),
      ageMs: now - e.storedAt,
      expiresInMs: e.expiresAt - now,
      inFlight,
    };
    if (peeked.state === 'stale') peeked.staleForMs = e.staleUntil - now;
    else peeked.refreshAhead = !e.refreshStarted && this.refreshFraction < 1 && now >= e.storedAt + (e.expiresAt - e.storedAt) * this.refreshFraction;
    return peeked;
  }

  /** Removes entries past their stale window (optional housekeeping; the LRU bound holds anyway). */
  prune(): number {
    if (!this.lru) return 0;
    const now = this.now();
    const dead: string[] = [];
    for (const [k, e] of this.lru.entries()) if (now > e.staleUntil) dead.push(k);
    let n = 0;
    for (const k of dead) if (this.lru.delete(k)) n++;
    return n;
  }

  async close(): Promise<void> {
    this.flush();
    await this.inner.close?.();
  }

  /** A fresh hit: counted, and a refresh-ahead started when the entry is old enough. */
  private hit(k: string, key: Buffer, start: number, entry: Entry, now: number, started: number): void {
    this.observer.hit?.(this.name, entry.frame !== undefined ? 'fresh' : 'negative');
    if (!entry.refreshStarted && this.refreshFraction < 1) {
      const ttl = entry.expiresAt - entry.storedAt;
      if (now >= entry.storedAt + ttl * this.refreshFraction) {
        entry.refreshStarted = true;
        // Its own copy: the request's buffer is not kept for as long as the refresh runs.
        if (!this.inflight.has(k)) this.refresh(k, Buffer.from(key.subarray(start)));
      }
    }
    this.report(entry, 'cache', started);
  }

  /** The entry for k if it may still be served fresh or stale; drops it when it may not. */
  private current(k: string, now: number): Entry | undefined {
    const e = this.lru?.get(k, GET_OPTIONS);
    if (!e) return undefined;
    if (now > e.staleUntil || (now >= e.expiresAt && this.staleMs === 0)) {
      this.lru!.delete(k);
      return undefined;
    }
    return e;
  }

  /** One inner lookup per key at a time; the answer is stored unless the key was flushed meanwhile. */
  private fetch(k: string, key: Buffer, trace?: LookupTrace): Promise<LookupResult> {
    const running = this.inflight.get(k);
    if (running) return running;
    const startEpoch = this.epoch;
    const collector = this.track && this.lru ? new DependencyCollector() : undefined;
    const innerTrace = collector && trace ? teeTrace(collector, trace) : (collector ?? trace);
    const p: Promise<LookupResult> = this.inner.lookup(key, innerTrace).then(
      (result) => {
        if (this.inflight.get(k) === p) {
          this.inflight.delete(k);
          this.store(k, result, collector?.result(), startEpoch);
        }
        return result;
      },
      (err: unknown) => {
        if (this.inflight.get(k) === p) this.inflight.delete(k);
        throw err;
      },
    );
    this.inflight.set(k, p);
    return p;
  }

  private refresh(k: string, key: Buffer): void {
    this.fetch(k, key).then(
      (result) => this.observer.refresh?.(this.name, result),
      () => { /* nobody waits for a background refresh; the next real miss reports errors */ },
    );
  }

  private store(k: string, result: LookupResult, tracked?: { deps: Dependencies; bytes: number }, startEpoch = this.epoch): void {
    if (!this.lru) return;
    let ttl: number;
    switch (result.kind) {
      case 'found':
        ttl = this.ttlMs;
        break;
      case 'notfound':
        ttl = this.negativeTtlMs;
        break;
      default:
        // Errors are never answers; keep whatever good answer there was for stale-if-error.
        return;
    }
    if (ttl <= 0) {
      // LDAP just gave an answer we may not keep: an older, different answer must not survive
      // to be served stale later.
      this.lru.delete(k);
      return;
    }
    // Stored as strings, not the value Buffer itself: that may be a view into a much larger
    // buffer (a socket read, Node's allocation pool) that must not be kept alive.
    const { frame, reply, oversize } = result.kind === 'found' ? foundStrings(result.value) : { frame: undefined, reply: NOTFOUND_REPLY, oversize: undefined };
    const now = this.now();
    // A change seen while this lookup ran may have reached LDAP before the lookup read it: such
    // an answer is kept only as an expired one (what stale-if-error may serve), never as fresh.
    const outdated = startEpoch !== this.epoch && this.invalidatedSince(startEpoch, tracked?.deps, frame === undefined);
    // Accounted: the key, the strings stored (not the shared NOTFOUND one), overhead, dependencies.
    const stored = (frame?.length ?? 0) + (reply !== frame && reply !== NOTFOUND_REPLY ? reply.length : 0);
    const size = k.length + stored + ENTRY_OVERHEAD_BYTES + (tracked?.bytes ?? 0);
    const fresh = this.freshCapMs === undefined ? ttl : Math.min(ttl, this.freshCapMs);
    this.lru.set(k, new Entry(frame, reply, now, outdated ? now : now + fresh, now + ttl + this.staleMs, oversize, tracked?.deps), { size });
  }

  /**
   * Expires every fresh answer `match` selects (the change watcher's invalidation). An expired
   * answer is what a TTL expiry leaves behind: the next lookup asks LDAP, and only if LDAP fails
   * then may stale-if-error still serve it. Lookups running now are checked with `match` when
   * they finish. Returns how many fresh answers were expired.
   */
  invalidate(match: InvalidationMatcher): number {
    this.epoch++;
    this.invalidations.push({ epoch: this.epoch, match });
    if (this.invalidations.length > INVALIDATION_LOG) this.invalidations.shift();
    if (!this.lru) return 0;
    const now = this.now();
    let n = 0;
    for (const e of this.lru.values()) {
      if (now >= e.expiresAt) continue;
      if (match(e.deps, e.frame === undefined)) {
        e.expiresAt = now;
        n++;
      }
    }
    return n;
  }

  /**
   * Caps how long answers stay fresh (undefined lifts the cap for answers stored from now on):
   * while the change watcher cannot poll, changes go unseen, so answers fall back to a short TTL.
   * Held answers older than the cap expire now (stale-if-error may still serve them). Returns
   * how many expired now.
   */
  capFreshness(ms: number | undefined): number {
    this.freshCapMs = ms;
    if (ms === undefined || !this.lru) return 0;
    const now = this.now();
    let n = 0;
    for (const e of this.lru.values()) {
      if (now >= e.expiresAt || e.expiresAt <= e.storedAt + ms) continue;
      e.expiresAt = Math.max(e.storedAt + ms, now);
      if (e.expiresAt === now) n++;
    }
    return n;
  }

  /** Every normalized entry DN the held answers (fresh or stale) were built from (trackDependencies). */
  trackedEntryDns(): Set<string> {
    const out = new Set<string>();
    if (!this.lru) return out;
    for (const e of this.lru.values()) if (e.deps) for (const dn of e.deps.entries) out.add(dn);
    return out;
  }

  /** Whether an invalidation after `startEpoch` selects an answer with these dependencies. */
  private invalidatedSince(startEpoch: number, deps: Dependencies | undefined, negative: boolean): boolean {
    const oldest = this.invalidations[0]?.epoch ?? this.epoch + 1;
    // Older invalidations were forgotten: assume one of them applies.
    if (oldest > startEpoch + 1) return true;
    return this.invalidations.some((i) => i.epoch > startEpoch && i.match(deps, negative));
  }

  /** `started`: monotonicMs() when the lookup began. */
  private report(result: AnswerKind, source: CacheSource, started: number): void {
    if (!this.observer.lookup) return;
    this.observer.lookup(this.name, result, source, Math.max(0, monotonicMs() - started) / 1000);
  }
}

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
