import type { Filter } from 'ldapts';
import { LdapFailure } from './errors.js';
import { FilterError, LDAP_FILTER_ERROR, parseFilter } from './filter.js';
import { withDeref } from './ldapts-fixes.js';
import type { SearchRequest } from './search-request.js';

export const DEREF = ['never', 'search', 'find', 'always'] as const;

/** Parsed filters by deref setting and filter string, oldest first; a filter object is only read when sent. */
const filterCache = new Map<string, Filter>();
const FILTER_CACHE_MAX = 512;

/**
 * The filter string as ldapts Filter objects, from a small cache: every nested DN search sends
 * the same `(objectclass=*)`, and a busy key's top-level filter repeats too. The object also
 * carries the search's alias dereferencing (see ldapts-fixes.ts), so each setting has its own.
 * Throws LdapFailure for a filter libldap would refuse.
 */
export function parsedFilter(text: string, deref: SearchRequest['deref'] = 0): Filter {
  const key = deref === 0 ? text : `${deref}\u0000${text}`;
  let filter = filterCache.get(key);
  if (filter !== undefined) return filter;
  try {
    // Our own libldap-compatible parser: ldapts's would mis-encode \XX escapes above 0x7F.
    filter = withDeref(parseFilter(text), DEREF[deref]);
  } catch (err) {
    // Postfix gets LDAP_FILTER_ERROR (-7) from libldap: a temporary error.
    if (err instanceof FilterError) throw new LdapFailure('error', err.message, LDAP_FILTER_ERROR);
    throw err;
  }
  if (filterCache.size >= FILTER_CACHE_MAX) filterCache.delete(filterCache.keys().next().value as string);
  filterCache.set(key, filter);
  return filter;
}
