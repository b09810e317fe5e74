import type { MapSettings } from '../config/settings.js';
import type { LdapPool } from '../ldap/pool.js';
import { staticBase } from '../ldap/dn.js';
import { describeContext, detectContexts } from './marker.js';

/**
 * `check` output about freshness for one map: which change marker its server offers for the
 * map's search base and what that marker can and cannot see. Never fails the check: a server
 * without any marker still serves lookups (answers then follow changes only by their TTL).
 */
export async function changeMarkerLines(
  pool: LdapPool,
  searchBase: string,
  settings: Pick<MapSettings, 'changePollInterval' | 'cacheTtl' | 'cacheNegativeTtl'>,
): Promise<string[]> {
  if (settings.changePollInterval <= 0) {
    return ['  change watcher: off (change_poll_interval = 0): cached answers follow directory changes only after cache_ttl / cache_negative_ttl'];
  }
  if (settings.cacheTtl <= 0 && settings.cacheNegativeTtl <= 0) return ['  change watcher: not needed (nothing is cached)'];
  try {
    const contexts = await detectContexts(pool, [staticBase(searchBase)]);
    const lines = contexts.map((c) => `  change marker: ${describeContext(c)}`);
    if (contexts.some((c) => c.marker === 'modifyTimestamp')) {
      lines.push(
        `  note: modifyTimestamp does not see deletions or renames: a removed entry stays in cached answers for up to cache_ttl (${settings.cacheTtl} s); load syncprov for contextCSN`,
      );
    }
    lines.push(`  change watcher: every ${settings.changePollInterval} s`);
    return lines;
  } catch (err) {
    return [`  change marker: could not be determined: ${err instanceof Error ? err.message : String(err)}`];
  }
}
