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

export class TemplateError extends Error {
  constructor(
    public readonly param: string,
    message: string,
  ) {
    super(message);
    this.name = 'TemplateError';
  }
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
}

// ---------------------------------------------------------------------------------------------
// Parts. A literal is a string (query templates) or a Buffer (result_format); a code is a number.

/** Codes on the lookup key. 1..9 are the domain labels %1..%9 (counted from the right). */
const K_S = 0; // %s / %S (whole key); in result_format only %S
const K_U = -1; // %u / %U (localpart of the key, or the whole key without '@'); in result_format only %U
const K_D = -2; // %d / %D (domain of the key); in result_format only %D
/** Codes on the result value (result_format only). */
const V_S = -10; // %s
const V_U = -11; // %u
const V_D = -12; // %d

type QueryPart = string | number;
type ResultPart = Buffer | number;

interface SharedFlags {
  /** First code that set "needs domain", e.g. "%d" or "%D", for messages; undefined if not set. */
  needsDomain: string | undefined;
  needsLocal: string | undefined;
  /** Highest %N used anywhere (0 = none). */
  nparts: number;
  valueDomain: boolean;
  valueLocal: boolean;
}

interface Parsed<P> {
  parts: P[];
  /** Uses any data-dependent code (Postfix db_common_parse() return value). */
  dynamic: boolean;
}

function invalid(param: string, kind: 'query' | 'result', template: string, detail: string): TemplateError {
  return new TemplateError(param, `Invalid ${kind} template for ${param}: ${JSON.stringify(template)} (${detail})`);
}

function parseQuery(param: string, template: string, flags: SharedFlags): Parsed<QueryPart> {
  const parts: QueryPart[] = [];
  let lit = '';
  let dynamic = false;
  const flush = (): void => {
    if (lit !== '') parts.push(lit);
    lit = '';
  };
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c !== '%') {
      lit += c;
      continue;
    }
    const code = template[++i];
    if (code === undefined) throw invalid(param, 'query', template, 'lone "%" at the end');
    let part: number;
    switch (code) {
      case '%':
        lit += '%';
        continue;
      case 's':
      case 'S':
        part = K_S;
        break;
      case 'u':
      case 'U':
        flags.needsLocal ??= `%${code}`;
        part = K_U;
        break;
      case 'd':
      case 'D':
        flags.needsDomain ??= `%${code}`;
        part = K_D;
        break;
      case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
        part = code.charCodeAt(0) - 0x30;
        flags.nparts = Math.max(flags.nparts, part);
        flags.needsDomain ??= `%${code}`;
        break;
      default:
        throw invalid(param, 'query', template, `unknown code "%${code}" at offset ${i - 1}`);
    }
    dynamic = true;
    flush();
    parts.push(part);
  }
  flush();
  return { parts, dynamic };
}

function parseResult(param: string, template: string, flags: SharedFlags): Parsed<ResultPart> {
  const parts: ResultPart[] = [];
  let lit = '';
  let dynamic = false;
  const flush = (): void => {
    if (lit !== '') parts.push(Buffer.from(lit, 'utf8'));
    lit = '';
  };
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c !== '%') {
      lit += c;
      continue;
    }
    const code = template[++i];
    if (code === undefined) throw invalid(param, 'result', template, 'lone "%" at the end');
    let part: number;
    switch (code) {
      case '%':
        lit += '%';
        continue;
      case 's':
        part = V_S;
        break;
      case 'u':
        flags.valueLocal = true;
        part = V_U;
        break;
      case 'd':
        flags.valueDomain = true;
        part = V_D;
        break;
      case 'S':
        part = K_S;
        break;
      case 'U':
        flags.needsLocal ??= '%U';
        part = K_U;
        break;
      case 'D':
        flags.needsDomain ??= '%D';
        part = K_D;
        break;
      case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
        part = code.charCodeAt(0) - 0x30;
        flags.nparts = Math.max(flags.nparts, part);
        flags.needsDomain ??= `%${code}`;
        break;
      default:
        throw invalid(param, 'result', template, `unknown code "%${code}" at offset ${i - 1}`);
    }
    dynamic = true;
    flush();
    parts.push(part);
  }
  flush();
  return { parts, dynamic };
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
  private readonly flags: Readonly<SharedFlags>;
  private last: KeyInfo | undefined;

  constructor(t: { searchBase: string; queryFilter: string; resultFormat: string }) {
    const flags: SharedFlags = {
      needsDomain: undefined,
      needsLocal: undefined,
      nparts: 0,
      valueDomain: false,
      valueLocal: false,
    };
    // Same order as dict_ldap_open(): search_base, query_filter, result_format. The order only
    // decides which invalid template is reported first and which code suppression messages name.
    const base = parseQuery('search_base', t.searchBase, flags);
    const filter = parseQuery('query_filter', t.queryFilter, flags);
    // Postfix: an empty result_format counts as unset and result_filter (default "%s", min
    // length 1) is used instead. The config layer is expected to resolve that; an empty string
    // reaching us is treated as that default rather than as "every value expands to nothing".
    const resultFormat = t.resultFormat === '' ? '%s' : t.resultFormat;
    const result = parseResult('result_format', resultFormat, flags);

    this.filter = filter.parts;
    this.base = base.parts;
    this.result = result.parts;
    this.flags = flags;
    this.dynamicBase = base.dynamic;
    this.fixedFilter = !filter.dynamic;
    this.resultIsPlain = resultFormat === '%s';
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
