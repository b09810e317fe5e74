import type { BreakerState } from './breaker.js';

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
  /** Entries that came back with ranged values (AD's MaxValRange), whether completed or not. */
  rangedAttribute?(servers: string, entries: number): void;
}
