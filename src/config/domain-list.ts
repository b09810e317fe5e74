/**
 * The `domain` parameter: a Postfix string list (`string_list_init` with `MATCH_FLAG_RETURN`,
 * `match_list.c`), docs/postfix-ldap-semantics §3.5.
 *
 * - items are separated by comma/space/tab/CR/LF (text inside `{…}` is not split);
 * - `!item` negates (each `!` toggles); `!` alone is an error;
 * - `/path` reads more items from that file (any number per line; lines whose first
 *   non-blank character is `#` are comments; `!/path` negates every item of the file);
 * - an item starting with `#` in the middle of a line ends that line (Postfix warns);
 * - `type:table` items are NOT supported here (we cannot open Postfix tables): ConfigError;
 * - matching is exact and case-insensitive; the first matching item decides; no match = false.
 *
 * Postfix degrades gracefully when a `/path` cannot be opened (every lookup then fails with a
 * temporary error). We refuse to start instead: the outcome is the same broken map, but found
 * at startup.
 */
import { readFileSync } from 'node:fs';
import { asciiLower, errnoText, isSpace } from './cf-file.js';
import { caseFold } from '../fold/key-fold.js';
import { ConfigError, type ConfigWarning, type ConfigWhere, warningAt } from './errors.js';

export interface DomainListItem {
  /** Case-folded domain name (or other literal pattern), as with smtputf8_enable = yes. */
  name: string;
  negate: boolean;
  /** The item folded as with smtputf8_enable = no (ASCII only), when that differs from `name`. */
  ascii?: string;
}

export interface DomainList {
  items: DomainListItem[];
  /**
   * True if the first matching item is positive; false if it is negated or nothing matches.
   * `smtputf8` (default true) picks Postfix's casefold(): full Unicode folding, or ASCII only.
   */
  match(domain: string, smtputf8?: boolean): boolean;
}

/**
 * Postfix's casefold() of list items and of the searched domain: with smtputf8 (the default),
 * the same Unicode full case folding as lookup keys (ICU's, `ẞ`→`ss`, `ı` unchanged); without,
 * ASCII letters only.
 */
export function foldDomain(text: string, smtputf8 = true): string {
  if (!smtputf8 || /^[\x00-\x7f]*$/.test(text)) return asciiLower(text);
  return caseFold(text);
}

/** Postfix `mystrtokq(…, CHARS_COMMA_SP, CHARS_BRACE)`: separators inside `{…}` do not split. */
export function tokenizeList(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  const sep = (c: string | undefined): boolean => c === ',' || c === ' ' || c === '\t' || c === '\r' || c === '\n';
  while (i < text.length) {
    while (i < text.length && sep(text[i])) i++;
    if (i >= text.length) break;
    const start = i;
    let depth = 0;
    while (i < text.length) {
      const c = text[i];
      if (c === '{') depth++;
      else if (c === '}' && depth > 0) depth--;
      else if (depth === 0 && sep(c)) break;
      i++;
    }
    out.push(text.slice(start, i));
  }
  return out;
}

/** Postfix MATCH_DICTIONARY(): contains ':' and does not start with '['. */
function isTableItem(item: string): boolean {
  return item[0] !== '[' && item.includes(':');
}

const MAX_FILE_DEPTH = 20;

export interface DomainListOptions {
  /** Reads a `/path` item; defaults to fs.readFileSync (UTF-8). */
  readFile?: (path: string) => string;
}

/**
 * Parses the value of `domain`. `where` names the parameter (file, line, key) for messages;
 * warnings are appended to `warnings`.
 */
export function parseDomainList(
  value: string,
  where: ConfigWhere,
  warnings: ConfigWarning[],
  options: DomainListOptions = {},
): DomainList {
  const readFile = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const items: DomainListItem[] = [];

  const parse = (text: string, initialNegate: boolean, origin: string, stack: string[]): void => {
    for (const token of tokenizeList(text)) {
      if (token.startsWith('#')) {
        warnings.push(warningAt(where, `${origin}comment after other text is not supported; rest of the line ignored`));
        return;
      }
      let negate = initialNegate;
      let item = token;
      while (item.startsWith('!')) {
        negate = !negate;
        item = item.slice(1);
      }
      if (item === '') throw new ConfigError(`${origin}no pattern after '!'`, where);
      if (item.startsWith('/')) {
        if (stack.includes(item) || stack.length >= MAX_FILE_DEPTH) {
          throw new ConfigError(`${origin}file ${item} includes itself`, where);
        }
        let content: string;
        try {
          content = readFile(item);
        } catch (err) {
          throw new ConfigError(`cannot read domain list file ${item}: ${errnoText(err)}`, where, { cause: err });
        }
        for (const line of listFileLines(content)) parse(line, negate, `in file ${item}: `, [...stack, item]);
      } else if (isTableItem(item)) {
        throw new ConfigError(
          `${origin}lookup table item '${item}' is not supported (ldap-socketmap cannot open Postfix tables); ` +
            'list the domains, or put them in a file and use /path/to/file',
          where,
        );
      } else {
        const name = foldDomain(item);
        const ascii = foldDomain(item, false);
        items.push(ascii === name ? { name, negate } : { name, negate, ascii });
      }
    }
  };

  parse(value, false, '', []);
  return makeDomainList(items);
}

/** Builds a matcher from already folded items. */
export function makeDomainList(items: DomainListItem[]): DomainList {
  const frozen = items.map((i) => ({ ...i }));
  return {
    items: frozen,
    match(domain: string, smtputf8 = true): boolean {
      const folded = foldDomain(domain, smtputf8);
      for (const item of frozen) if ((smtputf8 ? item.name : (item.ascii ?? item.name)) === folded) return !item.negate;
      return false;
    },
  };
}

/** Logical lines of a list file (Postfix `readlline`): comments and blank lines dropped,
 *  lines starting with whitespace continue the previous one. */
function listFileLines(content: string): string[] {
  const out: string[] = [];
  for (const raw of content.split('\n')) {
    let i = 0;
    while (i < raw.length && isSpace(raw[i])) i++;
    if (i === raw.length || raw[i] === '#') continue;
    if (isSpace(raw[0]) && out.length > 0) out[out.length - 1] += raw;
    else out.push(raw);
  }
  return out;
}
