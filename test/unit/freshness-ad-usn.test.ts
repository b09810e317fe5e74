/**
 * Active Directory's marker: USNs are numbered per DC, so a position (from the last poll or a
 * cache snapshot) is only compared on the DC that gave it.
 */
import type { Entry } from 'ldapts';
import { describe, expect, it } from 'vitest';
import type { LdapPool } from '../../src/ldap/pool.js';
import type { SearchRequest } from '../../src/ldap/search-request.js';
import { AD_CAPABILITY_OID, pollAdUsn } from '../../src/freshness/markers/ad-usn.js';
import { detectContexts } from '../../src/freshness/marker.js';

const DC1 = 'CN=NTDS Settings,CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=ad,DC=example,DC=org';
const DC2 = DC1.replace('CN=DC1', 'CN=DC2');

function fakeDc(state: { dc: string; usn: number; changed?: string[] }) {
  const searches: SearchRequest[] = [];
  const pool = {
    settings: { servers: [{ url: 'ldap://dc1/' }, { url: 'ldap://dc2/' }] },
    search: async (req: SearchRequest): Promise<Entry[]> => {
      searches.push(req);
      if (req.base === '') {
        return [{
          dn: '', supportedCapabilities: [AD_CAPABILITY_OID], highestCommittedUSN: [String(state.usn)], dsServiceName: [state.dc],
          namingContexts: ['DC=ad,DC=example,DC=org'], domainControllerFunctionality: ['7'],
        } as unknown as Entry];
      }
      if (req.filter.startsWith('(uSNChanged>=')) return (state.changed ?? []).map((dn) => ({ dn, uSNChanged: [String(state.usn)] }) as unknown as Entry);
      return [];
    },
  };
  return { pool: pool as unknown as LdapPool, searches };
}

const LIMITS = { maxChanged: 100, maxVerify: 100 };

describe('the AD marker across domain controllers', () => {
  it('records which DC the USN is of at detection', async () => {
    const { pool } = fakeDc({ dc: DC1, usn: 4000 });
    const [c] = await detectContexts(pool, ['OU=Mail,DC=ad,DC=example,DC=org']);
    expect(c).toMatchObject({ marker: 'uSNChanged', adUsn: 4000, dc: DC1 });
  });

  it('on the same DC, reads what changed since the position', async () => {
    const { pool, searches } = fakeDc({ dc: DC1, usn: 4005, changed: ['CN=x,DC=ad,DC=example,DC=org'] });
    const r = await pollAdUsn(pool, 'DC=ad,DC=example,DC=org', { usn: 4000, dc: DC1 }, () => [], LIMITS);
    expect(searches.some((s) => s.filter === '(uSNChanged>=4001)')).toBe(true);
    expect(r).toMatchObject({ usn: 4005, dc: DC1 });
    expect(r.batch?.unexplained).toBeUndefined();
    expect(r.batch?.changed.map((e) => e.dn)).toEqual(['cn=x,dc=ad,dc=example,dc=org']);
  });

  it('another DC answering makes the change unexplained (its numbers are not comparable), and its USN the new position', async () => {
    // A lower USN on the other DC would have hidden every change between the two numbers.
    const { pool, searches } = fakeDc({ dc: DC2, usn: 1200 });
    const r = await pollAdUsn(pool, 'DC=ad,DC=example,DC=org', { usn: 4000, dc: DC1 }, () => [], LIMITS);
    expect(r.usn).toBe(1200);
    expect(r.dc).toBe(DC2);
    expect(r.batch?.unexplained).toMatch(/another domain controller answers/);
    expect(searches.filter((s) => s.base !== '')).toEqual([]);
  });
});
