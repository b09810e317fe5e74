import { ResultCodeError } from 'ldapts';
import type { SearchFailure } from '../contracts/trace.js';
import { clean, referralsOf } from './ldapts-fixes.js';
import { resultMessage } from './result-codes.js';

/**
 * LDAP failures as types. Postfix's dict_ldap sorts every outcome into found / not found /
 * temporary error; the only LDAP result code that is not an error for it is noSuchObject (32),
 * whose meaning depends on where it occurs (spec §4.4, §6.2). So the LDAP layer only needs to
 * tell these apart: noSuchObject, a timeout (socketmap has a TIMEOUT word), a dead connection
 * (worth one reconnect-and-retry, like LDAP_SERVER_DOWN), and everything else.
 */
export type LdapFailureKind = SearchFailure['kind'];

export class LdapFailure extends Error implements SearchFailure {
  constructor(
    readonly kind: LdapFailureKind,
    message: string,
    readonly code?: number,
    readonly server?: string,
    /** A referral result's URLs (code 10), for chase_referrals. */
    readonly referrals?: string[],
  ) {
    super(message);
    this.name = 'LdapFailure';
  }
}

export const LDAP_NO_SUCH_OBJECT = 32;
export const LDAP_REFERRAL = 10;
export const LDAP_SIZE_LIMIT_EXCEEDED = 4;

/**
 * A search's entries, or undefined when the server's size limit cut it short: for the change
 * watcher's polls, which then know only that "many" changed.
 */
export async function sizeLimited<T>(search: Promise<T[]>): Promise<T[] | undefined> {
  try {
    return await search;
  } catch (err) {
    if (err instanceof LdapFailure && err.code === LDAP_SIZE_LIMIT_EXCEEDED) return undefined;
    throw err;
  }
}
const LDAP_TIME_LIMIT_EXCEEDED = 3;

/**
 * Turns what ldapts threw into an LdapFailure. Result codes are typed by ldapts; a timeout or a
 * lost connection is known to the caller from its own timer and the socket's state, so it says
 * so instead of anyone reading message texts.
 */
export function toLdapFailure(
  err: unknown,
  seen: { timedOut?: boolean; connectionLost?: boolean; server?: string } = {},
): LdapFailure {
  if (err instanceof LdapFailure) return err;
  const { server } = seen;
  if (err instanceof ResultCodeError) {
    // `adminLimitExceeded (11): <server text>`: the code by name, whether or not the server said more.
    const message = resultMessage(err.code, clean(err.message));
    if (err.code === LDAP_NO_SUCH_OBJECT) return new LdapFailure('noSuchObject', message, err.code, server);
    if (err.code === LDAP_TIME_LIMIT_EXCEEDED) return new LdapFailure('timeout', message, err.code, server);
    return new LdapFailure('error', message, err.code, server, err.code === LDAP_REFERRAL ? referralsOf(err) : undefined);
  }
  const message = err instanceof Error ? err.message : String(err);
  if (seen.timedOut) return new LdapFailure('timeout', message, undefined, server);
  if (seen.connectionLost) return new LdapFailure('down', message, undefined, server);
  return new LdapFailure('error', message, undefined, server);
}
