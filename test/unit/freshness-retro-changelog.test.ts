/**
 * The retro changelog marker's pure parts (root DSE, records, the window a poll reads, missing
 * numbers, what records mean for a context), and the watcher against an in-memory 389-ds whose
 * root DSE and cn=changelog look like the real ones (test/directories/ds389-retrocl.test.ts has
 * the real thing).
 */
import type { Entry } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { ListMap } from '../support/list-map.js';
import { CachedMap } from '../../src/cache/cache-map.js';
import { normalizeDn } from '../../src/ldap/dn.js';
import { LdapFailure } from '../../src/ldap/errors.js';
import type { LdapPool } from '../../src/ldap/pool.js';
import type { SearchRequest } from '../../src/ldap/search-request.js';
import { setLogLevel } from '../../src/log.js';
import { changelogAci, markerAdvice, pollFailureAdvice } from '../../src/freshness/advice.js';
import { describeContext, detectContexts } from '../../src/freshness/marker.js';
import {
  changelogOf,
  changelogWindow,
  parseChangeRecord,
  planChanges,
  settle,
  type ChangelogState,
  type ChangeRecord,
} from '../../src/freshness/markers/retro-changelog.js';
import { ChangeWatcher, type ChangeKind } from '../../src/freshness/watcher.js';
import { socketmapAnswers } from '../../src/protocol/socketmap-answers.js';

setLogLevel('error');

const state = (last: number, pending: [number, number][] = [], seenAt?: number): ChangelogState => ({ dn: 'cn=changelog', last, pending: new Map(pending), ...(seenAt !== undefined ? { seenAt } : {}) });
const rec = (number: number, type: ChangeRecord['type'], target: string, newDn?: string): ChangeRecord => ({ number, type, target: normalizeDn(target), ...(newDn ? { newDn: normalizeDn(newDn) } : {}) });

describe('the retro changelog on the root DSE', () => {
  it('reads changelog, firstchangenumber and lastchangenumber whatever their case', () => {
    // 389-ds 2.3, anonymous, empty changelog.
    expect(changelogOf({ dn: '', changeLog: 'cn=changelog', firstchangenumber: '0', lastchangenumber: '0' } as unknown as Entry)).toEqual({ dn: 'cn=changelog', first: 0, last: 0 });
    expect(changelogOf({ dn: '', changelog: 'cn=changelog', firstchangenumber: '3', lastchangenumber: '7' } as unknown as Entry)).toEqual({ dn: 'cn=changelog', first: 3, last: 7 });
  });

  it('is absent without the plugin, or without a number', () => {
    expect(changelogOf({ dn: '', namingContexts: 'dc=x' } as unknown as Entry)).toBeUndefined();
    expect(changelogOf({ dn: '', changelog: 'cn=changelog' } as unknown as Entry)).toBeUndefined();
    expect(changelogOf({ dn: '', changelog: 'cn=changelog', lastchangenumber: 'x' } as unknown as Entry)).toBeUndefined();
    expect(changelogOf(undefined)).toBeUndefined();
  });
});

describe('changelog records', () => {
  it('add, modify and delete name their target', () => {
    expect(parseChangeRecord({ dn: 'changenumber=1,cn=changelog', changeNumber: '1', targetDn: 'uid=A,ou=People,dc=x', changeType: 'add' } as unknown as Entry)).toEqual(rec(1, 'add', 'uid=a,ou=people,dc=x'));
    expect(parseChangeRecord({ dn: 'x', changeNumber: '2', targetDn: 'uid=a,ou=People,dc=x', changeType: 'modify' } as unknown as Entry)?.type).toBe('modify');
    expect(parseChangeRecord({ dn: 'x', changeNumber: '5', targetDn: 'uid=a,ou=People,dc=x', changeType: 'delete' } as unknown as Entry)?.type).toBe('delete');
  });

  it('a rename gets its new DN: newRdn under newSuperior, or under the old parent', () => {
    // As 389-ds 2.3 writes them (changenumber 3 and 4 of a real rename, then a move).
    expect(parseChangeRecord({ dn: 'x', changeNumber: '3', targetDn: 'uid=rtest,ou=People,dc=example,dc=org', changeType: 'modrdn', newRdn: 'uid=rtest3', deleteOldRdn: 'TRUE' } as unknown as Entry))
      .toEqual(rec(3, 'modrdn', 'uid=rtest,ou=People,dc=example,dc=org', 'uid=rtest3,ou=People,dc=example,dc=org'));
    expect(parseChangeRecord({ dn: 'x', changeNumber: '4', targetDn: 'uid=rtest3,ou=People,dc=example,dc=org', changeType: 'modrdn', newRdn: 'uid=rtest4', newSuperior: 'ou=Groups,dc=example,dc=org' } as unknown as Entry)?.newDn)
      .toBe(normalizeDn('uid=rtest4,ou=Groups,dc=example,dc=org'));
  });

  it('is undefined when the attributes the poll needs are not visible (an ACI without targetDn)', () => {
    expect(parseChangeRecord({ dn: 'x', changeNumber: '4' } as unknown as Entry)).toBeUndefined();
    expect(parseChangeRecord({ dn: 'x', changeNumber: '4', targetDn: 'uid=a,dc=x', changeType: 'modrdn' } as unknown as Entry)).toBeUndefined();
    expect(parseChangeRecord({ dn: 'x', changeNumber: '4', targetDn: 'uid=a,dc=x', changeType: 'frobnicate' } as unknown as Entry)).toBeUndefined();
  });
});

describe('the window a poll reads', () => {
  it('nothing when lastchangenumber stands still and nothing is pending', () => {
    expect(changelogWindow(state(5), { dn: 'cn=changelog', first: 1, last: 5 }, 1000)).toEqual({ kind: 'none' });
  });

  it('the new numbers, bounded by the root DSE, and the pending ones', () => {
    expect(changelogWindow(state(5), { dn: 'cn=changelog', first: 1, last: 9 }, 1000)).toEqual({ kind: 'read', from: 6, to: 9 });
    expect(changelogWindow(state(9, [[7, 0]]), { dn: 'cn=changelog', first: 1, last: 9 }, 1000)).toEqual({ kind: 'read', from: 7, to: 9 });
  });

  it('changes trimmed before they were read are unexplained (firstchangenumber past LAST+1)', () => {
    const w = changelogWindow(state(5), { dn: 'cn=changelog', first: 8, last: 9 }, 1000);
    expect(w).toEqual({ kind: 'unexplained', reason: 'changes 6 to 7 were trimmed from the retro changelog before they were read (nsslapd-changelogmaxage)' });
    // Trimming keeps the newest entry: first == LAST+1 lost nothing.
    expect(changelogWindow(state(5), { dn: 'cn=changelog', first: 6, last: 9 }, 1000).kind).toBe('read');
  });

  it('a changelog that went back, or too many changes at once, are unexplained', () => {
    expect(changelogWindow(state(50), { dn: 'cn=changelog', first: 1, last: 3 }, 1000)).toMatchObject({ kind: 'unexplained', reason: expect.stringMatching(/went back from 50 to 3/) });
    expect(changelogWindow(state(5), { dn: 'cn=changelog', first: 1, last: 20 }, 10)).toEqual({ kind: 'unexplained', reason: '15 changes at once (more than 10)' });
  });
});

describe('numbers whose records are not visible', () => {
  it('the visible new records are fresh; a missing one is pending', () => {
    const s = settle(state(5, [], 0), { from: 6, to: 8 }, [rec(6, 'add', 'uid=a,dc=x'), rec(8, 'add', 'uid=b,dc=x')], 1000);
    expect(s.fresh.map((r) => r.number)).toEqual([6, 8]);
    expect([...s.next.pending]).toEqual([[7, 1000]]);
    expect(s.next).toMatchObject({ last: 8, seenAt: 1000 });
    expect(s.lost).toBeUndefined();
  });

  it('a pending record that shows later is fresh then; records read before are not again', () => {
    const s = settle(state(8, [[7, 1000]], 1000), { from: 7, to: 9 }, [rec(7, 'delete', 'uid=c,dc=x'), rec(8, 'add', 'uid=b,dc=x'), rec(9, 'modify', 'uid=d,dc=x')], 2000);
    expect(s.fresh.map((r) => r.number)).toEqual([7, 9]);
    expect(s.next.pending.size).toBe(0);
  });

  it('past the grace time a missing number is lost when other records were visible since', () => {
    const s = settle(state(8, [[7, 1000]], 1000), { from: 7, to: 8 }, [], 1000 + 10_000);
    expect(s.lost).toEqual([7]);
    expect(s.next.pending.size).toBe(0);
  });

  it('past the grace time with no record visible since: the changelog is hidden from the bind', () => {
    const s = settle(state(0), { from: 1, to: 2 }, [], 0);
    expect(s.hidden).toBeUndefined();
    const later = settle(s.next, { from: 1, to: 2 }, [], 10_000);
    expect(later.hidden).toBe(true);
    expect(later.lost).toBeUndefined();
    // Still looked for: once readable, the records are applied.
    expect([...later.next.pending.keys()]).toEqual([1, 2]);
  });
});

describe('what records mean for a context', () => {
  const ctx = normalizeDn('dc=example,dc=org');
  it('reads added and modified DNs, takes deleted ones as deleted, skips other contexts', () => {
    const p = planChanges([rec(1, 'add', 'uid=a,dc=example,dc=org'), rec(2, 'modify', 'uid=b,dc=example,dc=org'), rec(3, 'delete', 'uid=c,dc=example,dc=org'), rec(4, 'add', 'uid=z,o=ipaca')], ctx, () => []);
    expect([...p.read].sort()).toEqual(['uid=a,dc=example,dc=org', 'uid=b,dc=example,dc=org']);
    expect([...p.deleted]).toEqual(['uid=c,dc=example,dc=org']);
  });

  it('a rename deletes the old DN and the cached DNs below it, and reads the new one', () => {
    const tracked = ['uid=x,ou=old,dc=example,dc=org', 'uid=y,ou=people,dc=example,dc=org'];
    const p = planChanges([rec(5, 'modrdn', 'ou=Old,dc=example,dc=org', 'ou=New,dc=example,dc=org')], ctx, () => tracked);
    expect([...p.deleted].sort()).toEqual(['ou=old,dc=example,dc=org', 'uid=x,ou=old,dc=example,dc=org']);
    expect([...p.read]).toEqual(['ou=new,dc=example,dc=org']);
    expect([...p.renamed]).toEqual(['ou=new,dc=example,dc=org']);
  });

  it('a rename into or out of the context counts on its side only', () => {
    const into = planChanges([rec(6, 'modrdn', 'uid=a,o=other', 'uid=a,dc=example,dc=org')], ctx, () => []);
    expect([...into.read]).toEqual(['uid=a,dc=example,dc=org']);
    expect(into.deleted.size).toBe(0);
    const out = planChanges([rec(7, 'modrdn', 'uid=a,dc=example,dc=org', 'uid=a,o=other')], ctx, () => []);
    expect(out.read.size).toBe(0);
    expect([...out.deleted]).toEqual(['uid=a,dc=example,dc=org']);
  });
});

describe('advice for the retro changelog', () => {
  it('names the ACI with the attributes the poll reads, never `changes`', () => {
    const aci = changelogAci('cn=changelog', 'ldap:///uid=postfix,dc=x');
    expect(aci).toContain('add to "cn=changelog"');
    expect(aci).toContain('(targetattr="changeNumber || targetDn || changeType || newRdn || newSuperior")');
    expect(aci).toContain('allow (read, search, compare) userdn="ldap:///uid=postfix,dc=x"');
    expect(aci).not.toMatch(/\bchanges\b/);
  });

  it('a hidden changelog is named in the advice of a failing poll and of the modifyTimestamp fallback', () => {
    const err = new LdapFailure('error', 'insufficientAccessRights (50): …', 50);
    expect(pollFailureAdvice(err, 'changelog', '389-ds', { changelogDn: 'cn=changelog', bindDn: 'ldap:///uid=p,dc=x' })).toMatch(/^insufficientAccessRights \(50\): let the bind DN read the retro changelog: add to "cn=changelog".*userdn="ldap:\/\/\/uid=p,dc=x".*plugin usn enable/);
    expect(markerAdvice('modifyTimestamp', '389-ds', { hiddenChangelog: 'cn=changelog', bindDn: 'ldap:///uid=p,dc=x' })).toMatch(/^the retro changelog is on but its records are hidden from the bind DN: .*add to "cn=changelog".*; or enable the USN plugin/);
  });
});

/* ------------------------------------------------------------------------------------------ */

/** An in-memory 389-ds: root DSE with lastusn (optional) and the retro changelog; entries under dc=x. */
class Fake389 {
  entries = new Map<string, Record<string, string[]>>();
  changelog: { number: number; targetDn: string; changeType: string; newRdn?: string; newSuperior?: string }[] = [];
  usn = false;
  /** Records hidden from the bind (389-ds without an ACI on cn=changelog). */
  hidden = false;
  first = 0;
  searches: SearchRequest[] = [];

  private log(targetDn: string, changeType: string, more: { newRdn?: string; newSuperior?: string } = {}): void {
    this.changelog.push({ number: (this.changelog.at(-1)?.number ?? 0) + 1, targetDn, changeType, ...more });
    if (this.first === 0) this.first = 1;
  }

  put(dn: string, attrs: Record<string, string[]>): void {
    const existed = this.entries.has(dn);
    this.entries.set(dn, attrs);
    this.log(dn, existed ? 'modify' : 'add');
  }
  remove(dn: string): void {
    this.entries.delete(dn);
    this.log(dn, 'delete');
  }
  rename(dn: string, newRdn: string): void {
    const attrs = this.entries.get(dn)!;
    this.entries.delete(dn);
    this.entries.set(`${newRdn},${dn.split(',').slice(1).join(',')}`, attrs);
    this.log(dn, 'modrdn', { newRdn });
  }

  readonly pool = {
    settings: { servers: [{ url: 'ldap://fake389/' }], bind: 'simple', bindDn: 'uid=postfix,dc=x' },
    search: async (req: SearchRequest): Promise<Entry[]> => {
      this.searches.push(req);
      const last = this.changelog.at(-1)?.number ?? 0;
      if (req.base === '') {
        return [{
          dn: '', vendorName: ['389 Project'], namingContexts: ['cn=changelog', 'dc=x'], nsBackendSuffix: ['userroot:dc=x', 'changelog:cn=changelog'],
          changelog: ['cn=changelog'], firstchangenumber: [String(this.first)], lastchangenumber: [String(last)],
          ...(this.usn ? { 'lastusn;userroot': ['7'] } : {}),
        } as unknown as Entry];
      }
      if (req.base === 'cn=changelog') {
        if (this.hidden) return [];
        const range = /\(changeNumber>=(\d+)\)\(changeNumber<=(\d+)\)/.exec(req.filter) ?? /\(changeNumber=(\d+)\)/.exec(req.filter);
        if (!range) throw new Error(`fake 389: unexpected changelog search ${req.filter}`);
        const [from, to] = [Number(range[1]), Number(range[2] ?? range[1])];
        return this.changelog.filter((r) => r.number >= from && r.number <= to && r.number >= this.first).map((r) => ({
          dn: `changenumber=${r.number},cn=changelog`, changeNumber: [String(r.number)], targetDn: [r.targetDn], changeType: [r.changeType],
          ...(r.newRdn ? { newRdn: [r.newRdn] } : {}),
        }) as unknown as Entry);
      }
      // modifyTimestamp (the marker kept while the changelog is hidden): nothing changed.
      if (req.filter.includes('modifyTimestamp>=')) return [];
      const dns = [...req.filter.matchAll(/\(entrydn=((?:[^)\\]|\\.)*)\)/g)].map((m) => normalizeDn(m[1]!));
      if (dns.length === 0) throw new Error(`fake 389: unexpected search ${req.filter}`);
      return [...this.entries].filter(([dn]) => dns.includes(normalizeDn(dn))).map(([dn, a]) => ({ dn, ...a, hasSubordinates: ['FALSE'] }) as unknown as Entry);
    },
  };
}

function setup389() {
  const server = new Fake389();
  server.put('uid=alice,ou=People,dc=x', { mail: ['alice@x'] });
  server.put('uid=bob,ou=People,dc=x', { mail: ['bob@x'] });
  server.put('cn=sales,ou=Groups,dc=x', { listName: ['sales'], member: ['uid=alice,ou=People,dc=x', 'uid=bob,ou=People,dc=x'] });
  const cache = new CachedMap(new ListMap('aliases', server, 'ou=Groups,dc=x'), { ttlSec: 3600, negativeTtlSec: 3600, maxEntries: 100, maxBytes: 1e6, staleIfErrorSec: 3600, trackDependencies: true }, socketmapAnswers());
  let mono = 0;
  const events: { changes: [ChangeKind, number][]; invalidated: number; errors: number } = { changes: [], invalidated: 0, errors: 0 };
  const watcher = new ChangeWatcher(server.pool as unknown as LdapPool, [{ name: 'aliases', cache, searchBase: 'ou=Groups,dc=x' }], {
    intervalMs: 1000,
    now: () => mono,
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
  return { server, watcher, cache, events, ask, tick: (ms: number) => { mono += ms; } };
}

describe('detecting the retro changelog', () => {
  it('is chosen without the USN plugin when the bind may read it', async () => {
    const { server } = setup389();
    const [c] = await detectContexts(server.pool as unknown as LdapPool, ['ou=Groups,dc=x']);
    expect(c).toMatchObject({ base: 'dc=x', marker: 'changelog', changelog: { dn: 'cn=changelog', last: 3, readable: true } });
    expect(describeContext(c!)).toBe('lastchangenumber and the records of "cn=changelog" whose targetDn is under "dc=x" (retro changelog): sees additions, modifications, deletions and renames');
  });

  it('entryUSN is preferred when both are on', async () => {
    const { server } = setup389();
    server.usn = true;
    const [c] = await detectContexts(server.pool as unknown as LdapPool, ['ou=Groups,dc=x']);
    expect(c?.marker).toBe('entryUSN');
    expect(server.searches.some((s) => s.base === 'cn=changelog')).toBe(false);
  });

  it('a changelog hidden from the bind keeps modifyTimestamp, and remembers why for the advice', async () => {
    const { server } = setup389();
    server.hidden = true;
    const [c] = await detectContexts(server.pool as unknown as LdapPool, ['ou=Groups,dc=x']);
    expect(c).toMatchObject({ marker: 'modifyTimestamp', changelog: { dn: 'cn=changelog', readable: false } });
  });
});

describe('ChangeWatcher with the retro changelog', () => {
  it('expires what an add, a modify, a delete and a rename touched, and nothing else', async () => {
    const { server, watcher, events, ask } = setup389();
    server.put('cn=eng,ou=Groups,dc=x', { listName: ['eng'], member: ['uid=carol,ou=People,dc=x'] });
    await watcher.pollNow();
    expect(watcher.status()).toMatchObject({ state: 'ok', contexts: [{ base: 'dc=x', marker: 'changelog' }] });
    expect(await ask('sales')).toBe('alice@x,bob@x');
    expect(await ask('eng')).toBe('notfound');
    await watcher.pollNow();
    expect(events.invalidated).toBe(0);

    server.put('uid=carol,ou=People,dc=x', { mail: ['carol@x'] });
    await watcher.pollNow();
    // eng was built from a dangling member's base search; now it exists.
    expect(await ask('eng')).toBe('carol@x');

    server.remove('uid=bob,ou=People,dc=x');
    events.changes.length = 0;
    await watcher.pollNow();
    expect(events.changes).toEqual([['deleted', 1]]);
    expect(await ask('sales')).toBe('alice@x');

    server.rename('uid=alice,ou=People,dc=x', 'uid=alice2');
    events.changes.length = 0;
    await watcher.pollNow();
    expect(events.changes).toEqual([['modified', 1], ['deleted', 1]]);
    expect(await ask('sales')).toBe('notfound');
    // No verify searches: the records name deletions themselves.
    expect(server.searches.filter((s) => /entryDN=/.test(s.filter))).toEqual([]);
  });

  it('trimmed changes expire the context', async () => {
    const { server, watcher, events, ask } = setup389();
    await watcher.pollNow();
    await ask('sales');
    server.put('uid=x,ou=People,dc=x', { mail: ['x@x'] });
    server.put('uid=y,ou=People,dc=x', { mail: ['y@x'] });
    server.first = 5;
    await watcher.pollNow();
    expect(events.changes).toEqual([['unexplained', 1]]);
    expect(events.invalidated).toBe(1);
  });

  it('records that stay hidden fail the poll as insufficientAccessRights, with the ACI to add', async () => {
    const { server, watcher, events, tick } = setup389();
    await watcher.pollNow();
    server.hidden = true;
    server.put('uid=x,ou=People,dc=x', { mail: ['x@x'] });
    tick(1000);
    await watcher.pollNow();
    expect(events.errors).toBe(0);
    tick(10_000);
    await watcher.pollNow();
    expect(events.errors).toBe(1);
    const s = watcher.status();
    expect(s).toMatchObject({ state: 'failing', refused: 'insufficientAccessRights (50)' });
    expect(s.advice).toContain('userdn="ldap:///uid=postfix,dc=x"');
    // Readable again: the pending record is applied and the watcher is ok.
    server.hidden = false;
    await watcher.pollNow();
    expect(watcher.status().state).toBe('ok');
    expect(events.changes).toEqual([['modified', 1]]);
  });

  it('a changelog hidden at start is looked at again every minute, and used once an ACI lets the bind read it', async () => {
    const { server, watcher, tick } = setup389();
    server.hidden = true;
    await watcher.pollNow();
    expect(watcher.status().contexts).toEqual([{ base: 'dc=x', marker: 'modifyTimestamp' }]);
    server.hidden = false;
    // The first poll after the detection starts the minute.
    await watcher.pollNow();
    tick(30_000);
    await watcher.pollNow();
    expect(watcher.status().contexts).toEqual([{ base: 'dc=x', marker: 'modifyTimestamp' }]);
    tick(30_000);
    await watcher.pollNow();
    await watcher.pollNow();
    expect(watcher.status()).toMatchObject({ state: 'ok', contexts: [{ base: 'dc=x', marker: 'changelog' }] });
  });

  it('a restart resumes from the recorded change number: what changed while down is expired, nothing else', async () => {
    const { server, watcher, cache, events, ask } = setup389();
    server.put('cn=eng,ou=Groups,dc=x', { listName: ['eng'], member: ['uid=carol,ou=People,dc=x'] });
    server.put('uid=carol,ou=People,dc=x', { mail: ['carol@x'] });
    await watcher.pollNow();
    expect(await ask('sales')).toBe('alice@x,bob@x');
    expect(await ask('eng')).toBe('carol@x');
    const recorded = watcher.markers();
    expect(recorded).toEqual([{ base: 'dc=x', marker: 'changelog', source: 'cn=changelog', position: '5' }]);
    await watcher.stop();

    // "Down": bob is deleted; then a watcher over the same (restored) cache resumes.
    server.remove('uid=bob,ou=People,dc=x');
    const invalidated: number[] = [];
    const resumed = new ChangeWatcher(server.pool as unknown as LdapPool, [{ name: 'aliases', cache, searchBase: 'ou=Groups,dc=x' }], {
      intervalMs: 1000, resume: recorded, observer: { invalidated: (_m, n) => invalidated.push(n) },
    });
    await resumed.pollNow();
    expect(invalidated).toEqual([1]);
    expect(await ask('sales')).toBe('alice@x');
    expect(await ask('eng')).toBe('carol@x');
    expect(events.invalidated).toBe(0);
    expect(resumed.markers()).toEqual([{ base: 'dc=x', marker: 'changelog', source: 'cn=changelog', position: '6' }]);
  });

  it('a recorded position of another changelog is not resumed: everything cached is expired once', async () => {
    const { server, watcher, cache, ask } = setup389();
    await watcher.pollNow();
    await ask('sales');
    const invalidated: number[] = [];
    const other = new ChangeWatcher(server.pool as unknown as LdapPool, [{ name: 'aliases', cache, searchBase: 'ou=Groups,dc=x' }], {
      intervalMs: 1000, resume: [{ base: 'dc=x', marker: 'changelog', source: 'cn=other changelog', position: '3' }], observer: { invalidated: (_m, n) => invalidated.push(n) },
    });
    await other.pollNow();
    expect(invalidated).toEqual([1]);
  });

  it('the changelog disappearing from the root DSE makes the watcher choose again', async () => {
    const { server, watcher } = setup389();
    await watcher.pollNow();
    const search = server.pool.search;
    server.pool.search = async (req) => {
      const r = await search(req);
      if (req.base === '' && r[0]) {
        const e = r[0] as Record<string, unknown>;
        delete e.lastchangenumber;
        delete e.changelog;
      }
      return r;
    };
    await watcher.pollNow();
    expect(watcher.status().contexts).toEqual([]);
  });
});
