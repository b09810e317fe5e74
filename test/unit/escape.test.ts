import { describe, expect, it } from 'vitest';
import { escapeDnValue, escapeFilterValue } from '../../src/ldap/escape.js';

describe('escapeFilterValue (Postfix rfc2254_quote)', () => {
  it('escapes exactly * ( ) \\ with uppercase hex', () => {
    expect(escapeFilterValue('a*b(c)@x')).toBe('a\\2Ab\\28c\\29@x');
    expect(escapeFilterValue('back\\slash')).toBe('back\\5Cslash');
    expect(escapeFilterValue('**')).toBe('\\2A\\2A');
    expect(escapeFilterValue('\\2A')).toBe('\\5C2A');
  });

  it('leaves everything else alone', () => {
    const untouched = 'a&b|c=d!e~f<g>h i\tj"k#l+m,n;o\u00e9\u4f8b\u0000\r\n%';
    expect(escapeFilterValue(untouched)).toBe(untouched);
    expect(escapeFilterValue('')).toBe('');
  });
});

describe('escapeDnValue (Postfix rfc2253_quote)', () => {
  it('escapes space, TAB, " # + , ; < > \\ everywhere with uppercase hex', () => {
    expect(escapeDnValue(' \t"#+,;<>\\')).toBe('\\20\\09\\22\\23\\2B\\2C\\3B\\3C\\3E\\5C');
    expect(escapeDnValue('b,c')).toBe('b\\2Cc');
    expect(escapeDnValue('John Smith')).toBe('John\\20Smith');
    expect(escapeDnValue(' lead and trail ')).toBe('\\20lead\\20and\\20trail\\20');
  });

  it('does not escape =, *, parentheses, non-ASCII or other controls', () => {
    const untouched = 'a=b*c(d)e\u00e9\u4f8b\r\n\u0001%@.';
    expect(escapeDnValue(untouched)).toBe(untouched);
    expect(escapeDnValue('')).toBe('');
  });
});
