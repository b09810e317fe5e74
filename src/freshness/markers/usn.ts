import type { Entry } from 'ldapts';
import { sizeLimited } from '../../ldap/errors.js';
import type { LdapPool } from '../../ldap/pool.js';
import { normalizeDn } from '../../ldap/dn.js';

/**
 * 389-ds's USN plugin as a change marker. Every write to a backend (add, modify, delete,
 * rename) takes the next update sequence number: the entry gets it as `entryusn` (a deleted
 * entry's tombstone too) and the root DSE shows the backend's last one as `lastusn;BACKEND`
 * (`lastusn` alone in global mode, nsslapd-entryusn-global). So one base search of the root DSE
 * tells whether anything changed; `(entryusn>=OLD+1)` — answered from the entryusn index the
 * plugin keeps, hence no lookthrough limit — names the added, modified and renamed entries.
 * Tombstones are hidden from ordinary bind DNs, so deletions and renames' old DNs are found
 * the way the contextCSN marker finds them: by asking which cached DNs still exist.
 */

export const LASTUSN = 'lastusn';
export const BACKEND_SUFFIX = 'nsBackendSuffix';

/** The USN counter that covers a naming context. */
export interface UsnSource {
  /** The backend's name (lower case) whose `lastusn;NAME` counts for the context; '' in global mode. */
  backend: string;
  value: string;
}

/** `lastusn;NAME` values of a root DSE (NAME lower case; '' for plain `lastusn`). */
function lastUsns(rootDse: Entry | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!rootDse) return out;
  for (const [name, v] of Object.entries(rootDse)) {
    const [attr, ...options] = name.toLowerCase().split(';');
    if (attr !== LASTUSN) continue;
    const first = Array.isArray(v) ? v[0] : v;
    if (first === undefined) continue;
    out.set(options.join(';'), Buffer.isBuffer(first) ? first.toString('utf8') : String(first));
  }
  return out;
}

/**
 * The USN counter of the backend holding `contextNorm` (from the root DSE's nsBackendSuffix,
 * `userroot:dc=example,dc=org`), or the global one; undefined when the server shows none.
 */
export function usnSourceFor(rootDse: Entry | undefined, contextNorm: string): UsnSource | undefined {
  const usns = lastUsns(rootDse);
  if (usns.size === 0) return undefined;
  const global = usns.get('');
  if (global !== undefined) return { backend: '', value: global };
  const suffixes = rootDse ? (Object.entries(rootDse).find(([n]) => n.toLowerCase() === BACKEND_SUFFIX.toLowerCase())?.[1] ?? []) : [];
  for (const raw of Array.isArray(suffixes) ? suffixes : [suffixes]) {
    const s = Buffer.isBuffer(raw) ? raw.toString('utf8') : String(raw);
    const colon = s.indexOf(':');
    if (colon < 0) continue;
    const backend = s.slice(0, colon).toLowerCase();
    if (normalizeDn(s.slice(colon + 1)) !== contextNorm) continue;
    const value = usns.get(backend);
    if (value !== undefined) return { backend, value };
  }
  return undefined;
}

/** The current counter of `backend`; undefined when the root DSE no longer shows it. */
export async function readLastUsn(pool: LdapPool, backend: string): Promise<string | undefined> {
  const entries = await pool.search({ base: '', scope: 'base', filter: '(objectClass=*)', attributes: [LASTUSN], deref: 0 });
  return lastUsns(entries[0]).get(backend);
}

export interface UsnPoll {
  /** The counter now (what the next poll compares with). */
  now: string | undefined;
  /** True when the counter moved: something was written (deletions included). */
  moved: boolean;
  /** Added, modified and renamed entries (all attributes). */
  changed: Entry[];
  /** Why the changes cannot be pinned down, when they cannot. */
  unexplained?: string;
}



/**
 * One poll: the root DSE's counter, and when it moved, the entries written since `old`
 * (first only how many, then, if not more than `maxChanged`, the entries themselves).
 */
export async function pollUsn(pool: LdapPool, base: string, source: UsnSource, maxChanged: number): Promise<UsnPoll> {
  const now = await readLastUsn(pool, source.backend);
  if (now === undefined) return { now, moved: true, changed: [], unexplained: 'lastusn disappeared from the root DSE' };
  if (now === source.value) return { now, moved: false, changed: [] };
  const oldN = toBig(source.value);
  const nowN = toBig(now);
  if (oldN === undefined || nowN === undefined || nowN < oldN) {
    return { now, moved: true, changed: [], unexplained: `lastusn went from ${source.value} to ${now} (restored or re-imported backend)` };
  }
  const filter = `(entryusn>=${(oldN + 1n).toString()})`;
  const probe = await sizeLimited(pool.search({ base, scope: 'sub', filter, attributes: ['entryusn'], deref: 0 }));
  if (probe === undefined) return { now, moved: true, changed: [], unexplained: 'more changed entries than the server returns in one search (size limit)' };
  if (probe.length > maxChanged) return { now, moved: true, changed: [], unexplained: `${probe.length} entries changed at once (more than ${maxChanged})` };
  if (probe.length === 0) return { now, moved: true, changed: [] };
  const entries = await sizeLimited(pool.search({ base, scope: 'sub', filter, attributes: ['*', 'entryusn'], deref: 0 }));
  if (entries === undefined) return { now, moved: true, changed: [], unexplained: 'more changed entries than the server returns in one search (size limit)' };
  return { now, moved: true, changed: entries };
}

function toBig(s: string): bigint | undefined {
  return /^-?\d+$/.test(s.trim()) ? BigInt(s.trim()) : undefined;
}
