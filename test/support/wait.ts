export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `f` every `every` ms until `ok` accepts its value; fails with the last value seen. */
export async function waitFor<T>(what: string, f: () => T | Promise<T>, ok: (v: T) => boolean, ms = 20_000, every = 200): Promise<T> {
  const end = Date.now() + ms;
  let last: T;
  do {
    last = await f();
    if (ok(last)) return last;
    await sleep(every);
  } while (Date.now() < end);
  throw new Error(`${what}: still ${JSON.stringify(last)}`);
}
