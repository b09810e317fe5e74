/**
 * What Postfix gets from a *fixed* ldap: table for one address through mail_addr_find(), built
 * from single native lookups: the full address, then (not found) the address without its
 * recipient_delimiter extension, then (not found) `@domain`; a temporary error stops the
 * chain. This is the native side for maps the daemon serves with `fallback = address`, where
 * `postmap -q KEY ldap:` alone would ask only the first key. Written from Postfix's
 * global/mail_addr_find.c and split_addr.c, not from the daemon's code, so it can referee it.
 */
import type { Answer } from './answer.js';

/** split_addr(): where Postfix splits a localpart, or undefined when it does not. */
export function postfixExtension(localpart: string, delimiters: string): { bare: string; ext: string } | undefined {
  if (localpart === '' || delimiters === '') return undefined;
  const lower = localpart.toLowerCase();
  if (lower === 'postmaster' || lower === 'mailer-daemon' || lower === 'double-bounce') return undefined;
  if (delimiters.includes('-') && (lower.startsWith('owner-') || (lower.length > 8 && lower.endsWith('-request')))) return undefined;
  let i = 0;
  while (i < localpart.length && !delimiters.includes(localpart[i]!)) i++;
  if (i === 0 || i === localpart.length) return undefined;
  return { bare: localpart.slice(0, i), ext: localpart.slice(i) };
}

/** propagate_unmatched_extensions: the extension goes in front of each result address's last '@'. */
export function propagateExtension(value: string, ext: string): string {
  return value
    .split(',')
    .map((a) => {
      const at = a.lastIndexOf('@');
      return at < 0 ? a + ext : a.slice(0, at) + ext + a.slice(at);
    })
    .join(',');
}

export interface ChainStep {
  key: string;
  answer: Answer;
}

export async function addressChain(
  key: string,
  opts: { delimiter: string; propagate: boolean },
  lookup: (key: string) => Promise<Answer>,
  steps: ChainStep[] = [],
): Promise<Answer> {
  const ask = async (k: string) => { const a = await lookup(k); steps.push({ key: k, answer: a }); return a; };
  const full = await ask(key);
  if (full.kind !== 'notfound') return full;
  const at = key.lastIndexOf('@');
  if (at < 0) return full;
  const local = key.slice(0, at);
  const domain = key.slice(at + 1);
  const split = postfixExtension(local, opts.delimiter);
  if (split !== undefined) {
    const bare = await ask(`${split.bare}@${domain}`);
    if (bare.kind === 'found') return opts.propagate ? { kind: 'found', value: propagateExtension(bare.value, split.ext) } : bare;
    if (bare.kind !== 'notfound') return bare;
  }
  if (domain === '') return full;
  return ask(`@${domain}`);
}
