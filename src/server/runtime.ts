import { CachedMap, cacheOptionsFrom } from '../cache/cache-map.js';
import type { DaemonConfig } from '../config/daemon-config.js';
import { explainLookup } from '../explain/explain.js';
import { ServerTap } from '../explain/server-tap.js';
import type { ExplainReport } from '../explain/types.js';
import { log } from '../log.js';
import { Metrics } from '../metrics/metrics.js';
import { AdminError, startAdminHttp, type AdminServer, type Health } from './admin-http.js';
import { Daemon } from './daemon.js';

/** How long /readyz waits for a map's LDAP connection before calling it down. */
const READY_PROBE_MS = 2_000;

/**
 * The daemon as `serve` runs it: maps wrapped in their caches, metrics observing every layer,
 * and the admin HTTP listener. Caches are per map generation: a reload starts new ones.
 */
export class Runtime {
  readonly metrics = new Metrics();
  /** The pools' observer: metrics, plus which servers an explain's searches went to. */
  private readonly tap = new ServerTap(this.metrics.poolObserver);
  private caches = new Map<string, CachedMap>();
  private pending = new Map<string, CachedMap>();
  private admin?: AdminServer;
  private pruner?: NodeJS.Timeout;
  daemon!: Daemon;

  static async start(cfg: DaemonConfig): Promise<Runtime> {
    const rt = new Runtime();
    rt.daemon = await Daemon.start(cfg, {
      observer: rt.tap.observer,
      wrap: (map, entry) => {
        const c = new CachedMap(map, cacheOptionsFrom(entry.settings), rt.metrics.cacheObserver);
        rt.pending.set(entry.name, c);
        return c;
      },
      connections: rt.metrics.connectionObserver,
      lookupsFor: (p) => rt.metrics.lookupObserverFor(p),
    });
    rt.commitCaches();
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
    return rt;
  }

  private commitCaches(): void {
    this.caches = this.pending;
    this.pending = new Map();
    this.metrics.setMaps(this.caches.keys());
    for (const [name, c] of this.caches) this.metrics.registerCache(name, c);
  }

  async reload(cfg: DaemonConfig): Promise<void> {
    try {
      await this.daemon.reload(cfg);
    } catch (err) {
      this.pending = new Map();
      throw err;
    }
    this.commitCaches();
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
   * What the daemon does with `key` (exactly as Postfix sends it) in `map` right now: its own
   * LDAP map and pool, asked with a trace, and its cache looked at without being touched.
   */
  explain(map: string, key: string): Promise<ExplainReport> {
    const built = this.daemon.maps.maps.get(map);
    const entry = this.daemon.config.maps.find((m) => m.name === map);
    if (!built || !entry) throw new AdminError(404, `unknown map ${JSON.stringify(map)}; known maps: ${this.daemon.names().join(', ')}`);
    return explainLookup(
      { name: built.name, file: built.file, config: built.config, ldap: built.ldap, settings: entry.settings },
      Buffer.from(key, 'utf8'),
      { source: 'daemon', tap: this.tap, cache: this.caches.get(map) },
    );
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
      const cacheEntries = this.caches.get(name)?.size ?? 0;
      const mapOk = connected || cacheEntries > 0;
      ok &&= mapOk;
      maps[name] = { ok: mapOk, ldap: connected ? 'connected' : 'down', cacheEntries, detail: connected ? undefined : pool.lastError };
    }
    return { ok, maps };
  }

  async stop(): Promise<void> {
    if (this.pruner) clearInterval(this.pruner);
    await this.admin?.close();
    await this.daemon.stop();
  }
}
