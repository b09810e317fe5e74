/**
 * The three %-templates of one ldap map: search_base, query_filter and result_format
 * (spec §3 and §5; Postfix db_common_parse / db_common_expand, dict_ldap rfc2253_quote /
 * rfc2254_quote).
 *
 * Everything is parsed once by compileTemplates() into arrays of parts, so expansion is a
 * loop over precomputed literals and code numbers. The three templates share one set of
 * key-suppression flags, exactly like Postfix's single DB_COMMON_CTX:
 *
 * - "needs domain": %d %D %1-%9 in a query template, %D %1-%9 in result_format;
 * - "needs localpart": %u %U in a query template, %U in result_format;
 * - the highest %N used in any of the three templates.
 *
 * Value-side flags (%d, %u in result_format) only decide which result values are skipped.
 */
import { escapeDnValue, escapeFilterValue } from '../ldap/escape.js';
import { emptyFlags, K_D, K_S, K_U, parseTemplate, V_D, V_S, V_U, type ParsedTemplate, type TemplateFlags } from './parse.js';

export { TemplateError } from './parse.js';

/** One substituted code of an expanded template, for `explain`. */
export interface Substitution {
  code: string;
  raw: string;
  escaped: string;
}

export interface Templates {
  /** search_base uses any data-dependent code (noSuchObject is then "not found", spec §6.2). */
  readonly dynamicBase: boolean;
  /** query_filter has no % expansion at all (Postfix warns "probably useless"). */
  readonly fixedFilter: boolean;
  /** undefined = search allowed; else a human-readable reason why the search is suppressed. */
  suppressReason(key: string): string | undefined;
  /** DN-escaped substitutions; call only when suppressReason(key) is undefined. */
  expandBase(key: string): string;
  /** Filter-escaped substitutions; call only when suppressReason(key) is undefined. */
  expandFilter(key: string): string;
  /**
   * Applies result_format to one attribute value (bytes, cut at the first NUL first). Returns
   * undefined when the value is skipped (empty; %d and the value has no domain part; %u and
   * the value's last '@' is its first byte). No escaping. The key must be one for which
   * suppressReason() returned undefined.
   */
  expandResult(value: Buffer, key: string): Buffer | undefined;
  /**
   * result_format is exactly "%s": expandResult returns the value itself (or a zero-copy
   * subarray of it when it contains a NUL), or undefined when it is empty after the NUL cut.
   */
  readonly resultIsPlain: boolean;
  /** Why expandResult(value, key) returned undefined (for `explain`; not on the served path). */
  skipReason(value: Buffer): string;
  /** The codes search_base or query_filter substitute for this key, raw and escaped (for `explain`). */
  describe(param: 'search_base' | 'query_filter', key: string): Substitution[];
}

// ---------------------------------------------------------------------------------------------
// Parts: the parsed pieces flattened for expansion. A literal is a string (query templates) or
// a Buffer (result_format); a code is a number (parse.ts).

type QueryPart = string | number;
type ResultPart = Buffer | number;

function queryParts(t: ParsedTemplate): QueryPart[] {
  return t.pieces.map((p) => ('text' in p ? p.text : p.code));
}

function resultParts(t: ParsedTemplate): ResultPart[] {
  return t.pieces.map((p) => ('text' in p ? Buffer.from(p.text, 'utf8') : p.code));
}

// ---------------------------------------------------------------------------------------------
// Per-key analysis, memoised for the last key (suppressReason, expandBase, expandFilter and
// every expandResult of one lookup get the same key).

interface KeyInfo {
  readonly key: string;
  readonly reason: string | undefined;
  /** Before the last '@', or the whole key without '@'. */
  readonly local: string;
  /** After the last '@'; undefined without '@'. */
  readonly domain: string | undefined;
  /** Non-empty labels of the domain, only computed when some %N is used. */
  readonly labels: readonly string[];
  /** Byte forms for result_format, built on first use. */
  bytes?: KeyBytes;
}

interface KeyBytes {
  s: Buffer;
  u: Buffer;
  d: Buffer | undefined;
  labels: Buffer[];
}

const NO_LABELS: readonly string[] = Object.freeze([]);

class CompiledTemplates implements Templates {
  readonly dynamicBase: boolean;
  readonly fixedFilter: boolean;
  readonly resultIsPlain: boolean;

  private readonly base: readonly QueryPart[];
  private readonly filter: readonly QueryPart[];
  private readonly result: readonly ResultPart[];
  private readonly flags: Readonly<TemplateFlags>;
  private readonly resultFormat: string;
  private readonly parsed: { readonly search_base: ParsedTemplate; readonly query_filter: ParsedTemplate; readonly result_format: ParsedTemplate };
  private last: KeyInfo | undefined;

  constructor(t: { searchBase: string; queryFilter: string; resultFormat: string }) {
    const flags = emptyFlags();
    // Same order as dict_ldap_open(): search_base, query_filter, result_format. The order only
    // decides which invalid template is reported first and which code suppression messages name.
    const base = parseTemplate('search_base', 'query', t.searchBase, flags);
    const filter = parseTemplate('query_filter', 'query', t.queryFilter, flags);
    // Postfix: an empty result_format counts as unset and result_filter (default "%s", min
    // length 1) is used instead. The config layer is expected to resolve that; an empty string
    // reaching us is treated as that default rather than as "every value expands to nothing".
    const resultFormat = t.resultFormat === '' ? '%s' : t.resultFormat;
    const result = parseTemplate('result_format', 'result', resultFormat, flags);

    this.parsed = { search_base: base, query_filter: filter, result_format: result };
    this.filter = queryParts(filter);
    this.base = queryParts(base);
    this.result = resultParts(result);
    this.flags = flags;
    this.dynamicBase = base.dynamic;
    this.fixedFilter = !filter.dynamic;
    this.resultIsPlain = resultFormat === '%s';
    this.resultFormat = resultFormat;
  }

  private info(key: string): KeyInfo {
    const last = this.last;
    if (last !== undefined && last.key === key) return last;
    const info = this.analyse(key);
    this.last = info;
    return info;
  }

  private analyse(key: string): KeyInfo {
    const at = key.lastIndexOf('@');
    const local = at < 0 ? key : key.slice(0, at);
    const domain = at < 0 ? undefined : key.slice(at + 1);
    const { needsDomain, needsLocal, nparts } = this.flags;
    let labels = NO_LABELS;
    if (nparts > 0 && domain !== undefined) labels = domain.split('.').filter((l) => l !== '');

    let reason: string | undefined;
    if (key === '') {
      reason = 'empty key';
    } else if (needsDomain !== undefined && (domain === undefined || domain === '')) {
      reason = `key has no domain part (${needsDomain} used)`;
    } else if (needsLocal !== undefined && at === 0) {
      reason = `empty localpart (${needsLocal} used)`;
    } else if (labels.length < nparts) {
      reason = `domain has fewer than ${nparts} labels (%${nparts} used)`;
    }
    return { key, reason, local, domain, labels };
  }

  suppressReason(key: string): string | undefined {
    return this.info(key).reason;
  }

  expandBase(key: string): string {
    return this.expandQuery(this.base, key, escapeDnValue, 'expandBase');
  }

  expandFilter(key: string): string {
    return this.expandQuery(this.filter, key, escapeFilterValue, 'expandFilter');
  }

  private expandQuery(parts: readonly QueryPart[], key: string, quote: (s: string) => string, what: string): string {
    const info = this.info(key);
    if (info.reason !== undefined) throw new Error(`${what}: key is suppressed (${info.reason})`);
    let out = '';
    for (const p of parts) {
      if (typeof p === 'string') out += p;
      else if (p === K_S) out += quote(key);
      else if (p === K_U) out += quote(info.local);
      else if (p === K_D) out += quote(info.domain!);
      else out += quote(info.labels[info.labels.length - p]!);
    }
    return out;
  }

  expandResult(value: Buffer, key: string): Buffer | undefined {
    const nul = value.indexOf(0);
    if (nul >= 0) value = value.subarray(0, nul);
    const len = value.length;
    if (len === 0) return undefined;
    if (this.resultIsPlain) return value;

    const { valueDomain, valueLocal } = this.flags;
    let at = -1;
    if (valueDomain || valueLocal) {
      at = value.lastIndexOf(0x40);
      if (valueDomain && (at < 0 || at === len - 1)) return undefined;
      if (valueLocal && at === 0) return undefined;
    }

    let kb: KeyBytes | undefined;
    const pieces: Buffer[] = [];
    let total = 0;
    for (const p of this.result) {
      let piece: Buffer;
      if (typeof p !== 'number') piece = p;
      else if (p === V_S) piece = value;
      else if (p === V_U) piece = at < 0 ? value : value.subarray(0, at);
      else if (p === V_D) piece = value.subarray(at + 1);
      else {
        kb ??= this.keyBytes(key);
        if (p === K_S) piece = kb.s;
        else if (p === K_U) piece = kb.u;
        else if (p === K_D) piece = kb.d!;
        else piece = kb.labels[kb.labels.length - p]!;
      }
      pieces.push(piece);
      total += piece.length;
    }
    return Buffer.concat(pieces, total);
  }

  skipReason(raw: Buffer): string {
    const nul = raw.indexOf(0);
    const v = nul >= 0 ? raw.subarray(0, nul) : raw;
    if (v.length === 0) return nul >= 0 ? 'empty before its first NUL byte' : 'empty value';
    const at = v.lastIndexOf(0x40);
    const fmt = `result_format ${JSON.stringify(this.resultFormat)}`;
    if (this.flags.valueDomain && (at < 0 || at === v.length - 1)) return `${fmt} uses %d and the value has no domain part`;
    if (this.flags.valueLocal && at === 0) return `${fmt} uses %u and the value has an empty local part`;
    return `${fmt} could not be filled from the value`;
  }

  describe(param: 'search_base' | 'query_filter', key: string): Substitution[] {
    const info = this.info(key);
    const quote = param === 'query_filter' ? escapeFilterValue : escapeDnValue;
    const seen = new Set<string>();
    const out: Substitution[] = [];
    for (const p of this.parsed[param].pieces) {
      if ('text' in p || seen.has(p.letter)) continue;
      seen.add(p.letter);
      let raw: string;
      if (p.code === K_S) raw = key;
      else if (p.code === K_U) raw = info.local;
      else if (p.code === K_D) raw = info.domain ?? '';
      else raw = info.labels[info.labels.length - p.code] ?? '';
      out.push({ code: `%${p.letter}`, raw, escaped: quote(raw) });
    }
    return out;
  }

  private keyBytes(key: string): KeyBytes {
    const info = this.info(key);
    if (info.reason !== undefined) throw new Error(`expandResult: key is suppressed (${info.reason})`);
    if (info.bytes === undefined) {
      info.bytes = {
        s: Buffer.from(key, 'utf8'),
        u: Buffer.from(info.local, 'utf8'),
        d: info.domain === undefined ? undefined : Buffer.from(info.domain, 'utf8'),
        labels: info.labels.map((l) => Buffer.from(l, 'utf8')),
      };
    }
    return info.bytes;
  }
}

/**
 * Compiles the three templates of one map. Throws TemplateError(param, message) for an
 * unknown %-code or a trailing lone '%' (Postfix: fatal "Invalid query/result template").
 */
export function compileTemplates(t: { searchBase: string; queryFilter: string; resultFormat: string }): Templates {
  return new CompiledTemplates(t);
}
