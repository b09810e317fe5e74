/**
 * The explain report: one JSON-serialisable tree that says how a lookup was (or would be)
 * answered. `ldap-socketmap explain --json` prints it, GET /explain on the admin listener
 * returns it, and render.ts turns it into the text tree.
 *
 * Everything in it comes from the real code path: the LookupTrace events of LdapMap.lookup(),
 * the result of the same map chain the daemon serves (fallback emulation, request deadline),
 * the reply encoders of the two wire protocols and, from the daemon, its cache.
 */
import type { AttrClass, ValueAction } from '../contracts/trace.js';

export const REPORT_VERSION = 1;

export interface ExplainReport {
  version: typeof REPORT_VERSION;
  map: string;
  /** The map's ldap_table(5) file. */
  file: string;
  /** cli: `explain` asked LDAP itself (no cache); daemon: the running daemon, cache included. */
  source: 'cli' | 'daemon';
  /** The key exactly as received (UTF-8 text of its bytes) and its length in bytes. */
  key: string;
  keyBytes: number;
  settings: MapSummary;
  /**
   * One entry per key the LDAP map was asked: just the key, or with `fallback = address`
   * also the key without its extension and the `@domain` catch-all, each only when the one
   * before answered "not found".
   */
  lookups: LookupExplanation[];
  /** What LDAP answered just now through the map chain (no cache). */
  ldapAnswer: AnswerInfo;
  /** What a client would be answered: ldapAnswer (cli), or the daemon's answer with its cache. */
  answer: AnswerInfo & { source: 'ldap' | 'cache' | 'stale' };
  /** The daemon's cache for this key, right now (daemon only). */
  cache?: CacheInfo;
  /** `answer` exactly as it goes on the wire. */
  wire: WireInfo;
  /** LDAP servers the searches went to; connects that failed on the way. */
  servers: { used: string[]; failedConnects: string[] };
  elapsedMs: number;
  notes: string[];
}

export interface MapSummary {
  searchBase: string;
  queryFilter: string;
  resultFormat: string;
  scope: 'sub' | 'one' | 'base';
  domain: string[] | null;
  terminalResultAttribute: string[];
  leafResultAttribute: string[];
  resultAttribute: string[];
  specialResultAttribute: string[];
  recursionLimit: number;
  expansionLimit: number;
  sizeLimit: number;
  timeout: number;
  smtputf8: boolean;
  loopHandling: 'postfix' | 'expand_once';
  fallback: 'none' | 'address';
  recipientDelimiter: string;
  propagateExtension: boolean;
  requestTimeout: number;
}

export interface AnswerInfo {
  kind: 'found' | 'notfound' | 'temp' | 'timeout' | 'perm';
  /** found: the value (UTF-8 text of its bytes). */
  value?: string;
  valueBytes?: number;
  /** temp / timeout / perm: why. */
  reason?: string;
}

export interface LookupExplanation {
  /** The key this lookup was given. */
  key: string;
  /** full key, key without extension, catch-all @domain (fallback = address). */
  role: 'key' | 'without extension' | 'catch-all @domain';
  /** The key after folding, or null when it is not searched at all (empty, not UTF-8). */
  folded: string | null;
  foldNote?: string;
  /** Only when the map has a `domain` list. */
  domain?: { domain: string | null; matched: boolean; list: string[] };
  /** Why no search was made, in words, when none was. */
  suppressed?: string;
  /** The connection to LDAP failed before the templates were expanded (nothing searched). */
  connectFailure?: string;
  expansions?: { searchBase: Expansion; queryFilter: Expansion };
  /** The top-level search with everything below it. */
  search?: SearchNode;
  /** Searches whose parent is unknown (never expected; kept rather than dropped). */
  orphans: SearchNode[];
  limits: LimitSummary;
  /** A detected loop: the DNs of the repeated search's path. */
  loop?: string[];
  result: AnswerInfo;
  searches: number;
  elapsedMs: number;
}

export interface Expansion {
  template: string;
  value: string;
  /** Each substituted code with its value before and after escaping. */
  substitutions: { code: string; raw: string; escaped: string }[];
  escaping: 'filter' | 'dn';
}

export interface SearchNode {
  id: number;
  parent?: number;
  depth: number;
  /** The special attribute value that caused this search (nested searches). */
  via?: { dn: string; attr: string; value: string };
  /** The server it went to; `servers` when that cannot be told apart. */
  server?: string;
  servers?: string[];
  base: string;
  scope: string;
  filter: string;
  attributes: string[];
  deref: number;
  ms?: number;
  outcome: 'entries' | 'noSuchObject' | 'failed' | 'pending';
  entryCount?: number;
  /** LDAP result code (or a negative client code) when the search failed. */
  code?: number;
  message?: string;
  /** What the outcome meant for the lookup, in words. */
  fate: string;
  entries: EntryNode[];
  limits: LimitHit[];
  /** The search finished after the answer was already decided (its result was not used). */
  afterAnswer?: boolean;
}

export interface EntryNode {
  dn: string;
  terminal: boolean;
  leaf: boolean;
  terminalWhy: string;
  leafWhy: string;
  values: ValueNode[];
  limits: LimitHit[];
  loop?: string[];
}

export interface ValueNode {
  attr: string;
  class: AttrClass;
  value: string;
  action: ValueAction;
  why: string;
  /** appended: the value after result_format, when it differs from the stored one. */
  output?: string;
  /** appended: this is the n-th value counted against expansion_limit (in walk order). */
  count?: number;
  /** appended: its place in the answer (1-based), when the lookup found something. */
  position?: number;
  /** appended: this value went over expansion_limit (counted, never appended). */
  overLimit?: boolean;
  /** followed: the nested search, inlined here. */
  search?: SearchNode;
  /** followed: the id of that search. */
  child?: number;
  limits: LimitHit[];
}

export interface LimitHit {
  kind: 'recursion' | 'expansion' | 'size';
  detail: string;
}

export interface LimitSummary {
  recursion: { limit: number; deepest: number; exceeded?: string };
  expansion: { limit: number; values: number; exceeded?: string };
  size: { limit: number; largest: number; exceeded?: string };
}

export interface CacheInfo {
  enabled: boolean;
  /** fresh: a lookup now is answered from the cache; stale: expired, kept for stale-if-error only. */
  state: 'fresh' | 'stale' | 'absent';
  cached?: AnswerInfo;
  ageMs?: number;
  /** fresh: time left; stale: how long ago it expired (negative). */
  expiresInMs?: number;
  /** How much longer a stale entry may be served while LDAP fails. */
  staleForMs?: number;
  /** A lookup of this key is running in the daemon right now (a new request would join it). */
  inFlight: boolean;
  /** A hit now would also start a background refresh. */
  refreshAhead?: boolean;
}

export interface WireInfo {
  socketmap: {
    /** First word of the reply payload: OK, NOTFOUND, TEMP, TIMEOUT or PERM. */
    word: string;
    /** The whole netstring frame as text (UTF-8), and exactly, in base64. */
    frame: string;
    frameBase64: string;
    frameBytes: number;
    payloadBytes: number;
    limit: number;
    fits: boolean;
    /** When the answer did not fit: the payload size it would have needed. */
    needed?: number;
  };
  tcpTable: {
    status: string;
    line: string;
    lineBase64: string;
    bytes: number;
    limit: number;
    fits: boolean;
    needed?: number;
  };
}
