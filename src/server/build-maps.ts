import type { DaemonConfig } from '../config/daemon-config.js';
import { loadMapConfig, type MapConfig } from '../config/map-config.js';
import { formatWarning } from '../config/errors.js';
import type { ConnectionSettings } from '../ldap/connect.js';
import { LdapPool, type PoolObserver } from '../ldap/pool.js';
import { log } from '../log.js';
import { DeadlineMap } from '../lookup/deadline.js';
import { FallbackMap } from '../lookup/fallback.js';
import { LdapMap } from '../lookup/ldap-map.js';
import type { LookupMap } from '../lookup/result.js';

type MapEntry = DaemonConfig['maps'][number];

export const MAX_IN_FLIGHT_PER_CONNECTION = 32;

export interface BuiltMap {
  name: string;
  file: string;
  config: MapConfig;
  ldap: LdapMap;
  /** What the servers call: LDAP map wrapped in fallback emulation, cache and deadline as configured. */
  served: LookupMap;
}

export interface BuiltMaps {
  maps: Map<string, BuiltMap>;
  pools: LdapPool[];
  close(): Promise<void>;
}

export interface BuildOptions {
  observer?: PoolObserver;
  /** Wraps each map (the cache layer hooks in here). */
  wrap?: (map: LookupMap, entry: MapEntry) => LookupMap;
  /** Print .cf warnings (serve/check do, query keeps stderr for errors). */
  warnings?: boolean;
}

export function connectionSettings(c: MapConfig): ConnectionSettings {
  return {
    servers: c.serverHost,
    timeoutSec: c.timeout,
    bind: c.bind,
    bindDn: c.bindDn,
    bindPw: c.bindPw,
    startTls: c.startTls,
    tls: c.tls,
    chaseReferrals: c.chaseReferrals,
  };
}

/**
 * Loads every .cf file (all or nothing: a bad file throws ConfigError before anything is opened)
 * and builds the maps. Maps whose connection parameters are identical share one pool.
 */
export function buildMaps(cfg: DaemonConfig, opts: BuildOptions = {}): BuiltMaps {
  const configs = cfg.maps.map((m) => ({ entry: m, config: loadMapConfig(m.file) }));
  if (opts.warnings !== false) {
    for (const { config } of configs) for (const w of config.warnings) log.warn(formatWarning(w));
  }
  const pools = new Map<string, LdapPool>();
  const maps = new Map<string, BuiltMap>();
  for (const { entry, config } of configs) {
    const settings = entry.settings.rangeRetrieval ? { ...connectionSettings(config), rangeRetrieval: true } : connectionSettings(config);
    // slapd closes a connection with more than conn_max_pending (100 when anonymous) requests
    // outstanding; by default stay well below it per connection (ldap_max_in_flight = 0).
    const maxInFlight = entry.settings.ldapMaxInFlight || MAX_IN_FLIGHT_PER_CONNECTION * entry.settings.poolSize;
    // A search waits for a free slot no longer than its client waits for the answer: queued
    // searches never outnumber the clients still waiting, however long LDAP hangs. Not the .cf
    // `timeout`: that bounds one LDAP operation (as in Postfix), and a big list legitimately
    // queues its member searches for longer than one operation may take.
    const queueTimeoutMs = entry.settings.requestTimeout * 1000;
    const poolKey = JSON.stringify([settings, entry.settings.poolSize, maxInFlight, queueTimeoutMs]);
    let pool = pools.get(poolKey);
    if (!pool) {
      pool = new LdapPool(settings, { size: entry.settings.poolSize, maxInFlight, queueTimeoutMs, observer: opts.observer });
      pools.set(poolKey, pool);
    }
    const ldap = new LdapMap(entry.name, config, pool, {
      smtputf8: entry.settings.smtputf8,
      loopHandling: entry.settings.loopHandling,
      batchMemberFetch: entry.settings.batchMemberFetch,
    });
    let served: LookupMap = ldap;
    if (entry.settings.fallback === 'address') {
      served = new FallbackMap(served, {
        recipientDelimiter: entry.settings.recipientDelimiter,
        propagateExtension: entry.settings.propagateExtension,
      });
    }
    if (opts.wrap) served = opts.wrap(served, entry);
    served = new DeadlineMap(served, entry.settings.requestTimeout * 1000);
    maps.set(entry.name, { name: entry.name, file: entry.file, config, ldap, served });
  }
  const poolList = [...pools.values()];
  return {
    maps,
    pools: poolList,
    close: async () => { await Promise.all(poolList.map((p) => p.close())); },
  };
}
