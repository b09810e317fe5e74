import type { Entry } from 'ldapts';
import { AdminLimitExceededError } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { CachedMap } from '../../src/cache/cache-map.js';
import { toLdapFailure } from '../../src/ldap/errors.js';
import { markerAdvice, pollFailureAdvice } from '../../src/freshness/advice.js';
import { describeContext, serverKind } from '../../src/freshness/marker.js';
import { usnSourceFor } from '../../src/freshness/markers/usn.js';
import type { LookupMap } from '../../src/contracts/map.js';
import { found, NOTFOUND, type LookupResult } from '../../src/contracts/result.js';
import { socketmapAnswers } from '../../src/protocol/socketmap-answers.js';

/** 389-ds 2.3's root DSE with the USN plugin and the retro changelog on (as seen by a bound user). */
const ROOT_389 = {
  dn: '',
  objectClass: 'top',
  namingContexts: 'dc=example,dc=org',
  nsBackendSuffix: ['userroot:dc=example,dc=org', 'changelog:cn=changelog'],
  'lastusn;userroot': '3',
  'lastusn;changelog': '2',
  vendorName: '389 Project',
} as unknown as Entry;

describe('the 389-ds USN marker', () => {
  it('picks the counter of the backend holding the naming context', () => {
    expect(usnSourceFor(ROOT_389, 'dc=example,dc=org')).toEqual({ backend: 'userroot', value: '3' });
    expect(usnSourceFor(ROOT_389, 'cn=changelog')).toEqual({ backend: 'changelog', value: '2' });
    expect(usnSourceFor(ROOT_389, 'dc=other,dc=com')).toBeUndefined();
  });

  it('uses the global counter in global mode (nsslapd-entryusn-global)', () => {
    expect(usnSourceFor({ dn: '', lastusn: '42', nsBackendSuffix: 'userroot:dc=example,dc=org' } as unknown as Entry, 'dc=example,dc=org')).toEqual({ backend: '', value: '42' });
  });

  it('is absent without the plugin (OpenLDAP, 389-ds with USN off)', () => {
    expect(usnSourceFor({ dn: '', namingContexts: 'dc=example,dc=org' } as unknown as Entry, 'dc=example,dc=org')).toBeUndefined();
    expect(usnSourceFor(undefined, 'dc=example,dc=org')).toBeUndefined();
  });

  it('is described as seeing deletions', () => {
    expect(describeContext({ base: 'dc=example,dc=org', norm: 'dc=example,dc=org', marker: 'entryUSN', usn: { backend: 'userroot', value: '3' } })).toBe(
      'lastusn;userroot and (entryusn>=LAST) under "dc=example,dc=org" (389-ds USN plugin): sees additions, modifications, deletions and renames',
    );
  });
});

describe('server kinds and advice', () => {
  it('tells servers apart by their root DSEs', () => {
    expect(serverKind(ROOT_389)).toBe('389-ds');
    expect(serverKind({ dn: '', objectClass: ['top', 'OpenLDAProotDSE'] } as unknown as Entry)).toBe('openldap');
    expect(serverKind({ dn: '', domainControllerFunctionality: '7' } as unknown as Entry)).toBe('active-directory');
    expect(serverKind(undefined)).toBe('other');
  });

  it('gives each server its own fix', () => {
    expect(markerAdvice('modifyTimestamp', '389-ds')).toMatch(/dsconf INSTANCE plugin usn enable/);
    expect(markerAdvice('modifyTimestamp', '389-ds')).not.toMatch(/syncprov/);
    expect(markerAdvice('modifyTimestamp', 'openldap')).toMatch(/syncprov/);
    expect(markerAdvice('entryUSN', '389-ds')).toBeUndefined();
    const refused = toLdapFailure(new AdminLimitExceededError(''));
    const fix = pollFailureAdvice(refused, 'modifyTimestamp', '389-ds')!;
    expect(fix).toMatch(/^adminLimitExceeded \(11\): 389-ds examined more entries than its lookthrough limit/);
    expect(fix).toMatch(/backend index add --attr modifyTimestamp --index-type eq/);
    expect(fix).toMatch(/nsLookThroughLimit/);
    // An outage has no fix to give: it ends by itself.
    expect(pollFailureAdvice(toLdapFailure(new Error('ECONNREFUSED'), { connectionLost: true }), 'modifyTimestamp', '389-ds')).toBeUndefined();
  });
});

describe('blind_cache_ttl (CachedMap.capFreshness)', () => {
  class Fixed implements LookupMap {
    readonly name = 'aliases';
    calls = 0;
    async lookup(key: Buffer): Promise<LookupResult> {
      this.calls++;
      return key.toString() === 'x' ? found(Buffer.from('v')) : NOTFOUND;
    }
  }
  const clock = { t: 1_000_000 };
  const make = (inner: LookupMap) =>
    new CachedMap(inner, { ttlSec: 3600, negativeTtlSec: 3600, staleIfErrorSec: 600, maxEntries: 100, maxBytes: 1 << 20, refreshAheadFraction: 1, now: () => clock.t }, socketmapAnswers());

  it('caps held and new answers while set, and stops capping new ones when lifted', async () => {
    const inner = new Fixed();
    const c = make(inner);
    await c.lookup(Buffer.from('x'));
    clock.t += 40_000;
    // The held answer is 40 s old: past a 30 s cap, it expires now.
    expect(c.capFreshness(30_000)).toBe(1);
    await c.lookup(Buffer.from('x'));
    expect(inner.calls).toBe(2);
    // A new answer stays fresh for 30 s only.
    clock.t += 29_000;
    await c.lookup(Buffer.from('x'));
    expect(inner.calls).toBe(2);
    clock.t += 2_000;
    await c.lookup(Buffer.from('x'));
    expect(inner.calls).toBe(3);
    // Lifted: answers stored from now on keep the hour.
    c.capFreshness(undefined);
    clock.t += 31_000;
    await c.lookup(Buffer.from('x'));
    expect(inner.calls).toBe(4);
    clock.t += 600_000;
    await c.lookup(Buffer.from('x'));
    expect(inner.calls).toBe(4);
  });
});
