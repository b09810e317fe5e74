import type { Entry } from 'ldapts';

/**
 * Ranged attribute values (Active Directory's MaxValRange, 1500 by default): a DC answers a
 * group's `member` with more values than that as `member;range=0-1499`, and the rest must be
 * asked for with `member;range=1500-*` and so on until a range ends in `*`.
 *
 * Postfix does not know this: it expands the first 1500 members only (and, because its leaf
 * test looks for the exact name `member`, also returns the group's own leaf attributes), with no
 * error and no warning. The daemon answers the same by default, but logs and counts it; with
 * `range_retrieval = yes` (opt-in, a documented deviation) it fetches the remaining ranges and
 * gives the map the whole attribute under its plain name.
 */

export interface RangedAttribute {
  /** The attribute description as the server sent it, e.g. `member;range=0-1499`. */
  name: string;
  /** The description without the range option, e.g. `member`. */
  base: string;
  low: number;
  /** Last index sent, or `*` when this range is the last one. */
  high: number | '*';
}

const RANGE_OPTION = /^range=(\d+)-(\d+|\*)$/i;

/** The range option of an attribute description, or undefined for an ordinary one. */
export function parseRanged(name: string): RangedAttribute | undefined {
  const parts = name.split(';');
  const i = parts.findIndex((p, n) => n > 0 && RANGE_OPTION.test(p));
  if (i < 0) return undefined;
  const m = RANGE_OPTION.exec(parts[i] as string) as RegExpExecArray;
  const base = parts.filter((_, n) => n !== i).join(';');
  return { name, base, low: Number(m[1]), high: m[2] === '*' ? '*' : Number(m[2]) };
}

/** The ranged attributes of an entry that have more values on the server (range not ending in `*`). */
export function incompleteRanges(entry: Entry): RangedAttribute[] {
  const out: RangedAttribute[] = [];
  for (const key of Object.keys(entry)) {
    if (key === 'dn') continue;
    const r = parseRanged(key);
    if (r !== undefined && r.high !== '*') out.push(r);
  }
  return out;
}

type Values = string | string[] | Buffer | Buffer[];

function list(v: Values | undefined): (string | Buffer)[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? [...v] : [v];
}

/** Raised when a range cannot be completed: the lookup must not answer from part of a group. */
export class RangeRetrievalError extends Error {}

/**
 * The entry with every incomplete ranged attribute fetched to its end and stored under its
 * plain name (the ranged one removed). `fetch(dn, description)` asks the same server for one
 * attribute description of one entry (a base search) and returns the entry it got.
 */
export async function completeRanges(entry: Entry, fetch: (dn: string, attribute: string) => Promise<Entry | undefined>): Promise<Entry> {
  const ranged = incompleteRanges(entry);
  if (ranged.length === 0) return entry;
  const complete = new Map<string, { base: string; values: (string | Buffer)[] }>();
  for (const r of ranged) {
    const values = list(entry[r.name] as Values);
    let next = (r.high as number) + 1;
    for (let rounds = 0; ; rounds++) {
      if (rounds > 100_000) throw new RangeRetrievalError(`${entry.dn}: ${r.base}: too many ranges`);
      const got = await fetch(entry.dn, `${r.base};range=${next}-*`);
      const key = got === undefined ? undefined : Object.keys(got).find((k) => {
        const p = parseRanged(k);
        return p !== undefined && p.base.toLowerCase() === r.base.toLowerCase();
      });
      if (got === undefined || key === undefined) {
        throw new RangeRetrievalError(`${entry.dn}: the server sent no ${r.base};range=${next}-* values`);
      }
      const p = parseRanged(key) as RangedAttribute;
      values.push(...list(got[key] as Values));
      if (p.high === '*') break;
      if (p.high < next) throw new RangeRetrievalError(`${entry.dn}: ${key} does not move past ${next}`);
      next = p.high + 1;
    }
    complete.set(r.name, { base: r.base, values });
  }
  // The attribute keeps its place among the entry's attributes: values are joined in the
  // order the server sent the attributes, as Postfix walks them.
  // ldapts adds every requested attribute the server did not send as an empty list: the plain
  // `member` asked for is there, empty, beside `member;range=0-1499`; the completed one replaces it.
  const bases = new Set([...complete.values()].map((c) => c.base.toLowerCase()));
  const out = { dn: entry.dn } as Entry;
  for (const [k, v] of Object.entries(entry)) {
    if (k === 'dn' || (bases.has(k.toLowerCase()) && !complete.has(k))) continue;
    const c = complete.get(k);
    if (c) out[c.base] = c.values as string[] | Buffer[];
    else out[k] = v as Entry[string];
  }
  return out;
}
