import { describe, expect, it } from 'vitest';
import { isSubtype } from '../../src/lookup/attributes.js';
import { isLdapUrl, LdapUrlError, parseLdapUrl } from '../../src/ldap/url.js';
import { FallbackMap, splitExtension } from '../../src/lookup/fallback.js';
import type { LookupMap } from '../../src/contracts/map.js';
import { found, NOTFOUND, temp, type LookupResult } from '../../src/contracts/result.js';

describe('split_addr rules', () => {
  it('splits at the first delimiter of the set, keeping it with the extension', () => {
    expect(splitExtension('user+tag', '+')).toEqual({ bare: 'user', ext: '+tag' });
    expect(splitExtension('user-a+b', '+-')).toEqual({ bare: 'user', ext: '-a+b' });
  });
  it('does not split what Postfix does not split', () => {
    expect(splitExtension('user', '+')).toBeUndefined();
    expect(splitExtension('+tag', '+')).toBeUndefined();
    expect(splitExtension('user+', '+')).toEqual({ bare: 'user', ext: '+' });
    expect(splitExtension('Postmaster', '+')).toBeUndefined();
    expect(splitExtension('MAILER-DAEMON', '-')).toBeUndefined();
    expect(splitExtension('owner-list', '-')).toBeUndefined();
    expect(splitExtension('list-request', '-')).toBeUndefined();
    expect(splitExtension('owner-list', '+')).toBeUndefined();
    expect(splitExtension('a-request', '+-')).toBeUndefined();
    expect(splitExtension('-request', '+-')).toBeUndefined();
    expect(splitExtension('x', '')).toBeUndefined();
  });
});

/** A scripted inner map recording the keys it was asked. */
function scripted(answers: Record<string, LookupResult>): LookupMap & { asked: string[] } {
  const asked: string[] = [];
  return {
    name: 't',
    asked,
    lookup: async (k) => {
      asked.push(k.toString());
      return answers[k.toString()] ?? NOTFOUND;
    },
  };
}

describe('fixed-table fallback emulation', () => {
  it('full key, then without extension, then @domain; stops at the first answer', async () => {
    const inner = scripted({ '@example.org': found(Buffer.from('catchall@x')) });
    const m = new FallbackMap(inner, { recipientDelimiter: '+', propagateExtension: false });
    const r = await m.lookup(Buffer.from('user+tag@example.org'));
    expect(r).toEqual(found(Buffer.from('catchall@x')));
    expect(inner.asked).toEqual(['user+tag@example.org', 'user@example.org', '@example.org']);
  });
  it('a temporary error stops the chain, as in maps_find()', async () => {
    const inner = scripted({ 'user@example.org': temp('ldap down') });
    const m = new FallbackMap(inner, { recipientDelimiter: '+', propagateExtension: false });
    expect((await m.lookup(Buffer.from('user+tag@example.org'))).kind).toBe('temp');
    expect(inner.asked).toEqual(['user+tag@example.org', 'user@example.org']);
  });
  it('propagates the unmatched extension to every address of an alias answer', async () => {
    const inner = scripted({ 'list@example.org': found(Buffer.from('a@x.org,b@y.org,local')) });
    const m = new FallbackMap(inner, { recipientDelimiter: '+', propagateExtension: true });
    expect((await m.lookup(Buffer.from('list+foo@example.org')))).toEqual(found(Buffer.from('a+foo@x.org,b+foo@y.org,local+foo')));
  });
  it('no extension: straight to @domain; no domain: nothing more', async () => {
    const inner = scripted({});
    const m = new FallbackMap(inner, { recipientDelimiter: '+', propagateExtension: false });
    expect((await m.lookup(Buffer.from('user@example.org'))).kind).toBe('notfound');
    expect(inner.asked).toEqual(['user@example.org', '@example.org']);
    inner.asked.length = 0;
    await m.lookup(Buffer.from('user'));
    expect(inner.asked).toEqual(['user']);
  });
});

describe('LDAP URL values (ldap_url_parse)', () => {
  it('recognises URL schemes case-insensitively, with URL: and <> wrapping', () => {
    expect(isLdapUrl('ldap:///dc=x')).toBe(true);
    expect(isLdapUrl('LDAPS://h/dc=x')).toBe(true);
    expect(isLdapUrl('<ldap:///dc=x>')).toBe(true);
    expect(isLdapUrl('URL:ldap:///dc=x')).toBe(true);
    expect(isLdapUrl('cn=ldap://not,dc=x')).toBe(false);
  });
  it('parses base, attributes, scope and filter, percent-decoded, with OpenLDAP defaults', () => {
    expect(parseLdapUrl('ldap://ignored:389/ou=People,dc=example,dc=org?mail,uid?one?(departmentNumber=42)')).toEqual({
      dn: 'ou=People,dc=example,dc=org', attributes: ['mail', 'uid'], scope: 'one', filter: '(departmentNumber=42)',
    });
    expect(parseLdapUrl('ldap:///cn=a%20b,dc=x')).toEqual({ dn: 'cn=a b,dc=x', attributes: [], scope: 'base', filter: '(objectclass=*)' });
    expect(parseLdapUrl('ldap:///dc=x??sub?(cn=%2A)').filter).toBe('(cn=*)');
  });
  it('rejects what ldap_url_parse rejects', () => {
    expect(() => parseLdapUrl('ldap:///dc=x??bogus')).toThrow(LdapUrlError);
    expect(() => parseLdapUrl('ldap:///dc=x?a?b?c?d?e')).toThrow(LdapUrlError);
  });

  // Each row was answered differently by Postfix's ldap: table and the daemon before (found by
  // test/integration/differential-random.test.ts); the expectations are libldap's.
  it('is a URL exactly when ldap_is_ldap_url says so: no trimming, <URL:…> yes, URL:<…> no, pldap yes, cldap no', () => {
    expect(isLdapUrl('<URL:ldap:///dc=x>')).toBe(true);
    expect(isLdapUrl('URL:<ldap:///dc=x>')).toBe(false);
    expect(isLdapUrl('pldap:///dc=x')).toBe(true);
    expect(isLdapUrl('PLDAPS://h/dc=x')).toBe(true);
    expect(isLdapUrl('cldap:///dc=x')).toBe(false);
    expect(isLdapUrl(' ldap:///dc=x')).toBe(false);
  });
  it('subord, subordinate and children are the subordinate scope', () => {
    for (const s of ['subordinate', 'children', 'subord', 'SUBORD']) expect(parseLdapUrl(`ldap:///dc=x??${s}?(cn=a)`).scope).toBe('children');
  });
  it('decodes a field before splitting the attribute list', () => {
    expect(parseLdapUrl('ldap:///dc=x?mail%2Cmaildrop?one').attributes).toEqual(['mail', 'maildrop']);
    expect(parseLdapUrl('ldap:///dc=x?,mail,,uid,?one').attributes).toEqual(['mail', 'uid']);
  });
  it('a bad % escape empties the field; a decoded NUL ends it', () => {
    expect(parseLdapUrl('ldap:///ou=100%zz,dc=x??one?(cn=a)').dn).toBe('');
    expect(parseLdapUrl('ldap:///dc=x?%zz?one?(cn=a)').attributes).toEqual([]);
    expect(parseLdapUrl('ldap:///dc=x%00junk??one').dn).toBe('dc=x');
    expect(() => parseLdapUrl('ldap:///dc=x??one?%zz')).toThrow(LdapUrlError);
  });
  it('trailing spaces, empty extensions and bad ports are errors', () => {
    expect(() => parseLdapUrl('ldap:///dc=x??one?(cn=a) ')).not.toThrow(); // the filter parser refuses it later
    expect(parseLdapUrl('ldap:///dc=x??one?(cn=a) ').filter).toBe('(cn=a) ');
    expect(() => parseLdapUrl('<ldap:///dc=x> ')).toThrow(LdapUrlError);
    expect(() => parseLdapUrl('ldap:///dc=x????')).toThrow(LdapUrlError);
    expect(() => parseLdapUrl('ldap:///dc=x????,')).toThrow(LdapUrlError);
    expect(parseLdapUrl('ldap:///dc=x????e-ext').dn).toBe('dc=x');
    expect(() => parseLdapUrl('ldap://host:abc/dc=x')).toThrow(LdapUrlError);
    expect(() => parseLdapUrl('ldap://host:/dc=x')).toThrow(LdapUrlError);
    expect(() => parseLdapUrl('ldap://[::1/dc=x')).toThrow(LdapUrlError);
    expect(parseLdapUrl('ldap://[::1]:389/dc=x').dn).toBe('dc=x');
  });
  it('without a / after the host there is no DN: the empty base, as libldap searches it', () => {
    for (const u of ['ldap://host?x', 'ldap://host:389?dn', 'ldap://host:389??dn', 'ldap://']) {
      expect(parseLdapUrl(u)).toEqual({ dn: '', attributes: [], scope: 'base', filter: '(objectclass=*)' });
    }
  });
});

describe('attribute descriptions (dict_ldap attrdesc_subtype)', () => {
  it('b is a subtype of a when it is a, or a followed by more options: a text prefix, not a set', () => {
    expect(isSubtype('mail', 'mail')).toBe(true);
    expect(isSubtype('mail', 'MAIL;lang-de')).toBe(true);
    expect(isSubtype('mail;lang-en', 'mail;lang-en;x-y')).toBe(true);
    expect(isSubtype('mail;lang-en', 'mail;lang-de;lang-en')).toBe(false);
    expect(isSubtype('mail', 'mailAlias')).toBe(false);
    expect(isSubtype('mail;lang-de', 'mail')).toBe(false);
  });
});
