/**
 * The four outcomes of a table lookup, as Postfix's dict layer knows them (util/dict.h), carried
 * from LDAP up to the wire. Servers switch on `kind`; nothing matches on message strings.
 *
 * - found:    a non-empty value (Postfix treats an empty found value as a configuration error,
 *             so a map must never produce one).
 * - notfound: the directory was asked (or did not need to be) and has no answer.
 * - temp:     "I could not ask" or "the answer is unusable right now": Postfix defers the mail.
 * - timeout:  a temp error caused by a deadline; socketmap has a distinct TIMEOUT word for it.
 * - perm:     a configuration error on our side (unknown map name). Never used for LDAP trouble.
 */
export type LookupResult =
  | { kind: 'found'; value: Buffer }
  | { kind: 'notfound' }
  | { kind: 'temp'; reason: string }
  | { kind: 'timeout'; reason: string }
  | { kind: 'perm'; reason: string };

export const NOTFOUND: LookupResult = Object.freeze({ kind: 'notfound' }) as LookupResult;

export function found(value: Buffer): LookupResult {
  return { kind: 'found', value };
}

export function temp(reason: string): LookupResult {
  return { kind: 'temp', reason };
}

export function timeout(reason: string): LookupResult {
  return { kind: 'timeout', reason };
}

export function perm(reason: string): LookupResult {
  return { kind: 'perm', reason };
}

/** What the observers need of an answer: its kind (a LookupResult or a ReadyAnswer). */
export interface AnswerKind {
  readonly kind: LookupResult['kind'];
}
