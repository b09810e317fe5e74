/**
 * Postfix `.cf` file syntax (ldap_table(5) files, and our own daemon configuration).
 *
 * Mirrors Postfix's `readllines()` + `split_nameval()` + `dict_load_fp()`, and the typed getters
 * of `cfg_parser.c` (`get_dict_str/int/bool`). See docs/postfix-ldap-semantics §1:
 *
 * - a line whose first non-whitespace character is `#` is a comment; whitespace-only and empty
 *   lines are dropped; `#` later in a line is part of the value;
 * - a line starting with whitespace continues the current logical line; the pieces are joined
 *   as is (newline removed, leading whitespace kept); comment/blank lines in between do not end
 *   the logical line; a logical line that itself starts with whitespace is ignored (warning);
 * - `name = value`: whitespace around the name, around `=`, and at the ends of the value is
 *   trimmed; nothing else (no quotes, escapes or `$name` expansion);
 * - a later duplicate wins (warning "overriding earlier entry");
 * - names are case-sensitive.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, type ConfigWarning, type ConfigWhere, warningAt } from './errors.js';

export interface CfEntry {
  value: string;
  /** First physical line of the logical line that set the value (1-based). */
  line: number;
}

export interface ParsedCf {
  file: string;
  params: Map<string, CfEntry>;
  warnings: ConfigWarning[];
}

/** The part of a parsed file the getters need. */
export interface CfSource {
  file: string;
  params: Map<string, CfEntry>;
}

/** Postfix ISSPACE(): ASCII isspace() in the C locale. */
export function isSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\v' || ch === '\f';
}

/** Postfix CHARS_COMMA_SP: the separators of every list-valued parameter. */
export const LIST_SEPARATORS = ', \t\r\n';

/** Splits a list value like Postfix's `mystrtok(…, CHARS_COMMA_SP)`: empty items vanish. */
export function splitList(value: string): string[] {
  return value.split(/[, \t\r\n]+/).filter((s) => s !== '');
}

interface LogicalLine {
  text: string;
  line: number;
}

/** Groups physical lines into logical lines (Postfix `readllines`). */
function logicalLines(text: string): LogicalLine[] {
  const physical = text.split('\n');
  if (physical.length > 0 && physical[physical.length - 1] === '') physical.pop();
  const out: LogicalLine[] = [];
  let current: LogicalLine | undefined;
  physical.forEach((raw, index) => {
    let i = 0;
    while (i < raw.length && isSpace(raw[i])) i++;
    if (i === raw.length || raw[i] === '#') return; // blank or comment line
    if (current !== undefined && isSpace(raw[0])) {
      current.text += raw; // continuation: joined as is
      return;
    }
    if (current !== undefined) out.push(current);
    current = { text: raw, line: index + 1 };
  });
  if (current !== undefined) out.push(current);
  return out;
}

/** Parses the text of a `.cf` file. `file` is only used in messages. */
export function parseCf(text: string, file: string): ParsedCf {
  const params = new Map<string, CfEntry>();
  const warnings: ConfigWarning[] = [];
  for (const ll of logicalLines(text)) {
    const where: ConfigWhere = { file, line: ll.line };
    if (isSpace(ll.text[0])) {
      // The text is not shown: it might be a password.
      warnings.push(
        warningAt(where, 'logical line must not start with whitespace (continuation line without preceding text); ignored'),
      );
      continue;
    }
    const { name, value } = splitNameValue(ll.text, where);
    const earlier = params.get(name);
    if (earlier !== undefined) {
      warnings.push(warningAt({ ...where, key: name }, `overriding earlier entry at line ${earlier.line}`));
    }
    params.set(name, { value, line: ll.line });
  }
  return { file, params, warnings };
}

/** Postfix `split_nameval`: the name ends at whitespace or `=`; the value is trimmed. */
function splitNameValue(text: string, where: ConfigWhere): { name: string; value: string } {
  let np = 0;
  while (np < text.length && isSpace(text[np])) np++;
  let ep = np;
  while (ep < text.length && !isSpace(text[ep]) && text[ep] !== '=') ep++;
  let cp = ep;
  while (cp < text.length && isSpace(text[cp])) cp++;
  if (text[cp] !== '=') {
    // The text is not shown: a stray line may well be a password.
    throw new ConfigError("missing '=' after parameter name (expected 'name = value')", where);
  }
  if (ep === np) throw new ConfigError("missing parameter name before '='", where);
  let vp = cp + 1;
  while (vp < text.length && isSpace(text[vp])) vp++;
  let end = text.length;
  while (end > vp && isSpace(text[end - 1])) end--;
  return { name: text.slice(np, ep), value: text.slice(vp, end) };
}

/** Reads and parses a `.cf` file; an unreadable file is a ConfigError naming it. */
export function readCfFile(path: string): ParsedCf {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read file: ${errnoText(err)}`, { file: path }, { cause: err });
  }
  return parseCf(text, path);
}

export function errnoText(err: unknown): string {
  if (err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string') {
    const msg = 'message' in err && typeof err.message === 'string' ? err.message : '';
    // Node messages look like "ENOENT: no such file or directory, open '/x'": keep the first part.
    const first = msg.split(',')[0] ?? '';
    return first !== '' ? first : err.code;
  }
  return err instanceof Error ? err.message : String(err);
}

/* ----------------------------------------------------------------------------------------- */
/* Typed getters (cfg_parser.c). They throw ConfigError naming file, line and key.            */
/* ----------------------------------------------------------------------------------------- */

export function whereOf(cf: CfSource, key: string): ConfigWhere {
  const entry = cf.params.get(key);
  return entry === undefined ? { file: cf.file, key } : { file: cf.file, line: entry.line, key };
}

/** True if the parameter is present in the file (even with an empty value). */
export function cfHas(cf: CfSource, key: string): boolean {
  return cf.params.has(key);
}

/**
 * `get_dict_str`: the value, or `def` when absent. `min`/`max` are length limits (0 = none),
 * checked on the default too, as Postfix does. The value is not shown in the message.
 */
export function cfGetStr(cf: CfSource, key: string, def: string, min = 0, max = 0): string {
  const value = cf.params.get(key)?.value ?? def;
  checkLength(value, whereOf(cf, key), min, max);
  return value;
}

/** Like `cfg_get_str` with a NULL default: undefined when absent or empty. */
export function cfGetOptStr(cf: CfSource, key: string): string | undefined {
  const value = cf.params.get(key)?.value;
  return value === undefined || value === '' ? undefined : value;
}

export function checkLength(value: string, where: ConfigWhere, min = 0, max = 0): void {
  if (min !== 0 && value.length < min) {
    throw new ConfigError(
      value.length === 0 ? 'value must not be empty' : `bad string length ${value.length} < ${min}`,
      where,
    );
  }
  if (max !== 0 && value.length > max) {
    throw new ConfigError(`bad string length ${value.length} > ${max}`, where);
  }
}

/** `get_dict_int`: the whole value must be a decimal int (optional sign) that fits 32 bits. */
export function cfGetInt(cf: CfSource, key: string, def: number, min = 0, max = 0): number {
  const entry = cf.params.get(key);
  const where = whereOf(cf, key);
  const value = entry === undefined ? def : parseIntValue(entry.value, where);
  checkRange(value, where, min, max);
  return value;
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** Parses a Postfix integer: `[+-]digits`, whole value, within int32. */
export function parseIntValue(text: string, where: ConfigWhere): number {
  if (!/^[+-]?[0-9]+$/.test(text)) {
    throw new ConfigError(`bad numerical configuration: '${text}' is not a decimal integer`, where);
  }
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < INT32_MIN || n > INT32_MAX) {
    throw new ConfigError(`bad numerical configuration: '${text}' is out of range`, where);
  }
  return n === 0 ? 0 : n; // no -0
}

/** Postfix's min/max check: a limit of 0 means "no check". */
export function checkRange(value: number, where: ConfigWhere, min = 0, max = 0): void {
  if (min !== 0 && value < min) throw new ConfigError(`invalid parameter value ${value} < ${min}`, where);
  if (max !== 0 && value > max) throw new ConfigError(`invalid parameter value ${value} > ${max}`, where);
}

/** `get_dict_bool`: only `yes` or `no`, case-insensitive. */
export function cfGetBool(cf: CfSource, key: string, def: boolean): boolean {
  const entry = cf.params.get(key);
  return entry === undefined ? def : parseBoolValue(entry.value, whereOf(cf, key));
}

export function parseBoolValue(text: string, where: ConfigWhere): boolean {
  const lower = asciiLower(text);
  if (lower === 'yes') return true;
  if (lower === 'no') return false;
  throw new ConfigError(`bad boolean configuration: '${text}' (use yes or no)`, where);
}

/** ASCII-only lowercase (C `strcasecmp` semantics; no Unicode surprises such as the Kelvin sign). */
export function asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}
