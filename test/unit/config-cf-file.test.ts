import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  cfGetBool,
  cfGetInt,
  cfGetOptStr,
  cfGetStr,
  parseCf,
  parseIntValue,
  readCfFile,
  splitList,
} from '../../src/config/cf-file.js';
import { ConfigError, formatWarning } from '../../src/config/errors.js';
import { makeTmpDir } from '../support/tmp.js';
import { thrownBy } from '../support/throws.js';

const F = '/etc/postfix/test.cf';

function values(text: string): Record<string, string> {
  return Object.fromEntries([...parseCf(text, F).params].map(([k, v]) => [k, v.value]));
}

describe('ConfigError / warnings', () => {
  it('renders FILE:LINE: KEY: problem and omits missing parts', () => {
    expect(new ConfigError('bad', { file: 'a.cf', line: 3, key: 'scope' }).message).toBe('a.cf:3: scope: bad');
    expect(new ConfigError('bad', { file: 'a.cf', key: 'scope' }).message).toBe('a.cf: scope: bad');
    expect(new ConfigError('bad', { file: 'a.cf', line: 3 }).message).toBe('a.cf:3: bad');
    expect(new ConfigError('bad', { file: 'a.cf' }).message).toBe('a.cf: bad');
    const e = new ConfigError('bad', { file: 'a.cf', line: 3, key: 'k' });
    expect([e.file, e.line, e.key, e.problem, e.name]).toEqual(['a.cf', 3, 'k', 'bad', 'ConfigError']);
    expect(e).toBeInstanceOf(Error);
    expect(formatWarning({ file: 'a.cf', line: 2, key: 'x', message: 'hm' })).toBe('a.cf:2: x: hm');
  });
});

describe('parseCf: lines', () => {
  it('reads name = value with trimming around name, = and value', () => {
    expect(values('a = b\n  \nc=d\ne   =   f g  \t\n')).toEqual({ a: 'b', c: 'd', e: 'f g' });
  });

  it('drops comment lines (first non-blank #) but keeps # later in a line', () => {
    expect(values('# c\n   # indented comment\na = b # not a comment\n')).toEqual({ a: 'b # not a comment' });
  });

  it('joins continuation lines as is: newline removed, leading whitespace kept', () => {
    expect(values('search_base = ou=people,\n    dc=example,dc=com\n')).toEqual({
      search_base: 'ou=people,    dc=example,dc=com',
    });
    expect(values('a = x\n\ty\n')).toEqual({ a: 'x\ty' });
  });

  it('comment and blank lines do not end a logical line', () => {
    expect(values('a = one\n# comment\n\n   \n two\nb = 2\n')).toEqual({ a: 'one two', b: '2' });
  });

  it('ignores a leading continuation with a warning (without showing its text)', () => {
    const r = parseCf('   bind_pw = secret\n  more\na = 1\n', F);
    expect([...r.params.keys()]).toEqual(['a']);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatchObject({ file: F, line: 1 });
    expect(r.warnings[0]!.message).toMatch(/must not start with whitespace/);
    expect(JSON.stringify(r.warnings)).not.toContain('secret');
  });

  it('records the first line of each logical line', () => {
    const r = parseCf('# header\n\na = x\n  y\nb = 2\n', F);
    expect(r.params.get('a')).toEqual({ value: 'x  y', line: 3 });
    expect(r.params.get('b')).toEqual({ value: '2', line: 5 });
  });

  it('does no quote removal, escapes or $expansion', () => {
    expect(values('a = "quoted"\nb = x\\ny\nc = $myhostname\n')).toEqual({
      a: '"quoted"',
      b: 'x\\ny',
      c: '$myhostname',
    });
  });

  it('handles CRLF files and a last line without newline', () => {
    expect(values('a = 1\r\nb = 2')).toEqual({ a: '1', b: '2' });
  });

  it('allows an empty value', () => {
    expect(values('a =\nb=   \n')).toEqual({ a: '', b: '' });
  });

  it('keeps names case-sensitive', () => {
    expect(values('Server_Host = x\nserver_host = y\n')).toEqual({ Server_Host: 'x', server_host: 'y' });
  });

  it('later duplicate wins with an "overriding earlier entry" warning and its own line', () => {
    const r = parseCf('a = 1\nb = x\na = 2\n', F);
    expect(r.params.get('a')).toEqual({ value: '2', line: 3 });
    expect(r.warnings).toEqual([{ file: F, line: 3, key: 'a', message: 'overriding earlier entry at line 1' }]);
  });

  it('never shows values in duplicate warnings', () => {
    const r = parseCf('bind_pw = first-secret\nbind_pw = second-secret\n', F);
    expect(JSON.stringify(r.warnings)).not.toMatch(/secret/);
  });
});

describe('parseCf: errors', () => {
  it("missing '=' names file and line, not the text", () => {
    const e = thrownBy(ConfigError, () => parseCf('a = 1\n\nhunter2\n', F));
    expect(e.message).toBe(`${F}:3: missing '=' after parameter name (expected 'name = value')`);
    expect(e.line).toBe(3);
    expect(e.message).not.toContain('hunter2');
  });

  it("a name with inner space is missing '='", () => {
    const e = thrownBy(ConfigError, () => parseCf('search base = x\n', F));
    expect(e.line).toBe(1);
    expect(e.problem).toMatch(/missing '='/);
  });

  it('missing name is an error with file and line', () => {
    const e = thrownBy(ConfigError, () => parseCf('a = 1\n= value\n', F));
    expect(e.message).toBe(`${F}:2: missing parameter name before '='`);
  });

  it('readCfFile: unreadable file names the file', () => {
    const e = thrownBy(ConfigError, () => readCfFile('/nonexistent/dir/x.cf'));
    expect(e.file).toBe('/nonexistent/dir/x.cf');
    expect(e.message).toMatch(/^\/nonexistent\/dir\/x\.cf: cannot read file: ENOENT/);
  });
});

describe('readCfFile', () => {
  const dir = makeTmpDir('cfg-cf-');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it('reads a file', () => {
    const p = join(dir, 'x.cf');
    writeFileSync(p, 'a = 1\n');
    const r = readCfFile(p);
    expect(r.file).toBe(p);
    expect(r.params.get('a')).toEqual({ value: '1', line: 1 });
  });
});

describe('splitList', () => {
  it('splits on comma, space, tab, CR, LF and drops empty items', () => {
    expect(splitList(' a,b  c\td\re\nf,,g ')).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    expect(splitList('')).toEqual([]);
    expect(splitList(' , ')).toEqual([]);
  });
});

describe('typed getters', () => {
  const cf = parseCf(
    [
      'empty =',
      'name = value',
      'n = 42',
      'neg = -7',
      'plus = +5',
      'hex = 0x10',
      'float = 1.5',
      'big = 2147483648',
      'max = 2147483647',
      'min = -2147483648',
      'small = -2147483649',
      'spaced = 1 2',
      'y = YES',
      'n2 = no',
      'true = true',
      'one = 1',
      'on = on',
    ].join('\n'),
    F,
  );

  it('string: value or default; min length violation names file, line and key', () => {
    expect(cfGetStr(cf, 'name', 'd')).toBe('value');
    expect(cfGetStr(cf, 'absent', 'd')).toBe('d');
    expect(cfGetStr(cf, 'empty', 'd')).toBe('');
    const e = thrownBy(ConfigError, () => cfGetStr(cf, 'empty', 'd', 1));
    expect(e.message).toBe(`${F}:1: empty: value must not be empty`);
    expect(thrownBy(ConfigError, () => cfGetStr(cf, 'name', '', 0, 3)).message).toBe(`${F}:2: name: bad string length 5 > 3`);
    expect(cfGetOptStr(cf, 'empty')).toBeUndefined();
    expect(cfGetOptStr(cf, 'absent')).toBeUndefined();
    expect(cfGetOptStr(cf, 'name')).toBe('value');
  });

  it('int: whole value decimal with optional sign, fitting int32', () => {
    expect(cfGetInt(cf, 'n', 0)).toBe(42);
    expect(cfGetInt(cf, 'neg', 0)).toBe(-7);
    expect(cfGetInt(cf, 'plus', 0)).toBe(5);
    expect(cfGetInt(cf, 'max', 0)).toBe(2147483647);
    expect(cfGetInt(cf, 'min', 0)).toBe(-2147483648);
    expect(cfGetInt(cf, 'absent', 10)).toBe(10);
    for (const [key, line] of [
      ['hex', 6],
      ['float', 7],
      ['big', 8],
      ['small', 11],
      ['spaced', 12],
      ['empty', 1],
      ['name', 2],
    ] as const) {
      const e = thrownBy(ConfigError, () => cfGetInt(cf, key, 0));
      expect(e.message).toMatch(new RegExp(`^${F}:${line}: ${key}: bad numerical configuration`));
    }
  });

  it('int: min/max checks (0 = no check), naming the key', () => {
    expect(thrownBy(ConfigError, () => cfGetInt(cf, 'neg', 0, 1)).message).toBe(`${F}:4: neg: invalid parameter value -7 < 1`);
    expect(thrownBy(ConfigError, () => cfGetInt(cf, 'n', 0, 0, 10)).message).toBe(`${F}:3: n: invalid parameter value 42 > 10`);
    expect(cfGetInt(cf, 'neg', 0, 0, 0)).toBe(-7);
  });

  it('parseIntValue never returns -0', () => {
    expect(Object.is(parseIntValue('-0', { file: F }), 0)).toBe(true);
  });

  it('bool: only yes/no, case-insensitive', () => {
    expect(cfGetBool(cf, 'y', false)).toBe(true);
    expect(cfGetBool(cf, 'n2', true)).toBe(false);
    expect(cfGetBool(cf, 'absent', true)).toBe(true);
    for (const [key, line] of [
      ['true', 15],
      ['one', 16],
      ['on', 17],
      ['empty', 1],
    ] as const) {
      const e = thrownBy(ConfigError, () => cfGetBool(cf, key, false));
      expect(e.message).toMatch(new RegExp(`^${F}:${line}: ${key}: bad boolean configuration`));
    }
  });
});
