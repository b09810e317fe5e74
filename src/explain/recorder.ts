/**
 * A LookupTrace that records one LdapMap.lookup() as a tree.
 *
 * Nested searches run concurrently, so events of different searches interleave in any order.
 * The tree is therefore built by ids, never by event order: a search hangs under the value
 * whose 'followed' event named it as child (falling back to its parent search), an entry under
 * its search id, a value under the current entry of its search id. Only events that LdapMap
 * emits synchronously one after the other are attributed by adjacency: a limit to the value,
 * entry or search just reported, a loop to the entry being walked.
 */
import type { MapConfig } from '../config/map-config.js';
import type { LookupResult } from '../contracts/result.js';
import type { AttrClass, FlagOrigin, LookupTrace, SearchFailure, SearchSpec, ValueAction } from '../contracts/trace.js';
import type { Templates } from '../template/templates.js';
import type {
  EntryNode,
  LimitHit,
  LookupExplanation,
  SearchNode,
  ValueNode,
} from './types.js';
import { answerInfo, explainEntries, origins, searchFate, valueWhy } from './why.js';

interface SearchState {
  node: SearchNode;
  failure?: SearchFailure;
  done: boolean;
}


export class LookupRecorder {
  readonly trace: LookupTrace;
  private readonly searches = new Map<number, SearchState>();
  /** 'followed' values waiting for their search event, by child id. */
  private readonly followedBy = new Map<number, ValueNode>();
  private top?: SearchNode;
  private readonly orphans: SearchNode[] = [];
  private rawKey = Buffer.alloc(0);
  private folded: string | null = null;
  private domain?: { domain: string | null; matched: boolean };
  private suppressed?: string;
  private loop?: string[];
  private readonly limitHits: LimitHit[] = [];
  private appended = 0;
  /** Last things reported, for the synchronous limit/loop events that carry no id. */
  private lastSearch?: SearchNode;
  private lastEntry?: EntryNode;
  private lastValue?: ValueNode;
  private answered = false;
  private result?: LookupResult;
  private readonly started = performance.now();
  private elapsed = 0;
  private waiters: (() => void)[] = [];

  constructor(
    readonly role: LookupExplanation['role'],
    private readonly config: MapConfig,
    private readonly templates: Templates,
  ) {
    this.trace = {
      key: (raw, folded) => {
        this.rawKey = Buffer.from(raw);
        this.folded = folded ?? null;
      },
      domain: (domain, matched) => {
        this.domain = { domain: domain ?? null, matched };
      },
      suppressed: (reason) => {
        this.suppressed = reason;
      },
      search: (id, parent, req, depth, via) => this.onSearch(id, parent, req, depth, via),
      searchDone: (id, outcome, ms) => this.onSearchDone(id, outcome, ms),
      entry: (id, dn, terminal, nonLeaf) => this.onEntry(id, dn, terminal, nonLeaf),
      value: (id, dn, attr, cls, value, action, child, why) => this.onValue(id, dn, attr, cls, value, action, child, why),
      limit: (kind, detail) => this.onLimit(kind, detail),
      loop: (path) => {
        this.loop = path;
        if (this.lastEntry) this.lastEntry.loop = path;
      },
      answer: (result) => this.finish(result),
    };
  }

  /** The lookup returned: later events are marked as happening after the answer. */
  finish(result: LookupResult): void {
    this.result = result;
    this.answered = true;
    this.elapsed = performance.now() - this.started;
    this.wake();
  }

  /** Searches started but not finished yet (they still run after a failure decided the answer). */
  get pending(): number {
    let n = 0;
    for (const s of this.searches.values()) if (!s.done) n++;
    return n;
  }

  /** Resolves when every started search has finished, or after `ms`. */
  settle(ms: number): Promise<void> {
    if (this.answered && this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const check = () => {
        if (this.answered && this.pending === 0) done();
      };
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.waiters.push(check);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private onSearch(id: number, parent: number | undefined, req: SearchSpec, depth: number, via?: { dn: string; attr: string; value: string }): void {
    const node: SearchNode = {
      id,
      depth,
      base: req.base,
      scope: req.scope,
      filter: req.filter,
      attributes: [...req.attributes],
      deref: req.deref,
      outcome: 'pending',
      fate: 'no answer yet',
      entries: [],
      limits: [],
    };
    if (parent !== undefined) node.parent = parent;
    if (via) node.via = { ...via };
    if (this.answered) node.afterAnswer = true;
    this.searches.set(id, { node, done: false });
    if (parent === undefined) {
      this.top = node;
      return;
    }
    const value = this.followedBy.get(id);
    if (value) {
      value.search = node;
      this.followedBy.delete(id);
    } else {
      this.orphans.push(node);
    }
  }

  private onSearchDone(id: number, outcome: { entries: number } | { failure: SearchFailure }, ms: number): void {
    const s = this.searches.get(id);
    if (!s) return;
    s.done = true;
    const n = s.node;
    n.ms = Math.round(ms * 100) / 100;
    if (this.answered) n.afterAnswer = true;
    if ('entries' in outcome) {
      n.outcome = 'entries';
      n.entryCount = outcome.entries;
    } else {
      s.failure = outcome.failure;
      n.outcome = outcome.failure.kind === 'noSuchObject' ? 'noSuchObject' : 'failed';
      if (outcome.failure.code !== undefined) n.code = outcome.failure.code;
      n.message = outcome.failure.message;
      if (outcome.failure.server) n.server = outcome.failure.server;
    }
    this.lastSearch = n;
    this.lastEntry = undefined;
    this.lastValue = undefined;
    this.wake();
  }

  private onEntry(id: number, dn: string, terminal: FlagOrigin, nonLeaf: FlagOrigin): void {
    const s = this.searches.get(id);
    if (!s) return;
    const e: EntryNode = { dn, terminal: terminal !== 'no', leaf: nonLeaf === 'no', terminalWhy: '', leafWhy: '', values: [], limits: [] };
    origins.set(e, { terminal, nonLeaf });
    s.node.entries.push(e);
    this.lastSearch = s.node;
    this.lastEntry = e;
    this.lastValue = undefined;
  }

  private onValue(id: number, dn: string, attr: string, cls: AttrClass, raw: Buffer, action: ValueAction, child?: number, skipWhy?: string): void {
    const s = this.searches.get(id);
    if (!s) return;
    // Entries of one search are walked synchronously, so its last entry is the one being walked.
    let entry = s.node.entries[s.node.entries.length - 1];
    if (!entry || entry.dn !== dn) {
      entry = { dn, terminal: false, leaf: true, terminalWhy: '', leafWhy: '', values: [], limits: [] };
      s.node.entries.push(entry);
    }
    const v: ValueNode = { attr, class: cls, value: raw.toString('utf8'), action, why: '', limits: [] };
    if (action === 'appended') {
      v.count = ++this.appended;
      if (!this.templates.resultIsPlain && this.folded !== null) {
        const out = this.templates.expandResult(raw, this.folded);
        if (out !== undefined) v.output = out.toString('utf8');
      }
    }
    if (action !== 'appended') v.why = valueWhy(action, cls, child, skipWhy);
    if (child !== undefined) {
      v.child = child;
      this.followedBy.set(child, v);
    }
    entry.values.push(v);
    this.lastSearch = s.node;
    this.lastEntry = entry;
    this.lastValue = v;
  }

  private onLimit(kind: LimitHit['kind'], detail: string): void {
    const hit: LimitHit = { kind, detail };
    this.limitHits.push(hit);
    // LdapMap reports a limit synchronously right after what hit it: the appended value
    // (expansion), the entry being walked (recursion), the search just finished (size).
    if (kind === 'expansion' && this.lastValue) {
      this.lastValue.limits.push(hit);
      this.lastValue.overLimit = true;
    }
    else if (kind === 'recursion' && this.lastEntry) this.lastEntry.limits.push(hit);
    else if (kind === 'size' && this.lastSearch) this.lastSearch.limits.push(hit);
  }

  /** Assigns servers, explains every entry and search, and returns the finished tree. */
  build(serversUsed: string[], dynamicBase: boolean): LookupExplanation {
    const result = this.result ?? { kind: 'temp', reason: 'the lookup had not finished when explain gave up waiting' } as LookupResult;
    const key = this.rawKey.toString('utf8');
    const out: LookupExplanation = {
      key,
      role: this.role,
      folded: this.folded,
      orphans: this.orphans,
      limits: this.limitSummary(),
      result: answerInfo(result),
      searches: this.searches.size,
      elapsedMs: Math.round(this.elapsed * 100) / 100,
    };
    if (this.folded === null) out.foldNote = this.rawKey.length === 0 ? 'empty key: Postfix never looks it up; not found' : 'key is not valid UTF-8: not found without a search';
    if (this.domain) {
      out.domain = {
        ...this.domain,
        list: (this.config.domain?.items ?? []).map((i) => (i.negate ? `!${i.name}` : i.name)),
      };
    }
    if (this.suppressed !== undefined) out.suppressed = this.suppressed;
    if (this.loop) out.loop = this.loop;
    if (this.top && this.folded !== null) {
      out.expansions = {
        searchBase: { template: this.config.searchBase, value: this.top.base, substitutions: this.templates.describe('search_base', this.folded), escaping: 'dn' },
        queryFilter: { template: this.config.queryFilter, value: this.top.filter, substitutions: this.templates.describe('query_filter', this.folded), escaping: 'filter' },
      };
    }
    const failed = result.kind !== 'found' && result.kind !== 'notfound';
    for (const s of this.searches.values()) {
      const n = s.node;
      if (!n.server) {
        if (serversUsed.length === 1) n.server = serversUsed[0];
        else if (serversUsed.length > 1) n.servers = [...serversUsed];
      }
      n.fate = searchFate(n, dynamicBase, failed);
      explainEntries(n, this.config);
    }
    this.explainAppended(result.kind === 'found');
    if (this.top) out.search = this.top;
    if (!this.top && this.suppressed === undefined && this.folded !== null && (!this.domain || this.domain.matched) && failed) {
      // dict_ldap connects before it expands the templates: nothing was searched.
      out.connectFailure = out.result.reason ?? result.kind;
    }
    return out;
  }

  /**
   * Says, for every appended value, where it went: its place in the answer (walked in output
   * order: nested results inlined where their special value stands), and its place in the
   * expansion_limit count (the order the concurrent walk reached it).
   */
  private explainAppended(found: boolean): void {
    const limit = this.config.expansionLimit;
    let position = 0;
    const visit = (n: SearchNode | undefined): void => {
      if (!n) return;
      for (const e of n.entries) {
        for (const v of e.values) {
          if (v.action === 'appended') {
            const counted = limit > 0 ? `value ${v.count} of expansion_limit ${limit}` : `value ${v.count}`;
            if (v.overLimit) {
              v.why = `over the limit: counted as ${counted}, not appended`;
            } else if (found) {
              v.position = ++position;
              v.why = limit > 0 ? `appended as item ${v.position} of the answer (${counted})` : `appended as item ${v.position} of the answer`;
            } else {
              v.why = `appended (${counted}), then dropped with the whole result: the lookup failed`;
            }
          }
          visit(v.search);
        }
      }
    };
    visit(this.top);
  }

  private limitSummary(): LookupExplanation['limits'] {
    let deepest = 0;
    let largest = 0;
    for (const s of this.searches.values()) {
      deepest = Math.max(deepest, s.node.depth);
      largest = Math.max(largest, s.node.entryCount ?? 0);
    }
    const exceeded = (k: LimitHit['kind']) => this.limitHits.find((h) => h.kind === k)?.detail;
    const c = this.config;
    const sum: LookupExplanation['limits'] = {
      recursion: { limit: c.recursionLimit, deepest },
      expansion: { limit: c.expansionLimit, values: this.appended },
      size: { limit: c.sizeLimit, largest },
    };
    const r = exceeded('recursion');
    if (r) sum.recursion.exceeded = r;
    const e = exceeded('expansion');
    if (e) sum.expansion.exceeded = e;
    const z = exceeded('size');
    if (z) sum.size.exceeded = z;
    return sum;
  }
}
