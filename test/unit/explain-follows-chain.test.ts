/**
 * explain reports what the served chain did, not what a copy of its rules predicts: it runs the
 * very chain objects (cache included, asked to look only), so changing a rule in its one place
 * changes explain's report without explain being edited.
 */
import type { Entry } from 'ldapts';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CachedMap } from '../../src/cache/cache-map.js';
import { Uncached } from '../../src/cache/uncached.js';
import { parseCf } from '../../src/config/cf-file.js';
import { defaultMapSettings } from '../../src/config/settings.js';
import { mapConfigFromCf } from '../../src/config/map-config.js';
import { explainLookup, type ExplainTarget } from '../../src/explain/explain.js';
import { LdapFailure } from '../../src/ldap/errors.js';
import type { LdapPool } from '../../src/ldap/pool.js';
import { DeadlineMap } from '../../src/lookup/deadline.js';
import { LdapMap } from '../../src/lookup/ldap-map.js';
import { socketmapAnswers } from '../../src/protocol/socketmap-answers.js';

const CF = 'server_host = ldap://ldap.test/\nsearch_base = dc=t\nquery_filter = (mail=%s)\nresult_attribute = uid\n';

function setup() {
  let now = 1_000_000;
  let down = false;
  const pool = {
    connected: true,
    failingServers: [],
    ensureConnected: async () => {},
    search: async (): Promise<Entry[]> => {
      if (down) throw new LdapFailure('down', 'Connection closed', undefined, 'ldap://ldap.test/');
      return [{ dn: 'uid=a,dc=t', uid: [Buffer.from('a')] } as unknown as Entry];
    },
    close: async () => {},
  } as unknown as LdapPool;
  const config = mapConfigFromCf(parseCf(CF, '/test/m.cf'));
  const settings = { ...defaultMapSettings(), staleIfError: 600 };
  const ldap = new LdapMap('m', config, pool, { smtputf8: true, loopHandling: 'postfix' });
  const cache = new CachedMap(ldap, { ttlSec: 60, negativeTtlSec: 60, maxEntries: 10, maxBytes: 1e6, staleIfErrorSec: 600, now: () => now }, socketmapAnswers());
  const target: ExplainTarget = {
    name: 'm', file: '/test/m.cf', config, settings, ldap,
    served: new DeadlineMap(cache, 5000),
    direct: new DeadlineMap(new Uncached(ldap), 5000),
  };
  return { target, cache, advance: (s: number) => { now += s * 1000; }, fail: () => { down = true; } };
}

afterEach(() => vi.restoreAllMocks());

describe('explain follows the served chain', () => {
  it('asks the served chain itself, looking only', async () => {
    const { target } = setup();
    const spy = vi.spyOn(target.served, 'lookup');
    await explainLookup(target, Buffer.from('a@t'), { source: 'daemon' });
    expect(spy).toHaveBeenCalledWith(Buffer.from('a@t'), expect.objectContaining({ lookOnly: true }));
  });

  it('stale_if_error as the cache applies it, and as it applies it once the rule is changed in its one place', async () => {
    const { target, cache, advance, fail } = setup();
    await cache.lookup(Buffer.from('a@t'));
    advance(120);
    fail();
    const before = await explainLookup(target, Buffer.from('a@t'), { source: 'daemon' });
    expect(before.answer).toMatchObject({ source: 'stale', kind: 'found', value: 'a' });
    expect(before.ldapAnswer.kind).toBe('temp');
    expect(before.cache).toMatchObject({ state: 'stale', staleForMs: 540_000 });

    // The cache's one rule for "may this entry still be served": now never once expired.
    const original = (CachedMap.prototype as unknown as { servable: (e: { expiresAt: number } | undefined, now: number) => unknown }).servable;
    vi.spyOn(CachedMap.prototype as unknown as { servable: typeof original }, 'servable').mockImplementation(function (this: unknown, e, now) {
      return e && now < e.expiresAt ? original.call(this, e, now) : undefined;
    });
    const after = await explainLookup(target, Buffer.from('a@t'), { source: 'daemon' });
    expect(after.answer).toMatchObject({ source: 'ldap', kind: 'temp' });
    expect(after.cache).toMatchObject({ state: 'absent' });
    // And a real request meets the same rule.
    expect((await target.served.lookup(Buffer.from('a@t'))).kind).toBe('temp');
  });
});
