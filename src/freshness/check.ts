import type { MapSettings } from '../config/settings.js';
import type { LdapPool } from '../ldap/pool.js';
import { bindIdentity, markerAdvice, pollFailureAdvice, type AdviceContext } from './advice.js';
import { staticBase } from '../ldap/dn.js';
import { describeContext, detectContexts } from './marker.js';
import { probeMarker } from './probe.js';

/**
 * `check` output about freshness for one map: which change marker its server offers for the
 * map's search base, what that marker can and cannot see, and whether a real poll of it works
 * (with server-specific advice). A server without any marker still serves lookups (answers then
 * follow changes only by their TTL), so that alone never fails the check; a poll the server
 * refuses does (`ok: false`): the watcher would be blind.
 */
export async function changeMarkerReport(
  pool: LdapPool,
  searchBase: string,
  settings: Pick<MapSettings, 'changePollInterval' | 'cacheTtl' | 'cacheNegativeTtl'> & Partial<Pick<MapSettings, 'blindCacheTtl'>>,
): Promise<{ lines: string[]; ok: boolean }> {
  if (settings.changePollInterval <= 0) {
    return { ok: true, lines: ['  change watcher: off (change_poll_interval = 0): cached answers follow directory changes only after cache_ttl / cache_negative_ttl'] };
  }
  if (settings.cacheTtl <= 0 && settings.cacheNegativeTtl <= 0) return { ok: true, lines: ['  change watcher: not needed (nothing is cached)'] };
  try {
    const contexts = await detectContexts(pool, [staticBase(searchBase)]);
    const lines: string[] = [];
    let ok = true;
    for (const c of contexts) {
      lines.push(`  change marker: ${describeContext(c)}`);
      const ctx: AdviceContext & { changelogDn?: string } = { bindDn: bindIdentity(pool.settings) };
      if (c.changelog) {
        ctx.changelogDn = c.changelog.dn;
        if (c.changelog.readable === false) ctx.hiddenChangelog = c.changelog.dn;
      }
      const probe = await probeMarker(pool, c);
      if (probe.failure) {
        ok = false;
        const fix = pollFailureAdvice(probe.failure, c.marker, c.server, ctx);
        lines.push(`  change marker poll: FAILED: ${probe.failure.message}: the watcher would be blind (answers fresh at most blind_cache_ttl = ${settings.blindCacheTtl ?? 30} s)${fix ? `; fix: ${fix}` : ''}`);
      } else {
        lines.push(`  change marker poll: ok (${Math.round(probe.ms)} ms)`);
      }
      if (c.marker === 'changelog' && c.changelog?.readable === undefined) {
        lines.push(`  note: the retro changelog is empty: whether the bind DN may read its records shows after the first write (the watcher then fails loudly if not)`);
      }
      if (c.marker === 'modifyTimestamp') {
        const advice = markerAdvice(c.marker, c.server, ctx);
        lines.push(
          `  note: modifyTimestamp does not see deletions or renames: a removed entry stays in cached answers for up to cache_ttl (${settings.cacheTtl} s)${advice ? `; ${advice}` : ''}`,
        );
      }
    }
    lines.push(`  change watcher: every ${settings.changePollInterval} s`);
    return { lines, ok };
  } catch (err) {
    return { ok: true, lines: [`  change marker: could not be determined: ${err instanceof Error ? err.message : String(err)}`] };
  }
}

/** changeMarkerReport's lines only. */
export async function changeMarkerLines(
  pool: LdapPool,
  searchBase: string,
  settings: Pick<MapSettings, 'changePollInterval' | 'cacheTtl' | 'cacheNegativeTtl'>,
): Promise<string[]> {
  return (await changeMarkerReport(pool, searchBase, settings)).lines;
}
