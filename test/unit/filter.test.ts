import { BerWriter, FilterParser, SearchRequest } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { BytesEqualityFilter, BytesExtensibleFilter, BytesSubstringFilter } from '../../src/ldap/filter-bytes.js';
import { FilterError, LDAP_FILTER_ERROR, parseFilter } from '../../src/ldap/filter.js';

/** The filter's BER as ldapts writes it into a SearchRequest (minimal lengths). */
function ber(filter: string): string {
  const w = new BerWriter();
  parseFilter(filter).write(w);
  return w.buffer.toString('hex');
}

function hexOf(s: string): string {
  return Buffer.from(s, 'latin1').toString('hex');
}

/** TLV with a short length, contents given as hex. */
function tlv(tag: number, hex: string): string {
  const len = hex.length / 2;
  if (len > 127) throw new Error('test helper: short lengths only');
  return tag.toString(16).padStart(2, '0') + len.toString(16).padStart(2, '0') + hex;
}
const str = (s: string): string => tlv(0x04, hexOf(s));
const oct = (hex: string): string => tlv(0x04, hex);

describe('parseFilter: BER bytes like libldap ldap_pvt_put_filter', () => {
  const cases: Array<[string, string]> = [
    // equality; \2A \28 \29 are bytes, letter case of the hex does not matter
    ['(mail=a\\2Ab\\28c\\29@x)', tlv(0xa3, str('mail') + oct('612a622863294078'))],
    ['(mail=a\\2ab\\28c\\29@x)', tlv(0xa3, str('mail') + oct('612a622863294078'))],
    // \c3\bc and a raw ü are the same two bytes C3 BC
    ['(cn=J\\c3\\bcrgen)', tlv(0xa3, str('cn') + oct('4ac3bc7267656e'))],
    ['(cn=Jürgen)', tlv(0xa3, str('cn') + oct('4ac3bc7267656e'))],
    ['(cn=J\\C3\\BCrgen)', tlv(0xa3, str('cn') + oct('4ac3bc7267656e'))],
    // non-UTF-8 and NUL bytes can only be written escaped
    ['(cn=\\ff\\00\\80)', tlv(0xa3, str('cn') + oct('ff0080'))],
    ['(cn=😀€)', tlv(0xa3, str('cn') + oct('f09f9880e282ac'))],
    // RFC 1960 one-character escapes
    ['(cn=\\*\\(\\)\\\\)', tlv(0xa3, str('cn') + oct('2a28295c'))],
    // everything else is literal, including blanks, '=' and operators
    ['(cn= a=b&|!~<> )', tlv(0xa3, str('cn') + oct(hexOf(' a=b&|!~<> ')))],
    ['(cn=)', tlv(0xa3, str('cn') + oct(''))],
    // and / or / not
    [
      '(&(objectClass=*)(listName=x))',
      tlv(0xa0, tlv(0x87, hexOf('objectClass')) + tlv(0xa3, str('listName') + str('x'))),
    ],
    ['(|(a=1)(!(b=2)))', tlv(0xa1, tlv(0xa3, str('a') + str('1')) + tlv(0xa2, tlv(0xa3, str('b') + str('2'))))],
    ['(&)', 'a000'],
    ['(|)', 'a100'],
    // blanks (SP TAB LF) after '(' and around list items
    ['( & (a=1)\t(b=2)\n)', tlv(0xa0, tlv(0xa3, str('a') + str('1')) + tlv(0xa3, str('b') + str('2')))],
    ['(! (a=1))', tlv(0xa2, tlv(0xa3, str('a') + str('1')))],
    ['(\tmail=x)', tlv(0xa3, str('mail') + str('x'))],
    // ordering / approx
    ['(uid>=100)', tlv(0xa5, str('uid') + str('100'))],
    ['(uid<=\\c3\\bc)', tlv(0xa6, str('uid') + oct('c3bc'))],
    ['(cn~=Jürgen)', tlv(0xa8, str('cn') + oct('4ac3bc7267656e'))],
    // presence; attribute case kept
    ['(objectClass=*)', tlv(0x87, hexOf('objectClass'))],
    // substrings: initial [0], any [1], final [2]
    ['(cn=a*b*c)', tlv(0xa4, str('cn') + tlv(0x30, tlv(0x80, '61') + tlv(0x81, '62') + tlv(0x82, '63')))],
    ['(cn=*x*)', tlv(0xa4, str('cn') + tlv(0x30, tlv(0x81, '78')))],
    ['(cn=a*)', tlv(0xa4, str('cn') + tlv(0x30, tlv(0x80, '61')))],
    ['(cn=*a)', tlv(0xa4, str('cn') + tlv(0x30, tlv(0x82, '61')))],
    ['(cn=ü*\\2a*\\c3\\bc)', tlv(0xa4, str('cn') + tlv(0x30, tlv(0x80, 'c3bc') + tlv(0x81, '2a') + tlv(0x82, 'c3bc')))],
    // extensible: rule [1], type [2], value [3], dnAttributes [4] TRUE (FF)
    [
      '(cn:dn:caseExactMatch:=Fred)',
      tlv(0xa9, tlv(0x81, hexOf('caseExactMatch')) + tlv(0x82, hexOf('cn')) + tlv(0x83, hexOf('Fred')) + tlv(0x84, 'ff')),
    ],
    ['(cn:=x)', tlv(0xa9, tlv(0x82, hexOf('cn')) + tlv(0x83, '78'))],
    ['(cn:DN:=\\c3\\bc)', tlv(0xa9, tlv(0x82, hexOf('cn')) + tlv(0x83, 'c3bc') + tlv(0x84, 'ff'))],
    ['(:1.2.3:=x)', tlv(0xa9, tlv(0x81, hexOf('1.2.3')) + tlv(0x83, '78'))],
    ['(:dn:2.5.13.5:=)', tlv(0xa9, tlv(0x81, hexOf('2.5.13.5')) + tlv(0x83, '') + tlv(0x84, 'ff'))],
    // libldap quirk: an empty rule is no rule
    ['(cn::=x)', tlv(0xa9, tlv(0x82, hexOf('cn')) + tlv(0x83, '78'))],
    ['(cn:dn::=x)', tlv(0xa9, tlv(0x82, hexOf('cn')) + tlv(0x83, '78') + tlv(0x84, 'ff'))],
    // attribute descriptions: options, numeric OIDs, case kept
    ['(CN;lang-de;x-1=x)', tlv(0xa3, str('CN;lang-de;x-1') + str('x'))],
    ['(2.5.4.3=x)', tlv(0xa3, str('2.5.4.3') + str('x'))],
    // no outer parentheses: the whole string is one item, a trailing blank is part of the value
    ['mail=x', tlv(0xa3, str('mail') + str('x'))],
    ['mail=x ', tlv(0xa3, str('mail') + str('x '))],
    ['cn=a*', tlv(0xa4, str('cn') + tlv(0x30, tlv(0x80, '61')))],
    // the string ends at a NUL, like a C string
    ['mail=x\u0000yz', tlv(0xa3, str('mail') + str('x'))],
  ];

  it.each(cases)('%j', (filter, hex) => {
    expect(ber(filter)).toBe(hex);
  });

  it('differs from ldapts FilterParser exactly where that one is wrong', () => {
    const w = new BerWriter();
    FilterParser.parseString('(cn=J\\c3\\bcrgen)').write(w);
    // ldapts: each escaped byte becomes a char, UTF-8 encoded again (4 bytes C3 83 C2 BC)
    expect(w.buffer.toString('hex')).toContain('4ac383c2bc7267656e');
    expect(ber('(cn=J\\c3\\bcrgen)')).toContain('4ac3bc7267656e');
  });

  it('builds ldapts filter objects that go into a SearchRequest unchanged', () => {
    const filter = parseFilter('(&(mail=J\\c3\\bcrgen@x)(cn=*a*))');
    const req = new SearchRequest({ messageId: 7, baseDN: 'dc=x', filter, attributes: ['mail'] });
    const msg = req.write().toString('hex');
    expect(msg).toContain(ber('(&(mail=J\\c3\\bcrgen@x)(cn=*a*))'));
  });

  it('keeps exact bytes and a readable form on the objects', () => {
    const eq = parseFilter('(Mail=J\\c3\\bcrgen\\2a)');
    expect(eq).toBeInstanceOf(BytesEqualityFilter);
    expect((eq as BytesEqualityFilter).attribute).toBe('Mail');
    expect((eq as BytesEqualityFilter).bytes.toString('hex')).toBe('4ac3bc7267656e2a');
    expect(eq.toString()).toBe('(Mail=J\\c3\\bcrgen\\2a)');

    const sub = parseFilter('(cn=a\\28*\\ff*)') as BytesSubstringFilter;
    expect(sub).toBeInstanceOf(BytesSubstringFilter);
    expect(sub.initialBytes?.toString('hex')).toBe('6128');
    expect(sub.anyBytes.map((b) => b.toString('hex'))).toEqual(['ff']);
    expect(sub.finalBytes).toBeUndefined();
    expect(sub.toString()).toBe('(cn=a\\28*\\ff*)');

    const ext = parseFilter('(cn:dn:caseExactMatch:=Fred)') as BytesExtensibleFilter;
    expect(ext).toBeInstanceOf(BytesExtensibleFilter);
    expect([ext.matchType, ext.rule, ext.dnAttributes]).toEqual(['cn', 'caseExactMatch', true]);
    expect(ext.toString()).toBe('(cn:dn:caseExactMatch:=Fred)');
  });
});

describe('parseFilter: what libldap rejects (LDAP_FILTER_ERROR)', () => {
  const bad = [
    // empty / blank (libldap would send a request without a filter)
    '',
    ' ',
    // leading blank, anything after the closing ')', even a blank
    ' mail=x',
    ' (mail=x)',
    '(mail=x) ',
    '(mail=x)(cn=y)',
    // unbalanced
    '(',
    '(mail=x',
    '(mail=x))',
    ')',
    ')(mail=x)',
    '(&(a=1)',
    '(&(a=1)(b=2)',
    '(|(a=1)))',
    // structure
    '()',
    '((a=1))',
    '(&a=1)',
    '(&(a=1)x)',
    '(!)',
    '(!(a=1)(b=2))',
    '(!(a=1) )',
    '(mail=x)y',
    // simple items
    '(mail)',
    '(=x)',
    '=x',
    '(mail =x)',
    '(ma il=x)',
    '(m_ail=x)',
    '(-mail=x)',
    '(cn;=x)',
    '(cn;a_b=x)',
    '(2.5..4=x)',
    '(2.5.4.=x)',
    '(2.a=x)',
    '(mail!=x)',
    '(<=x)',
    // values
    '(cn=\\zz)',
    '(cn=\\4)',
    '(cn=\\4g)',
    '(cn=\\g4)',
    '(cn=\\x)',
    '(cn=\\ü)',
    '(cn=a\\)',
    'cn=a\\',
    '(cn=a(b)',
    '(cn=a)b)',
    'mail=x)',
    'mail=(x',
    '(cn>=a*)',
    '(cn<=*)',
    '(cn~=*)',
    '(cn:=*)',
    '(cn:=a*b)',
    '(cn=a**b)',
    '(cn=**)',
    '(cn=*\\zz*)',
    '(cn=a*(*)',
    // extensible
    '(:=x)',
    '(::=x)',
    '(:dn:=x)',
    '(:dn::=x)',
    '(cn:xx:1.2:=x)',
    '(cn:dn:1.2:3:=x)',
    '(cn:1.2.:=x)',
    '(cn:1..2:=x)',
    '(cn:case_exact:=x)',
    '(c_n:=x)',
    // NUL cuts the string
    '(mail=x\u0000)',
  ];

  it.each(bad)('%j', (filter) => {
    let err: unknown;
    try {
      parseFilter(filter);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FilterError);
    const fe = err as FilterError;
    expect(fe.code).toBe(LDAP_FILTER_ERROR);
    expect(fe.filter).toBe(filter);
    expect(fe.name).toBe('FilterError');
    expect(fe.message).toContain(JSON.stringify(filter));
  });

  it('says what and where', () => {
    expect(() => parseFilter('(cn=ab\\zz)')).toThrow(/bad escape .*byte 6/);
    expect(() => parseFilter('(cn=a**b)')).toThrow(/empty substring/);
    expect(() => parseFilter('(mail=x')).toThrow(/missing '\)'/);
    expect(() => parseFilter('(mail=x) ')).toThrow(/after the filter/);
    expect(() => parseFilter('')).toThrow(/empty filter/);
  });
});
