import type { LookupContext, LookupMap } from '../contracts/map.js';
import { found, type LookupResult } from '../contracts/result.js';

export interface FallbackOptions {
  /** Postfix recipient_delimiter: a set of characters, any of which starts the extension. */
  recipientDelimiter: string;
  /**
   * Append the unmatched extension to every address of an answer found through the key
   * without extension, as cleanup does for virtual_alias_maps (propagate_unmatched_extensions,
   * default "canonical, virtual"). Right for alias maps, wrong for mailbox maps.
   */
  propagateExtension: boolean;
}

/**
 * Postfix's split_addr(): the extension of a localpart, or undefined when Postfix would not
 * split it (postmaster, MAILER-DAEMON, double-bounce, owner-foo / foo-request when '-' is a
 * delimiter, a delimiter in first position, no delimiter). Returned with its delimiter, as
 * Postfix keeps it for propagation.
 */
export function splitExtension(localpart: string, delimiters: string): { bare: string; ext: string } | undefined {
  if (delimiters === '') return undefined;
  const lower = localpart.toLowerCase();
  if (lower === 'postmaster' || lower === 'mailer-daemon' || lower === 'double-bounce') return undefined;
  if (delimiters.includes('-')) {
    if (lower.startsWith('owner-')) return undefined;
    if (lower.length > 8 && lower.endsWith('-request')) return undefined;
  }
  let i = 0;
  while (i < localpart.length && !delimiters.includes(localpart[i]!)) i++;
  if (i === 0 || i === localpart.length) return undefined;
  return { bare: localpart.slice(0, i), ext: localpart.slice(i) };
}

/** mail_addr_crunch's extension propagation: the extension goes before each address's last '@'. */
function propagate(value: Buffer, ext: string): Buffer {
  const out = value
    .toString('utf8')
    .split(',')
    .map((addr) => {
      const at = addr.lastIndexOf('@');
      return at < 0 ? addr + ext : addr.slice(0, at) + ext + addr.slice(at);
    })
    .join(',');
  return Buffer.from(out, 'utf8');
}

/**
 * Reproduces the extra keys Postfix asks a *fixed* table (like ldap:) for and never asks a
 * socketmap (spec §0, global/mail_addr_find.c): after the full address, the address without its
 * recipient_delimiter extension, then the `@domain` catch-all. Each step runs only when the one
 * before answered "not found"; a temporary error stops the chain, as in maps_find().
 *
 * Not covered (the daemon cannot know them): bare-localpart keys for $mydestination domains,
 * parent-domain lookups of check_*_access and transport maps.
 */
export class FallbackMap implements LookupMap {
  constructor(private readonly inner: LookupMap, private readonly opts: FallbackOptions) {}

  get name(): string {
    return this.inner.name;
  }

  async lookup(key: Buffer, ctx?: LookupContext): Promise<LookupResult> {
    ctx?.trace?.step?.('key', key);
    const full = await this.inner.lookup(key, ctx);
    if (full.kind !== 'notfound') return full;
    const addr = key.toString('utf8');
    const at = addr.lastIndexOf('@');
    if (at < 0) return full;
    const localpart = addr.slice(0, at);
    const domain = addr.slice(at + 1);

    const split = splitExtension(localpart, this.opts.recipientDelimiter);
    if (split) {
      const bareKey = Buffer.from(`${split.bare}@${domain}`, 'utf8');
      ctx?.trace?.step?.('without extension', bareKey);
      const bare = await this.inner.lookup(bareKey, ctx);
      if (bare.kind === 'found' && this.opts.propagateExtension) return found(propagate(bare.value, split.ext));
      if (bare.kind !== 'notfound') return bare;
    }
    if (domain === '') return full;
    const catchAll = Buffer.from(`@${domain}`, 'utf8');
    ctx?.trace?.step?.('catch-all @domain', catchAll);
    return this.inner.lookup(catchAll, ctx);
  }

  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}
