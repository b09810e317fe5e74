/**
 * The two escapers Postfix's dict_ldap applies to every substituted piece of a query template
 * (spec §3.3). Both escape single characters as a backslash plus two UPPERCASE hex digits and
 * touch nothing else (no NUL handling, no non-ASCII escaping, no UTF-8 normalisation).
 */

const FILTER_SPECIAL = /[*()\\]/;
const FILTER_SPECIAL_G = /[*()\\]/g;
const FILTER_ESC: Readonly<Record<string, string>> = { '*': '\\2A', '(': '\\28', ')': '\\29', '\\': '\\5C' };

/**
 * Postfix rfc2254_quote (query_filter): only `*` `(` `)` `\` become `\2A` `\28` `\29` `\5C`.
 * Not escaped: NUL, non-ASCII, `&`, `|`, `=`, `!`, `~`, `<`, `>`, space, ...
 */
export function escapeFilterValue(s: string): string {
  if (!FILTER_SPECIAL.test(s)) return s;
  return s.replace(FILTER_SPECIAL_G, (c) => FILTER_ESC[c]!);
}

const DN_SPECIAL = /[ \t"#+,;<>\\]/;
const DN_SPECIAL_G = /[ \t"#+,;<>\\]/g;
const DN_ESC: Readonly<Record<string, string>> = {
  ' ': '\\20',
  '\t': '\\09',
  '"': '\\22',
  '#': '\\23',
  '+': '\\2B',
  ',': '\\2C',
  ';': '\\3B',
  '<': '\\3C',
  '>': '\\3E',
  '\\': '\\5C',
};

/**
 * Postfix rfc2253_quote (search_base): space, TAB, `"` `#` `+` `,` `;` `<` `>` `\` become
 * `\20 \09 \22 \23 \2B \2C \3B \3C \3E \5C`, everywhere in the value (not only at the ends,
 * unlike RFC 2253). `=`, other control characters and non-ASCII are not escaped.
 */
export function escapeDnValue(s: string): string {
  if (!DN_SPECIAL.test(s)) return s;
  return s.replace(DN_SPECIAL_G, (c) => DN_ESC[c]!);
}
