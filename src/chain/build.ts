/**
 * The one builder of the map chain, used by serve, query and explain alike:
 *
 *   deadline -> cache (or none) -> fallback emulation (when configured) -> LDAP map -> pool
 *
 * Whatever calls a map gets it from here, so `explain` runs the very objects the daemon serves
 * with, and a wrapper placed in the chain must keep the synchronous hit (ServedMap) to compile.
 */
import { CachedMap } from '../cache/cache-map.js';
import { type CacheObserver, type CacheOptions } from '../cache/options.js';
import { Uncached } from '../cache/uncached.js';
import type { DaemonConfig } from '../config/daemon-config.js';
import type { MapSettings } from '../config/settings.js';
import { loadMapConfig, type MapConfig } from '../config/map-config.js';
import { formatWarning } from '../config/errors.js';
import type { AnswerCodec, LookupMap, ServedMap } from '../contracts/map.js';
import type { ConnectionSettings } from '../ldap/connect.js';
import type { PoolObserver } from '../ldap/pool-observer.js';
import { LdapPool } from '../ldap/pool.js';
import { log } from '../log.js';
import { DeadlineMap } from '../lookup/deadline.js';
import { FallbackMap } from '../lookup/fallback.js';
import { LdapMap } from '../lookup/ldap-map.js';

export type MapEntry = DaemonConfig['maps'][number];

export const MAX_IN_FLIGHT_PER_CONNECTION = 32;

export interface BuiltMap<E> {
  name: string;
  file: string;
  config: MapConfig;
  settings: MapSettings;
  ldap: LdapMap;
  /** The map's cache, when the chain has one. */
  cache?: CachedMap<E>;
  /** What the servers call: the whole chain. */
  served: ServedMap<E>;
  /** The same chain without the cache (the same objects below it): what LDAP says now. */
  direct: ServedMap<E>;
}

export interface BuiltMaps<E> {
  maps: Map<string, BuiltMap<E>>;
  pools: LdapPool[];
  close(): Promise<void>;
}

/** A cache in front of each map: the form answers are kept in, and each map's options. */
export interface CacheLayer<E> {
  codec: AnswerCodec<E>;
  options(entry: MapEntry): CacheOptions;
  observer?: CacheObserver;
}

export interface BuildOptions<E> {
  observer?: PoolObserver;
  /** Without it the chain has no cache (query and explain from the command line). */
  cache?: CacheLayer<E>;
  /** Print .cf warnings (serve/check do, query keeps stderr for errors). */
  warnings?: boolean;
}

export function connectionSettings(c: MapConfig): ConnectionSettings {
  return {
    servers: c.serverHost,
    timeoutSec: c.timeout,
    bind: c.bind,
    ...(c.sasl !== undefined ? { sasl: c.sasl } : {}),
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
export function buildMaps<E = never>(cfg: DaemonConfig, opts: BuildOptions<E> = {}): BuiltMaps<E> {
  const configs = cfg.maps.map((m) => ({ entry: m, config: loadMapConfig(m.file) }));
  if (opts.warnings !== false) {
    for (const { config } of configs) for (const w of config.warnings) log.warn(formatWarning(w));
  }
  const pools = new Map<string, LdapPool>();
  const maps = new Map<string, BuiltMap<E>>();
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
    let below: LookupMap = ldap;
    if (entry.settings.fallback === 'address') {
      below = new FallbackMap(below, {
        recipientDelimiter: entry.settings.recipientDelimiter,
        propagateExtension: entry.settings.propagateExtension,
      });
    }
    const deadlineMs = entry.settings.requestTimeout * 1000;
    const direct = new DeadlineMap<E>(new Uncached<E>(below), deadlineMs);
    const cache = opts.cache ? new CachedMap<E>(below, opts.cache.options(entry), opts.cache.codec, opts.cache.observer) : undefined;
    const served = cache ? new DeadlineMap<E>(cache, deadlineMs) : direct;
    const built: BuiltMap<E> = { name: entry.name, file: entry.file, config, settings: entry.settings, ldap, served, direct };
    if (cache) built.cache = cache;
    maps.set(entry.name, built);
  }
  const poolList = [...pools.values()];
  return {
    maps,
    pools: poolList,
    close: async () => { await Promise.all(poolList.map((p) => p.close())); },
  };
}
