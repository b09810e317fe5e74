import type { Entry } from 'ldapts';
import type { MapConfig } from '../config/map-config.js';
import { LdapFailure } from '../ldap/errors.js';
import type { LdapPool } from '../ldap/pool.js';
import { attributesInOrder } from '../ldap/ldapts-fixes.js';
import type { SearchRequest } from '../ldap/search-request.js';
import { isLdapUrl, LdapUrlError, parseLdapUrl } from '../ldap/url.js';
import { log, printable, RateLimitedLog } from '../log.js';
import { foldKey } from '../fold/key-fold.js';
import type { LookupContext, LookupMap } from '../contracts/map.js';
import { found, NOTFOUND, temp, timeout, type LookupResult } from '../contracts/result.js';
import type { LookupTrace, ValueAction } from '../contracts/trace.js';
import { compileTemplates, type Templates } from '../template/templates.js';
import { AttributeClasses, CLASS_NAME, Cls, valuesOf } from './attributes.js';

export interface LdapMapSettings {
  /** Fold non-ASCII keys with Unicode full case folding, as Postfix does with smtputf8_enable. */
  smtputf8: boolean;
  /** 'postfix': a cycle answers TEMP like Postfix's recursion limit; 'expand_once': each nested search runs once per lookup. */
  loopHandling: 'postfix' | 'expand_once';
  /** Member DNs fetched in batches where the server allows it (src/ldap/batch.ts); same answers. */
  batchMemberFetch?: boolean;
}

/** A lookup's failure, carried up to the caller once; every later result is discarded. */
class Abort extends Error {
  constructor(readonly result: LookupResult) {
    super('lookup aborted');
  }
}

/** Output of a walk: values in order, with nested expansions as placeholders until flattened. */
type Out = Buffer | Nested;

/** A nested search's place in its parent's output: `out` is set once it is walked (or failed). */
interface Nested {
  out: Out[] | undefined;
  settled: Promise<void>;
}

const NO_OUT: Out[] = [];

interface Ctx {
  key: string;
  appended: number;
  failure?: LookupResult;
  fail: (r: LookupResult) => void;
  failed: Promise<LookupResult>;
  expanded?: Set<string>;
  trace?: LookupTrace;
  nextSearch: number;
}

const COMMA = Buffer.from(',');

/** The filter of the search for a DN value (libldap sends `(objectclass=*)` for it). */
const DN_FILTER = '(objectclass=*)';

/**
 * Postfix's ldap_table(5) semantics over an LdapPool (spec §3–§6): key folding, domain list,
 * template expansion and suppression, the walk over entries × attributes × values in server
 * order with the sticky terminal/leaf flags, nested searches for special attribute values, the
 * three limits, and the mapping of every LDAP outcome onto found / notfound / temp.
 *
 * Nested searches run concurrently through the pool; the output keeps Postfix's order because
 * each special value is a placeholder in its parent's output list, flattened at the end.
 */
export class LdapMap implements LookupMap {
  readonly templates: Templates;
  /** Requested attribute list, in dict_ldap's order: terminal, leaf, result, special. */
  readonly attributes: string[];
  private readonly classes: AttributeClasses;
  private readonly rlog = new RateLimitedLog(60_000);
  /** Options of the nested searches (batching or not). */
  private readonly nestedOpts: { batch?: boolean } | undefined;
  /** `attributes` joined, for the ids of nested searches. */
  private readonly attrKey: string;
  /** The id of a DN value's search is `base\0` + DN + this. */
  private readonly dnIdTail: string;

  constructor(
    readonly name: string,
    readonly config: MapConfig,
    readonly pool: LdapPool,
    readonly settings: LdapMapSettings,
  ) {
    this.templates = compileTemplates({
      searchBase: config.searchBase,
      queryFilter: config.queryFilter,
      resultFormat: config.resultFormat,
    });
    this.classes = new AttributeClasses(config);
    this.attributes = this.classes.requested;
    this.nestedOpts = settings.batchMemberFetch === true ? { batch: true } : undefined;
    this.attrKey = this.attributes.join(',');
    this.dnIdTail = `\u0000${DN_FILTER}\u0000${this.attrKey}`;
  }

  async lookup(rawKey: Buffer, how?: LookupContext): Promise<LookupResult> {
    const trace = how?.trace;
    if (!trace?.answer) return this.answer(rawKey, trace);
    const result = await this.answer(rawKey, trace);
    trace.answer(result);
    return result;
  }

  private async answer(rawKey: Buffer, trace: LookupTrace | undefined): Promise<LookupResult> {
    // Postfix never looks up an empty key; a non-UTF-8 key is "not found" without a query.
    const key = rawKey.length === 0 ? undefined : foldKey(rawKey, this.settings.smtputf8);
    trace?.key?.(rawKey, key);
    if (key === undefined) return NOTFOUND;

    if (this.config.domain) {
      const at = key.lastIndexOf('@');
      const domain = at > 0 ? key.slice(at + 1) : undefined;
      const matched = domain !== undefined && this.config.domain.match(domain, this.settings.smtputf8);
      trace?.domain?.(domain, matched);
      if (!matched) return NOTFOUND;
    }

    // dict_ldap connects before expanding templates: a suppressed key still sees LDAP trouble.
    try {
      await this.pool.ensureConnected();
    } catch (err) {
      return this.failureResult(err, 'connect');
    }
    const suppressed = this.templates.suppressReason(key);
    if (suppressed !== undefined) {
      trace?.suppressed?.(suppressed);
      return NOTFOUND;
    }

    const req: SearchRequest = {
      base: this.templates.expandBase(key),
      scope: this.config.scope,
      filter: this.templates.expandFilter(key),
      attributes: this.attributes,
      deref: this.config.dereference,
      binary: true,
    };

    let resolveFailed!: (r: LookupResult) => void;
    const ctx: Ctx = {
      key,
      appended: 0,
      trace,
      nextSearch: 1,
      failed: new Promise((r) => { resolveFailed = r; }),
      fail: (r) => {
        if (ctx.failure) return;
        ctx.failure = r;
        resolveFailed(r);
      },
    };
    if (this.settings.loopHandling === 'expand_once') ctx.expanded = new Set();

    let entries: Entry[];
    const started = trace?.searchDone ? performance.now() : 0;
    trace?.search?.(0, undefined, req, 1);
    try {
      entries = await this.pool.search(req);
      trace?.searchDone?.(0, { entries: entries.length }, performance.now() - started);
    } catch (err) {
      if (trace && err instanceof LdapFailure) trace.searchDone?.(0, { failure: err }, performance.now() - started);
      if (err instanceof LdapFailure && err.kind === 'noSuchObject') {
        if (this.templates.dynamicBase) return NOTFOUND;
        this.rlog.emit('warn', 'base', `map ${this.name}: search base ${JSON.stringify(req.base)} not found`);
        return temp(`search base not found: ${req.base}`);
      }
      return this.failureResult(err, 'search');
    }

    try {
      this.checkSize(ctx, entries.length);
      const top = this.walk(ctx, entries, 1, [], 0);
      const values: Buffer[] = [];
      const done = this.flatten(top, 0, values, ctx);
      if (done) {
        const outcome = await Promise.race([done.then(() => undefined), ctx.failed]);
        if (outcome) return outcome;
      }
      if (ctx.failure) return ctx.failure;
      if (values.length === 0) return NOTFOUND;
      // A single value may be a view into a whole LDAP message: the answer gets its own copy.
      return found(values.length === 1 ? Buffer.from(values[0]!) : joinValues(values));
    } catch (err) {
      if (err instanceof Abort) return err.result;
      throw err;
    }
  }

  private failureResult(err: unknown, what: string): LookupResult {
    if (err instanceof Abort) return err.result;
    const f = err instanceof LdapFailure ? err : new LdapFailure('error', String(err));
    const reason = `${what}: ${f.message}`;
    this.rlog.emit('warn', `${what}:${f.kind}`, `map ${this.name}: LDAP ${reason}`);
    return f.kind === 'timeout' ? timeout(reason) : temp(reason);
  }

  private checkSize(ctx: Ctx, n: number): void {
    const limit = this.config.sizeLimit;
    if (limit > 0 && n > limit) {
      ctx.trace?.limit?.('size', `a search returned ${n} entries, size_limit is ${limit}`);
      throw new Abort(temp(`size limit ${limit} exceeded: ${n} entries`));
    }
  }

  /**
   * Collects the values depth-first from `out[from]` on, so they come out in Postfix's order.
   * Placeholders already walked are taken at once; the first one still waiting makes it return a
   * promise that goes on from there (undefined: all done without waiting).
   */
  private flatten(out: Out[], from: number, into: Buffer[], ctx: Ctx): Promise<void> | undefined {
    for (let i = from; i < out.length; i++) {
      if (ctx.failure) return undefined;
      const o = out[i]!;
      if (Buffer.isBuffer(o)) {
        into.push(o);
        continue;
      }
      if (o.out !== undefined) {
        const inner = this.flatten(o.out, 0, into, ctx);
        if (inner) return inner.then(() => this.flatten(out, i + 1, into, ctx));
        continue;
      }
      return o.settled.then(() => {
        const inner = this.flatten(o.out!, 0, into, ctx);
        return inner ? inner.then(() => this.flatten(out, i + 1, into, ctx)) : this.flatten(out, i + 1, into, ctx);
      });
    }
    return undefined;
  }

  private append(ctx: Ctx, out: Out[], value: Buffer, id: number, dn: string, attr: string, cls: Cls): void {
    const v = this.templates.expandResult(value, ctx.key);
    if (v === undefined) {
      ctx.trace?.value?.(id, dn, attr, CLASS_NAME[cls], value, 'skipped-empty', undefined, this.templates.skipReason(value));
      return;
    }
    ctx.appended++;
    ctx.trace?.value?.(id, dn, attr, CLASS_NAME[cls], value, 'appended');
    const limit = this.config.expansionLimit;
    if (limit > 0 && ctx.appended > limit) {
      ctx.trace?.limit?.('expansion', `value number ${ctx.appended}, expansion_limit is ${limit}`);
      throw new Abort(temp(`expansion limit ${limit} exceeded`));
    }
    out.push(v);
  }

  private skip(ctx: Ctx, id: number, dn: string, attr: string, cls: Cls, values: Buffer[], action: ValueAction): void {
    if (ctx.trace?.value) for (const v of values) ctx.trace.value(id, dn, attr, CLASS_NAME[cls], v, action);
  }

  /**
   * One search result, walked like dict_ldap_get_values: the terminal and leaf flags belong to
   * the whole result and are only ever overwritten by an entry that has the tested attributes,
   * so they carry over to later entries (spec §4.3, reproduced on purpose).
   */
  private walk(ctx: Ctx, entries: Entry[], depth: number, path: readonly string[], id: number): Out[] {
    const out: Out[] = [];
    let isTerminal = false;
    let isLeaf = true;
    const classes = this.classes;
    for (const entry of entries) {
      let ownTerminal = false;
      let ownNonLeaf = false;
      if (classes.makesTerminal(entry)) isTerminal = ownTerminal = true;
      if (!isTerminal && classes.makesNonLeaf(entry)) {
        isLeaf = false;
        ownNonLeaf = true;
      }
      const dn = entry.dn;
      ctx.trace?.entry?.(id, dn, isTerminal ? (ownTerminal ? 'own' : 'carried') : 'no', isLeaf ? 'no' : ownNonLeaf ? 'own' : 'carried');
      for (const [attr, raw] of attributesInOrder(entry)) {
        const cls = classes.classify(attr);
        if (cls === null) continue;
        const values = valuesOf(raw);
        if (values.length === 0) continue;
        if (isTerminal && cls !== Cls.Terminal) {
          this.skip(ctx, id, dn, attr, cls, values, 'skipped-terminal');
        } else if (!isLeaf && (cls === Cls.Terminal || cls === Cls.Leaf)) {
          // dict_ldap skips the first T+L attribute classes once the (sticky) leaf flag is off:
          // terminal values too, even in the entry that made the result terminal.
          this.skip(ctx, id, dn, attr, cls, values, 'skipped-leaf');
        } else if (cls !== Cls.Special) {
          for (const v of values) this.append(ctx, out, v, id, dn, attr, cls);
        } else if (depth < this.config.recursionLimit) {
          for (const v of values) {
            const child = this.nested(ctx, v, depth, path, dn, attr, id);
            if (child) out.push(child);
          }
        } else {
          ctx.trace?.limit?.('recursion', `${dn} at depth ${depth} has ${attr} values, recursion_limit is ${this.config.recursionLimit}`);
          throw new Abort(temp(`recursion limit ${this.config.recursionLimit} exceeded at ${dn}`));
        }
      }
    }
    return out;
  }

  /** Starts the nested search for one special value; undefined when nothing is to be searched. */
  private nested(ctx: Ctx, raw: Buffer, depth: number, path: readonly string[], fromDn: string, attr: string, parent: number): Nested | undefined {
    // dict_ldap hands the value on as a C string: a NUL byte ends it.
    const nul = raw.indexOf(0);
    const value = (nul >= 0 ? raw.subarray(0, nul) : raw).toString('utf8');
    let req: SearchRequest;
    if (isLdapUrl(value)) {
      let url;
      try {
        url = parseLdapUrl(value);
      } catch (err) {
        const why = err instanceof LdapUrlError ? err.message : String(err);
        ctx.trace?.value?.(parent, fromDn, attr, 'special', raw, 'malformed-url');
        throw new Abort(temp(`malformed LDAP URL ${JSON.stringify(value)} in ${fromDn}: ${why}`));
      }
      const attributes = url.attributes.length === 0 ? this.attributes : this.classes.intersect(url.attributes);
      // A URL asking only for attributes this map does not use is skipped without a search.
      if (attributes.length === 0) {
        ctx.trace?.value?.(parent, fromDn, attr, 'special', raw, 'skipped-url');
        return undefined;
      }
      req = { base: url.dn, scope: url.scope, filter: url.filter, attributes, deref: this.config.dereference, binary: true };
    } else {
      req = { base: value, scope: 'base', filter: DN_FILTER, attributes: this.attributes, deref: this.config.dereference, binary: true };
    }
    const id = req.filter === DN_FILTER && req.scope === 'base' && req.attributes === this.attributes
      ? 'base\u0000' + req.base + this.dnIdTail
      : `${req.scope}\u0000${req.base}\u0000${req.filter}\u0000${req.attributes.join(',')}`;
    if (ctx.expanded) {
      if (ctx.expanded.has(id)) {
        ctx.trace?.value?.(parent, fromDn, attr, 'special', raw, 'skipped-repeat');
        return undefined;
      }
      ctx.expanded.add(id);
    } else if (path.includes(id)) {
      // The same nested search on its own ancestor path repeats forever in Postfix, which answers
      // with a temporary error once recursion_limit is reached. Same answer, without the wait.
      const names = [...path.slice(path.indexOf(id)), id].map((p) => p.split('\u0000')[1]);
      this.rlog.emit('warn', `loop:${ctx.key}`, `map ${this.name}: loop in expansion of ${printable(ctx.key)}: ${names.join(' -> ')}`);
      ctx.trace?.loop?.(names as string[]);
      throw new Abort(temp(`expansion loop: ${names.join(' -> ')}`));
    }
    if (ctx.failure) return undefined;
    const childPath = [...path, id];
    const sid = ctx.nextSearch++;
    const trace = ctx.trace;
    const started = trace?.searchDone ? performance.now() : 0;
    trace?.value?.(parent, fromDn, attr, 'special', raw, 'followed', sid);
    trace?.search?.(sid, parent, req, depth + 1, { dn: fromDn, attr, value });
    const nested: Nested = { out: undefined, settled: undefined as unknown as Promise<void> };
    // Failures surface through ctx at once, not only when flattening reaches this placeholder.
    const failed = (err: unknown): void => {
      ctx.fail(err instanceof Abort ? err.result : this.failureResult(err, 'nested search'));
      nested.out = NO_OUT;
    };
    nested.settled = this.pool.search(req, this.nestedOpts).then(
      (entries) => {
        trace?.searchDone?.(sid, { entries: entries.length }, performance.now() - started);
        if (ctx.failure) {
          nested.out = NO_OUT;
          return;
        }
        try {
          this.checkSize(ctx, entries.length);
          nested.out = this.walk(ctx, entries, depth + 1, childPath, sid);
        } catch (err) {
          failed(err);
        }
      },
      (err: unknown) => {
        if (trace?.searchDone && err instanceof LdapFailure) trace.searchDone(sid, { failure: err }, performance.now() - started);
        if (err instanceof LdapFailure && err.kind === 'noSuchObject') {
          log.debug(`map ${this.name}: DN ${JSON.stringify(req.base)} not found, skipping`);
          nested.out = NO_OUT;
          return;
        }
        failed(err);
      },
    );
    return nested;
  }
}

function joinValues(values: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < values.length; i++) {
    if (i > 0) parts.push(COMMA);
    parts.push(values[i]!);
  }
  return Buffer.concat(parts);
}
