// Over 400 lines on purpose: the poll loop, the contextCSN poll and the invalidation that
// follows any poll share each context's state; the other markers' reads and state live in
// markers/* and marker.ts.
import type { Entry } from 'ldapts';
import type { InvalidatableCache } from '../cache/options.js';
import type { SnapshotMarker } from '../cache/snapshot.js';
import { escapeFilterValue } from '../ldap/escape.js';
import { LdapFailure, sizeLimited } from '../ldap/errors.js';
import type { LdapPool } from '../ldap/pool.js';
import { log, RateLimitedLog } from '../log.js';
import type { Dependencies } from '../cache/dependencies.js';
import { isUnder, normalizeDn, rdnsOf, staticBase, withinRdns } from '../ldap/dn.js';
import { ChangedEntry, FilterCache, mayMatch } from './match.js';
import { pollAdUsn } from './markers/ad-usn.js';
import { describeContext, detectContexts, readContextCsn, type MarkerKind, type WatchedContext } from './marker.js';
import { stringValues } from './entry-values.js';
import { describeCode } from '../ldap/result-codes.js';
import { bindIdentity, pollFailureAdvice } from './advice.js';
import { pollUsn } from './markers/usn.js';
import { changelogReadable, pollChangelog, readChangelogInfo, type ChangelogState } from './markers/retro-changelog.js';
import { contextCsnKeepsUp, RECHECK_MS } from './markers/replica-csn.js';
import { TimestampMarker } from './markers/timestamps.js';
import { SIZE_LIMIT_REASON, type ChangeBatch } from './change-batch.js';

/**
 * The change watcher of one LDAP connection pool (one server_host list): it polls a cheap change
 * marker every change_poll_interval and expires the cached answers a change may have affected, so
 * long cache TTLs stay safe. See docs/freshness.md for the whole story.
 *
 * Per watched naming context (the one holding a map's search base):
 *
 * - contextCSN (OpenLDAP syncprov): one base search per poll. When the CSN moved, the changed
 *   entries are found with `(entryCSN>=OLD)` (microsecond precision, indexed where syncprov is
 *   used), and deletions/renames by asking which of the DNs the cached answers were built from
 *   still exist (`(|(entryDN=...)...)`, 100 per search). More than `maxVerify` such DNs, a CSN
 *   change from a server ID not seen before, or too many changed entries for the server's size
 *   limit: nothing is known about what changed, so every answer that may depend on the context
 *   is expired.
 * - entryUSN (389-ds), uSNChanged (Active Directory): markers/usn.ts, markers/ad-usn.ts.
 * - changelog (389-ds retro changelog, without the USN plugin): markers/retro-changelog.ts.
 * - modifyTimestamp (anything else): adds and modifications only (markers/timestamps.ts).
 *
 * At start the watcher takes each marker's baseline (for contextCSN one base search, for
 * modifyTimestamp the recently changed entries' DNs and timestamps); nothing else is read.
 *
 * What a change expires (CachedMap.invalidate; expired answers remain for stale-if-error):
 * answers built from a changed or deleted entry, answers with a base-scope search on a DN that
 * now exists, answers with a one/sub-scope search the changed entry may now match (mayMatch),
 * and every NOTFOUND answer of the maps searching that context once anything was added or
 * modified there.
 *
 * While LDAP cannot be reached the watcher invalidates nothing, keeps its last known state and
 * retries every interval; on recovery it compares against that state, so only what really
 * changed in between is expired (no flush storm).
 */

export interface WatchedMap {
  name: string;
  cache: InvalidatableCache;
  /** The map's search_base (template). */
  searchBase: string;
}

export type ChangeKind = 'modified' | 'deleted' | 'unexplained';

export interface WatcherObserver {
  /** Entries found added/modified or deleted, or an unexplained change (n = 1). */
  changes?(servers: string, kind: ChangeKind, n: number): void;
  /** Fresh answers of `map` expired because of a change. */
  invalidated?(map: string, n: number): void;
  /** A poll (or the detection at start) could not complete. */
  pollError?(servers: string): void;
}

export interface WatcherOptions {
  intervalMs: number;
  /**
   * How long an invalidation keeps what changed for lookups that were already running when it
   * happened (CachedMap checks them when they finish). After that such a lookup's answer is
   * stored as expired. Default 120 s; runtime passes at least twice the longest request_timeout.
   */
  lateLookupMs?: number;
  observer?: WatcherObserver;
  now?: () => number;
  /** Monotonic clock (ms) for measuring the directory's clock; default performance.now, or `now` when that is given. */
  monotonic?: () => number;
  /** Most DNs checked for deletion after a contextCSN change before expiring everything instead. Default 10 000. */
  maxVerify?: number;
  /**
   * Most entries changed in one poll that are read whole and matched against the cached answers;
   * more (a bulk import) expire whatever may depend on the context instead. Default 1 000.
   */
  maxChanged?: number;
  /** How often a replica's standing contextCSN is checked against modifyTimestamp (markers/replica-csn.ts). Default 60 s. */
  replicaCsnRecheckMs?: number;
  /** How often a retro changelog hidden from the bind is looked at again (an ACI added since switches to it). Default 60 s. */
  hiddenChangelogRecheckMs?: number;
  /** A watcher failing (or not started) this long is reported as failing long. Default max(60 s, 10 intervals). */
  failingLongMs?: number;
  /**
   * While polls fail the watcher is blind: the maps' answers stay fresh at most this long
   * (blind_cache_ttl), until a poll succeeds again. Undefined or 0: TTLs unchanged.
   */
  blindTtlMs?: number;
  /**
   * Markers a cache snapshot recorded (markers() of the watcher before a restart): a
   * context found with the same base and marker starts from them instead of a fresh baseline,
   * and the first poll, made at once, expires what changed since. Without them (or when one
   * context has none) the first detection expires every cached answer, as always.
   */
  resume?: readonly ContextMarker[];
}

/**
 * Where a context's changes have been taken into account up to (markers(), WatcherOptions.resume):
 * the cache snapshot's record of a marker, without the server list it is filed under.
 */
export type ContextMarker = Omit<SnapshotMarker, 'servers'>;

export interface WatcherStatus {
  servers: string;
  state: 'starting' | 'ok' | 'failing';
  contexts: { base: string; marker: MarkerKind }[];
  /** Seconds since the last successful poll (since start when there was none). */
  lastSuccessAgeSec: number;
  failingForSec?: number;
  lastError?: string;
  /** Not polled successfully for longer than failingLongMs. */
  failingLong: boolean;
  /** The server refused the poll (a result code, not an outage): it will not fix itself. */
  refused?: string;
  /** What to do about the failure, when the server refused. */
  advice?: string;
}

interface ContextState extends WatchedContext {
  /** Maps whose search base lies in this context (their NOTFOUND answers follow any addition here). */
  local: WatchedMap[];
  /** modifyTimestamp only. */
  stamps?: TimestampMarker;
  /** contextCSN kept by a replica: when it was last checked against modifyTimestamp (monotonic ms). */
  csnCheckedAt?: number;
  /** changelog only: where the poll stands in the retro changelog (undefined once the root DSE lost it). */
  cl?: ChangelogState;
  /** A retro changelog hidden from the bind: when its readability was last checked (monotonic ms). */
  changelogCheckedAt?: number;
}

const VERIFY_BATCH = 100;
const DEFAULT_LATE_LOOKUP_MS = 120_000;

export class ChangeWatcher {
  readonly servers: string;
  private contexts?: ContextState[];
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private readonly now: () => number;
  private readonly mono: () => number;
  private readonly startedAt: number;
  private lastSuccess?: number;
  private failingSince?: number;
  private lastError?: string;
  private lastRefusal?: { code: string; advice?: string };
  /** The context whose poll is running (for advice when it fails). */
  private polling?: ContextState;
  private readonly rlog = new RateLimitedLog(60_000);
  private readonly maxVerify: number;
  private readonly maxChanged: number;
  private readonly failingLongMs: number;
  private readonly lateLookupMs: number;
  /** opts.resume until the first detection succeeds (a later one starts afresh). */
  private resumeFrom: readonly ContextMarker[] | undefined;

  constructor(
    private readonly pool: LdapPool,
    private readonly maps: WatchedMap[],
    private readonly opts: WatcherOptions,
  ) {
    this.servers = pool.settings.servers.map((s) => s.url).join(' ');
    this.now = opts.now ?? Date.now;
    this.mono = opts.monotonic ?? opts.now ?? (() => performance.now());
    this.startedAt = this.now();
    this.maxVerify = opts.maxVerify ?? 10_000;
    this.maxChanged = opts.maxChanged ?? 1_000;
    this.failingLongMs = opts.failingLongMs ?? Math.max(60_000, 10 * opts.intervalMs);
    this.lateLookupMs = opts.lateLookupMs ?? DEFAULT_LATE_LOOKUP_MS;
    this.resumeFrom = opts.resume;
  }

  get mapNames(): string[] {
    return this.maps.map((m) => m.name);
  }

  start(): void {
    if (this.stopped || this.timer || this.running) return;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One poll now (tests and the loop). Errors are recorded, not thrown. */
  async pollNow(): Promise<void> {
    try {
      await this.pollOnce();
      this.succeeded();
    } catch (err) {
      this.failed(err);
    }
  }

  status(): WatcherStatus {
    const now = this.now();
    const lastOk = this.lastSuccess ?? this.startedAt;
    const s: WatcherStatus = {
      servers: this.servers,
      state: this.failingSince !== undefined ? 'failing' : this.contexts ? 'ok' : 'starting',
      contexts: (this.contexts ?? []).map((c) => ({ base: c.base, marker: c.marker })),
      lastSuccessAgeSec: Math.max(0, now - lastOk) / 1000,
      failingLong: now - lastOk > this.failingLongMs,
    };
    if (this.failingSince !== undefined) s.failingForSec = Math.max(0, now - this.failingSince) / 1000;
    if (this.lastError !== undefined) s.lastError = this.lastError;
    if (this.lastRefusal) {
      s.refused = this.lastRefusal.code;
      if (this.lastRefusal.advice !== undefined) s.advice = this.lastRefusal.advice;
    }
    return s;
  }

  /**
   * How far each context's changes have been applied to the caches (what a cache snapshot
   * records, for WatcherOptions.resume): the markers of the last poll, or the ones this watcher
   * was to resume from while it has not detected its contexts yet.
   */
  markers(): ContextMarker[] {
    if (!this.contexts) return [...(this.resumeFrom ?? [])];
    const out: ContextMarker[] = [];
    for (const c of this.contexts) {
      const at = (source: string, position: number | string): ContextMarker => ({ base: c.base, marker: c.marker, source, position: String(position) });
      if (c.marker === 'contextCSN') out.push({ base: c.base, marker: c.marker, csn: [...(c.csn ?? [])] });
      else if (c.marker === 'modifyTimestamp' && c.stamps) out.push({ base: c.base, marker: c.marker, since: c.stamps.since });
      else if (c.marker === 'entryUSN' && c.usn) out.push(at(c.usn.backend, c.usn.value));
      else if (c.marker === 'uSNChanged' && c.adUsn !== undefined && c.dc !== undefined) out.push(at(c.dc, c.adUsn));
      // Records missed so far (not visible yet) are read again after a restart.
      else if (c.marker === 'changelog' && c.cl) out.push(at(c.cl.dn, Math.min(c.cl.last, ...[...c.cl.pending.keys()].map((n) => n - 1))));
    }
    return out;
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.pollNow().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.schedule(this.opts.intervalMs);
      });
    }, ms);
    this.timer.unref();
  }

  private succeeded(): void {
    if (this.failingSince !== undefined) {
      log.info(`change watcher ${this.servers}: polling again after ${Math.round((this.now() - this.failingSince) / 1000)} s of failures; comparing with the state before`);
    }
    if (this.failingSince !== undefined || this.lastSuccess === undefined) this.capCaches(undefined);
    this.lastSuccess = this.now();
    this.failingSince = undefined;
    this.lastError = undefined;
    this.lastRefusal = undefined;
  }

  /** blind_cache_ttl: caps (or, with undefined, uncaps) how long the maps' answers stay fresh. */
  private capCaches(ms: number | undefined): void {
    const cap = ms !== undefined && ms > 0 ? ms : undefined;
    if (ms !== undefined && cap === undefined) return;
    for (const m of this.maps) m.cache.capFreshness(cap);
  }

  private failed(err: unknown): void {
    const msg = err instanceof Error ? err.message : String(err);
    this.opts.observer?.pollError?.(this.servers);
    this.lastError = msg;
    const c = this.polling;
    const advice = pollFailureAdvice(err, c?.marker, c?.server, {
      bindDn: bindIdentity(this.pool.settings),
      ...(c?.changelog ? { changelogDn: c.changelog.dn, ...(c.changelog.readable === false ? { hiddenChangelog: c.changelog.dn } : {}) } : {}),
    });
    this.lastRefusal = err instanceof LdapFailure && err.code !== undefined ? { code: describeCode(err.code), ...(advice ? { advice } : {}) } : undefined;
    const fix = advice ? `; fix: ${advice}` : '';
    // A server that answers lookups but refuses the poll leaves the watcher blind for good: answers
    // fall back to the short blind TTL. An outage (down, timeout) is left to stale-if-error as
    // before: a lookup could not get a fresher answer anyway, only wait for the timeout.
    const refused = this.lastRefusal !== undefined && !!this.opts.blindTtlMs;
    const blind = refused ? `cached answers stay fresh at most ${this.opts.blindTtlMs! / 1000} s (blind_cache_ttl) until it can` : 'nothing is invalidated until it can';
    if (refused) this.capCaches(this.opts.blindTtlMs);
    if (this.failingSince === undefined) {
      this.failingSince = this.now();
      log.warn(`change watcher ${this.servers}: cannot poll the directory${c ? ` (${c.marker} under ${JSON.stringify(c.base)})` : ''}: ${msg}; ${blind} (stale-if-error still applies)${fix}`);
    } else {
      this.rlog.emit('warn', 'poll', `change watcher ${this.servers}: still cannot poll the directory: ${msg}${fix}`);
    }
    if (!(err instanceof LdapFailure)) log.debug(`change watcher ${this.servers}: ${err instanceof Error ? err.stack : msg}`);
  }

  private async pollOnce(): Promise<void> {
    this.polling = undefined;
    // Resumed from a snapshot's markers: poll at once, to expire what changed since.
    if (!this.contexts && !(await this.detect())) return;
    if (!this.contexts) return;
    for (const c of this.contexts) {
      this.polling = c;
      if (await this.changelogNowReadable(c)) {
        log.info(`change watcher ${this.servers}: the retro changelog ${JSON.stringify(c.changelog?.dn)} is readable by the bind DN now; choosing the change marker of ${JSON.stringify(c.base)} again`);
        this.contexts = undefined;
        return;
      }
      const batch = c.marker === 'contextCSN' ? await this.pollCsn(c)
        : c.marker === 'entryUSN' ? await this.pollUsn(c)
        : c.marker === 'uSNChanged' ? await this.pollAdUsn(c)
        : c.marker === 'changelog' ? await this.pollChangelog(c)
        : await c.stamps?.poll();
      if (batch) this.apply(c, batch);
    }
    this.polling = undefined;
    const lost = this.contexts.find((c) => (c.marker === 'contextCSN' && (c.csn ?? []).length === 0) || (c.marker === 'entryUSN' && c.usn === undefined) || (c.marker === 'changelog' && c.cl === undefined));
    if (lost) {
      // Without its contextCSN / lastusn / lastchangenumber the context cannot be watched that way any more: choose again.
      log.warn(`change watcher ${this.servers}: the ${lost.marker} marker of ${JSON.stringify(lost.base)} is gone; detecting the change marker again`);
      this.contexts = undefined;
    }
  }

  /**
   * Finds the contexts and markers, takes the baselines, then expires what was cached before.
   * Returns true when every context resumed from opts.resume (nothing expired yet: poll now).
   */
  private async detect(): Promise<boolean> {
    const statics = this.maps.map((m) => staticBase(m.searchBase));
    const found = await detectContexts(this.pool, statics);
    const resume = this.resumeFrom;
    let resumed = resume !== undefined && found.length > 0;
    const states: ContextState[] = [];
    for (const c of found) {
      const state: ContextState = { ...c, local: [] };
      if (c.marker === 'modifyTimestamp') state.stamps = new TimestampMarker(this.pool, c.base, { now: this.now, mono: this.mono }, this.maxChanged);
      if (c.marker === 'changelog' && c.changelog) {
        state.cl = { dn: c.changelog.dn, last: c.changelog.last, pending: new Map(), ...(c.changelog.readable ? { seenAt: this.mono() } : {}) };
      }
      this.polling = state;
      const from = resume?.find((r) => r.marker === c.marker && normalizeDn(r.base) === c.norm);
      if (from?.marker === 'contextCSN' && from.csn !== undefined && from.csn.length > 0) state.csn = [...from.csn].sort();
      else if (from?.marker === 'modifyTimestamp' && from.since !== undefined) state.stamps?.resume(from.since);
      else if (!(from && resumeCounter(state, from))) {
        resumed = false;
        await state.stamps?.baseline();
      }
      states.push(state);
    }
    for (const m of this.maps) {
      const nb = normalizeDn(staticBase(m.searchBase));
      for (const s of states) if (nb === '' || isUnder(nb, s.norm)) s.local.push(m);
    }
    this.contexts = states;
    this.resumeFrom = undefined;
    for (const s of states) {
      log.info(`change watcher ${this.servers}: ${describeContext(s)}; maps ${s.local.map((m) => m.name).join(', ') || '(none)'}; every ${this.opts.intervalMs / 1000} s${resumed ? '; resuming from the cache snapshot' : ''}`);
    }
    if (resumed) return true;
    // Answers cached before the baseline may predate a change the watcher will never see.
    for (const m of this.maps) {
      const n = m.cache.invalidate(() => true);
      if (n > 0) this.opts.observer?.invalidated?.(m.name, n);
    }
    return false;
  }

  /** Active Directory (markers/ad-usn.ts); deletions through the same tracked-DN check as pollCsn. */
  private async pollAdUsn(c: ContextState): Promise<ChangeBatch | undefined> {
    const r = await pollAdUsn(this.pool, c.base, { usn: c.adUsn ?? 0, ...(c.dc !== undefined ? { dc: c.dc } : {}) }, () => this.trackedIn(c), { maxChanged: this.maxChanged, maxVerify: this.maxVerify });
    c.adUsn = r.usn;
    if (r.dc !== undefined) c.dc = r.dc;
    return r.batch;
  }

  /**
   * A context watched by modifyTimestamp because its retro changelog was hidden from the bind:
   * once a minute, whether an admin has added the ACI since (then the marker is chosen again,
   * which expires what was cached once). Checked before the modifyTimestamp poll, which 389-ds
   * refuses past its lookthrough limit. A failing check changes nothing.
   */
  private async changelogNowReadable(c: ContextState): Promise<boolean> {
    if (c.marker !== 'modifyTimestamp' || c.changelog?.readable !== false) return false;
    const mono = this.mono();
    c.changelogCheckedAt ??= mono;
    if (mono - c.changelogCheckedAt < (this.opts.hiddenChangelogRecheckMs ?? RECHECK_MS)) return false;
    c.changelogCheckedAt = mono;
    try {
      const info = await readChangelogInfo(this.pool);
      return info !== undefined && (await changelogReadable(this.pool, info)) === true;
    } catch {
      return false;
    }
  }

  /** 389-ds retro changelog (markers/retro-changelog.ts): the records name deletions and renames. */
  private async pollChangelog(c: ContextState): Promise<ChangeBatch | undefined> {
    if (!c.cl) return undefined;
    const r = await pollChangelog(this.pool, c, c.cl, { maxChanged: this.maxChanged, now: this.mono(), tracked: () => this.trackedIn(c) });
    c.cl = r.state;
    return r.batch;
  }

  private async pollCsn(c: ContextState): Promise<ChangeBatch | undefined> {
    const now = await readContextCsn(this.pool, c.base);
    const old = c.csn ?? [];
    if (sameList(now, old)) {
      if (c.csnKeeper === 'replica') await this.recheckReplicaCsn(c);
      return undefined;
    }
    const batch: ChangeBatch = { changed: [], deleted: new Set() };
    const oldBySid = bySid(old);
    const clauses: string[] = [];
    for (const [sid, v] of bySid(now)) {
      const o = oldBySid.get(sid);
      if (o === undefined) batch.unexplained = `contextCSN of a server ID not seen before (${sid})`;
      else if (o !== v) clauses.push(`(entryCSN>=${escapeFilterValue(o)})`);
    }
    if (now.length === 0) batch.unexplained = 'contextCSN disappeared';
    if (!batch.unexplained && clauses.length > 0) {
      const filter = clauses.length === 1 ? clauses[0]! : `(|${clauses.join('')})`;
      // The entry whose write set the old CSN was handled by the previous poll.
      const unseen = (e: Entry): boolean => {
        const csn = stringValues(e, 'entryCSN')[0];
        return csn === undefined || !old.includes(csn);
      };
      // First how many (DN and entryCSN only), then, if not too many, the entries themselves.
      const probe = await sizeLimited(this.pool.search({ base: c.base, scope: 'sub', filter, attributes: ['entryCSN'], deref: 0 }, { chase: false }));
      const n = probe?.filter(unseen).length ?? 0;
      if (probe === undefined) batch.unexplained = SIZE_LIMIT_REASON;
      else if (n > this.maxChanged) batch.unexplained = `${n} entries changed at once (more than ${this.maxChanged})`;
      else if (n > 0) {
        const entries = await sizeLimited(this.pool.search({ base: c.base, scope: 'sub', filter, attributes: ['*', 'entryCSN'], deref: 0 }, { chase: false }));
        if (entries === undefined) batch.unexplained = SIZE_LIMIT_REASON;
        else for (const e of entries) if (unseen(e)) batch.changed.push(new ChangedEntry(normalizeDn(e.dn), e));
      }
    }
    if (!batch.unexplained) {
      const missing = await this.missing(c);
      if (missing === undefined) batch.unexplained = `more than ${this.maxVerify} cached DNs to check for deletions`;
      else batch.deleted = missing;
    }
    c.csn = now;
    return batch;
  }

  /**
   * A replica's contextCSN that stands still is checked now and then (markers/replica-csn.ts):
   * if entries were written after it, it is not kept any more and the marker is chosen again
   * (emptying csn makes the next poll re-detect, which expires what was cached).
   */
  private async recheckReplicaCsn(c: ContextState): Promise<void> {
    const mono = this.mono();
    c.csnCheckedAt ??= mono;
    if (mono - c.csnCheckedAt < (this.opts.replicaCsnRecheckMs ?? RECHECK_MS)) return;
    c.csnCheckedAt = mono;
    if (await contextCsnKeepsUp(this.pool, c.base, c.csn ?? [])) return;
    log.warn(`change watcher ${this.servers}: entries under ${JSON.stringify(c.base)} were written after its contextCSN, which no longer moves (syncrepl stopped?)`);
    c.csn = [];
  }

  /** 389-ds USN plugin (markers/usn.ts): written entries by entryusn, deletions and renames by missing(). */
  private async pollUsn(c: ContextState): Promise<ChangeBatch | undefined> {
    if (!c.usn) return undefined;
    const p = await pollUsn(this.pool, c.base, c.usn, this.maxChanged);
    if (!p.moved) return undefined;
    const batch: ChangeBatch = { changed: p.changed.map((e) => new ChangedEntry(normalizeDn(e.dn), e)), deleted: new Set() };
    if (p.unexplained) batch.unexplained = p.unexplained;
    else {
      const missing = await this.missing(c);
      if (missing === undefined) batch.unexplained = `more than ${this.maxVerify} cached DNs to check for deletions`;
      else batch.deleted = missing;
    }
    c.usn = p.now === undefined ? undefined : { backend: c.usn.backend, value: p.now };
    return batch;
  }

  /** The normalized DNs the cached answers of every map were built from, inside the context. */
  private trackedIn(c: ContextState): string[] {
    const out = new Set<string>();
    for (const m of this.maps) for (const dn of m.cache.trackedEntryDns()) if (isUnder(dn, c.norm)) out.add(dn);
    return [...out];
  }

  /** Tracked entry DNs in the context that no longer exist; undefined when there are too many to check. */
  private async missing(c: ContextState): Promise<Set<string> | undefined> {
    const tracked = new Set<string>();
    for (const m of this.maps) for (const dn of m.cache.trackedEntryDns()) if (isUnder(dn, c.norm)) tracked.add(dn);
    if (tracked.size > this.maxVerify) return undefined;
    const present = new Set<string>();
    const all = [...tracked];
    for (let i = 0; i < all.length; i += VERIFY_BATCH) {
      const batch = all.slice(i, i + VERIFY_BATCH);
      const filter = `(|${batch.map((dn) => `(entryDN=${escapeFilterValue(dn)})`).join('')})`;
      const entries = await this.pool.search({ base: c.base, scope: 'sub', filter, attributes: ['1.1'], deref: 0 }, { chase: false });
      for (const e of entries) present.add(normalizeDn(e.dn));
    }
    return new Set(all.filter((dn) => !present.has(dn)));
  }

  /** Expires what the batch may have affected, in every map of this pool. */
  private apply(c: ContextState, batch: ChangeBatch): void {
    const { changed, deleted, unexplained } = batch;
    if (!unexplained && changed.length === 0 && deleted.size === 0) return;
    const obs = this.opts.observer;
    if (changed.length > 0) obs?.changes?.(this.servers, 'modified', changed.length);
    if (deleted.size > 0) obs?.changes?.(this.servers, 'deleted', deleted.size);
    if (unexplained) obs?.changes?.(this.servers, 'unexplained', 1);

    // What the matchers need. The cache keeps the last matchers for lookups that were running
    // during this invalidation; those get the batch for lateLookupMs, then `true` (their answers
    // are stored expired), so a big batch is not kept alive by the cache's log.
    let held: { changed: ChangedEntry[]; changedDns: Set<string>; changedRdns: string[][]; deleted: Set<string> } | undefined = {
      changed,
      changedDns: new Set(changed.map((e) => e.dn)),
      changedRdns: changed.map((e) => rdnsOf(e.dn)),
      deleted,
    };
    let filters = new FilterCache();
    const touches = (deps: Dependencies): boolean => {
      if (!held) return true;
      const h = held;
      for (const dn of deps.entries) if (h.changedDns.has(dn) || h.deleted.has(dn)) return true;
      for (const dn of deps.bases) if (h.changedDns.has(dn)) return true;
      return deps.someSearch((base, scope, filter) => {
        const baseRdns = filters.rdns(base);
        for (let i = 0; i < h.changed.length; i++) {
          if (withinRdns(h.changedRdns[i]!, baseRdns, scope) && mayMatch(filters.get(filter), h.changed[i]!)) return true;
        }
        return false;
      });
    };
    const norm = c.norm;
    const dependsOnContext = (deps: Dependencies): boolean =>
      deps.entries.some((dn) => isUnder(dn, norm)) ||
      deps.bases.some((dn) => isUnder(dn, norm)) ||
      deps.someSearch((base) => isUnder(base, norm) || isUnder(norm, base));
    const anyChanged = changed.length > 0;

    const counts: string[] = [];
    for (const m of this.maps) {
      const local = c.local.includes(m);
      const n = m.cache.invalidate((deps, negative) => {
        if (unexplained) return local || deps === undefined || dependsOnContext(deps);
        if (negative && local && anyChanged) return true;
        if (deps === undefined) return local && (!negative || anyChanged);
        return touches(deps);
      });
      if (n > 0) obs?.invalidated?.(m.name, n);
      counts.push(`${m.name}: ${n}`);
    }
    // The parsed filters of this pass are not needed by the few late lookups.
    filters = new FilterCache();
    if (held.changed.length > 0 || held.deleted.size > 0) setTimeout(() => { held = undefined; }, this.lateLookupMs).unref();
    const what = unexplained
      ? `unexplained change (${unexplained})`
      : `${changed.length} added/modified, ${deleted.size} deleted`;
    (unexplained ? log.info : log.debug).call(log, `change watcher ${this.servers}: ${what} in ${JSON.stringify(c.base)}; answers expired: ${counts.join(', ')}`);
  }
}

/* ------------------------------------------------------------------------------------------ */


/**
 * Continues a USN or changelog context from a snapshot's position, when the counter is the same
 * one: the same backend's lastusn, the same DC's USNs (each DC numbers its own writes), the same
 * changelog. The first poll then reads what the counter passed while the daemon was down; a
 * counter that went back since (a restored backend) is that poll's business, as at any poll.
 */
function resumeCounter(state: ContextState, from: ContextMarker): boolean {
  const position = from.position ?? '';
  if (!/^\d+$/.test(position)) return false;
  if (state.marker === 'entryUSN' && state.usn && from.source === state.usn.backend) {
    state.usn = { backend: state.usn.backend, value: position };
    return true;
  }
  if (state.marker === 'uSNChanged' && state.dc !== undefined && from.source === state.dc && Number.isSafeInteger(Number(position))) {
    state.adUsn = Number(position);
    return true;
  }
  if (state.marker === 'changelog' && state.cl && normalizeDn(from.source ?? '') === normalizeDn(state.cl.dn) && Number.isSafeInteger(Number(position))) {
    state.cl = { ...state.cl, last: Number(position), pending: new Map() };
    return true;
  }
  return false;
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** CSN `YYYYmmddHHMMSS.uuuuuuZ#count#sid#mod` → its server ID. */
function bySid(csns: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of csns) {
    const sid = c.split('#')[2] ?? '';
    const prev = out.get(sid);
    if (prev === undefined || c > prev) out.set(sid, c);
  }
  return out;
}

