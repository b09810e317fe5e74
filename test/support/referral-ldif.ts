/**
 * LDIF for the referral suites (referrals.test.ts, referral-results.test.ts): entries under
 * dc=example,dc=org, and referral objects (objectClass referral, one `ref` URL per value).
 */
export const SUFFIX = 'dc=example,dc=org';

export const top = `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n`;

export const ou = (name: string, parent = SUFFIX): string => `dn: ou=${name},${parent}\nobjectClass: organizationalUnit\nou: ${name}\n\n`;

export const person = (dn: string, uid: string, mail: string): string =>
  `dn: ${dn}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nmail: ${mail}\n\n`;

/** A mailing list: listName keys, mail values, contact member DNs (special_result_attribute). */
export const list = (dn: string, names: string[], mails: string[], contacts: string[]): string =>
  [
    `dn: ${dn}`, 'objectClass: groupOfNames', 'objectClass: extensibleObject', `cn: ${/^cn=([^,]+)/.exec(dn)?.[1] ?? 'x'}`,
    'member: cn=nobody', ...names.map((n) => `listName: ${n}`), ...mails.map((m) => `mail: ${m}`),
    ...contacts.map((c) => `contact: ${c}`), '', '',
  ].join('\n');

/** A referral object named by `rdnAttr` (its RDN's value is set from the DN). */
export const referral = (dn: string, rdnAttr: string, refs: string[]): string =>
  [`dn: ${dn}`, 'objectClass: referral', 'objectClass: extensibleObject', `${rdnAttr}: ${/^[^=]+=([^,]+)/.exec(dn)?.[1]}`, ...refs.map((r) => `ref: ${r}`), '', ''].join('\n');
