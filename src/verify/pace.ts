/**
 * Bounding the load verify puts on LDAP and the machine: a shared rate (lookups started per
 * second, both sides counted), a concurrency cap, and an overall deadline.
 */
export class RateLimiter {
  #next = 0;
  readonly #interval: number;

  constructor(perSecond: number) {
    this.#interval = perSecond > 0 ? 1000 / perSecond : 0;
  }

  /** Resolves when the caller may start one lookup. */
  async take(): Promise<void> {
    const now = Date.now();
    const at = Math.max(now, this.#next);
    this.#next = at + this.#interval;
    if (at > now) await new Promise((r) => setTimeout(r, at - now));
  }
}

/** Runs `task` over `items` with at most `limit` at once, in order of start; stops starting new ones once `stop()` is true. */
export async function eachLimited<T>(items: T[], limit: number, task: (item: T, index: number) => Promise<void>, stop: () => boolean): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && !stop()) {
      const i = next++;
      await task(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
