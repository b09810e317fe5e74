import type { Entry } from 'ldapts';
import { connectServer, withDeadline, type ConnectionSettings, type OpenConnection, type ServerTarget } from './connect.js';
import { LDAP_REFERRAL as REFERRAL, LdapFailure, toLdapFailure } from './errors.js';
import { referenceUrls } from './ldapts-fixes.js';
import { parseUrlParts } from './url.js';
import type { Scope } from './search-request.js';

/**
 * chase_referrals = yes, as libldap does it for dict_ldap (LDAP_OPT_REFERRALS on, no rebind
 * procedure): a referral result (code 10) and search result references are followed by
 * re-sending the same search — same filter, same attributes — with the DN of the URL and the
 * scope of the URL, or else the original scope for a referral result and, for a reference, the
 * scope the search implies (base and one level → base, subtree → subtree). A referral to the
 * server that answered goes over the map's own (bound) connection; any other server is asked
 * anonymously, on a connection of its own (TLS only for ldaps:// URLs).
 *
 * What libldap does and we do too: the first URL of a referral that can be sent to is used, the
 * others are alternatives; a URL that cannot be reached is skipped; a (server, DN) already asked
 * within the same lookup search is a loop and skipped; the first error of a followed reference
 * becomes the result of the whole search (a missing DN behind a reference is noSuchObject for
 * the search). A URL naming the host:port (and scheme) of the map's own server goes over the
 * map's bound connection, any other over an anonymous connection of its own, reused for every
 * later URL naming it (libldap's find_connection).
 *
 * Search references behind search references are followed (Active Directory: the domain root
 * refers to CN=Configuration, whose search refers to CN=Schema), and so are search references
 * met by the search a referral result led to (measured with postmap: to the map's own server,
 * to the referred server again, to a third one; a dead one is skipped, a missing DN is the
 * search's error): libldap hangs every followed search on the original request and counts
 * them there; a request whose count has reached ld_refhoplimit (5) drops the references it
 * receives, silently. A referral result (code 10) met by a search that was itself sent
 * because of a referral or reference makes libldap wait until dict_ldap's timeout, every time
 * (measured with postmap: home -> remote -> remote, home -> remote -> home, a loop of results,
 * reference -> referral); we answer the same temporary error at once.
 * Where libldap's order depends on which server answers first (several references), ours is
 * deterministic: the search's own entries, then each followed reference's entries in the order
 * the references came.
 *
 * Time: libldap follows a reference while it waits for the search's result, connecting to the
 * referred server synchronously (up to the network timeout, which dict_ldap sets to `timeout`),
 * and all of it counts against the search's own `timeout`: once that is spent the search ends
 * with LDAP_TIMEOUT, a temporary error, even if the rest of the answer was already there.
 * Measured with postmap on a Samba DC behind a Windows-style reference proxy: a
 * DomainDnsZones host name resolving to an address that drops packets makes every lookup from
 * the domain root "Search error -5: Timed out" after `timeout`, while one that does not resolve
 * (or refuses the connection) is skipped at once. So following referrals has one budget of
 * `timeout` seconds here, and a URL whose connection attempt outlives it is not skipped.
 */

/**
 * How many referral-result hops libldap (OpenLDAP 2.5, the synchronous search dict_ldap does)
 * really follows: one (see above). Search references are not bound by it.
 */
export const REFERRAL_HOP_LIMIT = 1;

/** libldap's LDAP_OPT_REFHOPLIMIT default, compared with a request's lr_parentcnt. */
export const LIBLDAP_REFHOPLIMIT = 5;

// ---------------------------------------------------------------------------------------
// URLs

export interface ReferralTarget {
  server: ServerTarget;
  /** scheme://host:port, lower case: which connection a referral goes to. */
  key: string;
  /** The URL's DN, when it has one. */
  dn?: string;
  scope?: Scope;
}

/**
 * An LDAP URL of a referral, or undefined when it will not be followed: not ldap:// or
 * ldaps://, bad syntax (libldap's rules, url.ts), a critical extension, a port out of range.
 * An empty DN counts as none (libldap parses referrals with LDAP_PVT_URL_PARSE_NOEMPTY_DN).
 */
export function parseReferralUrl(url: string): ReferralTarget | undefined {
  let p;
  try {
    p = parseUrlParts(url);
  } catch {
    return undefined;
  }
  if (p.scheme !== 'ldap' && p.scheme !== 'ldaps') return undefined;
  if (p.extensions.some((e) => e.startsWith('!'))) return undefined;
  const scheme = p.scheme;
  const port = p.port ?? (scheme === 'ldaps' ? 636 : 389);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  const host = p.host === '' ? 'localhost' : p.host;
  const target: ReferralTarget = {
    server: { url: `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}/`, scheme, host, port },
    key: `${scheme}://${host.toLowerCase()}:${port}`,
  };
  if (p.dn !== undefined && p.dn !== '') target.dn = p.dn;
  if (p.scope !== undefined) target.scope = p.scope;
  return target;
}

/** scheme://host:port of a configured server, comparable with ReferralTarget.key. */
export function serverKey(server: ServerTarget): string | undefined {
  if (server.scheme === 'ldapi') return undefined;
  const port = server.port ?? (server.scheme === 'ldaps' ? 636 : 389);
  return `${server.scheme}://${(server.host ?? 'localhost').toLowerCase()}:${port}`;
}

// ---------------------------------------------------------------------------------------
// Following them

export interface ChaseRequest {
  base: string;
  scope: Scope;
}

/** What one search came back with, before its referrals are followed. */
export type SearchOutcome =
  | { kind: 'entries'; entries: Entry[]; references: string[]; serverKey?: string }
  | { kind: 'referral'; failure: LdapFailure; urls: string[]; serverKey?: string };

export interface ChaserHooks {
  /** The same search on the map's own connection (bound), referrals not followed. */
  searchHome(req: ChaseRequest): Promise<SearchOutcome>;
  /** The same search on a connection to another server (anonymous), referrals not followed. */
  searchOn(conn: OpenConnection, req: ChaseRequest): Promise<SearchOutcome>;
}

interface Walk {
  /** scheme://host:port + NUL + DN of every search sent for this lookup search. */
  asked: Set<string>;
  /** Errors behind references; the first is the search's result. */
  errors: LdapFailure[];
  hooks: ChaserHooks;
  /** scheme://host:port of the map's own (bound) connection. */
  homeKey?: string;
  /** Searches sent because of referrals so far (libldap: the original request's lr_parentcnt). */
  sent: number;
}

/** A URL that cannot be sent to: libldap tries the next one of the same referral. */
class Unreachable extends Error {}

export class ReferralChaser {
  /** Connections to servers named in referrals, by ReferralTarget.key. */
  private readonly conns = new Map<string, Promise<OpenConnection>>();
  private closed = false;

  constructor(private readonly settings: ConnectionSettings) {}

  /**
   * The entries of a search whose first answer was `first`, every referral in it followed.
   * Throws LdapFailure as the search's result would be: the referral itself when no URL could
   * be followed, or the first error met behind a reference.
   */
  async complete(req: ChaseRequest, first: SearchOutcome, hooks: ChaserHooks): Promise<Entry[]> {
    const asked = new Set<string>();
    if (first.serverKey !== undefined) asked.add(`${first.serverKey}\u0000${req.base}`);
    const errors: LdapFailure[] = [];
    const walking = this.resolve(req, first, 0, 0, { asked, errors, hooks, homeKey: first.serverKey, sent: 0 });
    const budgetMs = (this.settings.timeoutSec ?? 0) * 1000;
    const entries = budgetMs > 0
      ? await withDeadline(walking, budgetMs, "following referrals (libldap's search timeout)")
      : await walking;
    if (errors.length > 0) throw errors[0];
    return entries;
  }

  /**
   * `ordinal` is libldap's lr_parentcnt of the request that got `outcome` (0 for the lookup's
   * own search).
   */
  private async resolve(req: ChaseRequest, outcome: SearchOutcome, depth: number, ordinal: number, walk: Walk): Promise<Entry[]> {
    const { asked, errors } = walk;
    if (outcome.kind === 'referral') {
      // The referral's answer replaces this search's answer.
      if (depth >= REFERRAL_HOP_LIMIT) throw hopLimit(outcome.failure);
      for (const url of outcome.urls) {
        const t = parseReferralUrl(url);
        if (!t) continue;
        const next: ChaseRequest = { base: t.dn ?? req.base, scope: t.scope ?? req.scope };
        const mark = `${t.key}\u0000${next.base}`;
        if (next.base !== '' && asked.has(mark)) continue; // libldap: LDAP_CLIENT_LOOP
        let answer: SearchOutcome;
        try {
          answer = await this.send(t, next, walk);
        } catch (err) {
          if (err instanceof Unreachable) continue;
          throw err;
        }
        asked.add(mark);
        return this.resolve(next, answer, depth + 1, ++walk.sent, walk);
      }
      throw outcome.failure;
    }
    if (outcome.references.length === 0) return outcome.entries;
    // References are followed alike whether this search was the lookup's own, sent for a
    // reference or sent for a referral result (libldap hangs them all on the original request).
    const entries = [...outcome.entries];
    // libldap chases each reference as it arrives, before the searches it sent answer: send
    // them all first (numbering them as libldap does), then follow what they met.
    const followed: { next: ChaseRequest; answer: SearchOutcome; ordinal: number }[] = [];
    for (const reference of outcome.references) {
      // The lookup's own search counts every search sent so far; a referred one, its own number.
      if ((depth === 0 ? walk.sent : ordinal) >= LIBLDAP_REFHOPLIMIT) continue; // dropped by libldap, silently
      for (const url of referenceUrls(reference)) {
        const t = parseReferralUrl(url);
        if (!t) continue;
        const next: ChaseRequest = {
          // A reference without a DN means the root, not the original base.
          base: t.dn ?? '',
          scope: t.scope ?? (req.scope === 'sub' || req.scope === 'children' ? 'sub' : 'base'),
        };
        const mark = `${t.key}\u0000${next.base}`;
        if (next.base !== '' && asked.has(mark)) continue;
        let answer: SearchOutcome;
        try {
          answer = await this.send(t, next, walk);
        } catch (err) {
          if (err instanceof Unreachable) continue;
          asked.add(mark);
          walk.sent++;
          errors.push(toLdapFailure(err));
          break;
        }
        asked.add(mark);
        followed.push({ next, answer, ordinal: ++walk.sent });
        break; // followed: the other URLs of this reference are alternatives
      }
    }
    for (const f of followed) {
      try {
        entries.push(...(await this.resolve(f.next, f.answer, depth + 1, f.ordinal, walk)));
      } catch (err) {
        errors.push(toLdapFailure(err));
      }
    }
    return entries;
  }

  /** Sends the search where the referral points; Unreachable when no connection can be had. */
  private async send(t: ReferralTarget, req: ChaseRequest, walk: Walk): Promise<SearchOutcome> {
    const hooks = walk.hooks;
    // libldap's find_connection: the map's own connection when scheme, host and port match it,
    // whichever server's answer named the URL.
    if (walk.homeKey !== undefined && t.key === walk.homeKey) return { ...(await hooks.searchHome(req)), serverKey: t.key };
    let conn: OpenConnection;
    try {
      conn = await this.connection(t);
    } catch {
      throw new Unreachable();
    }
    try {
      return { ...(await hooks.searchOn(conn, req)), serverKey: t.key };
    } catch (err) {
      const f = toLdapFailure(err);
      if (f.kind === 'down' || f.kind === 'timeout') conn.socket.destroy(); // its 'close' handler forgets it
      throw f;
    }
  }

  private connection(t: ReferralTarget): Promise<OpenConnection> {
    if (this.closed) return Promise.reject(new LdapFailure('down', 'pool closed'));
    let p = this.conns.get(t.key);
    if (p === undefined) {
      const opening = connectServer(t.server, { ...this.settings, servers: [t.server], bind: 'none', bindDn: '', bindPw: '', startTls: false });
      p = opening;
      this.conns.set(t.key, opening);
      const drop = (): void => { if (this.conns.get(t.key) === opening) this.conns.delete(t.key); };
      opening.then((conn) => { conn.socket.once('close', drop); if (this.closed) conn.socket.destroy(); }, drop);
    }
    return p;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.conns.values()];
    this.conns.clear();
    await Promise.all(all.map((p) => p.then((c) => { c.socket.destroy(); }, () => undefined)));
  }
}

function hopLimit(referral: LdapFailure): LdapFailure {
  return new LdapFailure(
    'error',
    `a referral behind a referral: Postfix's LDAP library waits for the timeout here, so this is a temporary error (${referral.message})`,
    referral.code ?? REFERRAL,
    referral.server,
  );
}
