import { LdapFailure } from '../ldap/errors.js';
import { describeCode } from '../ldap/result-codes.js';
import type { MarkerKind, ServerKind } from './marker.js';

/**
 * What an admin should do about a change marker, per server kind: in `check`, and in the
 * warning a failing poll logs. Only advice that applies to the server at hand: a 389-ds admin
 * gets dsconf commands, not OpenLDAP's syncprov.
 */

const ADMIN_LIMIT_EXCEEDED = 11;
const INSUFFICIENT_ACCESS = 50;
const UNWILLING = 53;

/** How to get a marker that sees deletions, or to make the one in use cheap; undefined when nothing is better. */
export function markerAdvice(marker: MarkerKind, server: ServerKind | undefined): string | undefined {
  if (marker !== 'modifyTimestamp') return undefined;
  switch (server) {
    case '389-ds':
      return 'enable the USN plugin (`dsconf INSTANCE plugin usn enable`, then restart the instance): the watcher then polls lastusn/entryusn, which sees deletions and needs no unindexed search; ' +
        'otherwise index the timestamps (`dsconf INSTANCE backend index add --attr modifyTimestamp --index-type eq --reindex BACKEND`, the same for createTimestamp)';
    case 'openldap':
      return 'load syncprov on the database (`overlay syncprov`; no replication needed) for contextCSN, which sees deletions; otherwise `index modifyTimestamp,createTimestamp eq`';
    case 'active-directory':
      return 'Active Directory: answers that include a deleted entry wait for cache_ttl; keep cache_ttl short';
    default:
      return 'index modifyTimestamp and createTimestamp (equality) on the server so the poll is cheap; deletions wait for cache_ttl';
  }
}

/** The fix for a poll the server refused, naming its result code; undefined for outages (those fix themselves). */
export function pollFailureAdvice(err: unknown, marker: MarkerKind | undefined, server: ServerKind | undefined): string | undefined {
  if (!(err instanceof LdapFailure) || err.code === undefined) return undefined;
  const code = describeCode(err.code);
  const better = marker ? markerAdvice(marker, server) : undefined;
  switch (err.code) {
    case ADMIN_LIMIT_EXCEEDED:
      return server === '389-ds'
        ? `${code}: 389-ds examined more entries than its lookthrough limit (nsslapd-lookthroughlimit, 5000) allows the bind DN for the unindexed ${marker ?? 'change'} poll; ${better ?? 'index the attributes the poll searches'}; or raise nsLookThroughLimit on the bind DN's entry`
        : `${code}: the server refuses the poll search past an administrative limit; index the attributes it searches (modifyTimestamp, createTimestamp) or raise the bind DN's limits`;
    case INSUFFICIENT_ACCESS:
      return `${code}: give the bind DN read and search access to the naming context, its timestamps and the root DSE`;
    case UNWILLING:
      return `${code}: the server will not run the poll search (unindexed searches refused?); ${better ?? 'index the attributes it searches'}`;
    default:
      return better ? `${code}: ${better}` : undefined;
  }
}
