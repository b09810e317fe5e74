/**
 * A restart across a directory change, for the change markers a cache snapshot records
 * (cache_snapshot_file): a daemon caches some keys and is stopped (SIGTERM writes the
 * snapshot), the directory changes while it is down, a second daemon over the same files
 * resumes. The suites of each directory server say what must hold: the first answers after the
 * restart equal native postmap's, and keys no change touched come from the restored cache.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startDaemonWithMetrics, type DaemonWithMetrics } from './daemon.js';
import { metricValue } from './metrics.js';
import { answerFrom, postmapQuery, type Answer, type PostmapResult } from './postfix.js';
import { makeTmpDir } from './tmp.js';

export interface RestartCase {
  confDir: string;
  /** Map name → its .cf file. */
  files: Record<string, string>;
  /** The watcher's detection line of the marker under test (waited for before caching). */
  marker: RegExp;
  /** (map, key) asked before the stop, and again, first thing, after the restart. */
  keys: [string, string][];
  /** What changes in the directory while no daemon runs. */
  whileDown: () => Promise<void>;
  /**
   * A network namespace the directory lives in (Samba AD): the daemon and postmap run in it,
   * the daemon answers on a unix socket and /metrics is read from inside.
   */
  netns?: { prefix: string[]; postmap(confDir: string, table: string, key: string): Promise<PostmapResult> };
}

export interface RestartOutcome {
  before: Answer[];
  /** The first answers of the restarted daemon, in `keys` order. */
  after: Answer[];
  /** Native postmap over the changed directory, in `keys` order. */
  native: Answer[];
  /** Fresh cache hits and misses per map of the restarted daemon after those answers. */
  hits: Record<string, number>;
  misses: Record<string, number>;
  /** The restarted daemon's log. */
  log: string[];
}

export async function restartAcrossChange(c: RestartCase): Promise<RestartOutcome> {
  const dir = makeTmpDir('snapshot-restart-');
  const file = join(dir, 'cache.snapshot');
  const socket = join(dir, 'socketmap.sock');
  const postmap = (table: string, key: string): Promise<PostmapResult> => (c.netns ? c.netns.postmap(c.confDir, table, key) : postmapQuery(c.confDir, table, key));
  const answer = async (table: string, key: string): Promise<Answer> => answerFrom(await postmap(table, key));
  const start = (): Promise<DaemonWithMetrics> => startDaemonWithMetrics([
    '--socketmap', c.netns ? `unix:${socket}` : 'inet:127.0.0.1:0',
    ...Object.entries(c.files).flatMap(([name, f]) => ['--map', `${name}=${f}`]),
    '--set', 'cache_ttl=1h', '--set', 'cache_negative_ttl=1h', '--set', 'change_poll_interval=1',
    '--set', `cache_snapshot_file=${file}`, '--set', 'cache_snapshot_interval=1h',
  ], c.netns ? { prefix: c.netns.prefix, timeoutMs: 30_000 } : {});
  const table = (d: DaemonWithMetrics, map: string): string => (c.netns ? `socketmap:unix:${socket}:${map}` : d.table(map));
  const ask = (d: DaemonWithMetrics): Promise<Answer[]> => Promise.all(c.keys.map(([map, key]) => answer(table(d, map), key)));
  const metrics = async (d: DaemonWithMetrics): Promise<string> => {
    if (!c.netns) return (await fetch(`http://127.0.0.1:${d.metricsPort}/metrics`)).text();
    const r = spawnSync(c.netns.prefix[0]!, [...c.netns.prefix.slice(1), 'curl', '-sS', `http://127.0.0.1:${d.metricsPort}/metrics`], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`curl /metrics in the namespace: ${r.stderr}`);
    return r.stdout;
  };

  const first = await start();
  let second: DaemonWithMetrics | undefined;
  try {
    // Answers cached before the first detection are expired by it: cache after it.
    await first.waitForLog(c.marker, 30_000);
    const before = await ask(first);
    await first.stop('SIGTERM');
    await c.whileDown();
    const native = await Promise.all(c.keys.map(([map, key]) => answer(`ldap:${c.files[map]!}`, key)));
    second = await start();
    await second.waitForLog(/resuming from the cache snapshot/, 30_000);
    const after = await ask(second);
    const text = await metrics(second);
    const hits: Record<string, number> = {};
    const misses: Record<string, number> = {};
    for (const map of Object.keys(c.files)) {
      hits[map] = metricValue(text, 'ldap_socketmap_cache_hits_total', { map, kind: 'fresh' });
      misses[map] = metricValue(text, 'ldap_socketmap_cache_misses_total', { map });
    }
    return { before, after, native, hits, misses, log: [...second.log] };
  } finally {
    await first.stop('SIGKILL');
    await second?.stop('SIGTERM');
  }
}
