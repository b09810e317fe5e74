import type { Entry } from 'ldapts';
import { escapeFilterValue } from '../../ldap/escape.js';
import { sizeLimited } from '../../ldap/errors.js';
import type { LdapPool } from '../../ldap/pool.js';
import { normalizeDn } from '../../ldap/dn.js';
import { ChangedEntry } from '../match.js';
import { stringValues } from '../entry-values.js';
import { SIZE_LIMIT_REASON, type ChangeBatch } from '../change-batch.js';

/**
 * Active Directory's change marker: every write on a DC takes the next update sequence number;
 * the root DSE shows the highest one committed (`highestCommittedUSN`), and each entry the USN
 * of its last change (`uSNChanged`, indexed). One base search on the root DSE tells whether
 * anything changed; then `(uSNChanged>=OLD+1)` under the naming context finds what was added or
 * modified. A deleted entry turns into a tombstone under CN=Deleted Objects, out of sight
 * without the Show Deleted control: deletions and renames are found as for contextCSN, by
 * asking which DNs the cached answers were built from still exist (`distinguishedName`, which
 * AD indexes). A removed group member also changes the group itself (its `member`).
 *
 * Polls go over the map's own bound connection (AD refuses anonymous searches by default) and
 * never follow search references (a domain-root search refers to CN=Configuration).
 */

/** LDAP_CAP_ACTIVE_DIRECTORY_OID: the root DSE's supportedCapabilities of an AD DC (Samba's too). */
export const AD_CAPABILITY_OID = '1.2.840.113556.1.4.800';

const VERIFY_BATCH = 100;

export type UsnBatch = ChangeBatch;

/** Whether a root DSE is an AD DC's with a readable highestCommittedUSN. */
export function adUsnOf(rootDse: Entry | undefined): number | undefined {
  if (!stringValues(rootDse, 'supportedCapabilities').includes(AD_CAPABILITY_OID)) return undefined;
  const usn = Number(stringValues(rootDse, 'highestCommittedUSN')[0]);
  return Number.isSafeInteger(usn) && usn >= 0 ? usn : undefined;
}

/**
 * Which DC answers: its root DSE's dsServiceName (its NTDS Settings object). USNs are numbered
 * per DC, so a position means nothing on another one (a failover in server_host, a restart
 * that reached another DC).
 */
export function dcOf(rootDse: Entry | undefined): string | undefined {
  return stringValues(rootDse, 'dsServiceName')[0];
}

/** The root DSE attributes the marker reads. */
export const AD_ROOT_ATTRIBUTES = ['highestCommittedUSN', 'supportedCapabilities', 'dsServiceName'];

export async function readHighestUsn(pool: LdapPool): Promise<{ usn: number | undefined; dc: string | undefined }> {
  const e = await pool.search({ base: '', scope: 'base', filter: '(objectClass=*)', attributes: AD_ROOT_ATTRIBUTES, deref: 0 }, { chase: false });
  return { usn: adUsnOf(e[0]), dc: dcOf(e[0]) };
}

/** Where the previous poll left a context: the DC's highestCommittedUSN, and which DC that was. */
export interface AdPosition {
  usn: number;
  dc?: string;
}

/**
 * One poll: no batch when the USN did not move, else what changed since `old` and the new
 * position. `tracked` gives the normalized DNs the cached answers under `base` were built from.
 */
export async function pollAdUsn(
  pool: LdapPool,
  base: string,
  old: AdPosition,
  tracked: () => string[],
  limits: { maxChanged: number; maxVerify: number },
): Promise<AdPosition & { batch?: UsnBatch }> {
  const { usn: now, dc } = await readHighestUsn(pool);
  if (now === undefined) return { ...old, batch: { changed: [], deleted: new Set(), unexplained: 'highestCommittedUSN is gone from the root DSE' } };
  const at = { usn: now, ...(dc !== undefined ? { dc } : {}) };
  if (old.dc !== undefined && dc !== undefined && dc !== old.dc) {
    return { ...at, batch: { changed: [], deleted: new Set(), unexplained: `another domain controller answers (${dc}, was ${old.dc}); update sequence numbers are its own` } };
  }
  if (now === old.usn) return at;
  const batch: UsnBatch = { changed: [], deleted: new Set() };
  const filter = `(uSNChanged>=${old.usn + 1})`;
  const probe = await sizeLimited(pool.search({ base, scope: 'sub', filter, attributes: ['uSNChanged'], deref: 0 }, { chase: false }));
  if (probe === undefined) batch.unexplained = SIZE_LIMIT_REASON;
  else if (probe.length > limits.maxChanged) batch.unexplained = `${probe.length} entries changed at once (more than ${limits.maxChanged})`;
  else if (probe.length > 0) {
    const entries = await sizeLimited(pool.search({ base, scope: 'sub', filter, attributes: ['*', 'uSNChanged'], deref: 0 }, { chase: false }));
    if (entries === undefined) batch.unexplained = SIZE_LIMIT_REASON;
    else for (const e of entries) batch.changed.push(new ChangedEntry(normalizeDn(e.dn), e));
  }
  if (!batch.unexplained) {
    const dns = tracked();
    if (dns.length > limits.maxVerify) batch.unexplained = `more than ${limits.maxVerify} cached DNs to check for deletions`;
    else {
      const present = new Set<string>();
      for (let i = 0; i < dns.length; i += VERIFY_BATCH) {
        const part = dns.slice(i, i + VERIFY_BATCH);
        const f = `(|${part.map((dn) => `(distinguishedName=${escapeFilterValue(dn)})`).join('')})`;
        for (const e of await pool.search({ base, scope: 'sub', filter: f, attributes: ['1.1'], deref: 0 }, { chase: false })) present.add(normalizeDn(e.dn));
      }
      batch.deleted = new Set(dns.filter((dn) => !present.has(dn)));
    }
  }
  return { ...at, batch };
}
