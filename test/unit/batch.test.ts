import type { Entry, Filter } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { DnBatcher, type BatchHost } from '../../src/ldap/batch.js';
import { LdapFailure } from '../../src/ldap/errors.js';
import type { SearchRequest } from '../../src/ldap/search-request.js';

const ATTRS = ['mail', 'contact'];
const dnReq = (base: string): SearchRequest => ({ base, scope: 'base', filter: '(objectclass=*)', attributes: ATTRS, deref: 0, binary: true });

interface Fake {
  host: BatchHost;
  /** Filters (as strings) of the batch searches, with their bases. */
  batches: { base: string; filter: string }[];
  singles: string[];
  settled: string[];
  reports: [number, number][];
}

/**
 * A directory of `entries` (DN as the server spells it) under naming context dc=example,dc=org.
 * `batch` decides what a batch search returns: by default the entries whose DN matches a
 * requested one case-insensitively (like distinguishedNameMatch, roughly).
 */
function fake(entries: string[], opts: { contexts?: string[]; entryDn?: boolean; batch?: (dns: string[]) => Entry[] | Error } = {}): Fake {
  const f: Fake = { batches: [], singles: [], settled: [], reports: [], host: undefined as unknown as BatchHost };
  const contexts = opts.contexts ?? ['dc=example,dc=org'];
  const dnsOf = (filter: Filter): string[] => [...filter.toString().matchAll(/\(entryDN=([^)]*)\)/g)].map((m) => m[1]!);
  f.host = {
    searchOne: async (req) => {
      f.singles.push(req.base);
      const e = entries.find((d) => d.toLowerCase() === req.base.toLowerCase());
      if (!e) throw new LdapFailure('noSuchObject', 'No such object', 32);
      return [{ dn: e, mail: Buffer.from(`${e}@mail`) }];
    },
    settling: (key) => { f.settled.push(key); },
    searchRaw: async (req, filter) => {
      if (req.base === '') return { entries: [{ dn: '', namingContexts: contexts }], server: 'ldap://x' };
      if (req.scope === 'base') return { entries: opts.entryDn === false ? [] : [{ dn: req.base }], server: 'ldap://x' };
      const dns = dnsOf(filter);
      f.batches.push({ base: req.base, filter: filter.toString() });
      const r = opts.batch ? opts.batch(dns) : entries.filter((e) => dns.some((d) => d.toLowerCase() === e.toLowerCase())).map((e) => ({ dn: e, mail: Buffer.from(`${e}@mail`) }));
      if (r instanceof Error) throw r;
      return { entries: r, server: 'ldap://x' };
    },
    report: (a, b) => { f.reports.push([a, b]); },
  };
  return f;
}

async function fetchAll(b: DnBatcher, dns: string[]): Promise<(string | Entry[])[]> {
  return Promise.all(dns.map((dn) => b.fetch(dnReq(dn), `key:${dn}`).catch((e: unknown) => (e instanceof LdapFailure ? `${e.kind}` : String(e)))));
}

describe('DnBatcher', () => {
  it('only plain DN base searches with dereference = 0 are eligible', () => {
    expect(DnBatcher.eligible(dnReq('uid=a,dc=example,dc=org'))).toBe(true);
    expect(DnBatcher.eligible({ ...dnReq('uid=a,dc=example,dc=org'), deref: 2 })).toBe(false);
    expect(DnBatcher.eligible({ ...dnReq('uid=a,dc=example,dc=org'), scope: 'one' })).toBe(false);
    expect(DnBatcher.eligible({ ...dnReq('uid=a,dc=example,dc=org'), filter: '(objectClass=person)' })).toBe(false);
    expect(DnBatcher.eligible(dnReq(''))).toBe(false);
  });

  it('answers exact spellings from the batch; other spellings, missing DNs and DNs outside every context get their own search', async () => {
    const f = fake(['uid=a,ou=People,dc=example,dc=org', 'uid=b,ou=People,dc=example,dc=org']);
    const b = new DnBatcher(f.host);
    const got = await fetchAll(b, [
      'uid=a,ou=People,dc=example,dc=org', // exact: from the batch
      'UID=B,ou=People,dc=example,dc=org', // found by the batch, other spelling: own search
      'uid=ghost,ou=People,dc=example,dc=org', // not found: own search (noSuchObject)
      'cn=x,dc=other,dc=com', // under no context: own search, not batched
    ]);
    expect(got[0]).toEqual([{ dn: 'uid=a,ou=People,dc=example,dc=org', mail: Buffer.from('uid=a,ou=People,dc=example,dc=org@mail') }]);
    expect(got[1]).toEqual([{ dn: 'uid=b,ou=People,dc=example,dc=org', mail: Buffer.from('uid=b,ou=People,dc=example,dc=org@mail') }]);
    expect(got[2]).toBe('noSuchObject');
    expect(got[3]).toBe('noSuchObject');
    expect(f.batches).toHaveLength(1);
    expect(f.batches[0]!.base).toBe('dc=example,dc=org');
    expect(f.singles.sort()).toEqual(['UID=B,ou=People,dc=example,dc=org', 'cn=x,dc=other,dc=com', 'uid=ghost,ou=People,dc=example,dc=org']);
    expect(f.reports).toEqual([[1, 2]]);
    expect(f.settled.sort()).toEqual(got.map((_, i) => `key:${['uid=a,ou=People,dc=example,dc=org', 'UID=B,ou=People,dc=example,dc=org', 'uid=ghost,ou=People,dc=example,dc=org', 'cn=x,dc=other,dc=com'][i]}`).sort());
  });

  it('a DN the batch returns twice is not taken from it', async () => {
    const f = fake(['uid=a,dc=example,dc=org', 'uid=b,dc=example,dc=org'], { batch: () => [{ dn: 'uid=a,dc=example,dc=org' }, { dn: 'uid=a,dc=example,dc=org' }, { dn: 'uid=b,dc=example,dc=org' }] });
    await fetchAll(new DnBatcher(f.host), ['uid=a,dc=example,dc=org', 'uid=b,dc=example,dc=org']);
    expect(f.singles).toEqual(['uid=a,dc=example,dc=org']);
    expect(f.reports).toEqual([[1, 1]]);
  });

  it('chunks by maxDns and by bytes; the longest matching naming context is the base', async () => {
    const people = Array.from({ length: 25 }, (_, i) => `uid=p${i},ou=People,dc=example,dc=org`);
    const f = fake([...people, 'cn=g,ou=Sub,dc=example,dc=org'], { contexts: ['dc=example,dc=org', 'ou=Sub,dc=example,dc=org'] });
    await fetchAll(new DnBatcher(f.host, { maxDns: 10 }), [...people, 'cn=g,ou=Sub,dc=example,dc=org', 'cn=h,OU=SUB,DC=example,dc=org']);
    expect(f.batches.map((x) => x.base)).toEqual(['dc=example,dc=org', 'dc=example,dc=org', 'dc=example,dc=org', 'ou=Sub,dc=example,dc=org']);
    expect(f.batches.map((x) => (x.filter.match(/entryDN=/g) ?? []).length)).toEqual([10, 10, 5, 2]);
    const g = fake(people);
    await fetchAll(new DnBatcher(g.host, { maxBytes: 100 }), people);
    expect(g.batches.every((x) => (x.filter.match(/entryDN=/g) ?? []).length <= 2)).toBe(true);
  });

  it('without entryDN support nothing is batched', async () => {
    const f = fake(['uid=a,dc=example,dc=org', 'uid=b,dc=example,dc=org'], { entryDn: false });
    const got = await fetchAll(new DnBatcher(f.host), ['uid=a,dc=example,dc=org', 'uid=b,dc=example,dc=org']);
    expect(got.every((x) => Array.isArray(x))).toBe(true);
    expect(f.batches).toEqual([]);
    expect(f.singles).toHaveLength(2);
  });

  it('a failed batch sends its DNs to their own searches; three in a row pause batching', async () => {
    const f = fake(['uid=a,dc=example,dc=org', 'uid=b,dc=example,dc=org'], { batch: () => new LdapFailure('error', 'Size limit exceeded', 4) });
    const b = new DnBatcher(f.host);
    for (let i = 0; i < 3; i++) {
      const got = await fetchAll(b, ['uid=a,dc=example,dc=org', 'uid=b,dc=example,dc=org']);
      expect(got.every((x) => Array.isArray(x))).toBe(true);
    }
    expect(f.batches).toHaveLength(3);
    expect(f.reports).toEqual([[0, 2], [0, 2], [0, 2]]);
    expect(b.active).toBe(false);
  });
});
