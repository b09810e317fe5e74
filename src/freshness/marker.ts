import type { Entry } from 'ldapts';
import { LdapFailure } from '../ldap/errors.js';
import type { LdapPool } from '../ldap/pool.js';
import { isUnder, normalizeDn } from './dn.js';
import { adUsnOf } from './markers/ad-usn.js';

/**
 * Which cheap change marker a directory offers, per watched subtree.
 *
 * - `contextCSN`: OpenLDAP with the syncprov overlay keeps, on the naming context's entry, the
 *   CSN of the last write anywhere below it (add, modify, delete, rename). One base search tells
 *   whether anything changed at all.
 * - `uSNChanged`: Active Directory (markers/ad-usn.ts): the root DSE's highestCommittedUSN, then
 *   `(uSNChanged>=N)`; deletions found by checking the cached answers' DNs.
 * - `modifyTimestamp`: any directory. `(modifyTimestamp>=T)` / `(createTimestamp>=T)` find added
 *   and modified entries; a deleted entry leaves nothing behind to find.
 */
export type MarkerKind = 'contextCSN' | 'modifyTimestamp' | 'uSNChanged';

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
  /** highestCommittedUSN at detection (uSNChanged only). */
  usn?: number;
}

/** What each marker sees, for logs, `check` and the docs. */
export const MARKER_SEES: Record<MarkerKind, string> = {
  contextCSN: 'sees additions, modifications, deletions and renames',
  modifyTimestamp: 'sees additions and modifications, NOT deletions or renames (those wait for cache_ttl)',
  uSNChanged: 'sees additions, modifications, deletions and renames',
};

export function describeContext(c: WatchedContext): string {
  if (c.marker === 'uSNChanged') return `highestCommittedUSN, then (uSNChanged>=LAST) under ${JSON.stringify(c.base)} (Active Directory): ${MARKER_SEES.uSNChanged}`;
  return c.marker === 'contextCSN'
    ? `contextCSN of ${JSON.stringify(c.base)} (syncprov): ${MARKER_SEES.contextCSN}`
    : `(modifyTimestamp>=LAST) under ${JSON.stringify(c.base)}: ${MARKER_SEES.modifyTimestamp}`;
}

export function stringValues(entry: Entry | undefined, attr: string): string[] {
  if (!entry) return [];
  const want = attr.toLowerCase();
  for (const [name, v] of Object.entries(entry)) {
    if (name.toLowerCase() !== want) continue;
    const list = Array.isArray(v) ? v : [v];
    return list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
  }
  return [];
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
      pool.search({ base: '', scope: 'base', filter: '(objectClass=*)', attributes: ['namingContexts', 'supportedControl', 'supportedCapabilities', 'highestCommittedUSN'], deref: 0 }, { chase: false }),
      [],
    )
  )[0];
  const usn = adUsnOf(rootDse);
  const contexts = stringValues(rootDse, 'namingContexts');
  const syncLoaded = stringValues(rootDse, 'supportedControl').includes(SYNC_CONTROL_OID);

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
    if (syncLoaded && contexts.some((c) => normalizeDn(c) === norm)) csn = await answered(readContextCsn(pool, base), []);
    if (usn !== undefined && contexts.some((c) => normalizeDn(c) === norm)) out.push({ base, norm, marker: 'uSNChanged', usn });
    else out.push(csn.length > 0 ? { base, norm, marker: 'contextCSN', csn } : { base, norm, marker: 'modifyTimestamp' });
  }
  return out;
}
