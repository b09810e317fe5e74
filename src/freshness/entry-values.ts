import type { Entry } from 'ldapts';

/** An attribute's values as strings, whatever the case of its name in the entry (servers differ). */
export function stringValues(entry: Entry | undefined, attr: string): string[] {
  if (!entry) return [];
  const want = attr.toLowerCase();
  for (const [name, v] of Object.entries(entry)) {
    if (name.toLowerCase() !== want) continue;
    const list = Array.isArray(v) ? v : [v];
    return list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
  }
  return [];
}
