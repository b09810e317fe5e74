import type { PoolObserver } from '../ldap/pool-observer.js';

/** What the pools reported while one explain ran. */
export interface ServerWatch {
  /** Servers that answered (or failed) a search. */
  readonly used: Set<string>;
  /** Servers a connect attempt failed on. */
  readonly failedConnects: Set<string>;
  stop(): void;
}

/**
 * Tells explain which LDAP servers its searches went to. `observer` is the PoolObserver to give
 * the pools: it passes every event on to the inner observer (the daemon's metrics), whatever
 * events that one handles, and also notes requests and failed connects for running watches.
 *
 * The pool reports the server of each request but not which search it was, so explain names a
 * search's server exactly when one server answered everything during its run (the normal case:
 * a pool's connections all go to the first server that accepts them), and lists the candidates
 * otherwise. A failed search carries its server itself.
 */
export class ServerTap {
  readonly observer: PoolObserver;
  private readonly watches = new Set<{ used: Set<string>; failedConnects: Set<string> }>();

  constructor(inner: PoolObserver = {}) {
    this.observer = {
      ...inner,
      request: (server, outcome, seconds) => {
        for (const w of this.watches) w.used.add(server);
        inner.request?.(server, outcome, seconds);
      },
      connection: (server, event) => {
        if (event === 'fail') for (const w of this.watches) w.failedConnects.add(server);
        inner.connection?.(server, event);
      },
    };
  }

  watch(): ServerWatch {
    const w = { used: new Set<string>(), failedConnects: new Set<string>() };
    this.watches.add(w);
    return { used: w.used, failedConnects: w.failedConnects, stop: () => { this.watches.delete(w); } };
  }
}
