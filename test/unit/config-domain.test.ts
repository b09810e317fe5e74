import { describe, expect, it } from 'vitest';
import { foldDomain, parseDomainList, tokenizeList } from '../../src/config/domain-list.js';
import { ConfigError, type ConfigWarning } from '../../src/config/errors.js';

const where = { file: '/etc/postfix/t.cf', line: 4, key: 'domain' };

function list(value: string, files: Record<string, string> = {}, warnings: ConfigWarning[] = []) {
  return parseDomainList(value, where, warnings, {
    readFile: (p) => {
      const text = files[p];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: 'ENOENT' });
      return text;
    },
  });
}

describe('domain list (§3.5)', () => {
  it('no match → false; first match wins', () => {
    const d = list('!a.example a.example b.example');
    expect(d.match('a.example')).toBe(false);
    expect(d.match('b.example')).toBe(true);
    expect(d.match('c.example')).toBe(false);
  });

  it('an empty list (only separators) matches nothing', () => {
    const d = list(' , ');
    expect(d.items).toEqual([]);
    expect(d.match('x')).toBe(false);
  });

  it('!/file negates every item of the file; ! inside the file toggles again', () => {
    const d = list('!/f', { '/f': 'a.example\n!b.example\n' });
    expect(d.items).toEqual([
      { name: 'a.example', negate: true },
      { name: 'b.example', negate: false },
    ]);
  });

  it('files: comment lines, continuation lines, nested files', () => {
    const d = list('/outer', {
      '/outer': '# comment\n   # indented comment\nx.example,\n  y.example\n/inner\n',
      '/inner': 'z.example',
    });
    expect(d.items.map((i) => i.name)).toEqual(['x.example', 'y.example', 'z.example']);
  });

  it('a file including itself is an error', () => {
    expect(() => list('/loop', { '/loop': '/loop' })).toThrow(/includes itself/);
  });

  it('a # item after other text ends that line with a warning', () => {
    const warnings: ConfigWarning[] = [];
    const d = list('/f', { '/f': 'a.example # comment b.example\nc.example\n' }, warnings);
    expect(d.items.map((i) => i.name)).toEqual(['a.example', 'c.example']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ ...where });
    expect(warnings[0]!.message).toMatch(/in file \/f: comment after other text/);
  });

  it('errors carry file, line and key', () => {
    let err: unknown;
    try {
      list('a, unix:/x');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/^\/etc\/postfix\/t\.cf:4: domain: lookup table item 'unix:\/x'/);
    expect(() => list('/missing')).toThrow(/^\/etc\/postfix\/t\.cf:4: domain: cannot read domain list file \/missing: ENOENT/);
    expect(() => list('/f', { '/f': 'ok, proxy:ldap:x' })).toThrow(/in file \/f: lookup table item/);
  });

  it('bracketed items with ":" are literals, not tables', () => {
    expect(list('[::1]').items).toEqual([{ name: '[::1]', negate: false }]);
  });

  it('case-insensitive comparison with Unicode folding', () => {
    expect(foldDomain('ExAmPle.COM')).toBe('example.com');
    expect(foldDomain('STRASSE.example')).toBe('strasse.example');
    expect(foldDomain('Straße.example')).toBe('strasse.example');
    const d = list('straße.example, ΜΆΪΟΣ.example');
    expect(d.match('STRASSE.EXAMPLE')).toBe(true);
    expect(d.match('μάϊος.example')).toBe(true);
  });

  it('tokenizer keeps {…} together like mystrtokq', () => {
    expect(tokenizeList('a, {b c}, d')).toEqual(['a', '{b c}', 'd']);
  });
});

describe('domain items fold like Postfix casefold() (ICU full case folding with smtputf8)', () => {
  // Each case answered differently by Postfix's ldap: table and the daemon before (found by the
  // random differential test): the fold is the one lookup keys get, not upper-then-lower case.
  it('ẞ folds to ss, ı stays ı, letters ICU 72 does not fold stay as they are', () => {
    const d = list('ı.example, ẞ.example, Ɤ.example');
    expect(d.match('ss.example')).toBe(true);
    expect(d.match('ß.example')).toBe(true);
    expect(d.match('i.example')).toBe(false);
    expect(d.match('ı.example')).toBe(true);
    expect(d.match('ɤ.example')).toBe(false);
    expect(d.match('Ɤ.example')).toBe(true);
  });
  it('with smtputf8 off, only ASCII letters fold', () => {
    const d = list('Straße.EXAMPLE');
    expect(d.match('straße.example', false)).toBe(true);
    expect(d.match('strasse.example', false)).toBe(false);
    expect(d.match('strasse.example')).toBe(true);
  });
});
