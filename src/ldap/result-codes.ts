/**
 * LDAP result codes by number (RFC 4511 §4.1.9 and Appendix A, plus the codes of RFC 3909,
 * RFC 4370/6171 and the LDAP assertion/no-op drafts that servers send in practice), so that
 * every LDAP failure a log line or `explain` shows names its code: `adminLimitExceeded (11)`,
 * never a bare `Code: 0xb`. Many servers (389-ds in particular) send no diagnostic text at all,
 * and then the name is all an admin has to go on.
 */
const NAMES: Readonly<Record<number, string>> = {
  0: 'success',
  1: 'operationsError',
  2: 'protocolError',
  3: 'timeLimitExceeded',
  4: 'sizeLimitExceeded',
  5: 'compareFalse',
  6: 'compareTrue',
  7: 'authMethodNotSupported',
  8: 'strongerAuthRequired',
  10: 'referral',
  11: 'adminLimitExceeded',
  12: 'unavailableCriticalExtension',
  13: 'confidentialityRequired',
  14: 'saslBindInProgress',
  16: 'noSuchAttribute',
  17: 'undefinedAttributeType',
  18: 'inappropriateMatching',
  19: 'constraintViolation',
  20: 'attributeOrValueExists',
  21: 'invalidAttributeSyntax',
  32: 'noSuchObject',
  33: 'aliasProblem',
  34: 'invalidDNSyntax',
  36: 'aliasDereferencingProblem',
  48: 'inappropriateAuthentication',
  49: 'invalidCredentials',
  50: 'insufficientAccessRights',
  51: 'busy',
  52: 'unavailable',
  53: 'unwillingToPerform',
  54: 'loopDetect',
  64: 'namingViolation',
  65: 'objectClassViolation',
  66: 'notAllowedOnNonLeaf',
  67: 'notAllowedOnRDN',
  68: 'entryAlreadyExists',
  69: 'objectClassModsProhibited',
  71: 'affectsMultipleDSAs',
  80: 'other',
  118: 'canceled',
  119: 'noSuchOperation',
  120: 'tooLate',
  121: 'cannotCancel',
  122: 'assertionFailed',
  123: 'authorizationDenied',
  4096: 'syncRefreshRequired',
  16654: 'noOperation',
};

/** `adminLimitExceeded`, or `resultCode` for a number no RFC names. */
export function resultCodeName(code: number): string {
  return NAMES[code] ?? 'resultCode';
}

/** `adminLimitExceeded (11)`. */
export function describeCode(code: number): string {
  return `${resultCodeName(code)} (${code})`;
}

/**
 * The message of a failed LDAP operation: the code by name and number, then the server's
 * diagnostic text when it sent one. `ldaptsMessage` is what ldapts puts in its ResultCodeError
 * (`<diagnostic> Code: 0x..`); its hex suffix is dropped, the name says it better.
 */
export function resultMessage(code: number, ldaptsMessage: string): string {
  const diagnostic = ldaptsMessage.replace(/\s*Code: 0x[0-9a-f]+\s*$/i, '').trim();
  return diagnostic === '' ? describeCode(code) : `${describeCode(code)}: ${diagnostic}`;
}
