// Just over 400 lines: the batcher is one unit (grouping a walk's member searches, the batch
// search, matching entries back to DNs exactly, and the per-DN fallback that keeps answers
// byte for byte Postfix's).
/**
 * Batched member fetches: the base-scope searches a list expansion makes for its member DNs,
 * answered by few subtree searches on OpenLDAP's `entryDN` attribute (RFC 5020) instead of one
 * search per DN (per-map setting `batch_member_fetch`, off by default).
 *
 * Exactness comes first; batching is only ever a shortcut to the answer the per-DN base search
 * gives, never a different answer:
 *
 * - Only the searches Postfix makes for a plain DN value qualify: scope base, filter
 *   `(objectclass=*)`, `dereference = 0` (with alias dereferencing a base search may answer with
 *   another entry than the one named). A non-empty DN is required; URL members never qualify.
 * - Support is detected at run time, per pool, by the identity the map binds as: the root DSE
 *   must list naming contexts, and a base search of a naming context with
 *   `(&(objectClass=*)(entryDN=<that context>))` must return it. Probed again when a connection
 *   opens to another server than the one probed, and five minutes after a probe that found no
 *   support. Without support nothing is batched.
 * - A batch is one subtree search below a naming context with
 *   `(&(objectClass=*)(|(entryDN=dn1)(entryDN=dn2)…))`, the map's attribute list, deref never,
 *   the same time limit. The assertion values are the DNs' UTF-8 bytes: nothing to escape.
 * - A DN is answered from the batch only when exactly one returned entry carries exactly the
 *   requested DN string. Everything else — no entry (missing DN, invalid DN syntax, referral,
 *   ACL), an entry under another spelling of the DN (case, spaces, escapes), duplicates, a DN
 *   under no probed naming context — goes through its own base search, which gives Postfix's
 *   outcome for it (entries, noSuchObject → skipped, any other error → temporary error).
 * - A batch search that fails in any way (timeout, size or admin limit, server down, …) sends
 *   all its DNs through their own base searches; its own timeout does not drop the connection.
 *   Three failed batches in a row turn batching off for the pool for ten minutes.
 *
 * The caller sees the same contract as `LdapPool.search` for a DN: resolved with the entries
 * (one) or rejected with an LdapFailure. Output order is the caller's business (placeholders).
 */
import type { BerWriter, Entry } from 'ldapts';
import { Filter, PresenceFilter, SearchFilter } from 'ldapts';
import { log } from '../log.js';
import { LdapFailure } from './errors.js';
import type { SearchRequest } from './search-request.js';

/** What the batcher needs from its pool (implemented by LdapPool, kept off its public API). */
export interface BatchHost {
  /** The normal per-request path (admission queue, reconnect-and-retry once), without sharing. */
  searchOne(req: SearchRequest): Promise<Entry[]>;
  /** The search `key` (LdapPool's sharing id) is about to be answered: later ones start anew. */
  settling(key: string): void;
  /** One search with a ready Filter; no retry; a timeout fails only this search. */
  searchRaw(req: SearchRequest, filter: Filter): Promise<{ entries: Entry[]; server: string }>;
  /** DNs answered by a batch search, and DNs a batch search sent on to their own base search. */
  report(answered: number, fallback: number): void;
}

export interface BatchOptions {
  /** DNs per batch search (default 100). */
  maxDns?: number;
  /** Bytes of DNs per batch search (default 64 KiB; slapd refuses big requests from anonymous clients). */
  maxBytes?: number;
}

/** The one filter string Postfix sends for a DN-valued special attribute (spec §4.4). */
export const DN_MEMBER_FILTER = '(objectclass=*)';

const FAILURES_BEFORE_PAUSE = 3;
const PAUSE_MS = 10 * 60_000;
const MAX_CONTEXTS = 32;
const REPROBE_MS = 5 * 60_000;

interface Item {
  req: SearchRequest;
  key: string;
  resolve(entries: Entry[]): void;
  reject(err: unknown): void;
}

interface Group {
  attributes: readonly string[];
  binary: boolean;
  items: Item[];
}

interface Support {
  server: string;
  /** Naming contexts whose subtree can be searched by entryDN, longest first, with ASCII lower-case forms. */
  contexts: { dn: string; lower: string }[];
}

export class DnBatcher {
  private groups: Group[] = [];
  private scheduled = false;
  private support?: Promise<Support | undefined>;
  /** When a probe that found no support may be repeated (the server may have been down). */
  private reprobeAt = 0;
  private failures = 0;
  private pausedUntil = 0;
  private readonly maxDns: number;
  private readonly maxBytes: number;

  constructor(
    private readonly host: BatchHost,
    opts: BatchOptions = {},
  ) {
    this.maxDns = Math.max(1, opts.maxDns ?? 100);
    this.maxBytes = Math.max(1, opts.maxBytes ?? 65536);
  }

  /** True when `req` is a search this batcher may answer (see the module comment). */
  static eligible(req: SearchRequest): boolean {
    return req.scope === 'base' && req.deref === 0 && req.filter === DN_MEMBER_FILTER && req.base !== '';
  }

  /** Forget what was probed: a connection opened to `server`, which may not be the one probed. */
  connected(server: string): void {
    const s = this.support;
    if (!s) return;
    void s.then((sup) => {
      if (this.support === s && sup?.server !== server) this.support = undefined;
    });
  }

  /** False while batching is paused after failed batches. */
  get active(): boolean {
    return this.pausedUntil === 0 || Date.now() >= this.pausedUntil;
  }

  /**
   * Same contract as LdapPool.search for an eligible request; `key` is its sharing id, handed
   * back to the host (settling) right before the answer.
   */
  fetch(req: SearchRequest, key: string): Promise<Entry[]> {
    return new Promise<Entry[]>((resolve, reject) => {
      // Groups by attribute list (the same array for all of a map's member searches) and form.
      const binary = req.binary === true;
      let g: Group | undefined;
      for (const x of this.groups) if (x.attributes === req.attributes && x.binary === binary) { g = x; break; }
      if (!g) {
        g = { attributes: req.attributes, binary, items: [] };
        this.groups.push(g);
      }
      g.items.push({ req, key, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // After the microtasks that are running: a whole expansion level is in by then.
        process.nextTick(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const groups = this.groups;
    this.groups = [];
    if (this.reprobeAt !== 0 && Date.now() >= this.reprobeAt) {
      this.reprobeAt = 0;
      this.support = undefined;
    }
    if (!this.support) {
      const p = this.probe();
      this.support = p;
      void p.then((sup) => { if (!sup && this.support === p) this.reprobeAt = Date.now() + REPROBE_MS; });
    }
    void this.support.then(
      (sup) => { for (const g of groups) this.dispatch(g, sup); },
      () => { for (const g of groups) for (const it of g.items) this.single(it); },
    );
  }

  private dispatch(g: Group, sup: Support | undefined): void {
    if (!sup) {
      for (const it of g.items) this.single(it);
      return;
    }
    const byContext = new Map<string, Item[]>();
    for (const it of g.items) {
      const nc = contextOf(it.req.base, sup.contexts);
      if (nc === undefined) {
        this.single(it);
        continue;
      }
      let list = byContext.get(nc);
      if (!list) byContext.set(nc, (list = []));
      list.push(it);
    }
    for (const [nc, items] of byContext) {
      if (items.length === 1) {
        this.single(items[0]!);
        continue;
      }
      let chunk: Item[] = [];
      // The chunk's distinct DNs with their UTF-8 sizes.
      let dns = new Map<string, number>();
      let bytes = 0;
      for (const it of items) {
        const dn = it.req.base;
        if (dns.has(dn)) {
          chunk.push(it);
          continue;
        }
        const size = Buffer.byteLength(dn);
        if (chunk.length > 0 && (dns.size >= this.maxDns || bytes + size > this.maxBytes)) {
          this.batch(nc, g, chunk, dns);
          chunk = [];
          dns = new Map();
          bytes = 0;
        }
        chunk.push(it);
        dns.set(dn, size);
        bytes += size;
      }
      if (dns.size === 1) for (const it of chunk) this.single(it);
      else this.batch(nc, g, chunk, dns);
    }
  }

  /** The DN's own base search: Postfix's outcome for it, whatever it is. */
  private single(it: Item): void {
    this.host.searchOne(it.req).then(
      (entries) => { this.host.settling(it.key); it.resolve(entries); },
      (err: unknown) => { this.host.settling(it.key); it.reject(err); },
    );
  }

  private batch(base: string, g: Group, items: Item[], dns: Map<string, number>): void {
    const filter = new EntryDnFilter(dns);
    const req: SearchRequest = { base, scope: 'sub', filter: '(batch)', attributes: g.attributes, deref: 0, binary: g.binary };
    this.host.searchRaw(req, filter).then(
      ({ entries }) => {
        this.failures = 0;
        // Returned entries by their DN exactly as the server sent it; a DN seen twice is not used.
        const byDn = new Map<string, Entry | null>();
        for (const e of entries) byDn.set(e.dn, byDn.has(e.dn) ? null : e);
        let answered = 0;
        let fallback = 0;
        for (const it of items) {
          const e = byDn.get(it.req.base);
          if (e) {
            answered++;
            this.host.settling(it.key);
            it.resolve([e]);
          } else {
            fallback++;
            this.single(it);
          }
        }
        this.host.report(answered, fallback);
      },
      (err: unknown) => {
        const f = err instanceof LdapFailure ? err : undefined;
        if (++this.failures >= FAILURES_BEFORE_PAUSE) {
          this.failures = 0;
          this.pausedUntil = Date.now() + PAUSE_MS;
          log.warn(`LDAP batched member fetch failed ${FAILURES_BEFORE_PAUSE} times in a row (last: ${f?.message ?? String(err)}); members are fetched one by one for the next ${PAUSE_MS / 60_000} minutes`);
        }
        this.host.report(0, items.length);
        for (const it of items) this.single(it);
      },
    );
  }

  /**
   * Root DSE naming contexts, each kept if a base search of it by entryDN finds it. Any failure
   * means no support (for now: a later connection to another server probes again).
   */
  private async probe(): Promise<Support | undefined> {
    let server = '';
    let contexts: string[];
    try {
      const r = await this.host.searchRaw(
        { base: '', scope: 'base', filter: '(objectClass=*)', attributes: ['namingContexts'], deref: 0 },
        new PresenceFilter({ attribute: 'objectClass' }),
      );
      server = r.server;
      contexts = valuesOf(r.entries[0], 'namingContexts').slice(0, MAX_CONTEXTS);
    } catch (err) {
      log.info(`LDAP batched member fetch off: root DSE not readable (${err instanceof Error ? err.message : String(err)})`);
      return undefined;
    }
    const usable: Support['contexts'] = [];
    for (const nc of contexts) {
      if (nc === '') continue;
      try {
        const filter = new EntryDnFilter(new Map([[nc, Buffer.byteLength(nc)]]));
        const r = await this.host.searchRaw({ base: nc, scope: 'base', filter: '(probe)', attributes: ['1.1'], deref: 0 }, filter);
        if (r.entries.length === 1) usable.push({ dn: nc, lower: nc.replace(/[A-Z]+/g, (m) => m.toLowerCase()) });
      } catch {
        /* this context cannot be searched by entryDN */
      }
    }
    if (usable.length === 0) {
      log.info(`LDAP batched member fetch off for ${server}: no naming context answers an entryDN search`);
      return undefined;
    }
    usable.sort((a, b) => b.lower.length - a.lower.length);
    log.info(`LDAP batched member fetch on for ${server}: ${usable.map((c) => c.dn).join(', ')}`);
    return { server, contexts: usable };
  }
}

const OCTET_STRING = 0x04;
const OBJECT_CLASS_PRESENT = new PresenceFilter({ attribute: 'objectClass' });

/**
 * `(&(objectClass=*)(|(entryDN=dn1)(entryDN=dn2)…))`, written straight from the DN strings (their
 * UTF-8 bytes are the assertion values; nothing to escape). The OR is BER-encoded here into one
 * Buffer (ldapts's writer would grow, shift and copy per item). ldapts JSON-serialises every
 * request for a debug line whether debugging is on or not; toJSON keeps that from walking it.
 */
export class EntryDnFilter extends Filter {
  type = SearchFilter.and;

  /** DNs with their UTF-8 sizes. */
  constructor(private readonly dns: Map<string, number>) {
    super();
  }

  override writeFilter(writer: BerWriter): void {
    OBJECT_CLASS_PRESENT.write(writer);
    writer.writeBuffer(this.orContents(), SearchFilter.or);
  }

  /** The OR's items: [a3 len [04 07 "entryDN"] [04 len dn]] each. */
  private orContents(): Buffer {
    let total = 0;
    for (const size of this.dns.values()) {
      const content = 2 + ENTRY_DN.length + 1 + berLengthSize(size) + size;
      total += 1 + berLengthSize(content) + content;
    }
    const buf = Buffer.allocUnsafe(total);
    let at = 0;
    for (const [dn, size] of this.dns) {
      const content = 2 + ENTRY_DN.length + 1 + berLengthSize(size) + size;
      buf[at++] = SearchFilter.equalityMatch;
      at = putBerLength(buf, at, content);
      buf[at++] = OCTET_STRING;
      buf[at++] = ENTRY_DN.length;
      at += ENTRY_DN.copy(buf, at);
      buf[at++] = OCTET_STRING;
      at = putBerLength(buf, at, size);
      at += buf.write(dn, at, size, 'utf8');
    }
    return buf;
  }

  override toString(): string {
    return `(&(objectClass=*)(|${[...this.dns.keys()].map((d) => `(entryDN=${d})`).join('')}))`;
  }

  toJSON(): string {
    return `(&(objectClass=*)(|(entryDN=…) × ${this.dns.size}))`;
  }
}

const ENTRY_DN = Buffer.from('entryDN', 'latin1');

/** Bytes of a BER definite length. */
function berLengthSize(n: number): number {
  return n < 0x80 ? 1 : n <= 0xff ? 2 : n <= 0xffff ? 3 : 4;
}

function putBerLength(buf: Buffer, at: number, n: number): number {
  if (n < 0x80) {
    buf[at++] = n;
  } else if (n <= 0xff) {
    buf[at++] = 0x81;
    buf[at++] = n;
  } else if (n <= 0xffff) {
    buf[at++] = 0x82;
    buf[at++] = n >> 8;
    buf[at++] = n & 0xff;
  } else {
    buf[at++] = 0x83;
    buf[at++] = (n >> 16) & 0xff;
    buf[at++] = (n >> 8) & 0xff;
    buf[at++] = n & 0xff;
  }
  return at;
}

/**
 * The naming context a DN seems to lie under: the longest one that is a case-insensitive suffix
 * at an RDN boundary. Only a guess at where to search: a wrong guess finds no exact match and
 * the DN gets its own base search.
 */
function contextOf(dn: string, contexts: Support['contexts']): string | undefined {
  for (const c of contexts) {
    const at = dn.length - c.lower.length;
    if (at < 0 || (at > 0 && dn.charCodeAt(at - 1) !== 0x2c)) continue;
    if (endsWithFolded(dn, at, c.lower)) return c.dn;
  }
  return undefined;
}

/** dn from `at` on equals `lower` with ASCII letters folded (lower is already lower case). */
function endsWithFolded(dn: string, at: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let ch = dn.charCodeAt(at + i);
    if (ch >= 0x41 && ch <= 0x5a) ch += 0x20;
    if (ch !== lower.charCodeAt(i)) return false;
  }
  return true;
}

function valuesOf(entry: Entry | undefined, attr: string): string[] {
  if (!entry) return [];
  for (const k of Object.keys(entry)) {
    if (k.toLowerCase() !== attr.toLowerCase()) continue;
    const v = entry[k];
    const list = Array.isArray(v) ? v : [v];
    return list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
  }
  return [];
}
