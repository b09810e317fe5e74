import { LDAP_SIZE_LIMIT_EXCEEDED, LdapFailure } from '../ldap/errors.js';
import type { LdapPool } from '../ldap/pool.js';
import { readContextCsn, type WatchedContext } from './marker.js';
import { readLastUsn } from './markers/usn.js';
import { changelogReadable, hiddenChangelog, readChangelogInfo } from './markers/retro-changelog.js';
import { formatGeneralizedTime } from './markers/timestamps.js';


/**
 * One real poll of a context's marker, as the watcher makes it (same bind, same searches), so
 * `check` finds out before mail flows whether the server will answer it: 389-ds, for one,
 * refuses the modifyTimestamp poll past its lookthrough limit. Resolves with the failure
 * instead of throwing.
 */
export async function probeMarker(pool: LdapPool, c: WatchedContext): Promise<{ ms: number; failure?: LdapFailure }> {
  const t0 = performance.now();
  try {
    switch (c.marker) {
      case 'contextCSN':
        await readContextCsn(pool, c.base);
        break;
      case 'entryUSN': {
        const now = await readLastUsn(pool, c.usn?.backend ?? '');
        if (now === undefined) throw new LdapFailure('error', 'lastusn is not in the root DSE');
        // What the next poll asks when something was written: entries past the current counter.
        const next = /^-?\d+$/.test(now) ? (BigInt(now) + 1n).toString() : now;
        await pool.search({ base: c.base, scope: 'sub', filter: `(entryusn>=${next})`, attributes: ['entryusn'], deref: 0 });
        break;
      }
      case 'changelog': {
        // The root DSE, then the newest records, as the bind sees them (389-ds hides them without an ACI, silently).
        const info = await readChangelogInfo(pool);
        if (info === undefined) throw new LdapFailure('error', 'the root DSE shows no retro changelog (lastchangenumber) any more');
        if ((await changelogReadable(pool, info)) === false) throw hiddenChangelog(info.dn, `the newest records (up to number ${info.last})`);
        break;
      }
      case 'modifyTimestamp': {
        // The steady-state poll: few entries match, but the server may examine every one of them.
        const t = formatGeneralizedTime(Math.floor(Date.now() / 1000));
        await pool.search({ base: c.base, scope: 'sub', filter: `(|(modifyTimestamp>=${t})(createTimestamp>=${t}))`, attributes: ['modifyTimestamp', 'createTimestamp'], deref: 0 }).catch((err: unknown) => {
          // More entries changed in the last minute than the size limit: the watcher copes with that.
          if (err instanceof LdapFailure && err.code === LDAP_SIZE_LIMIT_EXCEEDED) return [];
          throw err;
        });
        break;
      }
    }
    return { ms: performance.now() - t0 };
  } catch (err) {
    return { ms: performance.now() - t0, failure: err instanceof LdapFailure ? err : new LdapFailure('error', err instanceof Error ? err.message : String(err)) };
  }
}
