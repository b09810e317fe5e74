/**
 * A circuit breaker per LDAP server. A server that timed out or could not be reached is marked
 * failing (open): while it is, the pool skips it at once instead of making every lookup wait one
 * `timeout` for it, so lookups go to the next server_host, and when none is left they fail at
 * once (TEMP, or the cache's stale answer). A cheap background probe (connect, bind, read the
 * root DSE, bounded by `timeout`) closes the breaker when the server answers again.
 *
 * Bind refusals and other answers from a live server do not open it: the server is up, and
 * skipping it would hide a configuration error behind failover.
 */
import { RateLimitedLog, log } from '../log.js';
import type { LdapFailure } from './errors.js';
import type { ServerTarget } from './target.js';

export type BreakerState = 'open' | 'closed';

export interface BreakerStatus {
  server: string;
  /** Milliseconds since it opened. */
  openForMs: number;
  reason: string;
  /** Probes that failed since it opened. */
  probes: number;
}

export interface BreakerOptions {
  /** First probe this long after opening; doubling after each failed probe up to probeMaxMs. */
  probeMinMs?: number;
  probeMaxMs?: number;
  /** Transitions, for metrics: the pool's observer. */
  changed?(server: string, state: BreakerState, reason: string): void;
}

interface Open {
  target: ServerTarget;
  since: number;
  reason: string;
  probes: number;
  timer?: NodeJS.Timeout;
  probing: boolean;
}

const DEFAULT_PROBE_MIN_MS = 500;
const DEFAULT_PROBE_MAX_MS = 15_000;

export class ServerBreakers {
  private readonly open = new Map<string, Open>();
  private readonly rlog = new RateLimitedLog(60_000);
  private stopped = false;

  constructor(
    /** Resolves when the server answers a cheap request; rejects (within `timeout`) when it does not. */
    private readonly probe: (server: ServerTarget) => Promise<void>,
    private readonly opts: BreakerOptions = {},
  ) {}

  isOpen(url: string): boolean {
    return this.open.has(url);
  }

  /** The servers whose breaker is open, oldest first. */
  status(now = Date.now()): BreakerStatus[] {
    return [...this.open.values()].map((o) => ({ server: o.target.url, openForMs: now - o.since, reason: o.reason, probes: o.probes }));
  }

  /** Why lookups skip every server: one line for the temporary error a lookup answers. */
  describe(): string {
    return this.status().map((s) => `${s.server}: ${s.reason} (${Math.round(s.openForMs / 1000)} s ago)`).join('; ');
  }

  /** Opens the breaker of `server` (a timeout or a failed connection); no-op when already open. */
  trip(server: ServerTarget, why: LdapFailure | string): void {
    if (this.stopped || this.open.has(server.url)) return;
    const reason = typeof why === 'string' ? why : why.message;
    const o: Open = { target: server, since: Date.now(), reason, probes: 0, probing: false };
    this.open.set(server.url, o);
    this.rlog.emit('warn', `open:${server.url}`, `LDAP server ${server.url}: circuit breaker open (${reason}); lookups skip it until a probe answers`);
    this.opts.changed?.(server.url, 'open', reason);
    this.schedule(o);
  }

  /** Stops every probe (the pool is closing). */
  stop(): void {
    this.stopped = true;
    for (const o of this.open.values()) clearTimeout(o.timer);
    this.open.clear();
  }

  private schedule(o: Open): void {
    const min = this.opts.probeMinMs ?? DEFAULT_PROBE_MIN_MS;
    const max = this.opts.probeMaxMs ?? DEFAULT_PROBE_MAX_MS;
    const wait = Math.min(max, min * 2 ** Math.min(20, o.probes));
    o.timer = setTimeout(() => void this.runProbe(o), wait);
    o.timer.unref();
  }

  private async runProbe(o: Open): Promise<void> {
    if (this.stopped || this.open.get(o.target.url) !== o || o.probing) return;
    o.probing = true;
    try {
      await this.probe(o.target);
    } catch (err) {
      o.probing = false;
      o.probes++;
      if (!this.stopped && this.open.get(o.target.url) === o) this.schedule(o);
      log.debug(`LDAP server ${o.target.url}: probe failed: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    o.probing = false;
    if (this.open.get(o.target.url) !== o) return;
    this.open.delete(o.target.url);
    log.info(`LDAP server ${o.target.url}: answers again after ${Math.round((Date.now() - o.since) / 100) / 10} s; circuit breaker closed`);
    this.opts.changed?.(o.target.url, 'closed', 'probe answered');
  }
}
