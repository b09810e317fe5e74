/**
 * The change watchers' series (freshness). Label `servers` is a pool's server_host list, as for
 * the pool gauges; `marker` and `kind` are fixed enums; `base` a naming context of the server.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ChangeKind, WatcherObserver, WatcherStatus } from '../freshness/watcher.js';

export class FreshnessMetrics {
  readonly observer: WatcherObserver;
  private watchers: { status(): WatcherStatus }[] = [];
  private readonly directoryChanges: Counter<'servers' | 'kind'>;
  private readonly invalidations: Counter<'map'>;
  private readonly changePollErrors: Counter<'servers'>;

  /** `declareMap`: a map the watcher expired answers of is declared with the other per-map series. */
  constructor(registers: Registry[], declareMap: (map: string) => void) {
    this.directoryChanges = new Counter({
      name: 'ldap_socketmap_directory_changes_total',
      help: 'Directory changes the change watchers saw: entries added/modified, entries deleted, and changes that could not be pinned down (unexplained: the maps depending on it were expired).',
      labelNames: ['servers', 'kind'],
      registers,
    });
    this.invalidations = new Counter({
      name: 'ldap_socketmap_cache_invalidations_total',
      help: 'Cached answers expired by the change watcher because a directory change may have affected them.',
      labelNames: ['map'],
      registers,
    });
    this.changePollErrors = new Counter({
      name: 'ldap_socketmap_change_poll_errors_total',
      help: 'Change marker polls that failed (nothing is invalidated while they fail).',
      labelNames: ['servers'],
      registers,
    });
    const watcherStatus = (): WatcherStatus[] => this.watchers.map((w) => w.status());
    new Gauge({
      name: 'ldap_socketmap_change_poll_age_seconds',
      help: 'Seconds since the change watcher last polled its directory successfully (since start when never).',
      labelNames: ['servers'],
      registers,
      collect() {
        this.reset();
        for (const s of watcherStatus()) this.set({ servers: s.servers }, s.lastSuccessAgeSec);
      },
    });
    new Gauge({
      name: 'ldap_socketmap_change_watcher_blind',
      help: 'Set to 1 while a change watcher cannot poll (changes go unseen; answers fall back to blind_cache_ttl); reason is the refusing result code by name, or unreachable.',
      labelNames: ['servers', 'reason'],
      registers,
      collect() {
        this.reset();
        for (const s of watcherStatus()) if (s.state === 'failing') this.set({ servers: s.servers, reason: s.refused ?? 'unreachable' }, 1);
      },
    });
    new Gauge({
      name: 'ldap_socketmap_change_marker',
      help: 'The change marker a watcher uses per naming context (contextCSN or modifyTimestamp); the value is always 1.',
      labelNames: ['servers', 'base', 'marker'],
      registers,
      collect() {
        this.reset();
        for (const s of watcherStatus()) for (const c of s.contexts) this.set({ servers: s.servers, base: c.base, marker: c.marker }, 1);
      },
    });
    this.observer = {
      changes: (servers: string, kind: ChangeKind, n: number) => this.directoryChanges.inc({ servers, kind }, n),
      invalidated: (map: string, n: number) => {
        declareMap(map);
        this.invalidations.inc({ map }, n);
      },
      pollError: (servers: string) => this.changePollErrors.inc({ servers }),
    };
  }

  /** The running change watchers (replaces the previous set, e.g. after reload); creates their series at 0. */
  register(watchers: { readonly servers: string; status(): WatcherStatus }[]): void {
    this.watchers = [...watchers];
    for (const w of watchers) {
      this.changePollErrors.inc({ servers: w.servers }, 0);
      for (const kind of ['modified', 'deleted', 'unexplained'] as const) this.directoryChanges.inc({ servers: w.servers, kind }, 0);
    }
  }

  /** A declared map's invalidation series, at 0. */
  declareMap(map: string): void {
    this.invalidations.inc({ map }, 0);
  }
}
