import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CachedMap } from '../../src/cache/cache-map.js';
import type { CacheOptions } from '../../src/cache/options.js';
import { decodeSnapshot, encodeSnapshot, SnapshotFormatError, type Snapshot, type SnapshotEntry } from '../../src/cache/snapshot.js';
import type { LookupContext, LookupMap } from '../../src/contracts/map.js';
import { found, NOTFOUND, temp, type LookupResult } from '../../src/contracts/result.js';
import { socketmapAnswers } from '../../src/protocol/socketmap-answers.js';
import { CacheSnapshots } from '../../src/runtime/cache-snapshot.js';
import { prng } from '../support/prng.js';
import { makeTmpDir } from '../support/tmp.js';

const FP = 'ab'.repeat(32);

function sample(): Snapshot {
  return {
    writtenAt: 1_750_000_000_123,
    markers: [
      { servers: 'ldap://a/ ldap://b/', base: 'dc=example,dc=org', marker: 'contextCSN', csn: ['20250101000000.000001Z#000000#000#000000', '20250101000000.000002Z#000000#001#000000'] },
      { servers: 'ldap://c/', base: 'o=other', marker: 'modifyTimestamp', since: 1_750_000_000 },
      { servers: 'ldap://389/', base: 'dc=example,dc=org', marker: 'entryUSN', source: 'userroot', position: '18446744073709551615' },
      { servers: 'ldap://dc1/ ldap://dc2/', base: 'DC=ad,DC=example,DC=org', marker: 'uSNChanged', source: 'CN=NTDS Settings,CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=ad,DC=example,DC=org', position: '4123' },
      { servers: 'ldap://389/', base: 'o=ipa', marker: 'changelog', source: 'cn=changelog', position: '0' },
    ],
    maps: [
      {
        name: 'aliases',
        fingerprint: FP,
        entries: [
          {
            key: Buffer.from([0x61, 0x00, 0xff, 0x40]),
            kind: 'found',
            value: Buffer.from('alice@example.org,\u00e9@x', 'utf8'),
            ageMs: 12.5,
            expiresInMs: 3_000_000,
            staleForMs: 3_600_000,
            deps: {
              entries: ['uid=alice,ou=people,dc=example,dc=org', 'cn=sales,ou=groups,dc=example,dc=org'],
              bases: ['uid=gone,ou=people,dc=example,dc=org'],
              searches: [{ base: 'ou=groups,dc=example,dc=org', scope: 'sub', filter: '(listName=sales)' }, { base: 'dc=example,dc=org', scope: 'one', filter: '(x=y)' }],
            },
          },
          { key: Buffer.from('nobody'), kind: 'notfound', ageMs: 0, expiresInMs: -5, staleForMs: 100 },
        ],
      },
      { name: 'empty', fingerprint: 'cd'.repeat(32), entries: [] },
    ],
  };
}

/** Re-signs a (damaged) file so the parser itself, not the checksum, has to reject it. */
function resign(file: Buffer): Buffer {
  const out = Buffer.from(file);
  const body = out.subarray(0, out.length - 32);
  createHash('sha256').update(body).digest().copy(out, out.length - 32);
  return out;
}

describe('cache snapshot format', () => {
  it('round-trips every field, bytes exact', () => {
    const s = sample();
    const back = decodeSnapshot(encodeSnapshot(s));
    expect(back).toEqual(s);
    expect(back.maps[0]!.entries[0]!.key.equals(Buffer.from([0x61, 0x00, 0xff, 0x40]))).toBe(true);
  });

  it('writes each repeated DN once (string table)', () => {
    const dn = 'uid=someone-with-a-long-name,ou=people,dc=example,dc=org';
    const entries = Array.from({ length: 200 }, (_, i) => ({
      key: Buffer.from(`k${i}`), kind: 'notfound' as const, ageMs: 0, expiresInMs: 1, staleForMs: 1,
      deps: { entries: [dn], bases: [], searches: [] },
    }));
    const file = encodeSnapshot({ writtenAt: 0, markers: [], maps: [{ name: 'm', fingerprint: FP, entries }] });
    expect(file.toString('latin1').split(dn).length - 1).toBe(1);
    expect(decodeSnapshot(file).maps[0]!.entries[199]!.deps!.entries[0]).toBe(dn);
  });

  it('rejects every truncation with a reason', () => {
    const file = encodeSnapshot(sample());
    for (let n = 0; n < file.length; n++) {
      expect(() => decodeSnapshot(file.subarray(0, n)), `length ${n}`).toThrow(SnapshotFormatError);
    }
  });

  it('rejects every single flipped byte (checksum), and names the reason', () => {
    const file = encodeSnapshot(sample());
    for (let i = 0; i < file.length; i++) {
      const bad = Buffer.from(file);
      bad.writeUInt8(bad.readUInt8(i) ^ 0x5a, i);
      expect(() => decodeSnapshot(bad), `byte ${i}`).toThrow(SnapshotFormatError);
    }
    const bad = Buffer.from(file);
    bad.writeUInt8(bad.readUInt8(40) ^ 1, 40);
    expect(() => decodeSnapshot(bad)).toThrow(/checksum mismatch/);
    const v2 = Buffer.from(file);
    v2.writeUInt16BE(2, 8);
    expect(() => decodeSnapshot(v2)).toThrow(/version 2 is not supported/);
    expect(() => decodeSnapshot(Buffer.from('{"not":"a snapshot"}' + ' '.repeat(40)))).toThrow(/wrong magic/);
    expect(() => decodeSnapshot(Buffer.concat([file, Buffer.from('x')]))).toThrow(/garbage after the end/);
  });

  it('fuzz: damaged content with a valid checksum never throws anything but SnapshotFormatError', () => {
    const rand = prng(20250613);
    const file = encodeSnapshot(sample());
    let rejected = 0;
    let accepted = 0;
    for (let round = 0; round < 5000; round++) {
      const bad = Buffer.from(file);
      const flips = 1 + Math.floor(rand() * 4);
      for (let f = 0; f < flips; f++) {
        // Inside the body only (header and checksum are covered above).
        const i = 18 + Math.floor(rand() * (bad.length - 18 - 32));
        bad[i] = Math.floor(rand() * 256);
      }
      try {
        const s = decodeSnapshot(resign(bad));
        // Whatever is accepted is well formed.
        for (const m of s.maps) for (const e of m.entries) {
          expect(Buffer.isBuffer(e.key)).toBe(true);
          expect(Number.isFinite(e.expiresInMs)).toBe(true);
          if (e.kind === 'found') expect(Buffer.isBuffer(e.value)).toBe(true);
        }
        accepted++;
      } catch (err) {
        expect(err).toBeInstanceOf(SnapshotFormatError);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(1000);
    expect(rejected + accepted).toBe(5000);
  });

  it('a huge count in a damaged file is refused before anything is allocated for it', () => {
    const file = encodeSnapshot({ writtenAt: 0, markers: [], maps: [] });
    // The string-table count follows the 8-byte time of writing.
    const bad = Buffer.from(file);
    bad.writeUInt32BE(0xffffffff, 18 + 8);
    expect(() => decodeSnapshot(resign(bad))).toThrow(/cannot fit/);
  });
});

/** An LDAP-map stand-in that reports one search and one entry per lookup, like the real one. */
class Directory implements LookupMap {
  readonly name = 'aliases';
  calls = 0;
  down = false;
  tag = 'value';
  async lookup(key: Buffer, ctx?: LookupContext): Promise<LookupResult> {
    this.calls++;
    if (this.down) return temp('LDAP down');
    const k = key.toString('latin1');
    ctx?.trace?.search?.(0, undefined, { base: 'ou=People,dc=x', scope: 'sub', filter: `(mail=${k})`, attributes: ['mail'], deref: 0 }, 1);
    if (k.startsWith('no')) return NOTFOUND;
    ctx?.trace?.entry?.(0, `uid=${k},ou=People,dc=x`, 'no', 'no');
    return found(Buffer.from(`${k}-${this.tag}`));
  }
}

class Clock {
  t = 5_000;
  now = (): number => this.t;
}

const OPTS: CacheOptions = { ttlSec: 100, negativeTtlSec: 10, maxEntries: 1000, maxBytes: 1e7, staleIfErrorSec: 50, trackDependencies: true };

describe('CachedMap export / import', () => {
  it('answers restored keys from the snapshot without asking LDAP, with remaining times shortened by the downtime', async () => {
    const clock = new Clock();
    const dir = new Directory();
    const a = new CachedMap(dir, { ...OPTS, now: clock.now }, socketmapAnswers());
    await a.lookup(Buffer.from('alice'));
    await a.lookup(Buffer.from('nobody'));
    clock.t += 4_000;
    const exported = a.exportEntries();
    expect(exported.map((e) => [e.key.toString(), e.kind, e.ageMs, e.expiresInMs, e.staleForMs])).toEqual([
      ['alice', 'found', 4000, 96_000, 146_000],
      ['nobody', 'notfound', 4000, 6000, 56_000],
    ]);
    expect(exported[0]!.deps!.entries).toEqual(['uid=alice,ou=people,dc=x']);
    const file = encodeSnapshot({ writtenAt: 0, markers: [], maps: [{ name: 'aliases', fingerprint: FP, entries: exported }] });

    // A new process: another clock origin, 10 s later.
    const clock2 = new Clock();
    clock2.t = 77;
    const dir2 = new Directory();
    const b = new CachedMap(dir2, { ...OPTS, now: clock2.now }, socketmapAnswers());
    expect(b.importEntries(decodeSnapshot(file).maps[0]!.entries, 10_000)).toBe(2);
    expect((await b.lookup(Buffer.from('alice'))).kind).toBe('found');
    expect((await b.lookup(Buffer.from('alice'))).kind === 'found' && b.answerNow(Buffer.from('alice'))?.kind).toBe('found');
    expect(dir2.calls).toBe(0);
    // nobody had 6 s left, the daemon was down 10 s: expired, but within its stale window.
    dir2.down = true;
    expect((await b.lookup(Buffer.from('nobody'))).kind).toBe('notfound');
    expect(dir2.calls).toBe(1);
    // alice: 96 - 10 = 86 s fresh, then stale until 146 - 10 = 136 s.
    clock2.t += 85_000;
    expect(b.answerNow(Buffer.from('alice'))).toBeDefined();
    clock2.t += 2_000;
    expect(b.answerNow(Buffer.from('alice'))).toBeUndefined();
    expect((await b.lookup(Buffer.from('alice')))).toEqual(found(Buffer.from('alice-value')));
    clock2.t += 50_000;
    expect((await b.lookup(Buffer.from('alice'))).kind).toBe('temp');
  });

  it('restored dependencies let the watcher expire exactly the changed answers', async () => {
    const a = new CachedMap(new Directory(), OPTS, socketmapAnswers());
    await a.lookup(Buffer.from('alice'));
    await a.lookup(Buffer.from('bob'));
    const b = new CachedMap(new Directory(), OPTS, socketmapAnswers());
    b.importEntries(decodeSnapshot(encodeSnapshot({ writtenAt: 0, markers: [], maps: [{ name: 'x', fingerprint: FP, entries: a.exportEntries() }] })).maps[0]!.entries);
    expect([...b.trackedEntryDns()].sort()).toEqual(['uid=alice,ou=people,dc=x', 'uid=bob,ou=people,dc=x']);
    const n = b.invalidate((deps) => deps?.entries.includes('uid=bob,ou=people,dc=x') ?? true);
    expect(n).toBe(1);
    expect(b.answerNow(Buffer.from('alice'))).toBeDefined();
    expect(b.answerNow(Buffer.from('bob'))).toBeUndefined();
  });

  it('the settings now in force rule: TTL cap, kinds no longer cached, stale window, LRU order, live entries kept', async () => {
    const clock = new Clock();
    const a = new CachedMap(new Directory(), { ...OPTS, now: clock.now }, socketmapAnswers());
    for (const k of ['k1', 'k2', 'k3', 'no1']) await a.lookup(Buffer.from(k));
    await a.lookup(Buffer.from('k1')); // k1 most recently used
    const exported = a.exportEntries();
    expect(exported.map((e) => e.key.toString())).toEqual(['k2', 'k3', 'no1', 'k1']);

    const clock2 = new Clock();
    const dir = new Directory();
    const b = new CachedMap(dir, { ...OPTS, ttlSec: 5, negativeTtlSec: 0, maxEntries: 2, staleIfErrorSec: 0, now: clock2.now }, socketmapAnswers());
    expect(b.importEntries(exported)).toBe(3); // no1 skipped: negative caching is off now
    // maxEntries 2: the least recently used of the import (k2) went first.
    expect(b.answerNow(Buffer.from('k1'))).toBeDefined();
    expect(b.answerNow(Buffer.from('k3'))).toBeDefined();
    expect(b.answerNow(Buffer.from('k2'))).toBeUndefined();
    expect(b.answerNow(Buffer.from('no1'))).toBeUndefined();

    // An answer looked up live before the import is newer than the snapshot's: it stays.
    const live = new Directory();
    live.tag = 'live';
    const c = new CachedMap(live, OPTS, socketmapAnswers());
    await c.lookup(Buffer.from('k3'));
    expect(c.importEntries(exported)).toBe(3);
    expect(c.answerNow(Buffer.from('k3'))!.result()).toEqual(found(Buffer.from('k3-live')));
    expect(c.answerNow(Buffer.from('k1'))!.result()).toEqual(found(Buffer.from('k1-value')));

    clock2.t += 5_001;
    dir.down = true;
    expect((await b.lookup(Buffer.from('k1'))).kind).toBe('temp'); // TTL capped to 5 s, no stale window
  });
});

describe('writing a large cache in slices', () => {
  it('exportChunks reads the keys once and leaves out what is gone by the time its slice is made', async () => {
    const a = new CachedMap(new Directory(), OPTS, socketmapAnswers());
    for (let i = 0; i < 10; i++) await a.lookup(Buffer.from(`user${i}`));
    const chunks = a.exportChunks(4);
    const first = chunks.next().value as SnapshotEntry[];
    expect(first.map((e) => e.key.toString())).toEqual(['user0', 'user1', 'user2', 'user3']);
    // Between two slices an admin flushes user5 and a lookup adds user10.
    expect(a.flush(Buffer.from('user5'))).toBe(1);
    await a.lookup(Buffer.from('user10'));
    const rest = [...chunks].flat().map((e) => e.key.toString());
    expect(rest).toEqual(['user4', 'user6', 'user7', 'user8', 'user9']);
    expect(a.exportEntries().map((e) => e.key.toString())).toContain('user10');
  });

  it('CacheSnapshots.write lets the event loop run between slices, and the file reads back whole', async () => {
    const a = new CachedMap(new Directory(), { ...OPTS, maxEntries: 10_000 }, socketmapAnswers());
    for (let i = 0; i < 5000; i++) await a.lookup(Buffer.from(`user${i}`));
    const file = `${makeTmpDir('snapshot-slices-')}/cache.snapshot`;
    const snaps = new CacheSnapshots({ cacheSnapshotFile: file, cacheSnapshotInterval: 300 }, 1e9);
    let ticks = 0;
    const seen: number[] = [];
    let done = false;
    const spin = (): void => { ticks++; if (!done) setImmediate(spin); };
    setImmediate(spin);
    const source = {
      name: 'aliases',
      fingerprint: FP,
      cache: {
        // The real slices, noting how often the loop ran before each was asked for.
        *exportChunks(size: number) { for (const c of a.exportChunks(size)) { seen.push(ticks); yield c; } },
        importEntries: (e: Iterable<unknown>, d?: number) => a.importEntries(e as never, d),
      },
    };
    expect(await snaps.write({ maps: [source], watchers: [] })).toBe(true);
    done = true;
    expect(seen).toHaveLength(3);
    expect(seen[1]!).toBeGreaterThan(seen[0]!);
    expect(seen[2]!).toBeGreaterThan(seen[1]!);
    const b = new CachedMap(new Directory(), { ...OPTS, maxEntries: 10_000 }, socketmapAnswers());
    const restored = new CacheSnapshots({ cacheSnapshotFile: file, cacheSnapshotInterval: 300 }, 1e9).load([{ name: 'aliases', fingerprint: FP, cache: b }]);
    expect(restored.entries).toBe(5000);
  });
});
