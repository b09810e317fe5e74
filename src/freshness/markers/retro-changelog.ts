import type { Entry } from 'ldapts';
import { escapeFilterValue } from '../../ldap/escape.js';
import { LdapFailure, sizeLimited } from '../../ldap/errors.js';
import type { LdapPool } from '../../ldap/pool.js';
import { isUnder, normalizeDn, rdnsOf } from '../../ldap/dn.js';
import { ChangedEntry } from '../match.js';
import { stringValues } from '../entry-values.js';
import { SIZE_LIMIT_REASON, type ChangeBatch } from '../change-batch.js';

/**
 * 389-ds's retro changelog (draft-good-ldap-changelog; FreeIPA enables it) as a change marker,
 * for a 389-ds without the USN plugin. Every write the plugin logs gets the next change number
 * and an entry `changenumber=N,cn=changelog` holding `targetDn`, `changeType` (add, modify,
 * delete, modrdn) and, for a rename, `newRdn` / `newSuperior`. The root DSE shows `changelog`,
 * `firstchangenumber` and `lastchangenumber` to anyone (anonymous included). So one base search
 * of the root DSE tells whether anything was written; `(&(changeNumber>=OLD+1)(changeNumber<=NEW))`
 * — answered from the changeNumber equality index, so the lookthrough limit counts only those
 * entries — says exactly what: deletions and renames come with their DNs, nothing has to be
 * verified against the cached answers.
 *
 * What 389-ds 2.3 does (measured, test/directories/ds389-retrocl.test.ts):
 * - The changelog entries carry no ACI: a bind DN other than the Directory Manager sees none of
 *   them, and the search still succeeds (no insufficientAccessRights). So readability is
 *   checked by looking at the newest entries; a changelog whose numbers move while its entries
 *   stay invisible fails the poll as insufficientAccessRights (50) with the ACI to add.
 * - Trimming (nsslapd-changelogmaxage) moves firstchangenumber up and keeps at least the newest
 *   entry. firstchangenumber past OLD+1 means changes were trimmed before they were read: the
 *   context is expired as a whole. The numbers survive a restart.
 * - lastchangenumber counts writes of every backend the plugin logs; records outside the
 *   watched context are skipped here.
 *
 * A change number at or below lastchangenumber whose entry is not visible yet (a write being
 * committed while we read) is looked for again by the next polls; once PENDING_GRACE_MS passed
 * it counts as lost (an aborted write leaves a gap too): the context is expired as a whole, or,
 * when no changelog entry at all has been visible since, the poll fails (entries hidden).
 */

export const CHANGELOG_ROOT_ATTRIBUTES = ['changelog', 'firstchangenumber', 'lastchangenumber'];
export const PENDING_GRACE_MS = 10_000;
const INSUFFICIENT_ACCESS = 50;
/** Attributes of a changelog entry the poll reads (never `changes`: it holds written values, password hashes included). */
export const RECORD_ATTRIBUTES = ['changeNumber', 'targetDn', 'changeType', 'newRdn', 'newSuperior'];
const READ_BATCH = 100;

/** What the root DSE says about the retro changelog. */
export interface ChangelogInfo {
  /** The changelog's DN (cn=changelog). */
  dn: string;
  /** 0 while the changelog is empty. */
  first: number;
  last: number;
}

/** The root DSE's retro changelog, when it shows one. */
export function changelogOf(rootDse: Entry | undefined): ChangelogInfo | undefined {
  const dn = stringValues(rootDse, 'changelog')[0];
  const last = toNumber(stringValues(rootDse, 'lastchangenumber')[0]);
  if (dn === undefined || dn.trim() === '' || last === undefined) return undefined;
  return { dn, first: toNumber(stringValues(rootDse, 'firstchangenumber')[0]) ?? 0, last };
}

export type ChangeType = 'add' | 'modify' | 'delete' | 'modrdn';

/** One changelog entry, DNs normalized. */
export interface ChangeRecord {
  number: number;
  type: ChangeType;
  /** The written entry's DN (for modrdn, the old one). */
  target: string;
  /** modrdn: the entry's new DN. */
  newDn?: string;
}

/** A changelog entry → its record; undefined when the attributes the poll needs are not visible. */
export function parseChangeRecord(e: Entry): ChangeRecord | undefined {
  const number = toNumber(stringValues(e, 'changeNumber')[0]);
  const targetRaw = stringValues(e, 'targetDn')[0];
  const typeRaw = stringValues(e, 'changeType')[0]?.trim().toLowerCase();
  if (number === undefined || targetRaw === undefined || typeRaw === undefined) return undefined;
  const type: ChangeType | undefined = typeRaw === 'moddn' ? 'modrdn' : (['add', 'modify', 'delete', 'modrdn'] as const).find((t) => t === typeRaw);
  if (type === undefined) return undefined;
  const target = normalizeDn(targetRaw);
  if (type !== 'modrdn') return { number, type, target };
  const newRdn = stringValues(e, 'newRdn')[0];
  if (newRdn === undefined) return undefined;
  const superior = stringValues(e, 'newSuperior')[0] ?? rdnsOf(target).slice(1).join(',');
  return { number, type, target, newDn: normalizeDn(superior === '' ? newRdn : `${newRdn},${superior}`) };
}

/** Where the poll stands in the changelog. */
export interface ChangelogState {
  /** The changelog's DN. */
  dn: string;
  /** Changes up to this number have been read (but `pending`). */
  last: number;
  /** Numbers at or below `last` whose entries were not visible yet → when first missed (monotonic ms). */
  pending: Map<number, number>;
  /** When a changelog entry was last visible to the bind (monotonic ms), or its readability checked. */
  seenAt?: number;
}

/** What to read next, or why it is no use. */
export type Window =
  | { kind: 'none' }
  | { kind: 'read'; from: number; to: number }
  | { kind: 'unexplained'; reason: string };

/** Which change numbers a poll reads, given the state and the root DSE now. Pure. */
export function changelogWindow(state: ChangelogState, info: ChangelogInfo, maxChanged: number): Window {
  if (info.last < state.last) return { kind: 'unexplained', reason: `lastchangenumber went back from ${state.last} to ${info.last} (retro changelog recreated?)` };
  const oldest = Math.min(state.last + 1, ...state.pending.keys());
  if (info.last === state.last && state.pending.size === 0) return { kind: 'none' };
  if (info.first > oldest) {
    return { kind: 'unexplained', reason: `changes ${oldest} to ${info.first - 1} were trimmed from the retro changelog before they were read (nsslapd-changelogmaxage)` };
  }
  if (info.last - oldest + 1 > maxChanged) return { kind: 'unexplained', reason: `${info.last - oldest + 1} changes at once (more than ${maxChanged})` };
  return { kind: 'read', from: oldest, to: info.last };
}

/**
 * The records of a read window that are new (not read before), the numbers still missing, and
 * whether the missing ones are lost or the changelog hidden. Pure.
 */
export function settle(
  state: ChangelogState,
  window: { from: number; to: number },
  records: readonly ChangeRecord[],
  now: number,
  graceMs = PENDING_GRACE_MS,
): { fresh: ChangeRecord[]; next: ChangelogState; lost?: number[]; hidden?: boolean } {
  const visible = new Map(records.map((r) => [r.number, r]));
  const fresh: ChangeRecord[] = [];
  const pending = new Map<number, number>();
  const lost: number[] = [];
  let seenAt = records.length > 0 ? now : state.seenAt;
  for (let n = window.from; n <= window.to; n++) {
    const wanted = n > state.last || state.pending.has(n);
    if (!wanted) continue;
    const r = visible.get(n);
    if (r) fresh.push(r);
    else {
      const since = state.pending.get(n) ?? now;
      if (now - since >= graceMs) lost.push(n);
      else pending.set(n, since);
    }
  }
  // Nothing visible since the oldest lost number went missing: the entries are hidden, not lost.
  const hidden = lost.length > 0 && (seenAt === undefined || seenAt < (state.pending.get(lost[0]!) ?? now));
  if (hidden) {
    // Keep looking for them: the poll fails until the bind may read the changelog.
    for (const n of lost) pending.set(n, state.pending.get(n) ?? now);
    seenAt = state.seenAt;
  }
  const next: ChangelogState = { dn: state.dn, last: Math.max(state.last, window.to), pending, ...(seenAt !== undefined ? { seenAt } : {}) };
  return { fresh, next, ...(lost.length > 0 && !hidden ? { lost } : {}), ...(hidden ? { hidden } : {}) };
}

/** What a set of records means for a context (normalized base): which DNs to read, which are gone. Pure. */
export function planChanges(records: readonly ChangeRecord[], norm: string, tracked: () => readonly string[]): { read: Set<string>; deleted: Set<string>; renamed: Set<string> } {
  const read = new Set<string>();
  const deleted = new Set<string>();
  const renamed = new Set<string>();
  let trackedDns: readonly string[] | undefined;
  for (const r of [...records].sort((a, b) => a.number - b.number)) {
    const inside = isUnder(r.target, norm);
    if (r.type === 'modrdn') {
      if (inside) {
        deleted.add(r.target);
        // A renamed subtree takes its entries along: the cached answers' DNs below the old one are gone.
        trackedDns ??= tracked();
        for (const dn of trackedDns) if (isUnder(dn, r.target)) deleted.add(dn);
      }
      if (r.newDn !== undefined && isUnder(r.newDn, norm)) {
        read.add(r.newDn);
        renamed.add(r.newDn);
      }
    } else if (inside) {
      (r.type === 'delete' ? deleted : read).add(r.target);
    }
  }
  return { read, deleted, renamed };
}

/** The changelog entries numbered from..to (only RECORD_ATTRIBUTES); undefined past the size limit. */
export async function readRecords(pool: LdapPool, changelogDn: string, from: number, to: number): Promise<Entry[] | undefined> {
  const filter = from === to ? `(changeNumber=${from})` : `(&(changeNumber>=${from})(changeNumber<=${to}))`;
  return sizeLimited(pool.search({ base: changelogDn, scope: 'one', filter, attributes: RECORD_ATTRIBUTES, deref: 0 }, { chase: false }));
}

/**
 * Whether the bind may read the changelog's entries: true when one of the newest few shows its
 * targetDn and changeType, false when none does; undefined while the changelog is empty (the
 * first poll after a write tells).
 */
export async function changelogReadable(pool: LdapPool, info: ChangelogInfo): Promise<boolean | undefined> {
  if (info.last <= 0) return undefined;
  const from = Math.max(info.first, info.last - 4, 1);
  const entries = (await readRecords(pool, info.dn, from, info.last)) ?? [];
  return entries.some((e) => parseChangeRecord(e) !== undefined);
}

export async function readChangelogInfo(pool: LdapPool): Promise<ChangelogInfo | undefined> {
  const e = await pool.search({ base: '', scope: 'base', filter: '(objectClass=*)', attributes: CHANGELOG_ROOT_ATTRIBUTES, deref: 0 }, { chase: false });
  return changelogOf(e[0]);
}

/** The failure of a changelog the bind cannot read (the watcher's refusal path: warning, /readyz, blind_cache_ttl). */
export function hiddenChangelog(dn: string, what: string): LdapFailure {
  return new LdapFailure('error', `insufficientAccessRights (50): ${what} of the retro changelog (${JSON.stringify(dn)}) are not visible to the bind DN`, INSUFFICIENT_ACCESS);
}

/**
 * One poll. `state` undefined in the answer: the root DSE no longer shows the changelog (plugin
 * off): the watcher chooses its marker again. Throws hiddenChangelog() when the bind cannot read
 * the entries the numbers promise.
 */
export async function pollChangelog(
  pool: LdapPool,
  context: { base: string; norm: string },
  state: ChangelogState,
  opts: { maxChanged: number; now: number; tracked: () => readonly string[]; graceMs?: number },
): Promise<{ state: ChangelogState | undefined; batch?: ChangeBatch }> {
  const info = await readChangelogInfo(pool);
  if (info === undefined) return { state: undefined };
  const w = changelogWindow(state, info, opts.maxChanged);
  if (w.kind === 'none') return { state };
  if (w.kind === 'unexplained') {
    return { state: { dn: state.dn, last: info.last, pending: new Map(), ...(state.seenAt !== undefined ? { seenAt: state.seenAt } : {}) }, batch: { changed: [], deleted: new Set(), unexplained: w.reason } };
  }
  const entries = await readRecords(pool, state.dn, w.from, w.to);
  if (entries === undefined) return { state: { dn: state.dn, last: info.last, pending: new Map(), seenAt: opts.now }, batch: { changed: [], deleted: new Set(), unexplained: SIZE_LIMIT_REASON } };
  const records: ChangeRecord[] = [];
  for (const e of entries) {
    const r = parseChangeRecord(e);
    if (!r) throw hiddenChangelog(state.dn, `the targetDn and changeType of ${JSON.stringify(e.dn)}`);
    records.push(r);
  }
  const s = settle(state, w, records, opts.now, opts.graceMs);
  if (s.hidden) throw hiddenChangelog(state.dn, `the entries numbered ${[...s.next.pending.keys()].sort((a, b) => a - b)[0]} and on`);
  const plan = planChanges(s.fresh, context.norm, opts.tracked);
  const batch: ChangeBatch = { changed: [], deleted: plan.deleted };
  if (s.lost) batch.unexplained = `retro changelog entries ${s.lost.join(', ')} never became visible (aborted writes, or hidden from the bind DN)`;
  else {
    const found = await readEntries(pool, context.base, [...plan.read]);
    for (const dn of plan.read) {
      const e = found.get(dn);
      if (!e) batch.deleted.add(dn);
      else if (plan.renamed.has(dn) && /^true$/i.test(stringValues(e, 'hasSubordinates')[0] ?? '')) {
        batch.unexplained = `${JSON.stringify(e.dn)} was renamed with the entries below it`;
      } else {
        delete (e as Record<string, unknown>).hasSubordinates;
        batch.changed.push(new ChangedEntry(dn, e));
      }
    }
  }
  return { state: s.next, batch };
}

/** The entries (all user attributes, and hasSubordinates) of normalized DNs under `base` that exist. */
async function readEntries(pool: LdapPool, base: string, dns: string[]): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>();
  for (let i = 0; i < dns.length; i += READ_BATCH) {
    const part = dns.slice(i, i + READ_BATCH);
    const filter = part.length === 1 ? `(entrydn=${escapeFilterValue(part[0]!)})` : `(|${part.map((dn) => `(entrydn=${escapeFilterValue(dn)})`).join('')})`;
    for (const e of await pool.search({ base, scope: 'sub', filter, attributes: ['*', 'hasSubordinates'], deref: 0 }, { chase: false })) out.set(normalizeDn(e.dn), e);
  }
  return out;
}

function toNumber(s: string | undefined): number | undefined {
  if (s === undefined || !/^\s*\d+\s*$/.test(s)) return undefined;
  const n = Number(s.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}
