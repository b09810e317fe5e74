import { AndFilter, BerWriter, EqualityFilter, OrFilter, PresenceFilter } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { EntryDnFilter } from '../../src/ldap/batch.js';

/** What ldapts itself writes for (&(objectClass=*)(|(entryDN=dn)…)). */
function reference(dns: string[]): Buffer {
  const w = new BerWriter();
  new AndFilter({
    filters: [
      new PresenceFilter({ attribute: 'objectClass' }),
      new OrFilter({ filters: dns.map((dn) => new EqualityFilter({ attribute: 'entryDN', value: Buffer.from(dn, 'utf8') })) }),
    ],
  }).write(w);
  return w.buffer;
}

function ours(dns: string[]): Buffer {
  const w = new BerWriter();
  new EntryDnFilter(new Map(dns.map((dn) => [dn, Buffer.byteLength(dn)]))).write(w);
  return w.buffer;
}

describe('EntryDnFilter: the batch filter, BER-encoded by hand', () => {
  it.each([
    ['one short DN', ['uid=a,dc=example,dc=org']],
    ['non-ASCII and escapes', ['uid=jürgen,ou=People,dc=example,dc=org', 'cn=Smith\\2C John,ou=People,dc=example,dc=org', 'cn=Σίσυφος,dc=x']],
    ['item lengths around 127/128 and 255/256', ['x'.repeat(110), 'y'.repeat(111), 'z'.repeat(112), 'w'.repeat(240), 'v'.repeat(250), 'u'.repeat(300)]],
    ['a DN over 64 KiB', ['cn=' + 'q'.repeat(70_000)]],
    ['a hundred DNs (OR over 0xffff bytes not needed, but over 0xff)', Array.from({ length: 100 }, (_, i) => `uid=p${i},ou=People,dc=example,dc=org`)],
    ['empty OR', []],
  ])('%s: same bytes as ldapts', (_name, dns) => {
    expect(ours(dns).equals(reference(dns))).toBe(true);
  });

  it('shows as a filter string, and JSON-serialises cheaply', () => {
    const f = new EntryDnFilter(new Map([['uid=a,dc=x', 10], ['uid=b,dc=x', 10]]));
    expect(f.toString()).toBe('(&(objectClass=*)(|(entryDN=uid=a,dc=x)(entryDN=uid=b,dc=x)))');
    expect(JSON.stringify({ filter: f })).toBe('{"filter":"(&(objectClass=*)(|(entryDN=…) × 2))"}');
  });
});
