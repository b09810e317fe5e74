import type { LdapPool } from '../../ldap/pool.js';
import { formatGeneralizedTime, parseGeneralizedTime } from './timestamps.js';

/**
 * contextCSN without syncprov. On an OpenLDAP replica that only consumes (syncrepl, no syncprov
 * overlay), syncrepl still moves the suffix's contextCSN with every replicated write, deletions
 * included, but the root DSE does not announce the sync control, so nothing says the CSN is
 * alive: a database once loaded from a provider's LDIF keeps a contextCSN that never moves
 * again. The test: every write also sets modifyTimestamp (replicated from the provider with the
 * entryCSN), so an entry modified after the newest CSN's second proves the CSN is not kept.
 * The watcher runs it when it picks the marker and again every RECHECK_MS while the CSN stands
 * still, and goes back to modifyTimestamp when it fails.
 */

export const RECHECK_MS = 60_000;

/** `(modifyTimestamp>=T)` with T one second past the newest CSN's time (CSNs carry microseconds, timestamps seconds). */
export function afterNewestCsn(csn: readonly string[]): string | undefined {
  let newest = '';
  for (const c of csn) {
    const m = /^(\d{14})/.exec(c);
    if (m && m[1]! > newest) newest = m[1]!;
  }
  const sec = newest === '' ? undefined : parseGeneralizedTime(`${newest}Z`);
  return sec === undefined ? undefined : `(modifyTimestamp>=${formatGeneralizedTime(sec + 1)})`;
}

/** True when nothing under `base` was written after the newest contextCSN: the CSN keeps up. */
export async function contextCsnKeepsUp(pool: LdapPool, base: string, csn: readonly string[]): Promise<boolean> {
  const filter = afterNewestCsn(csn);
  if (filter === undefined) return false;
  const newer = await pool.search({ base, scope: 'sub', filter, attributes: ['1.1'], deref: 0 }, { chase: false });
  return newer.length === 0;
}
