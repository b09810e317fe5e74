import { describe, expect, it } from 'vitest';
import { canonical, isUnder, normalizeDn, parsedCanonical, rdnsOf, staticBase, withinScope } from '../../src/ldap/dn.js';
import { prng } from '../support/prng.js';
import { formatGeneralizedTime, parseGeneralizedTime } from '../../src/freshness/markers/timestamps.js';

describe('normalizeDn', () => {
  it('makes the spellings of one DN equal', () => {
    const canonical = normalizeDn('uid=alice,ou=People,dc=example,dc=org');
    expect(canonical).toBe('uid=alice,ou=people,dc=example,dc=org');
    for (const s of [
      'UID=Alice, ou=people,DC=Example , dc=ORG',
      '  uid = alice ;ou=People;dc=example;dc=org  ',
      'uid=\\61lice,ou=People,dc=example,dc=org',
      'uid="alice",ou=People,dc=example,dc=org',
    ]) expect(normalizeDn(s), s).toBe(canonical);
  });

  it('keeps escaped separators inside values and decodes hex UTF-8', () => {
    expect(normalizeDn('cn=Smith\\, John,ou=People,dc=example,dc=org')).toBe('cn=smith\\, john,ou=people,dc=example,dc=org');
    expect(normalizeDn('cn=Smith\\2C John,ou=People,dc=example,dc=org')).toBe('cn=smith\\, john,ou=people,dc=example,dc=org');
    expect(normalizeDn('uid=J\\C3\\BCrgen,ou=People,dc=example,dc=org')).toBe(normalizeDn('uid=jürgen,ou=People,dc=example,dc=org'));
    expect(rdnsOf(normalizeDn('cn=Smith\\, John,ou=People,dc=example,dc=org'))).toEqual(['cn=smith\\, john', 'ou=people', 'dc=example', 'dc=org']);
  });

  it('sorts multi-valued RDNs, collapses inner spaces, handles the root and garbage', () => {
    expect(normalizeDn('sn=B+cn=A,dc=x')).toBe(normalizeDn('CN=a + SN=b,dc=x'));
    expect(normalizeDn('cn=team   lead,dc=x')).toBe('cn=team lead,dc=x');
    expect(normalizeDn('')).toBe('');
    expect(normalizeDn('not a dn')).toBe('not a dn');
  });

  it('the lower-case shortcut for plain DNs gives exactly what the parser gives', () => {
    const rand = prng(4514);
    const pick = (s: string) => s[Math.floor(rand() * s.length)]!;
    // Mostly plain characters, now and then one the shortcut must not accept.
    const chars = 'aAzZ09-._@:/\'*!?$%&~^|' + '     ' + ',,,,===' + '+;"#<>\\\tü';
    let shortcut = 0;
    for (let i = 0; i < 20_000; i++) {
      const n = 1 + Math.floor(rand() * 4);
      const rdns: string[] = [];
      for (let r = 0; r < n; r++) {
        let v = '';
        const len = Math.floor(rand() * 8);
        for (let j = 0; j < len; j++) v += rand() < 0.8 ? pick('abcXYZ019 -._@') : pick(chars);
        rdns.push(`${pick('cCuUoO')}${rand() < 0.3 ? pick('nNiIdD') : ''}=${v}`);
      }
      const dn = rdns.join(rand() < 0.9 ? ',' : ', ');
      const a = canonical(dn);
      const b = parsedCanonical(dn);
      expect(a, JSON.stringify(dn)).toBe(b);
      if (a === dn.toLowerCase() && b !== undefined) shortcut++;
    }
    expect(shortcut).toBeGreaterThan(2_000);
    expect(canonical('uid=P00001,ou=People,dc=example,dc=org')).toBe('uid=p00001,ou=people,dc=example,dc=org');
    expect(canonical('cn=John Smith,ou=People,dc=example,dc=org')).toBe('cn=john smith,ou=people,dc=example,dc=org');
  });

  it('stays correct when more DNs pass through than the memo and intern tables hold', () => {
    for (let i = 0; i < 70_000; i++) expect(normalizeDn(`uid=U${i},ou=People,dc=x`)).toBe(`uid=u${i},ou=people,dc=x`);
    expect(normalizeDn('UID=U1, ou=People,dc=x')).toBe('uid=u1,ou=people,dc=x');
  });

  it('scope tests on normalized DNs', () => {
    const e = rdnsOf(normalizeDn('uid=a,ou=People,dc=example,dc=org'));
    expect(withinScope(e, 'ou=people,dc=example,dc=org', 'one')).toBe(true);
    expect(withinScope(e, 'ou=people,dc=example,dc=org', 'sub')).toBe(true);
    expect(withinScope(e, 'dc=example,dc=org', 'one')).toBe(false);
    expect(withinScope(e, 'dc=example,dc=org', 'sub')).toBe(true);
    expect(withinScope(e, 'uid=a,ou=people,dc=example,dc=org', 'base')).toBe(true);
    expect(withinScope(e, 'ou=groups,dc=example,dc=org', 'sub')).toBe(false);
    expect(withinScope(e, '', 'sub')).toBe(true);
    // An escaped comma is not a level.
    expect(withinScope(rdnsOf(normalizeDn('cn=x\\,ou=people,dc=org')), 'ou=people,dc=org', 'sub')).toBe(false);
    expect(isUnder('dc=example,dc=org', 'dc=example,dc=org')).toBe(true);
    expect(isUnder('dc=org', 'dc=example,dc=org')).toBe(false);
  });

  it('staticBase drops the RDNs with %-expansions', () => {
    expect(staticBase('ou=%d,ou=Domains,dc=example,dc=org')).toBe('ou=Domains,dc=example,dc=org');
    expect(staticBase('ou=People,dc=example,dc=org')).toBe('ou=People,dc=example,dc=org');
    expect(staticBase('uid=%u,ou=%2,dc=example,dc=org')).toBe('dc=example,dc=org');
    expect(staticBase('dc=%1')).toBe('');
  });
});

describe('GeneralizedTime', () => {
  it('parses the forms servers send and formats the filter value', () => {
    expect(parseGeneralizedTime('20240102030405Z')).toBe(Date.UTC(2024, 0, 2, 3, 4, 5) / 1000);
    expect(parseGeneralizedTime('20240102030405.123Z')).toBe(Date.UTC(2024, 0, 2, 3, 4, 5) / 1000);
    expect(parseGeneralizedTime('20240102050405+0200')).toBe(Date.UTC(2024, 0, 2, 3, 4, 5) / 1000);
    expect(parseGeneralizedTime('202401020304Z')).toBe(Date.UTC(2024, 0, 2, 3, 4, 0) / 1000);
    expect(parseGeneralizedTime('yesterday')).toBeUndefined();
    expect(formatGeneralizedTime(Date.UTC(2024, 0, 2, 3, 4, 5) / 1000)).toBe('20240102030405Z');
  });
});
