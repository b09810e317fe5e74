import type { Entry } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { ChangedEntry, FilterCache, mayMatch } from '../../src/freshness/match.js';

const person = new ChangedEntry('uid=bob,ou=people,dc=example,dc=org', {
  dn: 'uid=bob,ou=People,dc=example,dc=org',
  objectClass: ['inetOrgPerson'],
  uid: 'bob',
  cn: 'Bob Builder',
  mail: ['robert@example.org', 'Bob.Builder@Example.ORG'],
  telephoneNumber: '+1 555-1234',
  'description;lang-de': 'Baumeister',
} as Entry);

const filters = new FilterCache();
const may = (f: string) => mayMatch(filters.get(f), person);

describe('mayMatch: could the changed entry now be in the search result?', () => {
  it('equality under loose normalization (case, spaces, hyphens)', () => {
    expect(may('(mail=bob.builder@example.org)')).toBe(true);
    expect(may('(MAIL=ROBERT@EXAMPLE.ORG)')).toBe(true);
    expect(may('(telephoneNumber=+15551234)')).toBe(true);
    expect(may('(mail=alice@example.org)')).toBe(false);
    expect(may('(listName=bob)')).toBe(false);
  });

  it('aliases and attribute options', () => {
    expect(may('(commonName=bob builder)')).toBe(true);
    expect(may('(rfc822Mailbox=robert@example.org)')).toBe(true);
    expect(may('(description=baumeister)')).toBe(true);
  });

  it('and / or / not in three-valued logic', () => {
    expect(may('(&(objectClass=*)(mail=robert@example.org))')).toBe(true);
    expect(may('(&(objectClass=*)(mail=alice@example.org))')).toBe(false);
    expect(may('(|(mail=alice@example.org)(uid=bob))')).toBe(true);
    expect(may('(!(uid=bob))')).toBe(false);
    expect(may('(!(uid=alice))')).toBe(true);
    // objectClass equality may hold through a superclass the entry does not list: unknown.
    expect(may('(&(objectClass=person)(uid=bob))')).toBe(true);
    expect(may('(&(objectClass=person)(uid=alice))')).toBe(false);
    expect(may('(!(objectClass=person))')).toBe(true);
  });

  it('substrings and presence', () => {
    expect(may('(mail=rob*@example.org)')).toBe(true);
    expect(may('(mail=*builder*)')).toBe(true);
    expect(may('(mail=alice*)')).toBe(false);
    expect(may('(uid=*)')).toBe(true);
    expect(may('(listName=*)')).toBe(false);
  });

  it('what cannot be decided here is a yes', () => {
    expect(may('(uid>=a)')).toBe(true);
    expect(may('(uid<=a)')).toBe(true);
    expect(may('(cn~=bob)')).toBe(true);
    expect(may('(uid:caseExactMatch:=bob)')).toBe(true);
    expect(may('(&(uid>=a)(mail=alice@example.org))')).toBe(false);
    expect(may('(((broken')).toBe(true);
  });
});
