/**
 * Admission of searches into a pool: at most `maxInFlight` searches run at once; more wait in a
 * bounded queue, oldest first, for no longer than `waitMs`. A hung server then makes lookups
 * fail as timeouts instead of piling requests onto the directory without bound.
 */
import { LdapFailure } from './errors.js';

/** What admission reports (the pool's observer, labelled with its server list). */
export interface AdmissionObserver {
  inFlight?(delta: number): void;
  queued?(delta: number): void;
  queueTimeout?(): void;
}

/** A search waiting for admission (maxInFlight reached). */
interface Waiter {
  grant(): void;
  fail(f: LdapFailure): void;
  timer: NodeJS.Timeout;
}

export class Admission {
  private readonly waiters = new Set<Waiter>();
  private running = 0;
  private closed = false;

  constructor(
    readonly maxInFlight: number,
    private readonly waitMs: number,
    private readonly observer: AdmissionObserver = {},
  ) {}

  /** Searches admitted right now, and waiting for admission. */
  get inFlight(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiters.size;
  }

  acquire(): Promise<void> {
    if (this.closed) return Promise.reject(new LdapFailure('down', 'pool closed'));
    if (this.running < this.maxInFlight && this.waiters.size === 0) {
      this.admit();
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        grant: () => { clearTimeout(w.timer); this.dequeue(w); this.admit(); resolve(); },
        fail: (f) => { clearTimeout(w.timer); this.dequeue(w); reject(f); },
        timer: setTimeout(() => {
          this.observer.queueTimeout?.();
          w.fail(new LdapFailure(
            'timeout',
            `no LDAP search slot free within ${this.waitMs} ms (ldap_max_in_flight = ${this.maxInFlight} searches in flight, ${this.waiters.size} waiting)`,
          ));
        }, this.waitMs),
      };
      this.waiters.add(w);
      this.observer.queued?.(+1);
    });
  }

  release(): void {
    this.running--;
    this.observer.inFlight?.(-1);
    // The oldest waiter first (a Set iterates in insertion order).
    const next = this.waiters.values().next();
    if (!next.done) next.value.grant();
  }

  /** Fails every waiting search; later acquires fail at once. */
  close(): void {
    this.closed = true;
    for (const w of [...this.waiters]) w.fail(new LdapFailure('down', 'pool closed'));
  }

  private admit(): void {
    this.running++;
    this.observer.inFlight?.(+1);
  }

  private dequeue(w: Waiter): void {
    if (this.waiters.delete(w)) this.observer.queued?.(-1);
  }
}
