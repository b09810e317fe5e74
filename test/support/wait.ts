export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `f` every 200 ms until `ok` accepts its value; fails with the last value seen. */
export async function waitFor<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  let last: T;
  do {
    last = await f();
    if (ok(last)) return last;
    await sleep(200);
  } while (Date.now() < end);
  throw new Error(`${what}: still ${JSON.stringify(last)}`);
}
