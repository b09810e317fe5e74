import type { Scope, SearchRequest } from './search-request.js';
import type { Entry, Filter } from 'ldapts';
import { RateLimitedLog, registerSecret } from '../log.js';
import { DnBatcher } from './batch.js';
import { ServerBreakers, type BreakerState, type BreakerStatus } from './breaker.js';
import { connectAny, connectServer, StartTlsFailure, withDeadline, type ConnectionSettings, type OpenConnection, type ServerTarget } from './connect.js';
import { LDAP_REFERRAL, LdapFailure, toLdapFailure } from './errors.js';
import { Admission } from './admission.js';
import { DEREF, parsedFilter } from './filter-cache.js';
import { ReferralChaser, serverKey, type ChaseRequest, type SearchOutcome } from './referral.js';

/** Observations for metrics; the pool itself knows nothing about Prometheus. */
export interface PoolObserver {
  request?(server: string, outcome: 'success' | 'noSuchObject' | 'timeout' | 'down' | 'error', seconds: number): void;
  connection?(server: string, event: 'open' | 'close' | 'fail'): void;
  /**
   * Searches admitted (in flight) and waiting for admission, as changes (+1/-1). `servers` is the
   * pool's server_host list (space separated): several pools may share it, so sum the deltas.
   */
  inFlight?(servers: string, delta: number): void;
  queued?(servers: string, delta: number): void;
  /** A queued search gave up waiting for admission (answered as a timeout). */
  queueTimeout?(servers: string): void;
  /** A server's circuit breaker opened (it timed out or could not be reached) or closed (a probe answered). */
  breaker?(server: string, state: BreakerState, reason: string): void;
  /**
   * One batched member fetch (batch_member_fetch) on the pool `servers`: `answered` DNs came
   * from the one search, `fallback` DNs were sent on to their own base search.
   */
  batch?(servers: string, answered: number, fallback: number): void;
}

export interface PoolOptions {
  size: number;
  /** Searches in flight across the pool; more wait in a queue instead of piling onto LDAP. */
  maxInFlight: number;
  observer?: PoolObserver;
  /** Backoff after a failed connect, doubling per failure up to the max. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /**
   * A server that failed goes to the back of the server_host list for a while, doubling per
   * consecutive failure of that server up to this (default 60 s); it is still tried when the
   * others fail too.
   */
  serverBackoffMaxMs?: number;
  /** First probe of a failing server after this long, doubling per failed probe (see breaker.ts). */
  probeMinMs?: number;
  probeMaxMs?: number;
  /**
   * How long a search may wait for admission when maxInFlight searches are already running
   * (default: the map's timeout). A hung server cannot make requests pile up without bound.
   */
  queueTimeoutMs?: number;
}

interface Slot {
  conn?: OpenConnection;
  connecting?: Promise<OpenConnection>;
  inFlight: number;
  /** Rejecters of the searches on this connection, so a dead socket fails them at once. */
  pending: Set<(f: LdapFailure) => void>;
  /** The socket corked for the searches started in this tick (see corkForTick). */
  corked?: OpenConnection['socket'];
}

/**
 * A small pool of LDAP connections shared by every map with the same connection parameters
 * (Postfix shares one connection the same way). LDAP multiplexes requests on a connection, so
 * each slot carries many concurrent searches; extra slots spread the server's per-connection
 * work. Connections are opened lazily, re-opened (and re-bound) after loss, and a connect
 * failure starts a backoff window during which lookups fail fast instead of storming the
 * directory.
 */
export class LdapPool {
  private readonly slots: Slot[];
  private readonly admission: Admission;
  private failures = 0;
  private retryAt = 0;
  private lastFailure?: LdapFailure;
  private readonly serverDownUntil = new Map<string, number>();
  private readonly serverFailures = new Map<string, number>();
  /** The pool's server_host list, as the metrics label it. */
  readonly serversLabel: string;
  private readonly rlog = new RateLimitedLog(30_000);
  private closed = false;

  constructor(
    readonly settings: ConnectionSettings,
    private readonly opts: PoolOptions,
  ) {
    this.slots = Array.from({ length: Math.max(1, opts.size) }, () => ({ inFlight: 0, pending: new Set() }));
    this.serversLabel = settings.servers.map((s) => s.url).join(' ');
    const label = this.serversLabel;
    const o = opts.observer;
    this.admission = new Admission(opts.maxInFlight, opts.queueTimeoutMs ?? settings.timeoutSec * 1000, {
      inFlight: (d) => o?.inFlight?.(label, d),
      queued: (d) => o?.queued?.(label, d),
      queueTimeout: () => o?.queueTimeout?.(label),
    });
    registerSecret(settings.bindPw);
    if (settings.chaseReferrals === true) this.chaser = new ReferralChaser(settings);
    this.breakers = new ServerBreakers((server) => this.probe(server), {
      probeMinMs: opts.probeMinMs,
      probeMaxMs: opts.probeMaxMs,
      changed: (server, state, reason) => o?.breaker?.(server, state, reason),
    });
  }

  /** One circuit breaker per server: failing servers are skipped until a probe answers. */
  private readonly breakers: ServerBreakers;

  /** Servers whose circuit breaker is open now (for /readyz, explain and tests). */
  get failingServers(): BreakerStatus[] {
    return this.breakers.status();
  }

  /** Follows referrals for chase_referrals = yes; absent otherwise (a referral is an error). */
  private readonly chaser?: ReferralChaser;

  /** Searches admitted right now, and waiting for admission (for metrics and tests). */
  get load(): { inFlight: number; queued: number; maxInFlight: number } {
    return { inFlight: this.admission.inFlight, queued: this.admission.queued, maxInFlight: this.opts.maxInFlight };
  }

  get timeoutMs(): number {
    return this.settings.timeoutSec * 1000;
  }

  /** True when at least one connection is open (for /readyz and `check`). */
  get connected(): boolean {
    return this.slots.some((s) => s.conn && !s.conn.socket.destroyed);
  }

  get lastError(): string | undefined {
    return this.lastFailure?.message;
  }

  /**
   * Makes sure a connection exists, as dict_ldap connects before it expands templates: a key
   * whose search would be suppressed still gets a temporary error while LDAP is unreachable.
   */
  async ensureConnected(): Promise<void> {
    if (this.connected) return;
    await this.connectSlot(this.slots[0]!);
  }

  /**
   * One search; entries in server order. Throws LdapFailure. Identical searches already in
   * flight share one request: concurrent expansions reaching the same list or person (and
   * concurrent lookups of the same key) cost the directory one search.
   */
  search(req: SearchRequest, opts?: { batch?: boolean }): Promise<Entry[]> {
    const id = req.base + this.idTail(req);
    const shared = this.sharing.get(id);
    if (shared) {
      this.sharedSearches++;
      return shared;
    }
    let p: Promise<Entry[]>;
    if (opts?.batch === true && DnBatcher.eligible(req) && this.dnBatcher().active) {
      // The batcher ends the sharing itself (fewer promises per member).
      p = this.dnBatcher().fetch(req, id);
    } else {
      p = this.searchQueued(req).finally(() => this.sharing.delete(id));
    }
    this.sharing.set(id, p);
    return p;
  }

  private lastTail?: { scope: Scope; deref: number; binary: boolean; filter: string; attributes: readonly string[]; tail: string };

  /** What identifies a search besides its base; the same for a whole list's member searches. */
  private idTail(req: SearchRequest): string {
    const binary = req.binary === true;
    const t = this.lastTail;
    if (t && t.attributes === req.attributes && t.filter === req.filter && t.scope === req.scope && t.deref === req.deref && t.binary === binary) return t.tail;
    const tail = `\u0000${req.scope}\u0000${req.deref}\u0000${binary ? 'b' : ''}\u0000${req.filter}\u0000${req.attributes.join(',')}`;
    this.lastTail = { scope: req.scope, deref: req.deref, binary, filter: req.filter, attributes: req.attributes, tail };
    return tail;
  }

  /** Searches answered by joining an identical one already in flight (for metrics and tests). */
  sharedSearches = 0;
  private readonly sharing = new Map<string, Promise<Entry[]>>();

  private batcher?: DnBatcher;

  /** The batched member fetcher of this pool (created on first use; see batch.ts). */
  private dnBatcher(): DnBatcher {
    return (this.batcher ??= new DnBatcher({
      searchOne: (req) => this.searchQueued(req),
      settling: (key) => { this.sharing.delete(key); },
      searchRaw: async (req, filter) => {
        await this.admission.acquire();
        try {
          return await this.searchOnce(req, filter, true);
        } finally {
          this.admission.release();
        }
      },
      report: (answered, fallback) => this.opts.observer?.batch?.(this.serversLabel, answered, fallback),
    }));
  }

  private async searchQueued(req: SearchRequest): Promise<Entry[]> {
    if (this.chaser === undefined) return (await this.searchAdmitted(req)).entries;
    const first = await this.outcome(req);
    if (first.kind === 'entries' && first.references.length === 0) return first.entries;
    return this.chaser.complete(req, first, {
      searchHome: (c: ChaseRequest) => this.outcome({ ...req, base: c.base, scope: c.scope }),
      searchOn: (conn: OpenConnection, c: ChaseRequest) => this.searchReferred(conn, { ...req, base: c.base, scope: c.scope }),
    });
  }

  /** One search through the pool's admission, retried once on a lost connection. */
  private async searchAdmitted(req: SearchRequest): Promise<{ entries: Entry[]; references: string[]; server: string }> {
    const filter = parsedFilter(req.filter, req.deref);
    await this.admission.acquire();
    try {
      try {
        return await this.searchOnce(req, filter);
      } catch (err) {
        // LDAP_SERVER_DOWN: dict_ldap reconnects once and repeats the search once.
        if (err instanceof LdapFailure && err.kind === 'down' && !this.closed) return await this.searchOnce(req, filter);
        throw err;
      }
    } finally {
      this.admission.release();
    }
  }

  /** searchAdmitted, with a referral result as an outcome rather than a failure (chase_referrals). */
  private async outcome(req: SearchRequest): Promise<SearchOutcome> {
    try {
      const r = await this.searchAdmitted(req);
      return { kind: 'entries', entries: r.entries, references: r.references, ...this.keyOf(r.server) };
    } catch (err) {
      if (err instanceof LdapFailure && err.code === LDAP_REFERRAL && err.referrals !== undefined) {
        return { kind: 'referral', failure: err, urls: err.referrals, ...this.keyOf(err.server) };
      }
      throw err;
    }
  }

  private keyOf(server: string | undefined): { serverKey?: string } {
    const target = this.settings.servers.find((s) => s.url === server);
    const key = target === undefined ? undefined : serverKey(target);
    return key === undefined ? {} : { serverKey: key };
  }

  /** A search on a connection to a server a referral named (not one of the pool's). */
  private async searchReferred(conn: OpenConnection, req: SearchRequest): Promise<SearchOutcome> {
    const started = process.hrtime.bigint();
    try {
      const result = await withDeadline(conn.client.search(req.base, this.searchOptions(req, parsedFilter(req.filter, req.deref))), this.timeoutMs, `search on ${conn.server}`, () => conn.socket.destroy());
      this.observe(conn.server, 'success', started);
      return { kind: 'entries', entries: result.searchEntries, references: result.searchReferences };
    } catch (err) {
      const f = toLdapFailure(err, { connectionLost: conn.socket.destroyed, server: conn.server });
      this.observe(conn.server, f.kind, started);
      if (f.code === LDAP_REFERRAL && f.referrals !== undefined) return { kind: 'referral', failure: f, urls: f.referrals };
      throw f;
    }
  }

  private searchOptions(req: SearchRequest, filter: Filter): Parameters<OpenConnection['client']['search']>[1] {
    return {
      scope: req.scope,
      filter,
      // ldapts does not change these arrays; its types just do not say so.
      attributes: req.attributes as string[],
      explicitBufferAttributes: req.binary === true ? (req.attributes as string[]) : undefined,
      derefAliases: DEREF[req.deref],
      // The server-side time limit is Postfix's timeout too. No size limit is sent: ldapts
      // would turn sizeLimitExceeded into a silent partial success, so the map counts entries.
      timeLimit: this.settings.timeoutSec,
      sizeLimit: 0,
    };
  }

  /**
   * One search on one connection. A timeout drops the connection (like dict_ldap), unless
   * `soft`: then only this search fails (a batched fetch, which its DNs' own searches replace).
   */
  private async searchOnce(req: SearchRequest, filter: Filter, soft = false): Promise<{ entries: Entry[]; references: string[]; server: string }> {
    const slot = this.pickSlot();
    const conn = await this.connectSlot(slot);
    const started = process.hrtime.bigint();
    slot.inFlight++;
    let timedOut = false;
    let rejectPending!: (f: LdapFailure) => void;
    const killed = new Promise<never>((_, reject) => { rejectPending = reject; });
    slot.pending.add(rejectPending);
    const timer = setTimeout(() => {
      timedOut = true;
      if (soft) {
        rejectPending(new LdapFailure('timeout', `search timed out after ${this.timeoutMs} ms`, undefined, conn.server));
        return;
      }
      // Like dict_ldap after a client-side timeout, give up on this connection: a server that
      // does not answer one search is unlikely to answer the others queued behind it. Nor will
      // it answer the next lookups: its breaker opens, and they skip it.
      const f = new LdapFailure('timeout', `search timed out after ${this.timeoutMs} ms`, undefined, conn.server);
      this.dropConnection(slot, f);
      this.trip(conn.server, f);
    }, this.timeoutMs);
    this.corkForTick(slot, conn);
    try {
      const result = await Promise.race([
        conn.client.search(req.base, this.searchOptions(req, filter)),
        killed,
      ]);
      this.observe(conn.server, 'success', started);
      return { entries: result.searchEntries, references: result.searchReferences, server: conn.server };
    } catch (err) {
      const f = toLdapFailure(err, { timedOut, connectionLost: conn.socket.destroyed, server: conn.server });
      this.observe(conn.server, f.kind, started);
      if (f.kind === 'down') this.dropConnection(slot, f);
      throw f;
    } finally {
      clearTimeout(timer);
      slot.inFlight--;
      slot.pending.delete(rejectPending);
    }
  }

  /**
   * Corks the connection's socket until the next tick, so the searches a walk starts together
   * (a list's members) leave in one writev instead of one write(2) each. ldapts writes a request
   * a few microtasks after search() is called; nextTick callbacks run once the microtask queue is
   * empty, so they are all in. Started outside a microtask, the uncork may come first: the
   * write then just goes out on its own.
   */
  private corkForTick(slot: Slot, conn: OpenConnection): void {
    if (slot.corked !== undefined) return;
    const socket = conn.socket;
    slot.corked = socket;
    socket.cork();
    process.nextTick(() => {
      slot.corked = undefined;
      socket.uncork();
    });
  }

  private observe(server: string, outcome: Parameters<NonNullable<PoolObserver['request']>>[1], started: bigint): void {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.opts.observer?.request?.(server, outcome, seconds);
  }

  /** Least-busy open slot, or an unopened one when every open slot is already busy. */
  private pickSlot(): Slot {
    let best: Slot | undefined;
    let idle: Slot | undefined;
    for (const s of this.slots) {
      const open = s.conn !== undefined && !s.conn.socket.destroyed;
      if (!open) {
        if (s.connecting) {
          if (!best || s.inFlight < best.inFlight) best = s;
        } else {
          idle ??= s;
        }
        continue;
      }
      if (!best || s.inFlight < best.inFlight) best = s;
    }
    if (best && (best.inFlight === 0 || !idle)) return best;
    return idle ?? best ?? this.slots[0]!;
  }

  private connectSlot(slot: Slot): Promise<OpenConnection> {
    if (slot.conn && !slot.conn.socket.destroyed) return Promise.resolve(slot.conn);
    slot.conn = undefined;
    if (slot.connecting) return slot.connecting;
    if (this.closed) return Promise.reject(new LdapFailure('down', 'pool closed'));
    const now = Date.now();
    if (now < this.retryAt && this.lastFailure) {
      return Promise.reject(
        new LdapFailure(this.lastFailure.kind, `${this.lastFailure.message} (next connect attempt in ${this.retryAt - now} ms)`, this.lastFailure.code),
      );
    }
    const order = this.serverOrder(now);
    if (order.length === 0) {
      return Promise.reject(new LdapFailure('down', `no LDAP server is tried until one answers a probe again: ${this.breakers.describe()}`));
    }
    slot.connecting = connectAny(this.settings, order, (server, err) => {
      // A timeout or an unreachable server opens its breaker; an answer (a bind refusal, a
      // StartTLS refused or failing its certificate check: libldap stops at those and never tries
      // the next server) does not.
      if (err.code === undefined && (err.kind === 'timeout' || err.kind === 'down') && !(err instanceof StartTlsFailure && err.kind !== 'timeout')) this.trip(server.url, err);
      const n = (this.serverFailures.get(server.url) ?? 0) + 1;
      this.serverFailures.set(server.url, n);
      const min = this.opts.backoffMinMs ?? 250;
      const wait = Math.min(this.opts.serverBackoffMaxMs ?? 60_000, min * 2 ** Math.min(30, n - 1));
      this.serverDownUntil.set(server.url, Date.now() + wait);
      this.opts.observer?.connection?.(server.url, 'fail');
      const detail = err.message.startsWith(`${server.url}: `) ? err.message.slice(server.url.length + 2) : err.message;
      if (err.code !== undefined) {
        // The server answered and said no (bad bind_dn/bind_pw, ...): nothing heals this but an
        // operator, so say it loudly, once per period, not once per lookup. Never the password.
        this.rlog.emit(
          'error',
          `connect:${server.url}`,
          `LDAP server ${server.url}: ${detail}; lookups answer a temporary error; retrying with backoff`,
        );
      } else {
        this.rlog.emit('warn', `connect:${server.url}`, `LDAP server ${server.url}: ${detail}`);
      }
    })
      .then((conn) => {
        this.failures = 0;
        this.retryAt = 0;
        this.lastFailure = undefined;
        this.serverDownUntil.delete(conn.server);
        this.serverFailures.delete(conn.server);
        slot.conn = conn;
        this.opts.observer?.connection?.(conn.server, 'open');
        this.batcher?.connected(conn.server);
        conn.socket.once('close', () => {
          this.opts.observer?.connection?.(conn.server, 'close');
          if (slot.conn === conn) this.dropConnection(slot, new LdapFailure('down', `connection to ${conn.server} closed`, undefined, conn.server));
        });
        if (this.closed) conn.socket.destroy();
        return conn;
      })
      .catch((err: unknown) => {
        const f = toLdapFailure(err);
        this.failures++;
        this.lastFailure = f;
        this.retryAt = Date.now() + this.backoffMs();
        throw f;
      })
      .finally(() => {
        slot.connecting = undefined;
      });
    return slot.connecting;
  }

  private backoffMs(): number {
    const min = this.opts.backoffMinMs ?? 250;
    const max = this.opts.backoffMaxMs ?? 5000;
    return Math.min(max, min * 2 ** Math.max(0, this.failures - 1));
  }

  /**
   * Servers in configured order, those that failed recently moved to the end (still tried),
   * those whose circuit breaker is open left out.
   */
  private serverOrder(now: number): ServerTarget[] {
    const up: ServerTarget[] = [];
    const down: ServerTarget[] = [];
    for (const s of this.settings.servers) {
      if (this.breakers.isOpen(s.url)) continue;
      ((this.serverDownUntil.get(s.url) ?? 0) > now ? down : up).push(s);
    }
    return [...up, ...down];
  }

  /**
   * Opens the breaker of `url` and ends every connection to it: searches waiting on them get
   * their temporary error now instead of each waiting out its own timeout.
   */
  private trip(url: string, why: LdapFailure): void {
    const server = this.settings.servers.find((s) => s.url === url);
    if (!server || this.closed) return;
    const wasOpen = this.breakers.isOpen(url);
    this.breakers.trip(server, why);
    if (wasOpen) return;
    const f = new LdapFailure(why.kind, `${why.message}; circuit breaker opened for ${url}`, why.code, url);
    for (const slot of this.slots) if (slot.conn?.server === url) this.dropConnection(slot, f);
  }

  /** The breaker's probe: connect and bind as the maps do, then read the root DSE, all within `timeout`. */
  private async probe(server: ServerTarget): Promise<void> {
    const conn = await connectServer(server, this.settings);
    try {
      await withDeadline(
        conn.client.search('', { scope: 'base', filter: parsedFilter('(objectClass=*)'), attributes: ['1.1'], timeLimit: this.settings.timeoutSec, sizeLimit: 0 }),
        this.timeoutMs,
        `probe of ${server.url}`,
        () => conn.socket.destroy(),
      );
    } finally {
      conn.socket.destroy();
    }
  }

  private dropConnection(slot: Slot, why: LdapFailure): void {
    const conn = slot.conn;
    slot.conn = undefined;
    for (const reject of slot.pending) reject(why);
    slot.pending.clear();
    conn?.socket.destroy();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.breakers.stop();
    await this.chaser?.close();
    this.admission.close();
    await Promise.all(
      this.slots.map(async (slot) => {
        const conn = slot.conn ?? (await slot.connecting?.catch(() => undefined));
        if (!conn) return;
        slot.conn = undefined;
        try {
          await Promise.race([conn.client.unbind(), new Promise((r) => setTimeout(r, 1000))]);
        } catch {
          /* the server may already be gone */
        }
        conn.socket.destroy();
      }),
    );
  }
}
