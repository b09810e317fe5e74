#!/usr/bin/env node
/**
 * Cache snapshot cost for N answers (default 100 000), measured with the built modules (dist/):
 *
 *   node bench/snapshot-load.mjs [N]
 *
 * A first process fills one CachedMap (the daemon's socketmap codec, dependencies tracked as
 * with change_poll_interval > 0) with N answers shaped like alias lookups (a 24-byte key, a
 * 30-120 byte value, one subtree search and 1-3 entry DNs each; one in five NOTFOUND), and
 * writes the snapshot as the daemon does (CacheSnapshots.write: export and encode in slices,
 * atomic write with fsync), reporting the longest event-loop stall meanwhile. A second,
 * fresh process then loads it as the daemon does at start (read, check, decode, import) and
 * reports the time and its RSS before and after (after a GC, with --expose-gc), next to a third
 * process that fills the same cache from nothing, for comparison.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const load = (m) => import(pathToFileURL(join(REPO, 'dist', m)).href);
const N = Number(process.argv[3] ?? process.argv[2] ?? 100_000);
const MiB = 2 ** 20;
const rss = () => process.memoryUsage().rss / MiB;

async function makeCache() {
  const { CachedMap } = await load('cache/cache-map.js');
  const { socketmapAnswers } = await load('protocol/socketmap-answers.js');
  const { found, NOTFOUND } = await load('contracts/result.js');
  const inner = {
    name: 'aliases',
    async lookup(key, ctx) {
      const k = key.toString('latin1');
      const i = Number(k.slice(5, 12));
      ctx?.trace?.search?.(0, undefined, { base: 'ou=Groups,dc=example,dc=org', scope: 'sub', filter: `(&(objectClass=*)(listName=${k}))`, attributes: ['mail'], deref: 0 }, 1);
      if (i % 5 === 4) return NOTFOUND;
      for (let d = 0; d <= i % 3; d++) ctx?.trace?.entry?.(0, `uid=user${(i * 7 + d) % 50_000},ou=People,dc=example,dc=org`, 'no', 'no');
      return found(Buffer.from(`member${i}@example.org,`.repeat(1 + (i % 4)).slice(0, -1)));
    },
  };
  return new CachedMap(inner, { ttlSec: 3600, negativeTtlSec: 3600, staleIfErrorSec: 3600, maxEntries: N, maxBytes: 2 ** 31, trackDependencies: true }, socketmapAnswers());
}

const key = (i) => Buffer.from(`list-${String(i).padStart(7, '0')}@example.org`);

async function fill() {
  const cache = await makeCache();
  for (let i = 0; i < N; i++) await cache.lookup(key(i));
  return cache;
}

const role = process.argv[2];
if (role === 'write') {
  const file = process.argv[4];
  const cache = await fill();
  const { CacheSnapshots } = await load('runtime/cache-snapshot.js');
  const snaps = new CacheSnapshots({ cacheSnapshotFile: file, cacheSnapshotInterval: 300 }, 2 ** 31);
  // The longest stretch the event loop could not run (what a lookup arriving then waits): the
  // largest gap between ticks of a 1 ms timer that is already running when the write starts.
  let last = performance.now();
  let maxGap = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 1);
  await new Promise((r) => setTimeout(r, 50));
  const t0 = performance.now();
  const ok = await snaps.write({ maps: [{ name: 'aliases', fingerprint: '00'.repeat(32), cache }], watchers: [] });
  const writeMs = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 5));
  clearInterval(tick);
  if (!ok) throw new Error('the snapshot was not written');
  console.log(JSON.stringify({ entries: cache.size, syncMs: maxGap, writeMs }));
} else if (role === 'load') {
  const file = process.argv[4];
  const cache = await makeCache();
  const { CacheSnapshots } = await load('runtime/cache-snapshot.js');
  global.gc();
  const before = rss();
  const t0 = performance.now();
  const snaps = new CacheSnapshots({ cacheSnapshotFile: file, cacheSnapshotInterval: 300 }, 2 ** 31);
  const restored = snaps.load([{ name: 'aliases', fingerprint: '00'.repeat(32), cache }]);
  const loadMs = performance.now() - t0;
  const peak = rss();
  global.gc();
  console.log(JSON.stringify({ restored: restored.entries, loadMs, rssBefore: before, rssAfterLoad: peak, rssAfterGc: rss(), heapAfterGc: process.memoryUsage().heapUsed / MiB, cacheSize: cache.size }));
} else if (role === 'fill') {
  const cache = await fill();
  global.gc();
  console.log(JSON.stringify({ rssFilled: rss(), heapFilled: process.memoryUsage().heapUsed / MiB, cacheSize: cache.size }));
} else {
  const dir = mkdtempSync(join(tmpdir(), 'snapshot-bench-'));
  try {
    const file = join(dir, 'cache.snapshot');
    const run = (r) => {
      const p = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=512', fileURLToPath(import.meta.url), r, String(N), file], { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'warn' } });
      if (p.status !== 0) throw new Error(`${r}: ${p.stderr}`);
      return JSON.parse(p.stdout.trim().split('\n').pop());
    };
    const w = run('write');
    const l = run('load');
    const f = run('fill');
    const mb = (x) => `${x.toFixed(0)} MiB`;
    console.log(`${N} answers (node ${process.version}, --max-old-space-size=512)`);
    console.log(`write: ${w.entries} answers, ${(statSync(file).size / MiB).toFixed(1)} MiB file, ${w.writeMs.toFixed(0)} ms (export + encode + write + fsync + rename, as the daemon writes it; the event loop stalled ${w.syncMs.toFixed(0)} ms at most)`);
    console.log(`load:  ${l.restored} answers in ${l.loadMs.toFixed(0)} ms (read + SHA-256 + decode + import)`);
    console.log(`RSS:   ${mb(l.rssBefore)} before, ${mb(l.rssAfterLoad)} right after loading, ${mb(l.rssAfterGc)} after GC (heap ${mb(l.heapAfterGc)}); the same cache filled by lookups: ${mb(f.rssFilled)} (heap ${mb(f.heapFilled)})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
