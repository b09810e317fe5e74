import { describe, expect, it } from 'vitest';
import { caseFold, CASEFOLD_UNICODE_VERSION, foldKey } from '../../src/fold/key-fold.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('foldKey: ASCII keys', () => {
  it('lowercases A-Z and nothing else, in both modes', () => {
    for (const mode of [false, true]) {
      expect(foldKey(b('User@Example.COM'), mode)).toBe('user@example.com');
      expect(foldKey(b('already@lower.case'), mode)).toBe('already@lower.case');
      expect(foldKey(b('@[]^_`{|}~ AZaz09!"#$%&\'()*+,-./:;<=>?'), mode)).toBe('@[]^_`{|}~ azaz09!"#$%&\'()*+,-./:;<=>?');
      expect(foldKey(b(''), mode)).toBe('');
    }
  });

  it('keeps control characters as they are', () => {
    expect(foldKey(Buffer.from([0x01, 0x41, 0x7f, 0x0d]), true)).toBe('\x01a\x7f\r');
  });
});

describe('foldKey: invalid UTF-8 is answered undefined (NOTFOUND) in both modes', () => {
  const cases: Array<[string, number[]]> = [
    ['lone continuation byte', [0x61, 0x80]],
    ['0xFF', [0xff]],
    ['truncated 2-byte sequence', [0x61, 0xc3]],
    ['truncated 3-byte sequence', [0xe2, 0x82]],
    ['overlong "/" (C0 AF)', [0xc0, 0xaf]],
    ['overlong C1 lead', [0xc1, 0xbf]],
    ['overlong 3-byte (E0 80 AF)', [0xe0, 0x80, 0xaf]],
    ['UTF-16 surrogate U+D800 (ED A0 80)', [0xed, 0xa0, 0x80]],
    ['above U+10FFFF (F4 90 80 80)', [0xf4, 0x90, 0x80, 0x80]],
    ['F5 lead byte', [0xf5, 0x80, 0x80, 0x80]],
    ['Latin-1 "M\xfcller"', [0x4d, 0xfc, 0x6c, 0x6c, 0x65, 0x72]],
  ];
  for (const [name, bytes] of cases) {
    it(name, () => {
      expect(foldKey(Buffer.from(bytes), true)).toBeUndefined();
      expect(foldKey(Buffer.from(bytes), false)).toBeUndefined();
    });
  }

  it('accepts the extremes of valid UTF-8', () => {
    expect(foldKey(Buffer.from([0xf4, 0x8f, 0xbf, 0xbf]), true)).toBe('\u{10ffff}');
    expect(foldKey(Buffer.from([0xed, 0x9f, 0xbf]), true)).toBe('\ud7ff');
    expect(foldKey(Buffer.from([0xc2, 0x80]), false)).toBe('\u0080');
  });

  it('keeps a leading U+FEFF (not stripped as a BOM)', () => {
    expect(foldKey(Buffer.from([0xef, 0xbb, 0xbf, 0x41]), true)).toBe('\ufeffa');
    expect(foldKey(Buffer.from([0xef, 0xbb, 0xbf, 0x41]), false)).toBe('\ufeffa');
  });
});

describe('foldKey without SMTPUTF8', () => {
  it('lowercases ASCII only and leaves non-ASCII untouched', () => {
    expect(foldKey(b('J\u00fcrgen@EXAMPLE.com'), false)).toBe('j\u00fcrgen@example.com');
    expect(foldKey(b('\u00dcBER@X'), false)).toBe('\u00dcber@x');
    expect(foldKey(b('Stra\u00dfe'), false)).toBe('stra\u00dfe');
    expect(foldKey(b('\u0130I'), false)).toBe('\u0130i');
    expect(foldKey(b('\u212a'), false)).toBe('\u212a');
  });
});

describe('foldKey with SMTPUTF8: ICU full case folding (expected values checked against ICU 72)', () => {
  // [input, expected]; every expected value was produced by ucasemap_utf8FoldCase("en_US",
  // U_FOLD_CASE_DEFAULT) from ICU 72.1.
  const cases: Array<[string, string, string]> = [
    ['sharp s expands', 'Stra\u00dfe', 'strasse'],
    ['capital sharp s U+1E9E', '\u1e9e', 'ss'],
    ['ligature fi', '\ufb01', 'fi'],
    ['ligature ffi', '\ufb03', 'ffi'],
    ['ligature long s t U+FB05', '\ufb05', 'st'],
    ['Armenian ligature men now U+FB13', '\ufb13', '\u0574\u0576'],
    ['Armenian ech yiwn U+0587', '\u0587', '\u0565\u0582'],
    ['final sigma folds to sigma (context-free)', '\u03a3\u0391\u03a3 \u03c2', '\u03c3\u03b1\u03c3 \u03c3'],
    ['Greek with tonos', '\u0386\u03a3', '\u03ac\u03c3'],
    ['Kelvin sign', '\u212a', 'k'],
    ['Angstrom sign', '\u212b', '\u00e5'],
    ['Ohm sign', '\u2126', '\u03c9'],
    ['capital I with dot above (non-Turkic F mapping)', '\u0130', 'i\u0307'],
    ['dotless i is unchanged (T mappings not used)', '\u0131', '\u0131'],
    ['ASCII I next to non-ASCII', 'I\u00c4', 'i\u00e4'],
    ['n preceded by apostrophe U+0149', '\u0149', '\u02bcn'],
    ['j with caron U+01F0', '\u01f0', 'j\u030c'],
    ['iota with dialytika and tonos U+0390', '\u0390', '\u03b9\u0308\u0301'],
    ['upsilon with psili and varia U+1F52', '\u1f52', '\u03c5\u0313\u0300'],
    ['alpha with ypogegrammeni U+1FB3', '\u1fb3', '\u03b1\u03b9'],
    ['alpha with prosgegrammeni U+1FBC', '\u1fbc', '\u03b1\u03b9'],
    ['alpha psili prosgegrammeni U+1F88', '\u1f88', '\u1f00\u03b9'],
    ['combining ypogegrammeni U+0345', '\u0345', '\u03b9'],
    ['long s', '\u017f', 's'],
    ['long s with dot above U+1E9B', '\u1e9b', '\u1e61'],
    ['micro sign', '\u00b5', '\u03bc'],
    ['beta symbol', '\u03d0', '\u03b2'],
    ['theta symbol', '\u03d1', '\u03b8'],
    ['Cherokee capital stays (folds to uppercase)', '\u13a0', '\u13a0'],
    ['Cherokee small letter folds to capital', '\uab70', '\u13a0'],
    ['Cherokee small ye U+13F8', '\u13f8', '\u13f0'],
    ['titlecase dz U+01C5', '\u01c5', '\u01c6'],
    ['Roman numeral twelve', '\u216b', '\u217b'],
    ['circled A', '\u24b6', '\u24d0'],
    ['Glagolitic capital', '\u2c00', '\u2c30'],
    ['Latin beta U+A7B4', '\ua7b4', '\ua7b5'],
    ['Deseret (astral)', '\u{10400}', '\u{10428}'],
    ['Adlam (astral)', '\u{1e900}', '\u{1e922}'],
    ['no normalisation: decomposed U + diaeresis', 'U\u0308', 'u\u0308'],
    ['whole address', 'J\u00fcrgen.M\u00fcller@B\u00fccher.DE', 'j\u00fcrgen.m\u00fcller@b\u00fccher.de'],
    ['unchanged non-ASCII returns equal string', 'caf\u00e9@x', 'caf\u00e9@x'],
    ['CJK untouched', '\u7528\u6237@\u4f8b\u5b50.\u516c\u53f8', '\u7528\u6237@\u4f8b\u5b50.\u516c\u53f8'],
  ];
  for (const [name, input, expected] of cases) {
    it(name, () => {
      expect(foldKey(b(input), true)).toBe(expected);
      expect(caseFold(input)).toBe(expected);
    });
  }

  it('differs from String.prototype.toLowerCase where it must', () => {
    expect('Stra\u00dfe'.toLowerCase()).not.toBe(foldKey(b('Stra\u00dfe'), true));
    expect('\uab70'.toLowerCase()).not.toBe(foldKey(b('\uab70'), true));
    expect('\u13a0'.toLowerCase()).not.toBe(foldKey(b('\u13a0'), true));
  });

  it('is idempotent on a sample of mappings', () => {
    for (const [, input] of cases) {
      const once = caseFold(input);
      expect(caseFold(once)).toBe(once);
    }
  });

  it('is generated from Unicode 15.0.0 (ICU 72, Debian 12)', () => {
    expect(CASEFOLD_UNICODE_VERSION).toBe('15.0.0');
  });
});
