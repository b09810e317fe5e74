// About 500 lines: one registry and the per-map and per-server cells every observer writes
// to; the change watchers' and the snapshot's series, which share nothing with them, live in
// freshness.ts and snapshot.ts.
import { readFileSync } from 'node:fs';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { CacheHitKind, CacheObserver, CacheSource } from '../cache/options.js';
import type { WatcherObserver, WatcherStatus } from '../freshness/watcher.js';
import type { PoolObserver } from '../ldap/pool-observer.js';
import type { LookupResult } from '../contracts/result.js';
import type { ConnectionObserver } from '../server/daemon.js';
import type { LookupObserver } from '../server/handlers.js';
import { CounterCells, HistogramCells, type CounterCell, type HistogramCell } from './cells.js';
import { FreshnessMetrics } from './freshness.js';
import { snapshotMetrics, type SnapshotObserver } from './snapshot.js';

/**
 * Prometheus metrics for one daemon, in a registry of its own (not prom-client's global one, so
 * tests can run several daemons in one process).
 *
 * Label values are bounded: configured map names, configured LDAP server URLs, listener
 * protocols and fixed enums. Never a key, a client address or an error text. A map name that
 * is not configured (a client asking socketmap for a made-up map) is counted as `(unknown)`.
 *
 * Who counts what (each request once):
 * - `lookups_total{map,result}` and `replies_oversize_total{map,protocol}` come from the protocol
 *   handlers (`lookupObserverFor(protocol)`), once per request, including PERM for an unknown
 *   map and TIMEOUT from the request deadline. `result` is the lookup result as the handler got
 *   it: an oversize FOUND answer (sent as a temporary error) counts as found here and also in
 *   replies_oversize_total.
 * - `lookup_duration_seconds{map,result,source}`, `cache_hits_total`, `cache_misses_total` come
 *   from the cache layer (`cacheObserver`), which alone knows where an answer came from. Its
 *   `result` is what the cache layer returned; it differs from the answer sent only when the
 *   request deadline (outside the cache) cut a slow lookup short, in which case the histogram
 *   records the late inner result and its full duration.
 *
 * The per-request and per-search series (lookups, cache hits/misses, lookup duration, LDAP
 * requests and their duration) are plain numbers updated in place (./cells.ts), resolved once
 * per map or server, and handed to prom-client when /metrics is scraped.
 */

export const LOOKUP_BUCKETS = [
  0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

const RESULTS = ['found', 'notfound', 'temp', 'timeout', 'perm'] as const;
const HIT_KINDS = ['fresh', 'stale', 'negative'] as const;
const LDAP_OUTCOMES = ['success', 'noSuchObject', 'timeout', 'down', 'error'] as const;
const CONNECTION_EVENTS = ['open', 'close', 'fail'] as const;
export const UNKNOWN_MAP = '(unknown)';
const NONCONFORMING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export type Protocol = 'socketmap' | 'tcp_table';

type ResultKind = LookupResult['kind'];
type LdapOutcome = (typeof LDAP_OUTCOMES)[number];

/** The hot-path series of one map (or of UNKNOWN_MAP), resolved once. */
interface MapCells {
  readonly label: string;
  /** All five for a declared map; only those seen for UNKNOWN_MAP. */
  readonly lookups: Partial<Record<ResultKind, CounterCell>>;
  readonly hits: Partial<Record<CacheHitKind, CounterCell>>;
  misses?: CounterCell;
  /** Created on first observation, as prom-client creates a histogram series. */
  readonly duration: Record<CacheSource, Partial<Record<ResultKind, HistogramCell>>>;
}

/** The per-search series of one LDAP server. */
interface ServerCells {
  readonly requests: Record<LdapOutcome, CounterCell>;
  duration?: HistogramCell;
}

/** What the gauges read from a cache (CachedMap fits). */
export interface CacheStats {
  readonly size: number;
  readonly bytes: number;
}

export interface MetricsOptions {
  /** Daemon version for build_info; default: package.json's. */
  version?: string;
  /** Default process/Node.js metrics (default true). */
  defaultMetrics?: boolean;
}

/** The package version, read from package.json next to src/ or dist/. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export class Metrics {
  readonly registry = new Registry();
  readonly contentType: string;

  readonly poolObserver: PoolObserver;
  readonly cacheObserver: CacheObserver;
  readonly connectionObserver: ConnectionObserver;
  /** Protocol-less variant of lookupObserverFor(); oversize replies are labelled protocol="unknown". */
  readonly lookupObserver: LookupObserver;
  /** The change watchers' observer (src/freshness/watcher.ts). */
  readonly watcherObserver: WatcherObserver;
  /** The cache snapshot's observer. */
  readonly snapshotObserver: SnapshotObserver;

  /** Declared (configured) maps; anything else a client names is counted as UNKNOWN_MAP. */
  private readonly knownMaps = new Map<string, MapCells>();
  private unknownMapCells: MapCells | undefined;
  private readonly servers = new Map<string, ServerCells>();
  private readonly caches = new Map<string, CacheStats>();
  private readonly openLdap = new Map<string, number>();
  private readonly openClients = new Map<string, number>();
  private readonly ldapLoad = new Map<string, { inFlight: number; queued: number }>();

  private readonly freshness: FreshnessMetrics;
  private readonly lookupDuration: HistogramCells<'map' | 'result' | 'source'>;
  private readonly lookups: CounterCells<'map' | 'result'>;
  private readonly cacheHits: CounterCells<'map' | 'kind'>;
  private readonly cacheMisses: CounterCells<'map'>;
  private readonly ldapRequests: CounterCells<'server' | 'result'>;
  private readonly ldapDuration: HistogramCells<'server'>;
  private readonly ldapConnections: Gauge<'server' | 'state'>;
  private readonly ldapConnectionEvents: Counter<'server' | 'event'>;
  private readonly breakerOpen: Gauge<'server'>;
  private readonly clientConnections: Gauge<'protocol'>;
  private readonly clientConnectionsTotal: Counter<'protocol'>;
  private readonly protocolErrors: Counter<'protocol' | 'reason'>;
  private readonly oversize: Counter<'map' | 'protocol'>;
  private readonly clientRejected: Counter<'protocol'>;
  private readonly clientDenied: Counter<'protocol'>;
  private readonly clientTimeouts: Counter<'protocol' | 'kind'>;
  private readonly clientMax: Gauge;
  private readonly ldapQueueTimeouts: Counter<'servers'>;

  constructor(opts: MetricsOptions = {}) {
    const registers = [this.registry];
    this.contentType = this.registry.contentType;
    if (opts.defaultMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      // prom-client names three gauges `*_total`, which promtool (rightly) rejects: a `_total`
      // suffix means counter. The per-type gauges without the suffix stay; sum() them instead.
      for (const name of NONCONFORMING_DEFAULTS) this.registry.removeSingleMetric(name);
    }

    this.lookupDuration = new HistogramCells({
      name: 'ldap_socketmap_lookup_duration_seconds',
      help: 'Time to answer a lookup, by map, result and where the answer came from (cache, ldap, stale).',
      labelNames: ['map', 'result', 'source'],
      buckets: LOOKUP_BUCKETS,
      registers,
    });
    this.lookups = new CounterCells({
      name: 'ldap_socketmap_lookups_total',
      help: 'Lookup requests answered, by map and result.',
      labelNames: ['map', 'result'],
      registers,
    });
    this.cacheHits = new CounterCells({
      name: 'ldap_socketmap_cache_hits_total',
      help: 'Lookups answered from the cache: fresh (found), negative (notfound), stale (expired answer served because LDAP failed).',
      labelNames: ['map', 'kind'],
      registers,
    });
    this.cacheMisses = new CounterCells({
      name: 'ldap_socketmap_cache_misses_total',
      help: 'Lookups that needed LDAP (coalesced waiters included).',
      labelNames: ['map'],
      registers,
    });
    const caches = this.caches;
    new Gauge({
      name: 'ldap_socketmap_cache_entries',
      help: 'Entries in the cache, including expired ones kept for stale-if-error.',
      labelNames: ['map'],
      registers,
      collect() {
        this.reset();
        for (const [map, c] of caches) this.set({ map }, c.size);
      },
    });
    new Gauge({
      name: 'ldap_socketmap_cache_bytes',
      help: 'Accounted size of the cache entries (keys, values and per-entry overhead).',
      labelNames: ['map'],
      registers,
      collect() {
        this.reset();
        for (const [map, c] of caches) this.set({ map }, c.bytes);
      },
    });
    this.ldapRequests = new CounterCells({
      name: 'ldap_socketmap_ldap_requests_total',
      help: 'LDAP searches, by server and outcome.',
      labelNames: ['server', 'result'],
      registers,
    });
    this.ldapDuration = new HistogramCells({
      name: 'ldap_socketmap_ldap_request_duration_seconds',
      help: 'Duration of LDAP searches, by server.',
      labelNames: ['server'],
      buckets: LOOKUP_BUCKETS,
      registers,
    });
    this.ldapConnections = new Gauge({
      name: 'ldap_socketmap_ldap_connections',
      help: 'LDAP connections, by server and state.',
      labelNames: ['server', 'state'],
      registers,
    });
    this.ldapConnectionEvents = new Counter({
      name: 'ldap_socketmap_ldap_connection_events_total',
      help: 'LDAP connections opened, closed and failed connection attempts, by server.',
      labelNames: ['server', 'event'],
      registers,
    });
    this.clientConnections = new Gauge({
      name: 'ldap_socketmap_client_connections',
      help: 'Open client (Postfix) connections, by protocol.',
      labelNames: ['protocol'],
      registers,
    });
    this.clientConnectionsTotal = new Counter({
      name: 'ldap_socketmap_client_connections_total',
      help: 'Client (Postfix) connections accepted, by protocol.',
      labelNames: ['protocol'],
      registers,
    });
    this.protocolErrors = new Counter({
      name: 'ldap_socketmap_protocol_errors_total',
      help: 'Malformed client requests (connection closed), by protocol and reason.',
      labelNames: ['protocol', 'reason'],
      registers,
    });
    this.oversize = new Counter({
      name: 'ldap_socketmap_replies_oversize_total',
      help: 'Answers too large for the protocol, sent as a temporary error instead.',
      labelNames: ['map', 'protocol'],
      registers,
    });
    this.clientRejected = new Counter({
      name: 'ldap_socketmap_client_connections_rejected_total',
      help: 'Client connections refused (answered with a temporary error and closed) because max_connections were open.',
      labelNames: ['protocol'],
      registers,
    });
    this.clientDenied = new Counter({
      name: 'ldap_socketmap_client_connections_denied_total',
      help: 'Client connections closed unanswered because the peer address is not in client_allow (inet listeners).',
      labelNames: ['protocol'],
      registers,
    });
    this.clientTimeouts = new Counter({
      name: 'ldap_socketmap_client_timeouts_total',
      help: 'Client connections closed by the daemon: idle longer than idle_timeout, or a request not complete within request_read_timeout (read).',
      labelNames: ['protocol', 'kind'],
      registers,
    });
    this.clientMax = new Gauge({
      name: 'ldap_socketmap_client_connections_max',
      help: 'The max_connections limit (all listeners together).',
      registers,
    });
    for (const protocol of ['socketmap', 'tcp_table']) {
      this.clientRejected.inc({ protocol }, 0);
      this.clientDenied.inc({ protocol }, 0);
      for (const kind of ['idle', 'read']) this.clientTimeouts.inc({ protocol, kind }, 0);
    }
    this.snapshotObserver = snapshotMetrics(registers);
    const ldapLoad = this.ldapLoad;
    new Gauge({
      name: 'ldap_socketmap_ldap_in_flight',
      help: 'LDAP searches running, by connection pool (its server_host list).',
      labelNames: ['servers'],
      registers,
      collect() {
        this.reset();
        for (const [servers, l] of ldapLoad) this.set({ servers }, l.inFlight);
      },
    });
    new Gauge({
      name: 'ldap_socketmap_ldap_queued_requests',
      help: 'LDAP searches waiting because ldap_max_in_flight searches are running, by connection pool (its server_host list).',
      labelNames: ['servers'],
      registers,
      collect() {
        this.reset();
        for (const [servers, l] of ldapLoad) this.set({ servers }, l.queued);
      },
    });
    this.ldapQueueTimeouts = new Counter({
      name: 'ldap_socketmap_ldap_queue_timeouts_total',
      help: 'LDAP searches that waited longer than the map timeout for a free slot and failed as a timeout.',
      labelNames: ['servers'],
      registers,
    });
    const build = new Gauge({
      name: 'ldap_socketmap_build_info',
      help: 'Build information; the value is always 1.',
      labelNames: ['version', 'node_version'],
      registers,
    });
    build.set({ version: opts.version ?? packageVersion(), node_version: process.version }, 1);

    const breakerOpen = (this.breakerOpen = new Gauge({
      name: 'ldap_socketmap_ldap_circuit_open',
      help: 'Whether the LDAP server is being skipped (1) because it timed out or could not be reached, until a background probe answers (0).',
      labelNames: ['server'],
      registers,
    }));
    const breakerTransitions = new Counter({
      name: 'ldap_socketmap_ldap_circuit_transitions_total',
      help: 'Circuit breaker transitions per LDAP server: opened (timeout or unreachable) and closed (a probe answered).',
      labelNames: ['server', 'state'],
      registers,
    });
    const ldapBatched = new Counter({
      name: 'ldap_socketmap_ldap_batched_dns_total',
      help: 'Member DNs of batched fetches (batch_member_fetch), by connection pool: answered by a batch search (a base search saved each), or sent on to their own base search (fallback).',
      labelNames: ['servers', 'result'],
      registers,
    });
    const ldapRanged = new Counter({
      name: 'ldap_socketmap_ldap_ranged_entries_total',
      help: "Entries whose values came back in ranges (Active Directory's MaxValRange, e.g. member;range=0-1499), by connection pool. Without range_retrieval = yes only the first range is used, as Postfix does.",
      labelNames: ['servers'],
      registers,
    });
    this.poolObserver = {
      breaker: (server, state) => {
        this.ldapServer(server);
        breakerOpen.set({ server }, state === 'open' ? 1 : 0);
        breakerTransitions.inc({ server, state });
      },
      rangedAttribute: (servers, entries) => { ldapRanged.inc({ servers }, entries); },
      batch: (servers, answered, fallback) => {
        ldapBatched.inc({ servers, result: 'answered' }, answered);
        ldapBatched.inc({ servers, result: 'fallback' }, fallback);
      },
      request: (server, outcome, seconds) => {
        const s = this.servers.get(server) ?? this.ldapServer(server);
        s.requests[outcome].n++;
        (s.duration ??= this.ldapDuration.cell({ server })).observe(seconds);
      },
      connection: (server, event) => {
        this.ldapServer(server);
        this.ldapConnectionEvents.inc({ server, event });
        if (event === 'open') this.adjust(this.openLdap, server, +1, (n) => this.ldapConnections.set({ server, state: 'open' }, n));
        if (event === 'close') this.adjust(this.openLdap, server, -1, (n) => this.ldapConnections.set({ server, state: 'open' }, n));
      },
      inFlight: (servers, delta) => { this.poolLoad(servers).inFlight += delta; },
      queued: (servers, delta) => { this.poolLoad(servers).queued += delta; },
      queueTimeout: (servers) => {
        this.poolLoad(servers);
        this.ldapQueueTimeouts.inc({ servers });
      },
    };

    // The cache layer's map names are configured ones (CachedMap.name), so they are declared
    // on sight; only names coming from clients (lookupObserver) are checked.
    this.cacheObserver = {
      lookup: (map, result, source, seconds) => {
        const m = this.knownMaps.get(map) ?? this.declareMap(map);
        const kind = result.kind;
        const bySource = m.duration[source];
        (bySource[kind] ??= this.lookupDuration.cell({ map: m.label, result: kind, source })).observe(seconds);
      },
      hit: (map, kind) => {
        (this.knownMaps.get(map) ?? this.declareMap(map)).hits[kind]!.n++;
      },
      miss: (map) => {
        (this.knownMaps.get(map) ?? this.declareMap(map)).misses!.n++;
      },
    };

    this.connectionObserver = {
      opened: (protocol) => {
        this.clientConnectionsTotal.inc({ protocol });
        this.adjust(this.openClients, protocol, +1, (n) => this.clientConnections.set({ protocol }, n));
      },
      closed: (protocol) => {
        this.adjust(this.openClients, protocol, -1, (n) => this.clientConnections.set({ protocol }, n));
      },
      protocolError: (protocol, reason) => this.protocolErrors.inc({ protocol, reason }),
      rejected: (protocol) => this.clientRejected.inc({ protocol }),
      denied: (protocol) => this.clientDenied.inc({ protocol }),
      timedOut: (protocol, kind) => this.clientTimeouts.inc({ protocol, kind }),
    };

    this.lookupObserver = this.makeLookupObserver('unknown');

    this.freshness = new FreshnessMetrics(registers, (map) => this.declareMap(map));
    this.watcherObserver = this.freshness.observer;
  }

  /** The running change watchers (replaces the previous set, e.g. after reload); creates their series at 0. */
  registerWatchers(watchers: { readonly servers: string; status(): WatcherStatus }[]): void {
    this.freshness.register(watchers);
  }

  /** For the protocol handlers: counts lookups_total and oversize replies with the listener's protocol. */
  lookupObserverFor(protocol: Protocol): LookupObserver {
    return this.makeLookupObserver(protocol);
  }

  /**
   * Declares the configured map names (label values allowed from now on) and creates their
   * counter series at 0, so rate() and alerts work before the first event. Maps no longer named
   * stop being reported by the cache gauges.
   */
  setMaps(names: Iterable<string>): void {
    const keep = new Set(names);
    for (const name of [...this.caches.keys()]) if (!keep.has(name)) this.caches.delete(name);
    for (const name of keep) this.declareMap(name);
  }

  /** The cache gauges of `map` read `cache` from now on (replaces the previous one, e.g. after reload). */
  registerCache(map: string, cache: CacheStats): void {
    this.declareMap(map);
    this.caches.set(map, cache);
  }

  /** The configured max_connections, exported so alerts can compare the open connections with it. */
  setMaxConnections(n: number): void {
    this.clientMax.set(n);
  }

  /** Creates the series of an LDAP server at 0 (optional; servers also appear on first use). */
  declareLdapServer(server: string): void {
    this.ldapServer(server);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  private declareMap(name: string): MapCells {
    const known = this.knownMaps.get(name);
    if (known) return known;
    const m = mapCells(name);
    for (const result of RESULTS) m.lookups[result] = this.lookups.cell({ map: name, result });
    for (const kind of HIT_KINDS) m.hits[kind] = this.cacheHits.cell({ map: name, kind });
    m.misses = this.cacheMisses.cell({ map: name });
    this.freshness?.declareMap(name);
    this.knownMaps.set(name, m);
    return m;
  }

  private ldapServer(server: string): ServerCells {
    const known = this.servers.get(server);
    if (known) return known;
    this.openLdap.set(server, 0);
    this.ldapConnections.set({ server, state: 'open' }, 0);
    this.breakerOpen.set({ server }, 0);
    for (const event of CONNECTION_EVENTS) this.ldapConnectionEvents.inc({ server, event }, 0);
    const requests = {} as Record<LdapOutcome, CounterCell>;
    for (const result of LDAP_OUTCOMES) requests[result] = this.ldapRequests.cell({ server, result });
    const s: ServerCells = { requests };
    this.servers.set(server, s);
    return s;
  }

  private poolLoad(servers: string): { inFlight: number; queued: number } {
    let l = this.ldapLoad.get(servers);
    if (!l) {
      l = { inFlight: 0, queued: 0 };
      this.ldapLoad.set(servers, l);
      this.ldapQueueTimeouts.inc({ servers }, 0);
    }
    return l;
  }

  /** The series of a map a client named: its own when configured, UNKNOWN_MAP's otherwise. */
  private clientMap(map: string): MapCells {
    return this.knownMaps.get(map) ?? (this.unknownMapCells ??= mapCells(UNKNOWN_MAP));
  }

  private adjust(counts: Map<string, number>, key: string, delta: number, set: (n: number) => void): void {
    const n = Math.max(0, (counts.get(key) ?? 0) + delta);
    counts.set(key, n);
    set(n);
  }

  private makeLookupObserver(protocol: string): LookupObserver {
    return {
      answered: (map, result, oversize) => {
        const m = this.clientMap(map);
        const kind = result.kind;
        (m.lookups[kind] ??= this.lookups.cell({ map: m.label, result: kind })).n++;
        if (oversize !== undefined) this.oversize.inc({ map: m.label, protocol });
      },
    };
  }
}

function mapCells(label: string): MapCells {
  return { label, lookups: {}, hits: {}, duration: { cache: {}, ldap: {}, stale: {} } };
}
