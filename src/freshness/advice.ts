import { LdapFailure } from '../ldap/errors.js';
import { describeCode } from '../ldap/result-codes.js';
import type { MarkerKind, ServerKind } from './marker.js';
import { RECORD_ATTRIBUTES } from './markers/retro-changelog.js';
import type { ConnectionSettings } from '../ldap/connect.js';

/**
 * What an admin should do about a change marker, per server kind: in `check`, and in the
 * warning a failing poll logs. Only advice that applies to the server at hand: a 389-ds admin
 * gets dsconf commands, not OpenLDAP's syncprov.
 */

const ADMIN_LIMIT_EXCEEDED = 11;
const INSUFFICIENT_ACCESS = 50;
const UNWILLING = 53;

/** What advice may name beyond the marker: the map's bind DN, a retro changelog the bind could not read. */
export interface AdviceContext {
  /** An ACI's userdn for the map's bind: `ldap:///DN`, `ldap:///anyone` (bindIdentity). */
  bindDn?: string;
  /** The DN of a retro changelog whose entries the bind could not read. */
  hiddenChangelog?: string;
}

/**
 * The ACI that lets the bind DN read the retro changelog's records: only the attributes the
 * poll reads (never `changes`, which holds the written values, password hashes included).
 */
export function changelogAci(changelogDn: string, who: string | undefined): string {
  who ??= 'ldap:///THE-MAP-BIND-DN';
  return `add to ${JSON.stringify(changelogDn)}, as the Directory Manager: ` +
    `aci: (targetattr="${RECORD_ATTRIBUTES.join(' || ')}")(version 3.0; acl "ldap-socketmap change watcher"; allow (read, search, compare) userdn="${who}";)`;
}

/** The userdn an ACI names for a map's bind (a SASL identity maps to a DN only the server knows). */
export function bindIdentity(s: Pick<ConnectionSettings, 'bind' | 'bindDn'>): string {
  if (s.bind === 'simple' && s.bindDn !== '') return `ldap:///${s.bindDn}`;
  if (s.bind === 'sasl') return 'ldap:///THE-DN-YOUR-SASL-IDENTITY-MAPS-TO';
  return 'ldap:///anyone';
}

/** How to get a marker that sees deletions, or to make the one in use cheap; undefined when nothing is better. */
export function markerAdvice(marker: MarkerKind, server: ServerKind | undefined, ctx: AdviceContext = {}): string | undefined {
  if (marker !== 'modifyTimestamp') return undefined;
  const changelog = ctx.hiddenChangelog !== undefined
    ? `the retro changelog is on but its records are hidden from the bind DN: to have the watcher read it (sees deletions and renames), ${changelogAci(ctx.hiddenChangelog, ctx.bindDn)}; or `
    : '';
  switch (server) {
    case '389-ds':
      return changelog + 'enable the USN plugin (`dsconf INSTANCE plugin usn enable`, then restart the instance): the watcher then polls lastusn/entryusn, which sees deletions and needs no unindexed search; ' +
        'otherwise index the timestamps (`dsconf INSTANCE backend index add --attr modifyTimestamp --index-type eq --reindex BACKEND`, the same for createTimestamp)';
    case 'openldap':
      return 'load syncprov on the database (`overlay syncprov`; no replication needed) for contextCSN, which sees deletions; otherwise `index modifyTimestamp,createTimestamp eq`';
    case 'active-directory':
      return 'Active Directory: answers that include a deleted entry wait for cache_ttl; keep cache_ttl short';
    default:
      return changelog + 'index modifyTimestamp and createTimestamp (equality) on the server so the poll is cheap; deletions wait for cache_ttl';
  }
}

/** The fix for a poll the server refused, naming its result code; undefined for outages (those fix themselves). */
export function pollFailureAdvice(err: unknown, marker: MarkerKind | undefined, server: ServerKind | undefined, ctx: AdviceContext & { changelogDn?: string } = {}): string | undefined {
  if (!(err instanceof LdapFailure) || err.code === undefined) return undefined;
  const code = describeCode(err.code);
  if (marker === 'changelog' && err.code === INSUFFICIENT_ACCESS) {
    return `${code}: let the bind DN read the retro changelog: ${changelogAci(ctx.changelogDn ?? 'cn=changelog', ctx.bindDn)}${server === '389-ds' ? '; or enable the USN plugin (`dsconf INSTANCE plugin usn enable`, then restart), which needs no ACI' : ''}`;
  }
  const better = marker ? markerAdvice(marker, server, ctx) : undefined;
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
