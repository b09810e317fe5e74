import { getHeapStatistics } from 'node:v8';
import { type CachedMap } from '../cache/cache-map.js';
import { cacheOptionsFrom } from '../cache/options.js';
import type { SocketmapForm } from '../protocol/socketmap-answers.js';
import type { DaemonConfig } from '../config/daemon-config.js';
import type { MapSettings } from '../config/settings.js';
import { explainLookup } from '../explain/explain.js';
import { ServerTap } from '../explain/server-tap.js';
import type { ExplainReport } from '../explain/types.js';
import { snapshotFingerprint } from '../cache/snapshot-fingerprint.js';
import { ChangeWatcher, type ContextMarker, type WatchedMap } from '../freshness/watcher.js';
import type { LdapPool } from '../ldap/pool.js';
import { log } from '../log.js';
import { Metrics } from '../metrics/metrics.js';
import { AdminError, startAdminHttp, type AdminServer, type Health, type WatcherHealth } from './admin-http.js';
import { Daemon } from '../server/daemon.js';
import { CacheSnapshots, type SnapshotSources } from './cache-snapshot.js';

/** How long /readyz waits for a map's LDAP connection before calling it down. */
const READY_PROBE_MS = 2_000;

/**
 * V8 heap kept out of the caches' budget: the daemon itself (about 15 MiB), lookups in flight
 * (a 5 000-member expansion), the change watchers' reads, and room for the garbage collector.
 */
export const HEAP_RESERVE_BYTES = 96 * 2 ** 20;

const MiB = 2 ** 20;

/**
 * How much of its cache_max_bytes each map's cache may use so that all caches together fit in
 * the V8 heap limit (--max-old-space-size, set in systemd/ldap-socketmap.service): 1 when they
 * fit. Full caches beyond the limit would end the daemon ("JavaScript heap out of memory"), so
 * they are held to a share of it instead, and the log says what to raise.
 */
export function cacheBudget(
  maps: readonly { settings: Pick<MapSettings, 'cacheTtl' | 'cacheNegativeTtl' | 'cacheMaxEntries' | 'cacheMaxBytes'> }[],
  heapLimit: number = getHeapStatistics().heap_size_limit,
): { scale: number; total: number; budget: number; warning?: string } {
  let total = 0;
  let n = 0;
  for (const { settings: s } of maps) {
    if ((s.cacheTtl > 0 || s.cacheNegativeTtl > 0) && s.cacheMaxEntries >= 1) {
      total += s.cacheMaxBytes;
      n++;
    }
  }
  const budget = Math.max(heapLimit - HEAP_RESERVE_BYTES, heapLimit / 4);
  if (total <= budget) return { scale: 1, total, budget };
  const scale = budget / total;
  // --max-old-space-size counts the old generation only; heap_size_limit adds the young one.
  const want = Math.ceil((total + HEAP_RESERVE_BYTES) / (64 * MiB)) * 64;
  const warning =
    `caches: cache_max_bytes of ${n} maps add up to ${Math.round(total / MiB)} MiB, more than the V8 heap limit of ` +
    `${Math.round(heapLimit / MiB)} MiB leaves for them (${Math.round(HEAP_RESERVE_BYTES / MiB)} MiB are kept for the rest); ` +
    `each cache is held to ${Math.floor(scale * 100)}% of its cache_max_bytes. Raise the limit ` +
    `(NODE_OPTIONS=--max-old-space-size=${want}, see the systemd unit) or lower cache_max_bytes`;
  return { scale, total, budget, warning };
}

/**
 * The daemon as `serve` runs it: maps wrapped in their caches, metrics observing every layer,
 * and the admin HTTP listener. Caches are per map generation: a reload starts new ones.
 */
export class Runtime {
  readonly metrics = new Metrics();
  /** The pools' observer: metrics, plus which servers an explain's searches went to. */
  private readonly tap = new ServerTap(this.metrics.poolObserver);
  private caches = new Map<string, CachedMap<SocketmapForm>>();
  private admin?: AdminServer;
  private pruner?: NodeJS.Timeout;
  /** Change watchers of the current map generation, one per LDAP pool (see src/freshness). */
  private watchers: ChangeWatcher[] = [];
  /** Share of cache_max_bytes the caches of the next map generation get (cacheBudget). */
  private cacheScale = 1;
  /** cache_snapshot_file, when set. */
  private snapshots?: CacheSnapshots;
  daemon!: Daemon;

  static async start(cfg: DaemonConfig): Promise<Runtime> {
    const rt = new Runtime();
    const budget = rt.budgetCaches(cfg);
    if (cfg.snapshot) {
      // A snapshot holds at most what the caches can: their byte bounds (which count 256 bytes
      // of overhead per entry, more than an entry takes in the file), plus room for the markers.
      rt.snapshots = new CacheSnapshots(cfg.snapshot, Math.ceil(Math.min(budget.total, budget.budget)) + 16 * MiB, rt.metrics.snapshotObserver);
    }
    let restored = false;
    rt.daemon = await Daemon.start(cfg, {
      // The snapshot is restored, and the watchers have compared it with the directory, before
      // the first client is answered.
      beforeListen: async (d) => {
        rt.daemon = d;
        await rt.restore();
        restored = true;
      },
      observer: rt.tap.observer,
      cache: {
        options: (entry) => {
          const opts = cacheOptionsFrom(entry.settings);
          return { ...opts, maxBytes: Math.floor(opts.maxBytes * rt.cacheScale), trackDependencies: entry.settings.changePollInterval > 0 };
        },
        observer: rt.metrics.cacheObserver,
      },
      connections: rt.metrics.connectionObserver,
      lookupsFor: (p) => rt.metrics.lookupObserverFor(p),
    });
    if (!restored) rt.commitCaches();
    rt.metrics.setMaxConnections(rt.daemon.limits.maxConnections);
    if (cfg.metricsListen) {
      try {
        rt.admin = await startAdminHttp(cfg.metricsListen, {
          metrics: rt.metrics,
          health: () => rt.health(),
          flush: (map, key) => rt.flush(map, key),
          explain: (map, key) => rt.explain(map, key),
        });
        log.info(`metrics on ${cfg.metricsListen.host}:${rt.admin.port}`);
      } catch (err) {
        await rt.daemon.stop();
        throw err;
      }
    }
    rt.pruner = setInterval(() => { for (const c of rt.caches.values()) c.prune(); }, 60_000).unref();
    rt.snapshots?.start(() => rt.snapshotSources());
    return rt;
  }

  /**
   * Loads the cache snapshot into the new caches, starts the watchers from its markers, and
   * waits (at most each pool's longest .cf timeout) for the first poll of those that have
   * restored answers to expire: their directory's changes while the daemon was down must not
   * be served. A directory that cannot be reached ends that wait at once or at the timeout.
   */
  private async restore(): Promise<void> {
    this.caches = this.currentCaches();
    const restored = this.snapshots?.load(this.snapshotSources().maps);
    this.commitCaches(restored?.markers);
    const resumed = this.watchers.filter((w) => restored?.markers.has(w.servers));
    if (!restored || restored.entries === 0) {
      for (const w of resumed) w.start();
      return;
    }
    await Promise.all(resumed.map(async (w) => {
      // The .cf `timeout` bounds each search: a hung directory costs one of them, not more.
      const timeoutMs = 1000 * Math.max(1, ...w.mapNames.map((n) => this.daemon.maps.maps.get(n)?.config.timeout ?? 1));
      // Its first poll now (restartWatchers left it unstarted); its loop begins when that ends.
      const first = w.pollNow().finally(() => w.start());
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<false>((r) => { timer = setTimeout(() => r(false), timeoutMs); });
      const done = await Promise.race([first.then(() => true), late]);
      clearTimeout(timer);
      if (!done) log.warn(`change watcher ${w.servers}: no answer within ${timeoutMs / 1000} s at start; restored answers are served as they are until it polls`);
    }));
  }

  /** Every map's cache with what the snapshot records of it, and the watchers' markers. */
  private snapshotSources(): SnapshotSources {
    const maps: SnapshotSources['maps'] = [];
    for (const [name, b] of this.daemon.maps.maps) {
      const cache = this.caches.get(name);
      if (cache) maps.push({ name, fingerprint: snapshotFingerprint(b.config, b.settings), cache });
    }
    return { maps, watchers: this.watchers };
  }

  private currentCaches(): Map<string, CachedMap<SocketmapForm>> {
    const out = new Map<string, CachedMap<SocketmapForm>>();
    for (const [name, b] of this.daemon.maps.maps) if (b.cache) out.set(name, b.cache);
    return out;
  }

  /** The caches of the map generation now in force. */
  private commitCaches(resume?: Map<string, ContextMarker[]>): void {
    this.caches = this.currentCaches();
    this.metrics.setMaps(this.caches.keys());
    for (const [name, c] of this.caches) this.metrics.registerCache(name, c);
    this.restartWatchers(resume);
  }

  /** One change watcher per LDAP pool, over the maps with change_poll_interval > 0 and a cache. */
  private restartWatchers(resume?: Map<string, ContextMarker[]>): void {
    for (const w of this.watchers) void w.stop();
    this.watchers = [];
    const byPool = new Map<LdapPool, { maps: WatchedMap[]; intervalSec: number; timeoutSec: number; blindSec: number }>();
    for (const [name, b] of this.daemon.maps.maps) {
      const settings = this.daemon.config.maps.find((m) => m.name === name)?.settings;
      const cache = this.caches.get(name);
      if (!settings || !cache || settings.changePollInterval <= 0) continue;
      if (settings.cacheTtl <= 0 && settings.cacheNegativeTtl <= 0) continue;
      const group = byPool.get(b.ldap.pool) ?? { maps: [], intervalSec: settings.changePollInterval, timeoutSec: 0, blindSec: settings.blindCacheTtl };
      group.maps.push({ name, cache, searchBase: b.config.searchBase });
      group.intervalSec = Math.min(group.intervalSec, settings.changePollInterval);
      group.timeoutSec = Math.max(group.timeoutSec, settings.requestTimeout);
      if (settings.blindCacheTtl > 0) group.blindSec = group.blindSec > 0 ? Math.min(group.blindSec, settings.blindCacheTtl) : settings.blindCacheTtl;
      byPool.set(b.ldap.pool, group);
    }
    for (const [pool, g] of byPool) {
      const servers = pool.settings.servers.map((s) => s.url).join(' ');
      const from = resume?.get(servers);
      const w = new ChangeWatcher(pool, g.maps, {
        ...(from ? { resume: from } : {}),
        intervalMs: g.intervalSec * 1000,
        // Lookups running during an invalidation are checked against it when they finish.
        lateLookupMs: Math.max(120_000, 2 * g.timeoutSec * 1000),
        observer: this.metrics.watcherObserver,
        blindTtlMs: g.blindSec * 1000,
      });
      // Resumed watchers are started by restore(), after a first poll it waits for.
      if (!from) w.start();
      this.watchers.push(w);
    }
    this.metrics.registerWatchers(this.watchers);
  }

  private watcherHealth(map: string): WatcherHealth | undefined {
    const w = this.watchers.find((x) => x.mapNames.includes(map));
    if (!w) return undefined;
    const s = w.status();
    const h: WatcherHealth = {
      state: s.state,
      markers: Object.fromEntries(s.contexts.map((c) => [c.base, c.marker])),
      lastSuccessAgeSec: Math.round(s.lastSuccessAgeSec * 10) / 10,
      failingLong: s.failingLong,
    };
    if (s.lastError !== undefined) h.error = s.lastError;
    if (s.refused !== undefined) h.refused = s.refused;
    if (s.advice !== undefined) h.advice = s.advice;
    return h;
  }

  private budgetCaches(cfg: DaemonConfig): ReturnType<typeof cacheBudget> {
    const b = cacheBudget(cfg.maps);
    this.cacheScale = b.scale;
    if (b.warning) log.warn(b.warning);
    return b;
  }

  async reload(cfg: DaemonConfig): Promise<void> {
    this.budgetCaches(cfg);
    await this.daemon.reload(cfg);
    this.commitCaches();
    this.metrics.setMaxConnections(this.daemon.limits.maxConnections);
  }

  /** Drops cached answers: all maps, one map, or one key (the key exactly as Postfix sends it). */
  flush(map?: string, key?: string): number {
    if (map === undefined) {
      let n = 0;
      for (const c of this.caches.values()) n += c.flush();
      return n;
    }
    const c = this.caches.get(map);
    if (!c) throw new AdminError(404, `unknown map ${JSON.stringify(map)}; known maps: ${[...this.caches.keys()].join(', ')}`);
    return c.flush(key === undefined ? undefined : Buffer.from(key, 'utf8'));
  }

  /**
   * What the daemon does with `key` (exactly as Postfix sends it) in `map` right now: the chain
   * it serves with, cache included, asked to look without changing anything.
   */
  explain(map: string, key: string): Promise<ExplainReport> {
    const built = this.daemon.maps.maps.get(map);
    if (!built) throw new AdminError(404, `unknown map ${JSON.stringify(map)}; known maps: ${this.daemon.names().join(', ')}`);
    return explainLookup(built, Buffer.from(key, 'utf8'), { source: 'daemon', tap: this.tap, maxReply: this.daemon.limits.socketmapMaxReplySize });
  }

  async health(): Promise<Health> {
    const maps: Health['maps'] = {};
    let ok = true;
    for (const [name, b] of this.daemon.maps.maps) {
      const pool = b.ldap.pool;
      let connected = pool.connected;
      if (!connected) {
        connected = await Promise.race([
          pool.ensureConnected().then(() => true, () => false),
          new Promise<boolean>((r) => setTimeout(() => r(false), READY_PROBE_MS).unref()),
        ]);
      }
      // Only entries that can still be served count: drop those past their stale window first.
      const cache = this.caches.get(name);
      cache?.prune();
      const cacheEntries = cache?.size ?? 0;
      const watcher = this.watcherHealth(name);
      // LDAP answers lookups but the watcher has not seen the directory for long: cached answers
      // may be outdated without anybody noticing.
      // A refused poll does not fix itself: the map is not ready until the server (or the config) is fixed.
      const mapOk = (connected || cacheEntries > 0) && !(connected && (watcher?.failingLong || watcher?.refused !== undefined));
      ok &&= mapOk;
      maps[name] = { ok: mapOk, ldap: connected ? 'connected' : 'down', cacheEntries, detail: connected ? undefined : pool.lastError };
      if (watcher) maps[name].watcher = watcher;
      const failing = pool.failingServers;
      if (failing.length > 0) {
        maps[name].failingServers = failing.map((f) => ({ server: f.server, reason: f.reason, openForSec: Math.round(f.openForMs / 100) / 10 }));
      }
    }
    return { ok, maps };
  }

  async stop(): Promise<void> {
    if (this.pruner) clearInterval(this.pruner);
    this.snapshots?.stopTimer();
    await Promise.all(this.watchers.map((w) => w.stop()));
    // After the watchers: the markers written are those every answer written was checked against.
    if (this.snapshots && (await this.snapshots.write(this.snapshotSources()))) log.info(`cache snapshot written to ${this.snapshots.file}`);
    await this.admin?.close();
    await this.daemon.stop();
  }
}
