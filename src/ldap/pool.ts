import type { Scope, SearchRequest } from './search-request.js';
import type { Entry, Filter } from 'ldapts';
import { RateLimitedLog, registerSecret } from '../log.js';
import { DnBatcher } from './batch.js';
import type { BreakerStatus } from './breaker.js';
import { withDeadline, type ConnectionSettings, type OpenConnection } from './connect.js';
import { ConnectionSet } from './connections.js';
import { LDAP_REFERRAL, LdapFailure, toLdapFailure } from './errors.js';
import { Admission } from './admission.js';
import { DEREF, parsedFilter } from './filter-cache.js';
import { completeRanges, incompleteRanges, RangeRetrievalError } from './range.js';
import { ReferralChaser, serverKey, type ChaseRequest, type SearchOutcome } from './referral.js';

import type { PoolObserver } from './pool-observer.js';

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

/**
 * A small pool of LDAP connections shared by every map with the same connection parameters
 * (Postfix shares one connection the same way). LDAP multiplexes requests on a connection, so
 * each slot carries many concurrent searches; extra slots spread the server's per-connection
 * work. Connections are opened lazily, re-opened (and re-bound) after loss, and a connect
 * failure starts a backoff window during which lookups fail fast instead of storming the
 * directory.
 */
export class LdapPool {
  private readonly admission: Admission;
  private readonly conns: ConnectionSet;
  /** The pool's server_host list, as the metrics label it. */
  readonly serversLabel: string;
  private closed = false;
  private readonly rlog = new RateLimitedLog(60_000);

  constructor(
    readonly settings: ConnectionSettings,
    private readonly opts: PoolOptions,
  ) {
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
    this.conns = new ConnectionSet(settings, { ...opts, opened: (server) => this.batcher?.connected(server) });
  }

  /** Servers whose circuit breaker is open now (for /readyz, explain and tests). */
  get failingServers(): BreakerStatus[] {
    return this.conns.failingServers;
  }

  /** True when at least one connection is open (for /readyz and `check`). */
  get connected(): boolean {
    return this.conns.connected;
  }

  get lastError(): string | undefined {
    return this.conns.lastError;
  }

  /**
   * Makes sure a connection exists, as dict_ldap connects before it expands templates: a key
   * whose search would be suppressed still gets a temporary error while LDAP is unreachable.
   */
  ensureConnected(): Promise<void> {
    return this.conns.ensureConnected();
  }

  /** The SASL mechanism the newest connection bound with (bind = sasl). */
  get saslMechanism(): string | undefined {
    return this.conns.saslMechanism;
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
    const slot = this.conns.pickSlot();
    const conn = await this.conns.connectSlot(slot);
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
      this.conns.dropConnection(slot, f);
      this.conns.trip(conn.server, f);
    }, this.timeoutMs);
    this.conns.corkForTick(slot, conn);
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
      if (f.kind === 'down') this.conns.dropConnection(slot, f);
      throw f;
    } finally {
      clearTimeout(timer);
      slot.inFlight--;
      slot.pending.delete(rejectPending);
    }
  }


  private observe(server: string, outcome: Parameters<NonNullable<PoolObserver['request']>>[1], started: bigint): void {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.opts.observer?.request?.(server, outcome, seconds);
  }








  async close(): Promise<void> {
    this.closed = true;
    await this.chaser?.close();
    this.admission.close();
    await this.conns.close();
  }
}
