import type { Entry } from 'ldapts';
import type { CachedMap } from '../cache/cache-map.js';
import { escapeFilterValue } from '../ldap/escape.js';
import { LdapFailure } from '../ldap/errors.js';
import type { LdapPool } from '../ldap/pool.js';
import { log, RateLimitedLog } from '../log.js';
import type { Dependencies } from './deps.js';
import { isUnder, normalizeDn, rdnsOf, staticBase, withinScope } from './dn.js';
import { ChangedEntry, FilterCache, mayMatch } from './match.js';
import { describeContext, detectContexts, readContextCsn, stringValues, type MarkerKind, type WatchedContext } from './marker.js';

/**
 * The change watcher of one LDAP connection pool (one server_host list): it polls a cheap change
 * marker every change_poll_interval and expires the cached answers a change may have affected, so
 * long cache TTLs stay safe. See docs-snippets/README-freshness.md for the whole story.
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
 * - modifyTimestamp (anything else): `(|(modifyTimestamp>=LAST)(createTimestamp>=LAST))` per poll,
 *   LAST being the newest timestamp seen (server time, second resolution; entries already seen
 *   with the same timestamp and entryCSN are not reported twice). Adds and modifications only.
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
  cache: CachedMap;
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
  observer?: WatcherObserver;
  now?: () => number;
  /** Most DNs checked for deletion after a contextCSN change before expiring everything instead. Default 10 000. */
  maxVerify?: number;
  /** A watcher failing (or not started) this long is reported as failing long. Default max(60 s, 10 intervals). */
  failingLongMs?: number;
}

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
}

interface ContextState extends WatchedContext {
  /** Maps whose search base lies in this context (their NOTFOUND answers follow any addition here). */
  local: WatchedMap[];
  /** modifyTimestamp: newest timestamp seen (epoch seconds). */
  since: number;
  /** modifyTimestamp: entries seen at `since` (normalized DN → stamp). */
  seen: Map<string, { stamp: string; ts: number; reports: number }>;
}

interface ChangeBatch {
  changed: ChangedEntry[];
  deleted: Set<string>;
  /** Something changed that cannot be pinned down: expire whatever may depend on the context. */
  unexplained?: string;
}

const SIZE_LIMIT_EXCEEDED = 4;
/** Clock difference between daemon and directory tolerated when the first timestamp baseline is taken. */
const SKEW_SEC = 60;
const VERIFY_BATCH = 100;

export class ChangeWatcher {
  readonly servers: string;
  private contexts?: ContextState[];
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private readonly now: () => number;
  private readonly startedAt: number;
  private lastSuccess?: number;
  private failingSince?: number;
  private lastError?: string;
  private readonly rlog = new RateLimitedLog(60_000);
  private readonly maxVerify: number;
  private readonly failingLongMs: number;

  constructor(
    private readonly pool: LdapPool,
    private readonly maps: WatchedMap[],
    private readonly opts: WatcherOptions,
  ) {
    this.servers = pool.settings.servers.map((s) => s.url).join(' ');
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
    this.maxVerify = opts.maxVerify ?? 10_000;
    this.failingLongMs = opts.failingLongMs ?? Math.max(60_000, 10 * opts.intervalMs);
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
    return s;
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
    this.lastSuccess = this.now();
    this.failingSince = undefined;
    this.lastError = undefined;
  }

  private failed(err: unknown): void {
    const msg = err instanceof Error ? err.message : String(err);
    this.opts.observer?.pollError?.(this.servers);
    this.lastError = msg;
    if (this.failingSince === undefined) {
      this.failingSince = this.now();
      log.warn(`change watcher ${this.servers}: cannot poll the directory: ${msg}; nothing is invalidated until it can (stale-if-error still applies)`);
    } else {
      this.rlog.emit('warn', 'poll', `change watcher ${this.servers}: still cannot poll the directory: ${msg}`);
    }
    if (!(err instanceof LdapFailure)) log.debug(`change watcher ${this.servers}: ${err instanceof Error ? err.stack : msg}`);
  }

  private async pollOnce(): Promise<void> {
    if (!this.contexts) {
      await this.detect();
      return;
    }
    for (const c of this.contexts) {
      const batch = c.marker === 'contextCSN' ? await this.pollCsn(c) : await this.pollTimestamps(c);
      if (batch) this.apply(c, batch);
    }
    const lost = this.contexts.find((c) => c.marker === 'contextCSN' && (c.csn ?? []).length === 0);
    if (lost) {
      // Without its contextCSN the context cannot be watched that way any more: choose again.
      log.warn(`change watcher ${this.servers}: contextCSN of ${JSON.stringify(lost.base)} is gone; detecting the change marker again`);
      this.contexts = undefined;
    }
  }

  /** Finds the contexts and markers, takes the baselines, then expires what was cached before. */
  private async detect(): Promise<void> {
    const statics = this.maps.map((m) => staticBase(m.searchBase));
    const found = await detectContexts(this.pool, statics);
    const states: ContextState[] = [];
    for (const c of found) {
      const state: ContextState = { ...c, local: [], since: 0, seen: new Map() };
      if (c.marker === 'modifyTimestamp') await this.baseline(state);
      states.push(state);
    }
    for (const m of this.maps) {
      const nb = normalizeDn(staticBase(m.searchBase));
      for (const s of states) if (nb === '' || isUnder(nb, s.norm)) s.local.push(m);
    }
    this.contexts = states;
    for (const s of states) {
      log.info(`change watcher ${this.servers}: ${describeContext(s)}; maps ${s.local.map((m) => m.name).join(', ') || '(none)'}; every ${this.opts.intervalMs / 1000} s`);
    }
    // Answers cached before the baseline may predate a change the watcher will never see.
    for (const m of this.maps) {
      const n = m.cache.invalidate(() => true);
      if (n > 0) this.opts.observer?.invalidated?.(m.name, n);
    }
  }

  private async baseline(c: ContextState): Promise<void> {
    c.since = Math.floor(this.now() / 1000) - SKEW_SEC;
    let entries: Entry[];
    try {
      entries = await this.timestampSearch(c);
    } catch (err) {
      if (!(err instanceof LdapFailure && err.code === SIZE_LIMIT_EXCEEDED)) throw err;
      c.since = Math.floor(this.now() / 1000);
      return;
    }
    for (const e of entries) {
      const { ts, stamp } = stampOf(e, c.since);
      c.seen.set(normalizeDn(e.dn), { stamp, ts, reports: 2 });
      c.since = Math.max(c.since, ts);
    }
    for (const [dn, s] of c.seen) if (s.ts < c.since) c.seen.delete(dn);
  }

  private timestampSearch(c: ContextState): Promise<Entry[]> {
    const t = formatGeneralizedTime(c.since);
    return this.pool.search({
      base: c.base,
      scope: 'sub',
      filter: `(|(modifyTimestamp>=${t})(createTimestamp>=${t}))`,
      attributes: ['*', 'modifyTimestamp', 'createTimestamp', 'entryCSN'],
      deref: 0,
    });
  }

  private async pollTimestamps(c: ContextState): Promise<ChangeBatch | undefined> {
    let entries: Entry[];
    try {
      entries = await this.timestampSearch(c);
    } catch (err) {
      if (!(err instanceof LdapFailure && err.code === SIZE_LIMIT_EXCEEDED)) throw err;
      c.seen.clear();
      c.since = Math.max(c.since, Math.floor(this.now() / 1000) - 1);
      return { changed: [], deleted: new Set(), unexplained: 'more changed entries than the server returns in one search (size limit)' };
    }
    const changed: ChangedEntry[] = [];
    let newest = c.since;
    for (const e of entries) {
      const { ts, stamp, csn } = stampOf(e, c.since);
      const dn = normalizeDn(e.dn);
      newest = Math.max(newest, ts);
      const prev = c.seen.get(dn);
      const same = prev !== undefined && prev.stamp === stamp;
      // Without entryCSN two modifications within one second look alike: report such an entry
      // once more on the next poll, which runs after that second is over.
      if (same && (csn !== undefined || prev.reports >= 2)) continue;
      c.seen.set(dn, { stamp, ts, reports: same ? prev.reports + 1 : 1 });
      changed.push(new ChangedEntry(dn, e));
    }
    c.since = newest;
    for (const [dn, s] of c.seen) if (s.ts < c.since) c.seen.delete(dn);
    return changed.length > 0 ? { changed, deleted: new Set() } : undefined;
  }

  private async pollCsn(c: ContextState): Promise<ChangeBatch | undefined> {
    const now = await readContextCsn(this.pool, c.base);
    const old = c.csn ?? [];
    if (sameList(now, old)) return undefined;
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
      let entries: Entry[] = [];
      try {
        entries = await this.pool.search({
          base: c.base,
          scope: 'sub',
          filter: clauses.length === 1 ? clauses[0]! : `(|${clauses.join('')})`,
          attributes: ['*', 'entryCSN'],
          deref: 0,
        });
      } catch (err) {
        if (!(err instanceof LdapFailure && err.code === SIZE_LIMIT_EXCEEDED)) throw err;
        batch.unexplained = 'more changed entries than the server returns in one search (size limit)';
      }
      for (const e of entries) {
        // The entry whose write set the old CSN was handled by the previous poll.
        const csn = stringValues(e, 'entryCSN')[0];
        if (csn !== undefined && old.includes(csn)) continue;
        batch.changed.push(new ChangedEntry(normalizeDn(e.dn), e));
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
      const entries = await this.pool.search({ base: c.base, scope: 'sub', filter, attributes: ['1.1'], deref: 0 });
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

    const changedDns = new Set(changed.map((e) => e.dn));
    const changedRdns = changed.map((e) => rdnsOf(e.dn));
    const filters = new FilterCache();
    const touches = (deps: Dependencies): boolean => {
      for (const dn of deps.entries) if (changedDns.has(dn) || deleted.has(dn)) return true;
      for (const dn of deps.bases) if (changedDns.has(dn)) return true;
      for (const s of deps.searches) {
        for (let i = 0; i < changed.length; i++) {
          if (withinScope(changedRdns[i]!, s.base, s.scope) && mayMatch(filters.get(s.filter), changed[i]!)) return true;
        }
      }
      return false;
    };
    const dependsOnContext = (deps: Dependencies): boolean =>
      deps.entries.some((dn) => isUnder(dn, c.norm)) ||
      deps.bases.some((dn) => isUnder(dn, c.norm)) ||
      deps.searches.some((s) => isUnder(s.base, c.norm) || isUnder(c.norm, s.base));

    const counts: string[] = [];
    for (const m of this.maps) {
      const local = c.local.includes(m);
      const n = m.cache.invalidate((deps, negative) => {
        if (unexplained) return local || deps === undefined || dependsOnContext(deps);
        if (negative && local && changed.length > 0) return true;
        if (deps === undefined) return local && (!negative || changed.length > 0);
        return touches(deps);
      });
      if (n > 0) obs?.invalidated?.(m.name, n);
      counts.push(`${m.name}: ${n}`);
    }
    const what = unexplained
      ? `unexplained change (${unexplained})`
      : `${changed.length} added/modified, ${deleted.size} deleted`;
    (unexplained ? log.info : log.debug).call(log, `change watcher ${this.servers}: ${what} in ${JSON.stringify(c.base)}; answers expired: ${counts.join(', ')}`);
  }
}

/* ------------------------------------------------------------------------------------------ */

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

function stampOf(e: Entry, fallback: number): { ts: number; stamp: string; csn?: string } {
  const m = parseGeneralizedTime(stringValues(e, 'modifyTimestamp')[0]);
  const c = parseGeneralizedTime(stringValues(e, 'createTimestamp')[0]);
  let ts = Math.max(m ?? -Infinity, c ?? -Infinity);
  if (!Number.isFinite(ts)) ts = fallback;
  const csn = stringValues(e, 'entryCSN')[0];
  return { ts, stamp: `${ts}|${csn ?? ''}`, csn };
}

/** GeneralizedTime (`20240102030405Z`, fractions, offsets) → epoch seconds (floored); undefined if unparsable. */
export function parseGeneralizedTime(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,]\d+)?(Z|[+-]\d{2}(?:\d{2})?)$/.exec(s.trim());
  if (!m) return undefined;
  let t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5] ?? 0), Number(m[6] ?? 0)) / 1000;
  const zone = m[7]!;
  if (zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const offset = Number(zone.slice(1, 3)) * 3600 + Number(zone.slice(3, 5) || 0) * 60;
    t -= sign * offset;
  }
  return Math.floor(t);
}

/** Epoch seconds → `YYYYmmddHHMMSSZ`. */
export function formatGeneralizedTime(sec: number): string {
  const d = new Date(sec * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
}
