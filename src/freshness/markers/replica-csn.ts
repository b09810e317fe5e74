import type { LdapPool } from '../../ldap/pool.js';

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
  if (newest === '') return undefined;
  const n = newest;
  const t = Date.UTC(+n.slice(0, 4), +n.slice(4, 6) - 1, +n.slice(6, 8), +n.slice(8, 10), +n.slice(10, 12), +n.slice(12, 14)) + 1000;
  const d = new Date(t);
  const p = (v: number, w = 2): string => String(v).padStart(w, '0');
  const stamp = `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return `(modifyTimestamp>=${stamp})`;
}

/** True when nothing under `base` was written after the newest contextCSN: the CSN keeps up. */
export async function contextCsnKeepsUp(pool: LdapPool, base: string, csn: readonly string[]): Promise<boolean> {
  const filter = afterNewestCsn(csn);
  if (filter === undefined) return false;
  const newer = await pool.search({ base, scope: 'sub', filter, attributes: ['1.1'], deref: 0 }, { chase: false });
  return newer.length === 0;
}
