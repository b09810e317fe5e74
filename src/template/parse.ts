/**
 * The one parser of Postfix's %-templates (db_common_parse): search_base and query_filter are
 * query templates, result_format is a result template. Config validation, expansion and
 * explain's description all read templates through it, so they cannot disagree on what a code
 * means.
 *
 * In a query template %s %u %d (and %S %U %D, the same there) are the key's parts; in a result
 * template the lower-case codes are the result value's parts and the upper-case ones the key's.
 * %1-%9 are the key's domain labels counted from the right; %% is a literal %.
 */

export type TemplateKind = 'query' | 'result';

/** Codes on the lookup key. 1..9 are the domain labels %1..%9 (counted from the right). */
export const K_S = 0;
export const K_U = -1;
export const K_D = -2;
/** Codes on the result value (result templates only). */
export const V_S = -10;
export const V_U = -11;
export const V_D = -12;

export const VALID_CODES = '%%, %s, %u, %d, %S, %U, %D, %1-%9';

export class TemplateError extends Error {
  constructor(
    readonly param: string,
    /** What is wrong, for callers that word their own message (the config layer). */
    readonly problem: 'lone-percent' | 'unknown-code',
    /** The offending code letter (unknown-code only). */
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'TemplateError';
  }
}

/** One element of a parsed template: literal text, or a code with its letter (`s`, `U`, `3`, ...). */
export type Piece = { readonly text: string } | { readonly code: number; readonly letter: string };

/** The suppression flags a template contributes (Postfix's DB_COMMON_CTX is shared by all three). */
export interface TemplateFlags {
  /** First code that needs the key's domain, e.g. "%d", for messages. */
  needsDomain: string | undefined;
  /** First code that needs the key's localpart. */
  needsLocal: string | undefined;
  /** Highest %N used. */
  nparts: number;
  /** result_format uses the value's %d / %u. */
  valueDomain: boolean;
  valueLocal: boolean;
}

export function emptyFlags(): TemplateFlags {
  return { needsDomain: undefined, needsLocal: undefined, nparts: 0, valueDomain: false, valueLocal: false };
}

export interface ParsedTemplate {
  readonly pieces: readonly Piece[];
  /** Uses any data-dependent code (db_common_parse()'s return value). */
  readonly dynamic: boolean;
}

/** Parses one template, adding its flags to `flags`. Throws TemplateError as Postfix's fatal "Invalid ... template". */
export function parseTemplate(param: string, kind: TemplateKind, template: string, flags: TemplateFlags = emptyFlags()): ParsedTemplate {
  const pieces: Piece[] = [];
  let lit = '';
  let dynamic = false;
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c !== '%') {
      lit += c;
      continue;
    }
    const letter = template[++i];
    if (letter === undefined) {
      throw new TemplateError(param, 'lone-percent', undefined, `Invalid ${kind} template for ${param}: ${JSON.stringify(template)} (lone "%" at the end)`);
    }
    if (letter === '%') {
      lit += '%';
      continue;
    }
    const code = codeOf(kind, letter, flags);
    if (code === undefined) {
      throw new TemplateError(param, 'unknown-code', letter, `Invalid ${kind} template for ${param}: ${JSON.stringify(template)} (unknown code "%${letter}" at offset ${i - 1})`);
    }
    dynamic = true;
    if (lit !== '') pieces.push({ text: lit });
    lit = '';
    pieces.push({ code, letter });
  }
  if (lit !== '') pieces.push({ text: lit });
  return { pieces, dynamic };
}

function codeOf(kind: TemplateKind, letter: string, flags: TemplateFlags): number | undefined {
  const valueSide = kind === 'result' && (letter === 's' || letter === 'u' || letter === 'd');
  if (valueSide) {
    if (letter === 'u') flags.valueLocal = true;
    if (letter === 'd') flags.valueDomain = true;
    return letter === 's' ? V_S : letter === 'u' ? V_U : V_D;
  }
  switch (letter) {
    case 's':
    case 'S':
      return K_S;
    case 'u':
    case 'U':
      flags.needsLocal ??= `%${letter}`;
      return K_U;
    case 'd':
    case 'D':
      flags.needsDomain ??= `%${letter}`;
      return K_D;
    default:
      if (letter >= '1' && letter <= '9') {
        const n = letter.charCodeAt(0) - 0x30;
        flags.nparts = Math.max(flags.nparts, n);
        flags.needsDomain ??= `%${letter}`;
        return n;
      }
      return undefined;
  }
}
