import type { Entry } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { completeRanges, incompleteRanges, parseRanged, RangeRetrievalError } from '../../src/ldap/range.js';

describe('ranged attribute values (AD MaxValRange)', () => {
  it('reads the range option wherever it stands among the options', () => {
    expect(parseRanged('member;range=0-1499')).toEqual({ name: 'member;range=0-1499', base: 'member', low: 0, high: 1499 });
    expect(parseRanged('member;Range=1500-*')).toMatchObject({ base: 'member', low: 1500, high: '*' });
    expect(parseRanged('member;x-opt;range=3-4')).toMatchObject({ base: 'member;x-opt', low: 3, high: 4 });
    expect(parseRanged('member')).toBeUndefined();
    expect(parseRanged('member;range=a-b')).toBeUndefined();
  });

  it('finds only ranges with more to fetch', () => {
    const e = { dn: 'cn=g', mail: 'g@x', 'member;range=0-1': ['a', 'b'], 'other;range=0-*': ['z'] } as unknown as Entry;
    expect(incompleteRanges(e).map((r) => r.name)).toEqual(['member;range=0-1']);
  });

  it('fetches every remaining range and keeps the attribute in its place under its plain name', async () => {
    const all = ['m0', 'm1', 'm2', 'm3', 'm4'];
    const asked: string[] = [];
    // ldapts lists the requested `member` too, empty, after what the server sent.
    const e = { dn: 'cn=g', 'member;range=0-1': all.slice(0, 2), mail: 'g@x', member: [] } as unknown as Entry;
    const out = await completeRanges(e, async (dn, attr) => {
      asked.push(attr);
      const low = Number(/range=(\d+)/.exec(attr)![1]);
      const high = Math.min(low + 1, all.length - 1);
      const end = high === all.length - 1 ? '*' : String(high);
      return { dn, [`member;range=${low}-${end}`]: all.slice(low, high + 1) } as unknown as Entry;
    });
    expect(asked).toEqual(['member;range=2-*', 'member;range=4-*']);
    expect(Object.keys(out)).toEqual(['dn', 'member', 'mail']);
    expect(out.member).toEqual(all);
  });

  it('refuses to answer from part of a group when a range does not come', async () => {
    const e = { dn: 'cn=g', 'member;range=0-1': ['a', 'b'] } as unknown as Entry;
    await expect(completeRanges(e, async (dn) => ({ dn }) as Entry)).rejects.toBeInstanceOf(RangeRetrievalError);
  });
});
