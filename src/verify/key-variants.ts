/**
 * From the keys that find something to the keys worth asking: the keys themselves, case
 * variants (Postfix folds keys for ldap: but sends them to a socketmap as typed), address
 * extensions (fallback keys) and guaranteed misses. Pure.
 */

export interface VariantOptions {
  /** recipient_delimiter characters; the first one is used for the extension variant. */
  delimiter: string;
  /** A token that does not occur in the directory (misses are built from it). */
  missToken: string;
}

function titleCase(s: string): string {
  return s.replace(/(^|[@.\-_+ ])([a-z\u00e0-\u00fe])/g, (_m, sep: string, c: string) => sep + c.toUpperCase());
}

export function variantsOf(key: string, opts: VariantOptions): string[] {
  const out = [key, key.toUpperCase(), titleCase(key.toLowerCase())];
  const at = key.lastIndexOf('@');
  if (at > 0) {
    const local = key.slice(0, at);
    const domain = key.slice(at + 1);
    out.push(`${local}${opts.delimiter[0] ?? '+'}${opts.missToken}@${domain}`);
    out.push(`${opts.missToken}@${domain}`);
  } else {
    out.push(`${key}${opts.missToken}`);
  }
  return out;
}

/** Keys in first-seen order without repeats, without the empty key (Postfix never asks it) and
 *  without "-" (postmap -q reads keys from stdin then). */
export function uniqueKeys(keys: Iterable<string>): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const k of keys) {
    if (k === '' || k === '-' || k.includes('\n') || k.includes('\0') || seen.has(k)) continue;
    seen.add(k);
    out.push(k);
  }
  return out;
}

/** A key file: one key per line; blank lines and lines starting with # are skipped. */
export function parseKeyFile(text: string): string[] {
  return text.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '' && !l.startsWith('#'));
}

/** Recipients of a Postfix mail log (`to=<addr>` and `orig_to=<addr>`), in order of appearance. */
export function recipientsFromLog(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\b(?:orig_)?to=<([^<>\s]+)>/g)) out.push(m[1]!);
  return out;
}
