/**
 * The connections of one pool: a few slots, each holding one LDAP connection that carries many
 * concurrent searches, opened lazily and re-opened (and re-bound) after loss. Failover walks
 * server_host in order; a server that failed moves to the back for a while, and one that timed
 * out or could not be reached is skipped altogether while its circuit breaker is open. A
 * connect failure starts a backoff window during which lookups fail fast instead of storming
 * the directory.
 */
import { RateLimitedLog } from '../log.js';
import { ServerBreakers, type BreakerStatus } from './breaker.js';
import { connectAny, connectServer, StartTlsFailure, withDeadline, type ConnectionSettings, type OpenConnection, type ServerTarget } from './connect.js';
import { LdapFailure, toLdapFailure } from './errors.js';
import { parsedFilter } from './filter-cache.js';
import type { PoolObserver } from './pool-observer.js';

export interface Slot {
  conn?: OpenConnection;
  connecting?: Promise<OpenConnection>;
  inFlight: number;
  /** Rejecters of the searches on this connection, so a dead socket fails them at once. */
  pending: Set<(f: LdapFailure) => void>;
  /** The socket corked for the searches started in this tick (see corkForTick). */
  corked?: OpenConnection['socket'];
}

export interface ConnectionSetOptions {
  size: number;
  observer?: PoolObserver;
  /** A connection to `server` was opened (the batcher learns what the server supports). */
  opened?(server: string): void;
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
}

export class ConnectionSet {
  private readonly slots: Slot[];
  private failures = 0;
  private retryAt = 0;
  private lastFailure?: LdapFailure;
  private readonly serverDownUntil = new Map<string, number>();
  private readonly serverFailures = new Map<string, number>();
  private readonly rlog = new RateLimitedLog(30_000);
  /** One circuit breaker per server: failing servers are skipped until a probe answers. */
  private readonly breakers: ServerBreakers;
  private closed = false;

  constructor(
    readonly settings: ConnectionSettings,
    private readonly opts: ConnectionSetOptions,
  ) {
    this.slots = Array.from({ length: Math.max(1, opts.size) }, () => ({ inFlight: 0, pending: new Set() }));
    this.breakers = new ServerBreakers((server) => this.probe(server), {
      probeMinMs: opts.probeMinMs,
      probeMaxMs: opts.probeMaxMs,
      changed: (server, state, reason) => opts.observer?.breaker?.(server, state, reason),
    });
  }

  get timeoutMs(): number {
    return this.settings.timeoutSec * 1000;
  }

  /**
   * Corks the connection's socket until the next tick, so the searches a walk starts together
   * (a list's members) leave in one writev instead of one write(2) each. ldapts writes a request
   * a few microtasks after search() is called; nextTick callbacks run once the microtask queue is
   * empty, so they are all in. Started outside a microtask, the uncork may come first: the
   * write then just goes out on its own.
   */
  corkForTick(slot: Slot, conn: OpenConnection): void {
    if (slot.corked !== undefined) return;
    const socket = conn.socket;
    slot.corked = socket;
    socket.cork();
    process.nextTick(() => {
      slot.corked = undefined;
      socket.uncork();
    });
  }

  /** Least-busy open slot, or an unopened one when every open slot is already busy. */
  pickSlot(): Slot {
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

  connectSlot(slot: Slot): Promise<OpenConnection> {
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
        if (conn.saslMechanism !== undefined) this.saslMechanism = conn.saslMechanism;
        this.opts.observer?.connection?.(conn.server, 'open');
        this.opts.opened?.(conn.server);
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
  trip(url: string, why: LdapFailure): void {
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

  dropConnection(slot: Slot, why: LdapFailure): void {
    const conn = slot.conn;
    slot.conn = undefined;
    for (const reject of slot.pending) reject(why);
    slot.pending.clear();
    conn?.socket.destroy();
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
  /** The SASL mechanism of the newest connection (bind = sasl), for `check`. */
  saslMechanism: string | undefined;

  async ensureConnected(): Promise<void> {
    if (this.connected) return;
    await this.connectSlot(this.slots[0]!);
  }

  /** Servers whose circuit breaker is open now (for /readyz, explain and tests). */
  get failingServers(): BreakerStatus[] {
    return this.breakers.status();
  }

  /** Ends every connection (an unbind first, bounded), stops the probes. */
  async close(): Promise<void> {
    this.closed = true;
    this.breakers.stop();
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
