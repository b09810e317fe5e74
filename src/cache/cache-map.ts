// Over 400 lines on purpose: every path that reads or writes an entry (the synchronous hit,
// lookup, look-only, store, invalidate, snapshot export and import) must apply the same expiry,
// stale-if-error and invalidation-epoch rules, so they stay in one class beside those rules.
import { LRUCache } from 'lru-cache';
import type { AnswerCodec, LookupContext, LookupMap, ReadyAnswer, ServedMap } from '../contracts/map.js';
import { found, NOTFOUND, type AnswerKind, type LookupResult } from '../contracts/result.js';
import { fanOutTrace, type CacheEvent, type HeldAnswer, type LookupTrace } from '../contracts/trace.js';
import { DependencyCollector, restoreDependencies, type Dependencies } from './dependencies.js';
import type { SnapshotEntry } from './snapshot.js';
import {
  DEFAULT_REFRESH_AHEAD,
  ENTRY_OVERHEAD_BYTES,
  INVALIDATION_LOG,
  type CacheObserver,
  type CacheOptions,
  type CacheSource,
  type InvalidatableCache,
  type InvalidationMatcher,
} from './options.js';

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
 * An answer is stored in the form the codec it is given makes of it (AnswerCodec, opaque here):
 * the socketmap server's codec keeps the finished reply frame, so a hit is answered by
 * `answerNow()` synchronously, without a Promise, a timer or any encoding. The cache itself
 * knows no protocol.
 */

/** Milliseconds (fractional) on the monotonic clock: not moved by wall-clock steps. */
function monotonicMs(): number {
  return performance.now();
}

abstract class Entry<E> implements ReadyAnswer<E> {
  /** A refresh-ahead was already started for this entry (one per entry, success or not). */
  refreshStarted = false;
  abstract readonly kind: 'found' | 'notfound';

  constructor(
    /**
     * The codec's form of the answer. Never a view into some larger buffer (a socket read,
     * Node's allocation pool) that must not be kept alive: codecs make strings or copies.
     */
    readonly encoded: E,
    readonly storedAt: number,
    public expiresAt: number,
    /** Last moment the entry may be served on TEMP/TIMEOUT; after it the entry is dropped. */
    readonly staleUntil: number,
    /** What the answer was built from (trackDependencies only). */
    readonly deps: Dependencies | undefined,
  ) {}

  /** A cached answer as a new result (each caller gets its own Buffer). */
  abstract result(): LookupResult;
}

type EntryClass<E> = new (...args: ConstructorParameters<typeof Entry<E>>) => Entry<E>;

/**
 * The two entry classes of one cache. Kind and codec live on their prototypes, not in every
 * entry: a cache holds 100 000 of them, and each field would cost 8 bytes more per entry.
 */
function entryClasses<E>(codec: AnswerCodec<E>): { Found: EntryClass<E>; NotFound: EntryClass<E> } {
  class Found extends Entry<E> {
    get kind(): 'found' {
      return 'found';
    }

    result(): LookupResult {
      return found(codec.value(this.encoded));
    }
  }
  class NotFound extends Entry<E> {
    get kind(): 'notfound' {
      return 'notfound';
    }

    result(): LookupResult {
      return NOTFOUND;
    }
  }
  return { Found, NotFound };
}

export class CachedMap<E> implements ServedMap<E>, InvalidatableCache {
  private readonly lru: LRUCache<string, Entry<E>> | undefined;
  private readonly inflight = new Map<string, Promise<LookupResult>>();
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly staleMs: number;
  private readonly refreshFraction: number;
  private readonly now: () => number;
  /** `now` is monotonicMs: one clock reading serves both expiry and the lookup's duration. */
  private readonly ownClock: boolean;
  private readonly track: boolean;
  /** The form every NOTFOUND entry shares. */
  private readonly notfoundForm: E;
  private readonly entries: { Found: EntryClass<E>; NotFound: EntryClass<E> };
  /** Bumped by every invalidate(); a fetch compares it with the value it started under. */
  private epoch = 0;
  private readonly invalidations: { epoch: number; match: InvalidationMatcher }[] = [];
  /** While the change watcher is blind: how long (ms) an answer stays fresh at most (blind_cache_ttl). */
  private freshCapMs: number | undefined;
  /** Passed to every lru.get(): otherwise lru-cache allocates an empty options object per call. */
  private readonly getOptions: LRUCache.GetOptions<string, Entry<E>, unknown> = {};

  constructor(
    private readonly inner: LookupMap,
    opts: CacheOptions,
    private readonly codec: AnswerCodec<E>,
    private readonly observer: CacheObserver = {},
  ) {
    this.ttlMs = Math.max(0, opts.ttlSec) * 1000;
    this.negativeTtlMs = Math.max(0, opts.negativeTtlSec) * 1000;
    this.staleMs = Math.max(0, opts.staleIfErrorSec) * 1000;
    this.refreshFraction = opts.refreshAheadFraction ?? DEFAULT_REFRESH_AHEAD;
    this.now = opts.now ?? monotonicMs;
    this.ownClock = opts.now === undefined;
    this.track = opts.trackDependencies ?? false;
    this.notfoundForm = codec.encode(undefined);
    this.entries = entryClasses(codec);
    const enabled = (this.ttlMs > 0 || this.negativeTtlMs > 0) && opts.maxEntries >= 1 && opts.maxBytes >= 1;
    this.lru = enabled
      ? new LRUCache<string, Entry<E>>({
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

  answerNow(key: Buffer, start = 0): ReadyAnswer<E> | undefined {
    if (!this.lru) return undefined;
    const started = monotonicMs();
    const k = key.toString('latin1', start);
    const entry = this.lru.get(k, this.getOptions);
    if (entry === undefined) return undefined;
    const now = this.ownClock ? started : this.now();
    // Expired (servable stale or to be dropped): lookup() decides.
    if (now >= entry.expiresAt) return undefined;
    this.hit(k, key, start, entry, now, started);
    return entry;
  }

  async lookup(key: Buffer, ctx?: LookupContext): Promise<LookupResult> {
    if (ctx?.lookOnly) return this.look(key, ctx.trace);
    const trace = ctx?.trace;
    const started = monotonicMs();
    const k = key.toString('latin1');
    const now = this.ownClock ? started : this.now();
    const entry = this.current(k, now);
    if (entry && now < entry.expiresAt) {
      if (trace?.cache) trace.cache(this.event('hit', k, entry, now, this.refreshDue(entry, now)));
      this.hit(k, key, 0, entry, now, started);
      return entry.result();
    }
    if (trace?.cache) trace.cache(this.event(this.lru ? (this.inflight.has(k) ? 'shared' : 'miss') : 'disabled', k, entry, now));

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
      const later = this.now();
      const stale = this.current(k, later);
      if (stale) {
        if (trace?.cache) trace.cache(this.event('stale', k, stale, later));
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
   * lookup() for `explain`: the same decisions on the same entries, reported to the trace, but
   * nothing changes (no LRU reordering, no expiry, no refresh, no storing, no observer calls),
   * and the lookup below runs on its own rather than sharing one in flight.
   */
  private async look(key: Buffer, trace: LookupTrace | undefined): Promise<LookupResult> {
    const k = key.toString('latin1');
    const now = this.now();
    const entry = this.servable(this.lru?.peek(k), now);
    if (entry && now < entry.expiresAt) {
      trace?.cache?.(this.event('hit', k, entry, now, this.refreshDue(entry, now)));
      return entry.result();
    }
    trace?.cache?.(this.event(this.lru ? 'miss' : 'disabled', k, entry, now));
    const result = await this.inner.lookup(key, { trace, lookOnly: true });
    if (result.kind === 'temp' || result.kind === 'timeout') {
      const later = this.now();
      const stale = this.servable(this.lru?.peek(k), later);
      if (stale) {
        trace?.cache?.(this.event('stale', k, stale, later));
        return stale.result();
      }
    }
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

  /** What the trace is told about this request and the entry held for it. */
  private event(outcome: CacheEvent['outcome'], k: string, entry: Entry<E> | undefined, now: number, refreshAhead?: boolean): CacheEvent {
    const inFlight = this.inflight.has(k);
    if (!entry) return { outcome, inFlight };
    const held: { -readonly [P in keyof HeldAnswer]: HeldAnswer[P] } = {
      result: entry.result(),
      ageMs: now - entry.storedAt,
      expiresInMs: entry.expiresAt - now,
    };
    if (now >= entry.expiresAt) held.staleForMs = entry.staleUntil - now;
    else held.refreshAhead = refreshAhead ?? false;
    return { outcome, held, inFlight };
  }

  /** A fresh entry old enough that a hit starts a background refresh (once per entry). */
  private refreshDue(entry: Entry<E>, now: number): boolean {
    if (entry.refreshStarted || this.refreshFraction >= 1) return false;
    return now >= entry.storedAt + (entry.expiresAt - entry.storedAt) * this.refreshFraction;
  }

  /** A fresh hit: counted, and a refresh-ahead started when the entry is old enough. */
  private hit(k: string, key: Buffer, start: number, entry: Entry<E>, now: number, started: number): void {
    this.observer.hit?.(this.name, entry.kind === 'found' ? 'fresh' : 'negative');
    if (this.refreshDue(entry, now)) {
      entry.refreshStarted = true;
      // Its own copy: the request's buffer is not kept for as long as the refresh runs.
      if (!this.inflight.has(k)) this.refresh(k, Buffer.from(key.subarray(start)));
    }
    this.report(entry, 'cache', started);
  }

  /** The entry if it may still be served fresh or stale at `now`. */
  private servable(e: Entry<E> | undefined, now: number): Entry<E> | undefined {
    if (!e) return undefined;
    if (now > e.staleUntil || (now >= e.expiresAt && this.staleMs === 0)) return undefined;
    return e;
  }

  /** The entry for k if it may still be served fresh or stale; drops it when it may not. */
  private current(k: string, now: number): Entry<E> | undefined {
    const e = this.lru?.get(k, this.getOptions);
    if (!e) return undefined;
    if (this.servable(e, now)) return e;
    this.lru!.delete(k);
    return undefined;
  }

  /** One inner lookup per key at a time; the answer is stored unless the key was flushed meanwhile. */
  private fetch(k: string, key: Buffer, trace?: LookupTrace): Promise<LookupResult> {
    const running = this.inflight.get(k);
    if (running) return running;
    const startEpoch = this.epoch;
    const collector = this.track && this.lru ? new DependencyCollector() : undefined;
    const innerTrace = fanOutTrace(collector, trace);
    const p: Promise<LookupResult> = this.inner.lookup(key, innerTrace ? { trace: innerTrace } : undefined).then(
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
    const isFound = result.kind === 'found';
    const encoded = isFound ? this.codec.encode(result.value) : this.notfoundForm;
    const now = this.now();
    // A change seen while this lookup ran may have reached LDAP before the lookup read it: such
    // an answer is kept only as an expired one (what stale-if-error may serve), never as fresh.
    const outdated = startEpoch !== this.epoch && this.invalidatedSince(startEpoch, tracked?.deps, !isFound);
    // Accounted: the key, the form stored (not the shared NOTFOUND one), overhead, dependencies.
    const size = k.length + (isFound ? this.codec.size(encoded) : 0) + ENTRY_OVERHEAD_BYTES + (tracked?.bytes ?? 0);
    const entry = new (isFound ? this.entries.Found : this.entries.NotFound)(encoded, now, outdated ? now : now + (this.freshCapMs === undefined ? ttl : Math.min(ttl, this.freshCapMs)), now + ttl + this.staleMs, tracked?.deps);
    this.lru.set(k, entry, { size });
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
      if (match(e.deps, e.kind === 'notfound')) {
        e.expiresAt = now;
        n++;
      }
    }
    return n;
  }

  /**
   * The answers that may still be served (fresh, or expired within their stale window), least
   * recently used first, with their times as remaining times from now: what the cache snapshot
   * keeps. Values come back from the codec's form (codec.value); lookups in flight are not kept.
   */
  exportEntries(): SnapshotEntry[] {
    const out: SnapshotEntry[] = [];
    for (const chunk of this.exportChunks(Infinity)) for (const e of chunk) out.push(e);
    return out;
  }

  /**
   * The servable answers, least recently used first, `size` at a time: a writer may let the
   * event loop run between two chunks. The keys are taken at the start; an answer gone or no
   * longer servable by the time its chunk is made is left out, and each chunk's times are
   * counted from when it is made (so they only ever understate what remains).
   */
  *exportChunks(size: number): Generator<SnapshotEntry[]> {
    if (!this.lru) return;
    const keys = [...this.lru.rkeys()];
    for (let i = 0; i < keys.length; i += size) {
      const now = this.now();
      const out: SnapshotEntry[] = [];
      for (const k of keys.slice(i, i + size)) {
        const e = this.servable(this.lru.peek(k), now);
        if (!e) continue;
        const s: SnapshotEntry = {
          key: Buffer.from(k, 'latin1'),
          kind: e.kind,
          ageMs: now - e.storedAt,
          expiresInMs: e.expiresAt - now,
          staleForMs: e.staleUntil - now,
        };
        if (e.kind === 'found') s.value = this.codec.value(e.encoded);
        if (e.deps) s.deps = { entries: e.deps.entries, bases: e.deps.bases, searches: e.deps.searches };
        out.push(s);
      }
      yield out;
    }
  }

  /**
   * Stores answers read from a cache snapshot, `downMs` after they were exported (the time the
   * daemon was down: every remaining time is shortened by it). This cache's settings still rule:
   * a kind no longer cached is skipped, no answer stays fresh longer than the TTL now in force,
   * and the stale window is the one now in force (but never longer than the snapshot allowed).
   * An entry already held (a lookup answered since) is newer and kept. Entries come least
   * recently used first, so the LRU order survives. Returns how many were stored.
   */
  importEntries(entries: Iterable<SnapshotEntry>, downMs = 0): number {
    if (!this.lru) return 0;
    const now = this.now();
    const down = Math.max(0, downMs);
    let n = 0;
    for (const s of entries) {
      const isFound = s.kind === 'found';
      const ttl = isFound ? this.ttlMs : this.negativeTtlMs;
      if (ttl <= 0 || (isFound && s.value === undefined)) continue;
      // While the change watcher is blind (capFreshness), restored answers get the same cap.
      const expiresIn = Math.min(s.expiresInMs - down, this.freshCapMs === undefined ? ttl : Math.min(ttl, this.freshCapMs));
      const staleFor = Math.min(s.staleForMs - down, Math.max(0, expiresIn) + this.staleMs);
      if (staleFor <= 0 || (expiresIn <= 0 && this.staleMs === 0)) continue;
      const k = s.key.toString('latin1');
      if (this.lru.has(k)) continue;
      const encoded = isFound ? this.codec.encode(s.value) : this.notfoundForm;
      const tracked = this.track && s.deps ? restoreDependencies(s.deps) : undefined;
      const size = k.length + (isFound ? this.codec.size(encoded) : 0) + ENTRY_OVERHEAD_BYTES + (tracked?.bytes ?? 0);
      const storedAt = now - Math.max(0, s.ageMs + down);
      const entry = new (isFound ? this.entries.Found : this.entries.NotFound)(encoded, storedAt, now + expiresIn, now + staleFor, tracked?.deps);
      this.lru.set(k, entry, { size });
      n++;
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
