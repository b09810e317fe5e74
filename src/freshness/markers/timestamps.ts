import type { Entry } from 'ldapts';
import { sizeLimited } from '../../ldap/errors.js';
import type { LdapPool } from '../../ldap/pool.js';
import { normalizeDn } from '../../ldap/dn.js';
import { SIZE_LIMIT_REASON, type ChangeBatch } from '../change-batch.js';
import { stringValues } from '../entry-values.js';
import { ChangedEntry } from '../match.js';

/**
 * modifyTimestamp as a change marker, for any directory: `(|(modifyTimestamp>=LAST)
 * (createTimestamp>=LAST))` per poll, LAST being the newest timestamp seen (server time, second
 * resolution; entries already seen with the same timestamp and entryCSN are not reported twice).
 * Adds and modifications only. The poll asks for the timestamps only; the changed entries'
 * attributes (which mayMatch needs) are read by a second search only when something changed.
 * LAST moves on by itself once the directory's clock is surely past it (see advance()), so the
 * entries of one busy second (a bulk import) are not read again at every poll.
 *
 * The baseline, taken at start, is the DNs and timestamps (no other attributes) of the entries
 * changed in the last SKEW_SEC seconds, so they are not reported as changes by the first poll.
 * The window allows for the directory's clock being behind ours. Right after a bulk load that is
 * the whole directory (one read of a DN and two timestamps per entry, forgotten a poll or two
 * later); otherwise only what changed in the last minute.
 */

/** How far the directory's clock may be behind ours (until its timestamps show better). */
const SKEW_SEC = 60;
/** How long an observation of the directory's clock is relied on before a newer one replaces it. */
const ANCHOR_MS = 600_000;
/** What a poll asks for first: enough to tell whether an entry changed since it was last seen. */
const STAMP_ATTRIBUTES = ['modifyTimestamp', 'createTimestamp', 'entryCSN'];
/** The changed entries themselves (mayMatch compares their attributes with cached searches). */
const ENTRY_ATTRIBUTES = ['*', ...STAMP_ATTRIBUTES];

interface Seen {
  ts: number;
  csn: string | undefined;
  reports: number;
}

export interface TimestampClocks {
  /** Wall clock, epoch ms. */
  now: () => number;
  /** Monotonic ms. */
  mono: () => number;
}

export class TimestampMarker {
  /** The lower bound of the next poll, the newest timestamp seen (epoch seconds). */
  since = 0;
  /** Entries seen at `since` (normalized DN → what was seen). */
  private readonly seen = new Map<string, Seen>();
  /** When the last successful poll's search was sent (our clock, epoch ms; monotonic ms). */
  private polledAt?: { wall: number; mono: number };
  /**
   * The directory's own clock, as far as its timestamps show. An entry stamped T in an answer
   * received at monotonic time M shows the directory's clock had reached T by M, so at any later
   * monotonic time m it reads at least T + (m - M) / 1000. The best such observation is kept
   * (renewed after ANCHOR_MS).
   */
  private anchor?: { stamp: number; mono: number };

  constructor(
    private readonly pool: LdapPool,
    private readonly base: string,
    private readonly clocks: TimestampClocks,
    private readonly maxChanged: number,
  ) {}

  /** Continues from a cache snapshot's LAST instead of taking a baseline. */
  resume(since: number): void {
    this.since = since;
  }

  /** The entries changed in the last SKEW_SEC seconds, as known (DNs and timestamps only). */
  async baseline(): Promise<void> {
    const sentAt = { wall: this.clocks.now(), mono: this.clocks.mono() };
    this.since = Math.floor(sentAt.wall / 1000) - SKEW_SEC;
    const entries = await sizeLimited(this.search(this.since, STAMP_ATTRIBUTES));
    if (entries === undefined) {
      this.since = Math.floor(this.clocks.now() / 1000);
      return;
    }
    this.observeClock(entries);
    for (const e of entries) {
      const { ts, csn } = stampOf(e, this.since);
      this.seen.set(normalizeDn(e.dn), { ts, csn, reports: 2 });
      this.since = Math.max(this.since, ts);
    }
    this.prune();
    this.polledAt = sentAt;
  }

  private search(since: number, attributes: string[]): Promise<Entry[]> {
    const t = formatGeneralizedTime(since);
    return this.pool.search({
      base: this.base,
      scope: 'sub',
      filter: `(|(modifyTimestamp>=${t})(createTimestamp>=${t}))`,
      attributes,
      deref: 0,
    }, { chase: false });
  }

  /** Keeps this.anchor: the newest timestamp in an answer just received shows the directory's clock. */
  private observeClock(entries: Entry[]): void {
    let newest = -Infinity;
    for (const e of entries) newest = Math.max(newest, stampOf(e, -Infinity).ts);
    if (newest === -Infinity) return;
    const mono = this.clocks.mono();
    const a = this.anchor;
    if (a === undefined || mono - a.mono > ANCHOR_MS || newest - mono / 1000 > a.stamp - a.mono / 1000) this.anchor = { stamp: newest, mono };
  }

  /**
   * Timestamps have second resolution, so a poll asks for `>= since` and sees the entries of the
   * second `since` again (already seen ones are skipped). Every second the directory's clock had
   * fully passed when the previous poll's search was sent can get no new entries, and that poll
   * saw all of them: the bound moves past them and the entries seen in them are forgotten. The
   * directory's clock then read at least our clock minus SKEW_SEC, or what its own timestamps
   * showed (this.anchor) plus the time since; one second of margin for writes being committed.
   */
  private advance(): void {
    const p = this.polledAt;
    if (p === undefined) return;
    let passed = p.wall / 1000 - SKEW_SEC;
    if (this.anchor && p.mono >= this.anchor.mono) passed = Math.max(passed, this.anchor.stamp + (p.mono - this.anchor.mono) / 1000);
    const settled = Math.floor(passed) - 1;
    if (settled > this.since) {
      this.since = settled;
      this.prune();
    }
  }

  async poll(): Promise<ChangeBatch | undefined> {
    this.advance();
    const sentAt = { wall: this.clocks.now(), mono: this.clocks.mono() };
    const done = (batch?: ChangeBatch): ChangeBatch | undefined => {
      this.prune();
      this.polledAt = sentAt;
      return batch;
    };
    const sizeLimit = (): ChangeBatch => {
      this.seen.clear();
      this.since = Math.max(this.since, Math.floor(this.clocks.now() / 1000) - 1);
      this.polledAt = undefined;
      return { changed: [], deleted: new Set(), unexplained: SIZE_LIMIT_REASON };
    };
    const probe = await sizeLimited(this.search(this.since, STAMP_ATTRIBUTES));
    if (probe === undefined) return sizeLimit();
    this.observeClock(probe);
    let newest = this.since;
    const stamps: number[] = [];
    const fresh: { dn: string; ts: number; csn: string | undefined }[] = [];
    for (const e of probe) {
      const s = stampOf(e, this.since);
      const dn = normalizeDn(e.dn);
      newest = Math.max(newest, s.ts);
      stamps.push(s.ts);
      if (this.isNew(dn, s)) fresh.push({ dn, ts: s.ts, csn: s.csn });
    }
    if (fresh.length === 0) {
      this.since = newest;
      return done();
    }
    // Something was added or modified: the entries are read whole, from the oldest changed second on.
    let from = fresh[0]!.ts;
    for (const f of fresh) from = Math.min(from, f.ts);
    const toRead = stamps.filter((ts) => ts >= from).length;
    if (toRead > this.maxChanged) {
      // A bulk change: reading and matching every entry would cost more than it saves.
      for (const f of fresh) this.seen.set(f.dn, { ts: f.ts, csn: f.csn, reports: 2 });
      this.since = newest;
      return done({ changed: [], deleted: new Set(), unexplained: `${fresh.length} entries changed at once (${toRead} to read, more than ${this.maxChanged})` });
    }
    // What changed meanwhile is in this answer too; it decides.
    const entries = await sizeLimited(this.search(from, ENTRY_ATTRIBUTES));
    if (entries === undefined) return sizeLimit();
    const changed: ChangedEntry[] = [];
    for (const e of entries) {
      const s = stampOf(e, this.since);
      const dn = normalizeDn(e.dn);
      newest = Math.max(newest, s.ts);
      const prev = this.seen.get(dn);
      if (!this.isNew(dn, s)) continue;
      const same = prev !== undefined && prev.ts === s.ts && prev.csn === s.csn;
      this.seen.set(dn, { ts: s.ts, csn: s.csn, reports: same ? prev.reports + 1 : 1 });
      changed.push(new ChangedEntry(dn, e));
    }
    this.since = newest;
    return done(changed.length > 0 ? { changed, deleted: new Set() } : undefined);
  }

  /** Whether an entry a poll found is new or changed since it was seen (or due for its second report). */
  private isNew(dn: string, s: { ts: number; csn: string | undefined }): boolean {
    const prev = this.seen.get(dn);
    const same = prev !== undefined && prev.ts === s.ts && prev.csn === s.csn;
    // Without entryCSN two modifications within one second look alike: report such an entry
    // once more on the next poll, which runs after that second is over.
    return !(same && (s.csn !== undefined || prev.reports >= 2));
  }

  /** Forgets the entries seen before `since` (a poll asks for `>= since` only). */
  private prune(): void {
    for (const [dn, s] of this.seen) if (s.ts < this.since) this.seen.delete(dn);
  }
}

function stampOf(e: Entry, fallback: number): { ts: number; csn: string | undefined } {
  const m = parseGeneralizedTime(stringValues(e, 'modifyTimestamp')[0]);
  const c = parseGeneralizedTime(stringValues(e, 'createTimestamp')[0]);
  let ts = Math.max(m ?? -Infinity, c ?? -Infinity);
  if (!Number.isFinite(ts)) ts = fallback;
  return { ts, csn: stringValues(e, 'entryCSN')[0] };
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
