/**
 * The change watcher against an in-memory directory that answers the watcher's searches the way
 * slapd does (root DSE, contextCSN, entryCSN>=, entryDN=, modifyTimestamp>=). The real thing is
 * in test/integration/freshness.test.ts; here the corners: failures, recovery, deletions,
 * unexplained changes, the NOTFOUND rule, same-second modifications.
 */
import type { Entry } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { ListMap } from '../support/list-map.js';
import { CachedMap } from '../../src/cache/cache-map.js';
import { normalizeDn } from '../../src/ldap/dn.js';
import { afterNewestCsn } from '../../src/freshness/markers/replica-csn.js';
import { ChangeWatcher, type ChangeKind, type WatcherOptions } from '../../src/freshness/watcher.js';
import { formatGeneralizedTime } from '../../src/freshness/markers/timestamps.js';
import { LdapFailure } from '../../src/ldap/errors.js';
import type { LdapPool } from '../../src/ldap/pool.js';
import type { SearchRequest } from '../../src/ldap/search-request.js';
import { setLogLevel } from '../../src/log.js';
import { socketmapAnswers } from '../../src/protocol/socketmap-answers.js';
import { sleep } from '../support/wait.js';

const SUFFIX = 'dc=x';
setLogLevel('error');

class FakeServer {
  entries = new Map<string, Record<string, string[]>>();
  down = false;
  syncprov = true;
  /** A syncrepl replica without syncprov: contextCSN kept and shown, no sync control announced. */
  replica = false;
  /** Writes move contextCSN (false: a CSN left over from an import, which nothing moves). */
  keepsCsn = true;
  /** Server clock, seconds (near the daemon's: the first timestamp baseline allows 60 s of skew). */
  clock = Math.floor(Date.now() / 1000);
  private seq = 0;
  csn = '';
  searches: SearchRequest[] = [];
  sizeLimit = 500;
  /** Return entryCSN with entries (slapd does; other servers have none). */
  returnCsn = true;
  /** How many entries each search returned (same order as `searches`). */
  returned: number[] = [];

  constructor() {
    this.put('dc=x', { objectClass: ['organization'] });
    this.put('ou=Groups,dc=x', { objectClass: ['organizationalUnit'] });
    this.put('ou=People,dc=x', { objectClass: ['organizationalUnit'] });
  }

  private nextCsn(): string {
    this.seq++;
    return `${formatGeneralizedTime(this.clock).slice(0, 14)}.${String(this.seq).padStart(6, '0')}Z#000000#000#000000`;
  }

  put(dn: string, attrs: Record<string, string[]>): void {
    const csn = this.nextCsn();
    const ts = formatGeneralizedTime(this.clock);
    const prev = this.entries.get(dn);
    this.entries.set(dn, { ...attrs, entryCSN: [csn], modifyTimestamp: [ts], createTimestamp: prev?.createTimestamp ?? [ts] });
    if (this.keepsCsn) this.csn = csn;
  }

  remove(dn: string): void {
    this.entries.delete(dn);
    const csn = this.nextCsn();
    if (this.keepsCsn) this.csn = csn;
  }

  readonly pool = {
    settings: { servers: [{ url: 'ldap://fake/' }] },
    search: async (req: SearchRequest): Promise<Entry[]> => {
      this.searches.push(req);
      if (this.down) throw new LdapFailure('down', 'connection refused');
      if (req.base === '') {
        return [{ dn: '', objectClass: ['top', 'OpenLDAProotDSE'], namingContexts: [SUFFIX], supportedControl: this.syncprov ? ['1.3.6.1.4.1.4203.1.9.1.1'] : [] } as Entry];
      }
      if (req.scope === 'base' && req.attributes.includes('contextCSN')) {
        return [{ dn: req.base, ...((this.syncprov || this.replica) && this.csn ? { contextCSN: [this.csn] } : {}) } as Entry];
      }
      let pick: (attrs: Record<string, string[]>, dn: string) => boolean;
      const csnClauses = [...req.filter.matchAll(/\(entryCSN>=([^)]*)\)/g)].map((m) => m[1]!);
      const dnClauses = [...req.filter.matchAll(/\(entryDN=((?:[^)\\]|\\.)*)\)/g)].map((m) => normalizeDn(m[1]!.replace(/\\5c/gi, '\\')));
      const ts = /\(modifyTimestamp>=(\d+Z)\)/.exec(req.filter)?.[1];
      if (csnClauses.length) pick = (a) => csnClauses.some((c) => a.entryCSN![0]! >= c);
      else if (dnClauses.length) pick = (_a, dn) => dnClauses.includes(normalizeDn(dn));
      else if (ts) pick = (a) => a.modifyTimestamp![0]! >= ts || a.createTimestamp![0]! >= ts;
      else throw new Error(`fake server: unexpected search ${req.filter}`);
      const out: Entry[] = [];
      for (const [dn, attrs] of this.entries) {
        if (!pick(attrs, dn)) continue;
        const copy: Record<string, string[]> = { ...attrs };
        if (!this.returnCsn) delete copy.entryCSN;
        out.push({ dn, ...copy } as Entry);
      }
      if (out.length > this.sizeLimit) throw new LdapFailure('error', 'Size limit exceeded', 4);
      this.returned[this.searches.length - 1] = out.length;
      return out;
    },
  };
}

function setup(opts: { syncprov?: boolean; now?: () => number; watcher?: Partial<WatcherOptions> } = {}) {
  const server = new FakeServer();
  server.syncprov = opts.syncprov ?? true;
  server.put('uid=alice,ou=People,dc=x', { mail: ['alice@x'] });
  server.put('uid=bob,ou=People,dc=x', { mail: ['bob@x'] });
  server.put('uid=carol,ou=People,dc=x', { mail: ['carol@x'] });
  server.put('cn=sales,ou=Groups,dc=x', { listName: ['sales'], member: ['uid=alice,ou=People,dc=x', 'uid=bob,ou=People,dc=x'] });
  server.put('cn=eng,ou=Groups,dc=x', { listName: ['eng'], member: ['uid=carol,ou=People,dc=x'] });
  const inner = new ListMap('aliases', server, 'ou=Groups,dc=x');
  const cache = new CachedMap(inner, { ttlSec: 3600, negativeTtlSec: 3600, maxEntries: 100, maxBytes: 1e6, staleIfErrorSec: 3600, trackDependencies: true }, socketmapAnswers());
  const events: { changes: [ChangeKind, number][]; invalidated: number; errors: number } = { changes: [], invalidated: 0, errors: 0 };
  const watcher = new ChangeWatcher(server.pool as unknown as LdapPool, [{ name: 'aliases', cache, searchBase: 'ou=Groups,dc=x' }], {
    intervalMs: 1000,
    now: opts.now,
    ...opts.watcher,
    observer: {
      changes: (_s, kind, n) => events.changes.push([kind, n]),
      invalidated: (_m, n) => { events.invalidated += n; },
      pollError: () => { events.errors++; },
    },
  });
  const ask = async (key: string) => {
    const r = await cache.lookup(Buffer.from(key));
    return r.kind === 'found' ? r.value.toString() : r.kind;
  };
  return { server, inner, cache, watcher, events, ask };
}

describe('ChangeWatcher with contextCSN', () => {
  it('detects the marker, then expires exactly what a modification touched', async () => {
    const { server, inner, watcher, events, ask } = setup();
    await watcher.pollNow();
    expect(watcher.status()).toMatchObject({ state: 'ok', contexts: [{ base: SUFFIX, marker: 'contextCSN' }] });
    expect(await ask('sales')).toBe('alice@x,bob@x');
    expect(await ask('eng')).toBe('carol@x');
    expect(await ask('ops')).toBe('notfound');
    expect(inner.calls).toBe(3);

    await watcher.pollNow();
    expect(events.invalidated).toBe(0);

    server.put('uid=bob,ou=People,dc=x', { mail: ['robert@x'] });
    await watcher.pollNow();
    expect(events.changes).toEqual([['modified', 1]]);
    // sales (built from bob) and the NOTFOUND for ops; eng stays.
    expect(events.invalidated).toBe(2);
    expect(await ask('sales')).toBe('alice@x,robert@x');
    expect(await ask('eng')).toBe('carol@x');
    expect(inner.calls).toBe(4);
  });

  it('finds deletions by checking which cached DNs still exist', async () => {
    const { server, watcher, events, ask } = setup();
    await watcher.pollNow();
    await ask('sales');
    await ask('eng');
    await ask('ops');
    server.remove('uid=alice,ou=People,dc=x');
    await watcher.pollNow();
    expect(events.changes).toEqual([['deleted', 1]]);
    // Only sales: nothing was added, so the NOTFOUND answer stands.
    expect(events.invalidated).toBe(1);
    expect(await ask('sales')).toBe('bob@x');
    const verify = server.searches.filter((s) => s.filter.includes('entryDN='));
    expect(verify.length).toBe(1);
    expect(verify[0]!.attributes).toEqual(['1.1']);
  });

  it('a new entry joining a subtree search expires the answers whose filter it may match', async () => {
    const { server, watcher, events, ask } = setup();
    await watcher.pollNow();
    await ask('sales');
    await ask('eng');
    // A second entry with listName=sales joins the result of the sales search.
    server.put('cn=sales2,ou=Groups,dc=x', { listName: ['sales'], member: ['uid=carol,ou=People,dc=x'] });
    await watcher.pollNow();
    expect(events.invalidated).toBe(1);
  });

  it('while LDAP is down nothing is invalidated; on recovery only real changes count', async () => {
    let now = 0;
    const { server, watcher, events, ask } = setup({ now: () => now });
    await watcher.pollNow();
    await ask('sales');
    await ask('ops');
    server.down = true;
    for (let i = 0; i < 5; i++) {
      now += 1000;
      await watcher.pollNow();
    }
    expect(events.errors).toBe(5);
    expect(events.invalidated).toBe(0);
    expect(watcher.status()).toMatchObject({ state: 'failing', failingLong: false, lastError: 'connection refused' });
    expect(watcher.status().failingForSec).toBe(4);
    now += 60_000;
    expect(watcher.status().failingLong).toBe(true);
    // Back, nothing changed meanwhile: no invalidation at all (no flush storm).
    server.down = false;
    await watcher.pollNow();
    expect(watcher.status()).toMatchObject({ state: 'ok', failingLong: false });
    expect(events.invalidated).toBe(0);
    // Down again while bob changes; back: exactly that change is applied.
    server.down = true;
    await watcher.pollNow();
    server.down = false;
    server.put('uid=bob,ou=People,dc=x', { mail: ['robert@x'] });
    server.down = true;
    await watcher.pollNow();
    expect(events.invalidated).toBe(0);
    server.down = false;
    await watcher.pollNow();
    expect(events.changes).toEqual([['modified', 1]]);
    expect(events.invalidated).toBe(2);
  });

  it('too many changes for the size limit is an unexplained change: the map is expired', async () => {
    const { server, watcher, events, ask } = setup();
    await watcher.pollNow();
    await ask('sales');
    await ask('eng');
    server.sizeLimit = 1;
    server.put('uid=x1,ou=People,dc=x', { mail: ['x1@x'] });
    server.put('uid=x2,ou=People,dc=x', { mail: ['x2@x'] });
    await watcher.pollNow();
    expect(events.changes).toEqual([['unexplained', 1]]);
    expect(events.invalidated).toBe(2);
  });

  it('a contextCSN that disappears expires the context once and falls back to modifyTimestamp', async () => {
    const { server, watcher, events, ask } = setup();
    await watcher.pollNow();
    await ask('sales');
    server.syncprov = false;
    await watcher.pollNow();
    expect(events.changes).toEqual([['unexplained', 1]]);
    expect(events.invalidated).toBe(1);
    await watcher.pollNow();
    expect(watcher.status().contexts).toEqual([{ base: SUFFIX, marker: 'modifyTimestamp' }]);
  });

  it('answers cached before the first successful poll are expired once', async () => {
    const { inner, watcher, events, ask } = setup();
    await ask('sales');
    await ask('eng');
    await watcher.pollNow();
    expect(events.invalidated).toBe(2);
    await watcher.pollNow();
    expect(events.invalidated).toBe(2);
    await ask('sales');
    expect(inner.calls).toBe(3);
  });
});

describe('ChangeWatcher on a syncrepl replica without syncprov', () => {
  it('looks for entries written from the second after the newest CSN of any server ID', () => {
    expect(afterNewestCsn(['20261204213800.123456Z#000000#000#000000', '20261204235959.000001Z#000000#001#000000'])).toBe('(modifyTimestamp>=20261205000000Z)');
    expect(afterNewestCsn(['20261231235959.999999Z#000000#000#000000'])).toBe('(modifyTimestamp>=20270101000000Z)');
    expect(afterNewestCsn([])).toBeUndefined();
    expect(afterNewestCsn(['garbage'])).toBeUndefined();
  });

  it('takes the contextCSN once no entry is newer than it, and sees deletions', async () => {
    const { server, watcher, events, ask } = setup({ syncprov: false });
    server.replica = true;
    await watcher.pollNow();
    expect(watcher.status().contexts).toEqual([{ base: SUFFIX, marker: 'contextCSN' }]);
    expect(server.searches.some((s) => s.filter.startsWith('(modifyTimestamp>=') && s.attributes.includes('1.1'))).toBe(true);
    await ask('sales');
    server.remove('uid=alice,ou=People,dc=x');
    await watcher.pollNow();
    expect(events.changes).toEqual([['deleted', 1]]);
    expect(await ask('sales')).toBe('bob@x');
  });

  it('a contextCSN that nothing moves (entries written after it) is not taken', async () => {
    const { server, watcher } = setup({ syncprov: false });
    server.replica = true;
    server.keepsCsn = false;
    server.clock += 5;
    server.put('uid=dave,ou=People,dc=x', { mail: ['dave@x'] });
    await watcher.pollNow();
    expect(watcher.status().contexts).toEqual([{ base: SUFFIX, marker: 'modifyTimestamp' }]);
  });

  it('a replica whose contextCSN stops moving is found out at the recheck: expired, then modifyTimestamp', async () => {
    const { server, watcher, events, ask } = setup({ syncprov: false, watcher: { replicaCsnRecheckMs: 0 } });
    server.replica = true;
    await watcher.pollNow();
    expect(watcher.status().contexts).toEqual([{ base: SUFFIX, marker: 'contextCSN' }]);
    await ask('sales');
    await watcher.pollNow();
    expect(events.invalidated).toBe(0);
    server.keepsCsn = false;
    server.clock += 5;
    server.put('uid=bob,ou=People,dc=x', { mail: ['robert@x'] });
    await watcher.pollNow();
    await watcher.pollNow();
    expect(watcher.status().contexts).toEqual([{ base: SUFFIX, marker: 'modifyTimestamp' }]);
    expect(events.invalidated).toBe(1);
    expect(await ask('sales')).toBe('alice@x,robert@x');
  });
});

describe('ChangeWatcher with modifyTimestamp', () => {
  it('catches additions and modifications, not deletions', async () => {
    const { server, watcher, events, ask } = setup({ syncprov: false });
    await watcher.pollNow();
    expect(watcher.status().contexts).toEqual([{ base: SUFFIX, marker: 'modifyTimestamp' }]);
    await ask('sales');
    await ask('ops');
    await watcher.pollNow();
    expect(events.invalidated).toBe(0);

    server.clock += 1;
    server.put('cn=ops,ou=Groups,dc=x', { listName: ['ops'], member: ['uid=carol,ou=People,dc=x'] });
    await watcher.pollNow();
    expect(events.changes).toEqual([['modified', 1]]);
    expect(events.invalidated).toBe(1);
    expect(await ask('ops')).toBe('carol@x');

    server.clock += 1;
    server.remove('uid=alice,ou=People,dc=x');
    await watcher.pollNow();
    // The documented limit: a deletion leaves nothing to find.
    expect(events.changes).toEqual([['modified', 1]]);
    expect(await ask('sales')).toBe('alice@x,bob@x');
    expect(server.searches.some((s) => s.filter.includes('entryDN='))).toBe(false);
  });

  it('a second modification within the same second is still caught', async () => {
    const { server, watcher, events, ask } = setup({ syncprov: false });
    await watcher.pollNow();
    server.clock += 1;
    // The fake server returns entryCSN (as slapd does); without it the entry is reported twice.
    server.put('uid=bob,ou=People,dc=x', { mail: ['robert@x'] });
    await ask('sales');
    await watcher.pollNow();
    expect(events.invalidated).toBe(1);
    expect(await ask('sales')).toBe('alice@x,robert@x');
    server.put('uid=bob,ou=People,dc=x', { mail: ['bobby@x'] });
    await watcher.pollNow();
    expect(events.invalidated).toBe(2);
    expect(await ask('sales')).toBe('alice@x,bobby@x');
    // Seen already: not reported again.
    await watcher.pollNow();
    expect(events.invalidated).toBe(2);
  });

  it('without entryCSN an entry changed in the newest second is reported on one more poll', async () => {
    const { server, watcher, events, ask } = setup({ syncprov: false });
    server.returnCsn = false;
    await watcher.pollNow();
    server.clock += 1;
    server.put('uid=bob,ou=People,dc=x', { mail: ['robert@x'] });
    await ask('sales');
    await watcher.pollNow();
    expect(events.invalidated).toBe(1);
    expect(await ask('sales')).toBe('alice@x,robert@x');
    // Same second, same modifyTimestamp: indistinguishable, so reported once more anyway.
    server.put('uid=bob,ou=People,dc=x', { mail: ['bobby@x'] });
    await watcher.pollNow();
    expect(events.invalidated).toBe(2);
    expect(await ask('sales')).toBe('alice@x,bobby@x');
    // After that it is settled.
    await watcher.pollNow();
    expect(events.invalidated).toBe(2);
  });
});

describe('ChangeWatcher costs: what is read, and what is kept', () => {
  const timestampSearches = (server: FakeServer) =>
    server.searches.map((req, i) => ({ req, n: server.returned[i] })).filter((x) => x.req.filter.includes('modifyTimestamp>='));

  it('modifyTimestamp: the baseline and quiet polls read DNs and timestamps only; changed entries are read whole', async () => {
    const { server, watcher, events, ask } = setup({ syncprov: false });
    await watcher.pollNow();
    await ask('sales');
    await watcher.pollNow();
    const stampsOnly = ['modifyTimestamp', 'createTimestamp', 'entryCSN'];
    expect(timestampSearches(server).map((x) => x.req.attributes)).toEqual([stampsOnly, stampsOnly]);
    server.clock += 1;
    server.put('uid=bob,ou=People,dc=x', { mail: ['robert@x'] });
    await watcher.pollNow();
    expect(events.invalidated).toBe(1);
    const last = timestampSearches(server).slice(-2);
    expect(last.map((x) => x.req.attributes)).toEqual([stampsOnly, ['*', ...stampsOnly]]);
    // The whole-entry read starts at the changed entry's second: only bob.
    expect(last[1]!.n).toBe(1);
  });

  it("modifyTimestamp: the entries of one busy second are not read again once the directory's clock is past it", async () => {
    // Our clock ahead of the directory's by 0 and by 30 s: the directory's own timestamps tell.
    for (const ahead of [0, 30]) {
      let now = 0;
      const { server, watcher, events } = setup({ syncprov: false, now: () => now });
      const t = server.clock;
      // The setup's entries (a "bulk load") all carry the second t.
      now = (t + ahead) * 1000;
      await watcher.pollNow();
      const bulk = server.entries.size;
      expect(timestampSearches(server).at(-1)!.n).toBe(bulk);
      // The baseline was sent while the second t was not over: it may have missed some of it.
      now += 5000;
      await watcher.pollNow();
      expect(timestampSearches(server).at(-1)!.n).toBe(bulk);
      // That poll was sent after it: t is settled and not asked for again.
      now += 5000;
      await watcher.pollNow();
      const q = timestampSearches(server).at(-1)!;
      expect(q.n, `ahead ${ahead}`).toBe(0);
      expect(q.req.filter).toContain(`modifyTimestamp>=${formatGeneralizedTime(t + 4)}`);
      expect(events.changes).toEqual([]);
      // A later change is still found.
      server.clock = t + 11;
      server.put('uid=bob,ou=People,dc=x', { mail: ['robert@x'] });
      now += 5000;
      await watcher.pollNow();
      expect(events.changes).toEqual([['modified', 1]]);
    }
  });

  it('modifyTimestamp: more changed entries than maxChanged are an unexplained change, not read whole', async () => {
    const { server, watcher, events, ask } = setup({ syncprov: false, watcher: { maxChanged: 2 } });
    await watcher.pollNow();
    await ask('sales');
    await ask('eng');
    server.clock += 1;
    for (const u of ['x1', 'x2', 'x3']) server.put(`uid=${u},ou=People,dc=x`, { mail: [`${u}@x`] });
    await watcher.pollNow();
    expect(events.changes).toEqual([['unexplained', 1]]);
    expect(events.invalidated).toBe(2);
    expect(server.searches.some((s) => s.attributes.includes('*'))).toBe(false);
    // Seen: not reported again.
    await watcher.pollNow();
    expect(events.changes).toEqual([['unexplained', 1]]);
  });

  it('contextCSN: changed entries are counted first; more than maxChanged are not read whole', async () => {
    const { server, watcher, events, ask } = setup({ watcher: { maxChanged: 2 } });
    await watcher.pollNow();
    await ask('sales');
    server.put('uid=bob,ou=People,dc=x', { mail: ['robert@x'] });
    await watcher.pollNow();
    expect(events.changes).toEqual([['modified', 1]]);
    const csnSearches = server.searches.filter((s) => s.filter.includes('entryCSN>='));
    expect(csnSearches.map((s) => s.attributes)).toEqual([['entryCSN'], ['*', 'entryCSN']]);
    for (const u of ['x1', 'x2', 'x3']) server.put(`uid=${u},ou=People,dc=x`, { mail: [`${u}@x`] });
    await watcher.pollNow();
    expect(events.changes).toEqual([['modified', 1], ['unexplained', 1]]);
    expect(server.searches.filter((s) => s.filter.includes('entryCSN>=')).length).toBe(3);
  });

  it('a lookup running during an invalidation is checked against it, for lateLookupMs only', async () => {
    for (const [lateLookupMs, expired] of [[60_000, false], [1, true]] as const) {
      const { server, inner, watcher, ask } = setup({ watcher: { lateLookupMs } });
      await watcher.pollNow();
      let open!: () => void;
      inner.gate = new Promise<void>((r) => { open = r; });
      const running = ask('eng');
      server.put('uid=bob,ou=People,dc=x', { mail: ['robert@x'] });
      await watcher.pollNow();
      await sleep(20);
      inner.gate = undefined;
      open();
      expect(await running).toBe('carol@x');
      const calls = inner.calls;
      await ask('eng');
      // eng does not depend on bob: kept fresh while the batch is known, expired once it is let go.
      expect(inner.calls - calls, `lateLookupMs ${lateLookupMs}`).toBe(expired ? 1 : 0);
    }
  });
});
