import type { Entry } from 'ldapts';
import { LdapFailure } from '../ldap/errors.js';
import type { LdapPool } from '../ldap/pool.js';
import { isUnder, normalizeDn } from '../ldap/dn.js';
import { stringValues } from './entry-values.js';
import { AD_ROOT_ATTRIBUTES, adUsnOf, dcOf } from './markers/ad-usn.js';
import { contextCsnKeepsUp } from './markers/replica-csn.js';
import { BACKEND_SUFFIX, LASTUSN, usnSourceFor, type UsnSource } from './markers/usn.js';
import { CHANGELOG_ROOT_ATTRIBUTES, changelogOf, changelogReadable, type ChangelogInfo } from './markers/retro-changelog.js';

/**
 * Which cheap change marker a directory offers, per watched subtree.
 *
 * - `contextCSN`: OpenLDAP with the syncprov overlay keeps, on the naming context's entry, the
 *   CSN of the last write anywhere below it (add, modify, delete, rename). One base search tells
 *   whether anything changed at all. A syncrepl replica without syncprov keeps it too, unannounced;
 *   there it is used once checked against modifyTimestamp (markers/replica-csn.ts).
 * - `entryUSN`: 389-ds with the USN plugin: the root DSE's `lastusn` moves on every write
 *   (deletions too); `(entryusn>=OLD+1)` finds the written entries from an index (markers/usn.ts).
 * - `changelog`: 389-ds's retro changelog (FreeIPA), when the USN plugin is off and the bind may
 *   read the changelog: the root DSE's `lastchangenumber`, then the change records since the last
 *   poll, which name added, modified, deleted and renamed DNs (markers/retro-changelog.ts).
 * - `uSNChanged`: Active Directory (markers/ad-usn.ts): the root DSE's highestCommittedUSN, then
 *   `(uSNChanged>=N)`; deletions found by checking the cached answers' DNs.
 * - `modifyTimestamp`: any directory. `(modifyTimestamp>=T)` / `(createTimestamp>=T)` find added
 *   and modified entries; a deleted entry leaves nothing behind to find.
 */
export type MarkerKind = 'contextCSN' | 'entryUSN' | 'changelog' | 'uSNChanged' | 'modifyTimestamp';

/** What the root DSE says the server is (for advice in `check` and in warnings). */
export type ServerKind = 'openldap' | '389-ds' | 'active-directory' | 'other';

/** The LDAP Content Synchronization control (RFC 4533); the root DSE lists it when syncprov is loaded. */
export const SYNC_CONTROL_OID = '1.3.6.1.4.1.4203.1.9.1.1';

export interface WatchedContext {
  /** Where changes are looked for: the naming context holding the maps' search bases (as the server spells it). */
  base: string;
  /** normalizeDn(base) */
  norm: string;
  marker: MarkerKind;
  /** contextCSN values at detection (contextCSN only). */
  csn?: string[];
  /** contextCSN only: what moves it: the syncprov overlay, or syncrepl on a replica without it (checked). */
  csnKeeper?: 'syncprov' | 'replica';
  /** The USN counter covering the context and its value at the last poll (entryUSN only). */
  usn?: UsnSource;
  /** highestCommittedUSN at detection or the last poll (uSNChanged only). */
  adUsn?: number;
  /** The DC that USN is of: its dsServiceName (uSNChanged only). */
  dc?: string;
  /**
   * The retro changelog at detection: the marker of a `changelog` context; for another marker,
   * one whose entries the bind could not read (`readable: false`), for `check` and advice.
   */
  changelog?: ChangelogInfo & { readable?: boolean };
  server?: ServerKind;
}

/** What each marker sees, for logs, `check` and the docs. */
export const MARKER_SEES: Record<MarkerKind, string> = {
  contextCSN: 'sees additions, modifications, deletions and renames',
  entryUSN: 'sees additions, modifications, deletions and renames',
  changelog: 'sees additions, modifications, deletions and renames',
  modifyTimestamp: 'sees additions and modifications, NOT deletions or renames (those wait for cache_ttl)',
  uSNChanged: 'sees additions, modifications, deletions and renames',
};

export function describeContext(c: WatchedContext): string {
  if (c.marker === 'contextCSN') {
    const keeper = c.csnKeeper === 'replica' ? 'syncrepl replica without syncprov, checked against modifyTimestamp' : 'syncprov';
    return `contextCSN of ${JSON.stringify(c.base)} (${keeper}): ${MARKER_SEES.contextCSN}`;
  }
  if (c.marker === 'entryUSN') {
    return `lastusn${c.usn?.backend ? `;${c.usn.backend}` : ''} and (entryusn>=LAST) under ${JSON.stringify(c.base)} (389-ds USN plugin): ${MARKER_SEES.entryUSN}`;
  }
  if (c.marker === 'changelog') {
    return `lastchangenumber and the records of ${JSON.stringify(c.changelog?.dn ?? 'cn=changelog')} whose targetDn is under ${JSON.stringify(c.base)} (retro changelog): ${MARKER_SEES.changelog}`;
  }
  if (c.marker === 'uSNChanged') return `highestCommittedUSN, then (uSNChanged>=LAST) under ${JSON.stringify(c.base)} (Active Directory): ${MARKER_SEES.uSNChanged}`;
  return `(modifyTimestamp>=LAST) under ${JSON.stringify(c.base)}: ${MARKER_SEES.modifyTimestamp}`;
}

/** The contextCSN values of a naming context (empty when it has none or it may not be read). */
export async function readContextCsn(pool: LdapPool, base: string): Promise<string[]> {
  const entries = await pool.search({ base, scope: 'base', filter: '(objectClass=*)', attributes: ['contextCSN'], deref: 0 }, { chase: false });
  return stringValues(entries[0], 'contextCSN').sort();
}

/**
 * Finds, for the static parts of the maps' search bases, the naming contexts to watch and the
 * marker each offers. Throws LdapFailure when LDAP cannot be asked (the caller retries).
 */
export async function detectContexts(pool: LdapPool, staticBases: string[]): Promise<WatchedContext[]> {
  // A server may refuse to show its root DSE or contextCSN; then the maps' own bases are watched
  // by modifyTimestamp. Only "could not ask" is an error worth retrying.
  const answered = <T>(p: Promise<T>, otherwise: T): Promise<T> =>
    p.catch((err: unknown) => {
      if (err instanceof LdapFailure && err.kind !== 'down' && err.kind !== 'timeout') return otherwise;
      throw err;
    });
  const rootDse = (
    await answered(
      pool.search(
        { base: '', scope: 'base', filter: '(objectClass=*)', attributes: ['namingContexts', 'supportedControl', LASTUSN, BACKEND_SUFFIX, ...AD_ROOT_ATTRIBUTES, ...CHANGELOG_ROOT_ATTRIBUTES, ...SERVER_KIND_ATTRIBUTES], deref: 0 },
        { chase: false },
      ),
      [],
    )
  )[0];
  const server = serverKind(rootDse);
  const adUsn = adUsnOf(rootDse);
  const dc = dcOf(rootDse);
  const contexts = stringValues(rootDse, 'namingContexts');
  const syncLoaded = stringValues(rootDse, 'supportedControl').includes(SYNC_CONTROL_OID);
  const changelog = changelogOf(rootDse);
  // Asked once, only when some context has no better marker.
  let changelogReadableNow: Promise<boolean | undefined> | undefined;

  // Each map base → the longest naming context above it, or the base itself when none is known.
  const chosen = new Map<string, string>();
  for (const b of staticBases) {
    const nb = normalizeDn(b);
    let best: string | undefined;
    let bestNorm = '';
    if (nb === '') {
      for (const c of contexts) chosen.set(normalizeDn(c), c);
      if (contexts.length > 0) continue;
    }
    for (const c of contexts) {
      const nc = normalizeDn(c);
      if (isUnder(nb, nc) && (best === undefined || nc.length > bestNorm.length)) {
        best = c;
        bestNorm = nc;
      }
    }
    chosen.set(best !== undefined ? bestNorm : nb, best ?? b);
  }
  // A subtree inside another watched one is covered by it.
  const norms = [...chosen.keys()];
  const kept = norms.filter((n) => !norms.some((o) => o !== n && isUnder(n, o)));

  const out: WatchedContext[] = [];
  for (const norm of kept) {
    const base = chosen.get(norm)!;
    let csn: string[] = [];
    const isContext = contexts.some((c) => normalizeDn(c) === norm);
    if (isContext && (syncLoaded || server === 'openldap')) csn = await answered(readContextCsn(pool, base), []);
    if (csn.length > 0 && !syncLoaded && !(await answered(contextCsnKeepsUp(pool, base, csn), false))) csn = [];
    const usn = csn.length > 0 ? undefined : usnSourceFor(rootDse, norm);
    const isAd = adUsn !== undefined && contexts.some((c) => normalizeDn(c) === norm);
    // entryUSN before the changelog when a 389-ds has both: its counter moves only for the
    // watched backend (lastchangenumber for every logged backend), it needs no ACI, and nothing
    // trims it (a changelog trimmed during an outage longer than nsslapd-changelogmaxage loses
    // what changed, and the whole context is expired).
    let cl: WatchedContext['changelog'];
    if (csn.length === 0 && !isAd && !usn && changelog && !isUnder(norm, normalizeDn(changelog.dn))) {
      changelogReadableNow ??= answered(changelogReadable(pool, changelog), false);
      cl = { ...changelog, readable: await changelogReadableNow };
    }
    if (csn.length > 0) out.push({ base, norm, marker: 'contextCSN', csn, csnKeeper: syncLoaded ? 'syncprov' : 'replica', server });
    else if (isAd) out.push({ base, norm, marker: 'uSNChanged', adUsn, ...(dc !== undefined ? { dc } : {}), server });
    else if (usn) out.push({ base, norm, marker: 'entryUSN', usn, server });
    else if (cl && cl.readable !== false) out.push({ base, norm, marker: 'changelog', changelog: cl, server });
    else out.push({ base, norm, marker: 'modifyTimestamp', server, ...(cl ? { changelog: cl } : {}) });
  }
  return out;
}

const SERVER_KIND_ATTRIBUTES = ['vendorName', 'objectClass', 'domainControllerFunctionality'];

/** Tells OpenLDAP, 389-ds and Active Directory (or Samba AD) apart by their root DSEs. */
export function serverKind(rootDse: Entry | undefined): ServerKind {
  if (!rootDse) return 'other';
  const vendor = stringValues(rootDse, 'vendorName').join(' ');
  if (/389|red hat|fedora/i.test(vendor) || stringValues(rootDse, BACKEND_SUFFIX).length > 0) return '389-ds';
  if (stringValues(rootDse, 'objectClass').some((o) => o.toLowerCase() === 'openldaprootdse')) return 'openldap';
  if (stringValues(rootDse, 'domainControllerFunctionality').length > 0) return 'active-directory';
  return 'other';
}
