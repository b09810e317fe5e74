import { describe, expect, it } from 'vitest';
import { CachedMap } from '../../src/cache/cache-map.js';
import { type CacheOptions } from '../../src/cache/options.js';
import type { Dependencies } from '../../src/cache/dependencies.js';
import type { LookupContext, LookupMap } from '../../src/contracts/map.js';
import { found, NOTFOUND, temp, type LookupResult } from '../../src/contracts/result.js';
import { socketmapAnswers, type SocketmapForm } from '../../src/protocol/socketmap-answers.js';

/**
 * A stand-in for the LDAP map that walks like one: a subtree search for the list, the list entry,
 * then a base search per member DN, each reported to the trace as LdapMap does.
 */
class FakeDirectory implements LookupMap {
  readonly name = 'aliases';
  calls = 0;
  fail = false;
  lists = new Map<string, string[]>([
    ['sales', ['uid=alice,ou=People,dc=x', 'uid=bob,ou=People,dc=x']],
    ['eng', ['uid=carol,ou=People,dc=x']],
  ]);
  gate?: Promise<void>;

  async lookup(key: Buffer, ctx?: LookupContext): Promise<LookupResult> {
    const trace = ctx?.trace;
    this.calls++;
    if (this.gate) await this.gate;
    if (this.fail) return temp('LDAP down');
    const name = key.toString();
    trace?.search?.(0, undefined, { base: 'ou=Groups,dc=x', scope: 'sub', filter: `(listName=${name})`, attributes: ['mail'], deref: 0 }, 1);
    const members = this.lists.get(name);
    if (!members) return NOTFOUND;
    trace?.entry?.(0, `cn=${name},ou=Groups,dc=x`, 'no', 'no');
    members.forEach((dn, i) => {
      trace?.search?.(i + 1, 0, { base: dn, scope: 'base', filter: '(objectclass=*)', attributes: ['mail'], deref: 0 }, 2);
      trace?.entry?.(i + 1, dn, 'no', 'no');
    });
    return found(Buffer.from(members.map((m) => m.slice(4, m.indexOf(','))).join(',')));
  }
}

const OPTS: CacheOptions = { ttlSec: 3600, negativeTtlSec: 3600, maxEntries: 100, maxBytes: 1_000_000, staleIfErrorSec: 3600, trackDependencies: true };
const k = (s: string) => Buffer.from(s);

describe('CachedMap dependency tracking and invalidation', () => {
  it('records the DNs and searches each answer was built from', async () => {
    const dir = new FakeDirectory();
    const cache = new CachedMap(dir, OPTS, socketmapAnswers());
    await cache.lookup(k('sales'));
    await cache.lookup(k('eng'));
    expect([...cache.trackedEntryDns()].sort()).toEqual([
      'cn=eng,ou=groups,dc=x', 'cn=sales,ou=groups,dc=x', 'uid=alice,ou=people,dc=x', 'uid=bob,ou=people,dc=x', 'uid=carol,ou=people,dc=x',
    ]);
    const seen: { entries: readonly string[]; searches: readonly { base: string; scope: string; filter: string }[]; bases: readonly string[] }[] = [];
    cache.invalidate((deps) => { if (deps) seen.push(deps); return false; });
    const sales = seen.find((d) => d.entries.includes('cn=sales,ou=groups,dc=x'))!;
    expect(sales.searches).toEqual([{ base: 'ou=groups,dc=x', scope: 'sub', filter: '(listName=sales)' }]);
    // Base searches that found their entry are covered by the entry itself.
    expect(sales.bases).toEqual([]);
  });

  it('expires only the answers a matcher selects; the others stay fresh', async () => {
    const dir = new FakeDirectory();
    const cache = new CachedMap(dir, OPTS, socketmapAnswers());
    await cache.lookup(k('sales'));
    await cache.lookup(k('eng'));
    expect(dir.calls).toBe(2);
    const n = cache.invalidate((deps) => deps?.entries.includes('uid=bob,ou=people,dc=x') ?? false);
    expect(n).toBe(1);
    dir.lists.set('sales', ['uid=alice,ou=People,dc=x']);
    expect(await cache.lookup(k('sales'))).toEqual(found(Buffer.from('alice')));
    expect(await cache.lookup(k('eng'))).toEqual(found(Buffer.from('carol')));
    expect(dir.calls).toBe(3);
    // Expiring an already expired answer does not count again.
    expect(cache.invalidate(() => false)).toBe(0);
  });

  it('negative answers are told apart', async () => {
    const dir = new FakeDirectory();
    const cache = new CachedMap(dir, OPTS, socketmapAnswers());
    await cache.lookup(k('nolist'));
    await cache.lookup(k('sales'));
    expect(cache.invalidate((_deps, negative) => negative)).toBe(1);
    dir.lists.set('nolist', ['uid=dave,ou=People,dc=x']);
    expect(await cache.lookup(k('nolist'))).toEqual(found(Buffer.from('dave')));
  });

  it('an invalidated answer is still there for stale-if-error', async () => {
    const dir = new FakeDirectory();
    const cache = new CachedMap(dir, OPTS, socketmapAnswers());
    await cache.lookup(k('sales'));
    cache.invalidate(() => true);
    dir.fail = true;
    expect(await cache.lookup(k('sales'))).toEqual(found(Buffer.from('alice,bob')));
    dir.fail = false;
    dir.lists.set('sales', ['uid=bob,ou=People,dc=x']);
    expect(await cache.lookup(k('sales'))).toEqual(found(Buffer.from('bob')));
  });

  it('a lookup running while a matching invalidation happens is not stored as fresh', async () => {
    const dir = new FakeDirectory();
    const cache = new CachedMap(dir, OPTS, socketmapAnswers());
    let open!: () => void;
    dir.gate = new Promise((r) => { open = r; });
    const running = cache.lookup(k('sales'));
    const other = cache.lookup(k('eng'));
    await Promise.resolve();
    // The watcher sees a change to bob while both lookups are on their way.
    cache.invalidate((deps) => deps?.entries.includes('uid=bob,ou=people,dc=x') ?? false);
    open();
    dir.gate = undefined;
    await running;
    await other;
    expect(dir.calls).toBe(2);
    await cache.lookup(k('sales'));
    await cache.lookup(k('eng'));
    // sales (built from bob) is asked again; eng was not touched and is a hit.
    expect(dir.calls).toBe(3);
  });

  it('counts the dependencies towards the byte bound and passes a caller trace through', async () => {
    const plain = new CachedMap(new FakeDirectory(), { ...OPTS, trackDependencies: false }, socketmapAnswers());
    const tracked = new CachedMap(new FakeDirectory(), OPTS, socketmapAnswers());
    await plain.lookup(k('sales'));
    const entries: string[] = [];
    await tracked.lookup(k('sales'), { trace: { entry: (_id, dn) => entries.push(dn) } });
    expect(tracked.bytes).toBeGreaterThan(plain.bytes + 100);
    expect(entries).toEqual(['cn=sales,ou=Groups,dc=x', 'uid=alice,ou=People,dc=x', 'uid=bob,ou=People,dc=x']);
    expect(plain.trackedEntryDns().size).toBe(0);
  });

  it('keeps the dependencies of a NOTFOUND answer to one small record', async () => {
    const dir = new FakeDirectory();
    const plain = new CachedMap(new FakeDirectory(), { ...OPTS, trackDependencies: false }, socketmapAnswers());
    const cache = new CachedMap(dir, OPTS, socketmapAnswers());
    await plain.lookup(k('nolist'));
    await cache.lookup(k('nolist'));
    await cache.lookup(k('sales'));
    const all: Dependencies[] = [];
    cache.invalidate((deps) => { if (deps) all.push(deps); return false; });
    const neg = all.find((d) => d.entries.length === 0)!;
    const pos = all.find((d) => d.entries.length > 0)!;
    // Empty lists are one shared array, not two new ones per answer.
    expect(neg.entries).toBe(neg.bases);
    expect(neg.entries).toBe(pos.bases);
    expect(neg.searches).toEqual([{ base: 'ou=groups,dc=x', scope: 'sub', filter: '(listName=nolist)' }]);
    const seen: string[] = [];
    expect(neg.someSearch((base, scope, filter) => { seen.push(`${scope} ${base} ${filter}`); return false; })).toBe(false);
    expect(seen).toEqual(['sub ou=groups,dc=x (listName=nolist)']);
    // One object with its filter (and the shared base) is what the record is charged.
    const charged = (await bytesOf(cache, 'nolist')) - plain.bytes;
    expect(charged).toBeGreaterThan(100);
    expect(charged).toBeLessThan(200);
  });
});

/** Accounted bytes of the cached answer for `key` alone: flush it and see what goes. */
async function bytesOf(cache: CachedMap<SocketmapForm>, key: string): Promise<number> {
  const before = cache.bytes;
  cache.flush(k(key));
  const n = before - cache.bytes;
  await cache.lookup(k(key));
  return n;
}
