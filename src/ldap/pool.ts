import type { Entry, Filter } from 'ldapts';
import { RateLimitedLog, registerSecret } from '../log.js';
import { DnBatcher } from './batch.js';
import { connectAny, withDeadline, type ConnectionSettings, type OpenConnection, type ServerTarget } from './connect.js';
import { LDAP_REFERRAL, LdapFailure, toLdapFailure } from './errors.js';
import { FilterError, LDAP_FILTER_ERROR, parseFilter } from './filter.js';
import { withDeref } from './ldapts-fixes.js';
import { completeRanges, incompleteRanges, RangeRetrievalError } from './range.js';
import { ReferralChaser, serverKey, type ChaseRequest, type SearchOutcome } from './referral.js';

export type Scope = 'base' | 'one' | 'sub' | 'children';

export interface SearchRequest {
  base: string;
  scope: Scope;
  filter: string;
  attributes: string[];
  /** 0 never, 1 searching, 2 finding, 3 always (ldap_table `dereference`). */
  deref: 0 | 1 | 2 | 3;
  /**
   * Values of the requested attributes as Buffers (views into the LDAP message) rather than
   * strings: the maps want bytes, and decoding to a string only to encode it again costs time.
   */
  binary?: boolean;
}

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
  /**
   * One batched member fetch (batch_member_fetch) on the pool `servers`: `answered` DNs came
   * from the one search, `fallback` DNs were sent on to their own base search.
   */
  batch?(servers: string, answered: number, fallback: number): void;
  /** Entries that came back with ranged values (AD's MaxValRange), whether completed or not. */
  rangedAttribute?(servers: string, entries: number): void;
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
  /**
   * How long a search may wait for admission when maxInFlight searches are already running
   * (default: the map's timeout). A hung server cannot make requests pile up without bound.
   */
  queueTimeoutMs?: number;
}

const DEREF = ['never', 'search', 'find', 'always'] as const;

/** Parsed filters by deref setting and filter string, oldest first; a filter object is only read when sent. */
const filterCache = new Map<string, Filter>();
const FILTER_CACHE_MAX = 512;

/**
 * The filter string as ldapts Filter objects, from a small cache: every nested DN search sends
 * the same `(objectclass=*)`, and a busy key's top-level filter repeats too. The object also
 * carries the search's alias dereferencing (see ldapts-fixes.ts), so each setting has its own.
 * Throws LdapFailure for a filter libldap would refuse.
 */
export function parsedFilter(text: string, deref: SearchRequest['deref'] = 0): Filter {
  const key = deref === 0 ? text : `${deref}\u0000${text}`;
  let filter = filterCache.get(key);
  if (filter !== undefined) return filter;
  try {
    // Our own libldap-compatible parser: ldapts's would mis-encode \XX escapes above 0x7F.
    filter = withDeref(parseFilter(text), DEREF[deref]);
  } catch (err) {
    // Postfix gets LDAP_FILTER_ERROR (-7) from libldap: a temporary error.
    if (err instanceof FilterError) throw new LdapFailure('error', err.message, LDAP_FILTER_ERROR);
    throw err;
  }
  if (filterCache.size >= FILTER_CACHE_MAX) filterCache.delete(filterCache.keys().next().value as string);
  filterCache.set(key, filter);
  return filter;
}

/** A search waiting for admission (maxInFlight reached). */
interface Waiter {
  grant(): void;
  fail(f: LdapFailure): void;
  timer: NodeJS.Timeout;
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
  private readonly waiters = new Set<Waiter>();
  private inFlight = 0;
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
    registerSecret(settings.bindPw);
    if (settings.chaseReferrals === true) this.chaser = new ReferralChaser(settings);
  }

  /** Follows referrals for chase_referrals = yes; absent otherwise (a referral is an error). */
  private readonly chaser?: ReferralChaser;

  /** Searches admitted right now, and waiting for admission (for metrics and tests). */
  get load(): { inFlight: number; queued: number; maxInFlight: number } {
    return { inFlight: this.inFlight, queued: this.waiters.size, maxInFlight: this.opts.maxInFlight };
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
  search(req: SearchRequest, opts?: { batch?: boolean; chase?: false }): Promise<Entry[]> {
    // chase: false (the change watcher's polls): search references are ignored, as with
    // chase_referrals = no, whatever the map says.
    const id = req.base + this.idTail(req) + (opts?.chase === false && this.chaser !== undefined ? '\u0000nochase' : '');
    const shared = this.sharing.get(id);
    if (shared) {
      this.sharedSearches++;
      return shared;
    }
    let p: Promise<Entry[]>;
    if (opts?.chase === false && this.chaser !== undefined) {
      p = this.searchAdmitted(req).then((r) => r.entries).finally(() => this.sharing.delete(id));
    } else if (opts?.batch === true && DnBatcher.eligible(req) && this.dnBatcher().active) {
      // The batcher ends the sharing itself (fewer promises per member).
      p = this.dnBatcher().fetch(req, id);
    } else {
      p = this.searchQueued(req).finally(() => this.sharing.delete(id));
    }
    this.sharing.set(id, p);
    return p;
  }

  private lastTail?: { scope: Scope; deref: number; binary: boolean; filter: string; attributes: string[]; tail: string };

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
        await this.acquire();
        try {
          return await this.searchOnce(req, filter, true);
        } finally {
          this.release();
        }
      },
      report: (answered, fallback) => this.opts.observer?.batch?.(this.serversLabel, answered, fallback),
    }));
  }

  private async searchQueued(req: SearchRequest): Promise<Entry[]> {
    return this.ranges(req, await this.searchChased(req));
  }

  /** Ranged values (AD's MaxValRange): counted and logged; completed only with range_retrieval. */
  private async ranges(req: SearchRequest, entries: Entry[]): Promise<Entry[]> {
    const incomplete = entries.filter((e) => incompleteRanges(e).length > 0);
    if (incomplete.length === 0) return entries;
    const names = [...new Set(incomplete.flatMap((e) => incompleteRanges(e).map((r) => r.name)))].join(', ');
    this.opts.observer?.rangedAttribute?.(this.serversLabel, incomplete.length);
    const retrieve = this.settings.rangeRetrieval === true;
    this.rlog.emit(
      'warn',
      'ranged-values',
      `LDAP ${this.serversLabel}: ${incomplete[0]!.dn} came back with only part of its values (${names}; the server's MaxValRange); ` +
        (retrieve ? 'fetching the remaining ranges (range_retrieval = yes)' : "answering from the first range only, as Postfix's ldap table does (range_retrieval = yes fetches the rest)"),
    );
    if (!retrieve) return entries;
    const fetch = async (dn: string, attribute: string): Promise<Entry | undefined> =>
      (await this.searchAdmitted({ ...req, base: dn, scope: 'base', filter: '(objectClass=*)', attributes: [attribute] })).entries[0];
    try {
      return await Promise.all(entries.map((e) => completeRanges(e, fetch)));
    } catch (err) {
      if (err instanceof RangeRetrievalError) throw new LdapFailure('error', `range retrieval: ${err.message}`);
      throw err;
    }
  }

  private async searchChased(req: SearchRequest): Promise<Entry[]> {
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
    await this.acquire();
    try {
      try {
        return await this.searchOnce(req, filter);
      } catch (err) {
        // LDAP_SERVER_DOWN: dict_ldap reconnects once and repeats the search once.
        if (err instanceof LdapFailure && err.kind === 'down' && !this.closed) return await this.searchOnce(req, filter);
        throw err;
      }
    } finally {
      this.release();
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
      attributes: req.attributes,
      explicitBufferAttributes: req.binary === true ? req.attributes : undefined,
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
      // does not answer one search is unlikely to answer the others queued behind it.
      this.dropConnection(slot, new LdapFailure('timeout', `search timed out after ${this.timeoutMs} ms`, undefined, conn.server));
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
    slot.connecting = connectAny(this.settings, this.serverOrder(now), (server, err) => {
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

  /** Servers in configured order, those that failed recently moved to the end (still tried). */
  private serverOrder(now: number): ServerTarget[] {
    const up: ServerTarget[] = [];
    const down: ServerTarget[] = [];
    for (const s of this.settings.servers) ((this.serverDownUntil.get(s.url) ?? 0) > now ? down : up).push(s);
    return [...up, ...down];
  }

  private dropConnection(slot: Slot, why: LdapFailure): void {
    const conn = slot.conn;
    slot.conn = undefined;
    for (const reject of slot.pending) reject(why);
    slot.pending.clear();
    conn?.socket.destroy();
  }

  private acquire(): Promise<void> {
    if (this.closed) return Promise.reject(new LdapFailure('down', 'pool closed'));
    if (this.inFlight < this.opts.maxInFlight && this.waiters.size === 0) {
      this.admit();
      return Promise.resolve();
    }
    const waitMs = this.opts.queueTimeoutMs ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        grant: () => { clearTimeout(w.timer); this.dequeue(w); this.admit(); resolve(); },
        fail: (f) => { clearTimeout(w.timer); this.dequeue(w); reject(f); },
        timer: setTimeout(() => {
          this.opts.observer?.queueTimeout?.(this.serversLabel);
          w.fail(new LdapFailure(
            'timeout',
            `no LDAP search slot free within ${waitMs} ms (ldap_max_in_flight = ${this.opts.maxInFlight} searches in flight, ${this.waiters.size} waiting)`,
          ));
        }, waitMs),
      };
      this.waiters.add(w);
      this.opts.observer?.queued?.(this.serversLabel, +1);
    });
  }

  private admit(): void {
    this.inFlight++;
    this.opts.observer?.inFlight?.(this.serversLabel, +1);
  }

  private dequeue(w: Waiter): void {
    if (this.waiters.delete(w)) this.opts.observer?.queued?.(this.serversLabel, -1);
  }

  private release(): void {
    this.inFlight--;
    this.opts.observer?.inFlight?.(this.serversLabel, -1);
    // The oldest waiter first (a Set iterates in insertion order).
    const next = this.waiters.values().next();
    if (!next.done) next.value.grant();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.chaser?.close();
    for (const w of [...this.waiters]) w.fail(new LdapFailure('down', 'pool closed'));
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
