import { describe, expect, it } from 'vitest';
import { compileTemplates, TemplateError, type Templates } from '../../src/template/templates.js';

const T = (queryFilter: string, searchBase = '', resultFormat = '%s'): Templates =>
  compileTemplates({ searchBase, queryFilter, resultFormat });

const buf = (s: string): Buffer => Buffer.from(s, 'utf8');
const str = (b: Buffer | undefined): string | undefined => (b === undefined ? undefined : b.toString('utf8'));

/** Postfix result assembly (spec §5): expand every value, drop skipped ones, join with ','. */
function joinResults(t: Templates, key: string, values: string[]): string {
  return values
    .map((v) => t.expandResult(buf(v), key))
    .filter((v): v is Buffer => v !== undefined)
    .map((v) => v.toString('utf8'))
    .join(',');
}

describe('query expansion codes', () => {
  const key = 'john.doe@mail.example.com';

  it('%s %S whole key; %u %U localpart; %d %D domain; %% literal', () => {
    const t = T('%s|%S|%u|%U|%d|%D|%%|100%%');
    expect(t.suppressReason(key)).toBeUndefined();
    expect(t.expandFilter(key)).toBe(
      'john.doe@mail.example.com|john.doe@mail.example.com|john.doe|john.doe|mail.example.com|mail.example.com|%|100%',
    );
  });

  it('%1..%3 count labels from the right', () => {
    const t = T('(&(c=%1)(b=%2)(a=%3))');
    expect(t.expandFilter('user@mail.example.com')).toBe('(&(c=com)(b=example)(a=mail))');
  });

  it('%u/%d use the LAST @', () => {
    const t = T('(&(u=%u)(d=%d))');
    expect(t.expandFilter('"a@b"@c.d')).toBe('(&(u="a@b")(d=c.d))');
    expect(t.expandFilter('a@b@c')).toBe('(&(u=a@b)(d=c))');
  });

  it('%u of a key without @ is the whole key', () => {
    const t = T('(uid=%u)');
    expect(t.suppressReason('john')).toBeUndefined();
    expect(t.expandFilter('john')).toBe('(uid=john)');
  });

  it('%u of a key ending in @ is the localpart', () => {
    const t = T('(uid=%u)');
    expect(t.suppressReason('john@')).toBeUndefined();
    expect(t.expandFilter('john@')).toBe('(uid=john)');
  });

  it('expandBase and expandFilter use independent parts', () => {
    const t = T('(mail=%s)', 'ou=%d,dc=example');
    expect(t.expandBase('a@b')).toBe('ou=b,dc=example');
    expect(t.expandFilter('a@b')).toBe('(mail=a@b)');
  });

  it('non-ASCII keys are substituted as they are', () => {
    const t = T('(mail=%s)', 'dc=%1');
    const key = 'j\u00fcrgen@b\u00fccher.de';
    expect(t.expandFilter(key)).toBe('(mail=j\u00fcrgen@b\u00fccher.de)');
    expect(t.expandBase(key)).toBe('dc=de');
  });

  it('works for many keys in a row (no stale per-key state)', () => {
    const t = T('(&(u=%u)(d=%d)(t=%1))', 'ou=%2');
    const keys = ['a@x.y', 'b@p.q.r', 'a@x.y', 'c,d@e f.g'];
    const expected = [
      ['ou=x', '(&(u=a)(d=x.y)(t=y))'],
      ['ou=q', '(&(u=b)(d=p.q.r)(t=r))'],
      ['ou=x', '(&(u=a)(d=x.y)(t=y))'],
      ['ou=e\\20f', '(&(u=c,d)(d=e f.g)(t=g))'],
    ];
    keys.forEach((k, i) => {
      expect([t.expandBase(k), t.expandFilter(k)]).toEqual(expected[i]);
    });
  });
});

describe('escaping of substitutions (spec §3.3)', () => {
  it('filter: key a*b(c)@x with (mail=%s)', () => {
    expect(T('(mail=%s)').expandFilter('a*b(c)@x')).toBe('(mail=a\\2Ab\\28c\\29@x)');
  });

  it('filter: every code is escaped, template text and %% are not', () => {
    const t = T('(|(a=%u)(b=%d)(c=%1)(d=%S)(e=*%%*))');
    expect(t.expandFilter('x*y@(p).q\\r')).toBe(
      '(|(a=x\\2Ay)(b=\\28p\\29.q\\5Cr)(c=q\\5Cr)(d=x\\2Ay@\\28p\\29.q\\5Cr)(e=*%*))',
    );
  });

  it('base: ou=%d,dc=example with key a@b,c', () => {
    expect(T('(mail=%s)', 'ou=%d,dc=example').expandBase('a@b,c')).toBe('ou=b\\2Cc,dc=example');
  });

  it('base: DN specials escaped everywhere, "=" and template text not', () => {
    const t = T('(mail=%s)', 'cn=%u, ou=%1 ,dc=%%+x');
    expect(t.expandBase(' a+b=c;"#<>\t\\ @ex.co m ')).toBe(
      'cn=\\20a\\2Bb=c\\3B\\22\\23\\3C\\3E\\09\\5C\\20, ou=co\\20m\\20 ,dc=%+x',
    );
  });

  it('filter escaping does not touch DN specials and vice versa', () => {
    const t = T('(mail=%s)', 'cn=%s');
    expect(t.expandFilter('a,b c')).toBe('(mail=a,b c)');
    expect(t.expandBase('a*(b)')).toBe('cn=a*(b)');
  });
});

describe('domain labels (%1-%9): split on ".", empty pieces dropped', () => {
  const t = T('(&(a=%1)(b=%2)(c=%3))');

  it('a..b.com yields labels a, b, com', () => {
    expect(t.suppressReason('u@a..b.com')).toBeUndefined();
    expect(t.expandFilter('u@a..b.com')).toBe('(&(a=com)(b=b)(c=a))');
  });

  it('leading and trailing dots are dropped', () => {
    expect(t.suppressReason('u@.a.b.com.')).toBeUndefined();
    expect(t.expandFilter('u@.a.b.com.')).toBe('(&(a=com)(b=b)(c=a))');
    expect(t.expandFilter('u@...x..y...z...')).toBe('(&(a=z)(b=y)(c=x))');
  });

  it('too few non-empty labels suppresses the search', () => {
    expect(t.suppressReason('u@b.com')).toBe('domain has fewer than 3 labels (%3 used)');
    expect(t.suppressReason('u@a..com')).toBe('domain has fewer than 3 labels (%3 used)');
    expect(t.suppressReason('u@.')).toBe('domain has fewer than 3 labels (%3 used)');
    expect(t.suppressReason('u@...')).toBe('domain has fewer than 3 labels (%3 used)');
  });

  it('the highest %N over all three templates counts', () => {
    const u = compileTemplates({ searchBase: 'dc=%1', queryFilter: '(mail=%s)', resultFormat: '%s@%4' });
    expect(u.suppressReason('x@a.b.c')).toBe('domain has fewer than 4 labels (%4 used)');
    expect(u.suppressReason('x@a.b.c.d')).toBeUndefined();
    expect(u.expandBase('x@a.b.c.d')).toBe('dc=d');
    expect(str(u.expandResult(buf('v'), 'x@a.b.c.d'))).toBe('v@a');
  });

  it('%9 works', () => {
    const u = T('%9%8%1');
    expect(u.expandFilter('x@1.2.3.4.5.6.7.8.9')).toBe('129');
    expect(u.suppressReason('x@2.3.4.5.6.7.8.9')).toBe('domain has fewer than 9 labels (%9 used)');
  });
});

describe('suppression (spec §3.4)', () => {
  it('(mail=%u@%d) table', () => {
    const t = T('(mail=%u@%d)');
    expect(t.suppressReason('john@example.com')).toBeUndefined();
    expect(t.expandFilter('john@example.com')).toBe('(mail=john@example.com)');
    expect(t.suppressReason('john')).toBe('key has no domain part (%d used)');
    expect(t.suppressReason('@example.com')).toBe('empty localpart (%u used)');
    expect(t.suppressReason('john@')).toBe('key has no domain part (%d used)');
    expect(t.suppressReason('')).toBe('empty key');
  });

  it('empty key is suppressed even with only %s', () => {
    expect(T('(mail=%s)').suppressReason('')).toBe('empty key');
    expect(T('(mail=%s)').suppressReason('x')).toBeUndefined();
  });

  it('%s and %S alone accept any non-empty key', () => {
    const t = T('(|(a=%s)(b=%S))', 'o=%S', '%S:%s');
    for (const k of ['john', '@example.com', 'john@', '@', 'a@b']) expect(t.suppressReason(k)).toBeUndefined();
  });

  it('%u alone: key without @ and key ending in @ are fine, leading @ is not', () => {
    const t = T('(uid=%u)');
    expect(t.suppressReason('john')).toBeUndefined();
    expect(t.suppressReason('john@')).toBeUndefined();
    expect(t.suppressReason('@example.com')).toBe('empty localpart (%u used)');
    expect(t.suppressReason('@')).toBe('empty localpart (%u used)');
    expect(t.suppressReason('a@@b')).toBeUndefined();
    expect(t.expandFilter('a@@b')).toBe('(uid=a@)');
  });

  it('%U in a query template behaves as %u', () => {
    const t = T('(uid=%U)');
    expect(t.suppressReason('@x')).toBe('empty localpart (%U used)');
    expect(t.suppressReason('x')).toBeUndefined();
  });

  it('%D and %1 in a query template need a domain', () => {
    expect(T('(d=%D)').suppressReason('john')).toBe('key has no domain part (%D used)');
    expect(T('(d=%1)').suppressReason('john@')).toBe('key has no domain part (%1 used)');
    expect(T('(d=%D)').suppressReason('@example.com')).toBeUndefined();
  });

  it('flags from search_base restrict the query too', () => {
    const t = T('(mail=%s)', 'ou=%u,dc=%d');
    expect(t.suppressReason('john')).toBe('key has no domain part (%d used)');
    expect(t.suppressReason('@x')).toBe('empty localpart (%u used)');
  });

  it('result_format = %U@relay.%D with (mail=%s): key john is never searched', () => {
    const t = T('(mail=%s)', '', '%U@relay.%D');
    expect(t.suppressReason('john')).toBe('key has no domain part (%D used)');
    expect(t.suppressReason('@example.com')).toBe('empty localpart (%U used)');
    expect(t.suppressReason('john@example.com')).toBeUndefined();
  });

  it('%1-%9 in result_format need a domain', () => {
    const t = T('(mail=%s)', '', '%s via %2');
    expect(t.suppressReason('john')).toBe('key has no domain part (%2 used)');
    expect(t.suppressReason('john@com')).toBe('domain has fewer than 2 labels (%2 used)');
    expect(t.suppressReason('john@example.com')).toBeUndefined();
  });

  it('%u, %d, %s in result_format do not restrict the key', () => {
    const t = T('(mail=%s)', '', '%u and %d and %s');
    for (const k of ['john', '@example.com', 'john@']) expect(t.suppressReason(k)).toBeUndefined();
  });

  it('%% does not count as a code', () => {
    const t = T('(a=%%d%%u%%1)', '%%D');
    for (const k of ['john', '@x', 'john@']) expect(t.suppressReason(k)).toBeUndefined();
    expect(t.expandFilter('john')).toBe('(a=%d%u%1)');
    expect(t.expandBase('john')).toBe('%D');
  });

  it('expand* refuse a suppressed key (Postfix would panic)', () => {
    const t = T('(mail=%u@%d)');
    expect(() => t.expandFilter('john')).toThrow(/suppressed/);
    expect(() => t.expandBase('john')).toThrow(/suppressed/);
  });
});

describe('dynamicBase and fixedFilter', () => {
  it('dynamicBase: any data code in search_base', () => {
    expect(T('(a=%s)', 'dc=example,dc=com').dynamicBase).toBe(false);
    expect(T('(a=%s)', '').dynamicBase).toBe(false);
    expect(T('(a=%s)', 'o=100%%').dynamicBase).toBe(false);
    for (const c of ['s', 'S', 'u', 'U', 'd', 'D', '1', '9']) {
      expect(T('(a=%s)', `ou=%${c}`).dynamicBase).toBe(true);
    }
  });

  it('dynamicBase ignores codes in other templates', () => {
    expect(T('(a=%d)', 'dc=x', '%D').dynamicBase).toBe(false);
  });

  it('fixedFilter: query_filter without a data code', () => {
    expect(T('(objectClass=*)').fixedFilter).toBe(true);
    expect(T('(a=100%%)').fixedFilter).toBe(true);
    expect(T('(a=%s)').fixedFilter).toBe(false);
    expect(T('(a=%1)').fixedFilter).toBe(false);
    expect(T('(a=b)', 'ou=%s', '%S').fixedFilter).toBe(true);
  });

  it('the default query_filter', () => {
    const t = T('(mailacceptinggeneralid=%s)');
    expect(t.fixedFilter).toBe(false);
    expect(t.expandFilter('postmaster@example.com')).toBe('(mailacceptinggeneralid=postmaster@example.com)');
  });
});

describe('result_format (spec §5)', () => {
  const key = 'john@example.com';
  const values = ['A@Example.COM', 'b'];

  it('%s -> A@Example.COM,b', () => {
    expect(joinResults(T('(mail=%s)', '', '%s'), key, values)).toBe('A@Example.COM,b');
  });
  it('%u -> A,b', () => {
    expect(joinResults(T('(mail=%s)', '', '%u'), key, values)).toBe('A,b');
  });
  it('%d -> Example.COM (b skipped)', () => {
    expect(joinResults(T('(mail=%s)', '', '%d'), key, values)).toBe('Example.COM');
  });
  it('smtp:[%d] -> smtp:[Example.COM]', () => {
    expect(joinResults(T('(mail=%s)', '', 'smtp:[%d]'), key, values)).toBe('smtp:[Example.COM]');
  });
  it('%s OK -> A@Example.COM OK,b OK', () => {
    expect(joinResults(T('(mail=%s)', '', '%s OK'), key, values)).toBe('A@Example.COM OK,b OK');
  });

  it('key codes: %S %U %D %1 %2 and %%', () => {
    const t = T('(mail=%s)', '', '%S|%U|%D|%1|%2|%%|%s');
    expect(str(t.expandResult(buf('v@w'), 'john@mail.example.com'))).toBe(
      'john@mail.example.com|john|mail.example.com|com|example|%|v@w',
    );
  });

  it('%U of a key without @ is the whole key', () => {
    const t = T('(mail=%s)', '', '%U:%s');
    expect(str(t.expandResult(buf('v'), 'john'))).toBe('john:v');
  });

  it('no escaping in result values', () => {
    const t = T('(mail=%s)', '', '%s<%S>%u');
    expect(str(t.expandResult(buf('a*(b),c\\d e'), 'k*(,)@x'))).toBe('a*(b),c\\d e<k*(,)@x>a*(b),c\\d e');
  });

  it('skips empty values', () => {
    for (const f of ['%s', 'x%s', 'const', '%u', '%S']) {
      expect(T('(mail=%s)', '', f).expandResult(Buffer.alloc(0), key)).toBeUndefined();
    }
  });

  it('%d: skips values without @ or with nothing after the last @', () => {
    const t = T('(mail=%s)', '', 'relay:%d');
    expect(t.expandResult(buf('b'), key)).toBeUndefined();
    expect(t.expandResult(buf('b@'), key)).toBeUndefined();
    expect(t.expandResult(buf('x@b@'), key)).toBeUndefined();
    expect(str(t.expandResult(buf('@b'), key))).toBe('relay:b');
    expect(str(t.expandResult(buf('x@y@z'), key))).toBe('relay:z');
  });

  it('%u: skips values whose last @ is the first character', () => {
    const t = T('(mail=%s)', '', 'user:%u');
    expect(t.expandResult(buf('@b'), key)).toBeUndefined();
    expect(t.expandResult(buf('@'), key)).toBeUndefined();
    expect(str(t.expandResult(buf('b@'), key))).toBe('user:b');
    expect(str(t.expandResult(buf('b'), key))).toBe('user:b');
    expect(str(t.expandResult(buf('@a@b'), key))).toBe('user:@a');
  });

  it('%u and %d together', () => {
    const t = T('(mail=%s)', '', '%d!%u');
    expect(t.expandResult(buf('@b'), key)).toBeUndefined();
    expect(t.expandResult(buf('a@'), key)).toBeUndefined();
    expect(t.expandResult(buf('a'), key)).toBeUndefined();
    expect(str(t.expandResult(buf('a@b'), key))).toBe('b!a');
  });

  it('%s alone has no value-side requirement', () => {
    const t = T('(mail=%s)', '', '<%s>');
    for (const v of ['@', '@b', 'b@', 'b']) expect(str(t.expandResult(buf(v), key))).toBe(`<${v}>`);
  });

  it('cuts values at the first NUL (C string), then applies the empty check', () => {
    const plain = T('(mail=%s)');
    expect(str(plain.expandResult(Buffer.from('abc\0def'), key))).toBe('abc');
    expect(plain.expandResult(Buffer.from('\0def'), key)).toBeUndefined();
    const fmt = T('(mail=%s)', '', '%d');
    expect(fmt.expandResult(Buffer.from('a\0@b'), key)).toBeUndefined();
    expect(str(fmt.expandResult(Buffer.from('a@b\0@c'), key))).toBe('b');
  });

  it('works on bytes: values that are not valid UTF-8 pass through unchanged', () => {
    const raw = Buffer.from([0xff, 0x40, 0xfe, 0x80]); // "\xff@\xfe\x80"
    const plain = T('(mail=%s)');
    expect(plain.expandResult(raw, key)).toBe(raw);
    const t = T('(mail=%s)', '', '[%u][%d][%s]');
    expect(t.expandResult(raw, key)).toEqual(
      Buffer.concat([buf('['), Buffer.from([0xff]), buf(']['), Buffer.from([0xfe, 0x80]), buf(']['), raw, buf(']')]),
    );
  });

  it('non-ASCII key and literal text are inserted as UTF-8', () => {
    const t = T('(mail=%s)', '', '\u2192%S %D');
    expect(str(t.expandResult(buf('v'), 'j\u00fcrgen@b\u00fccher.de'))).toBe('\u2192j\u00fcrgen@b\u00fccher.de b\u00fccher.de');
  });

  it('plain %s returns the very same buffer (no copy), or a zero-copy view when cut at NUL', () => {
    const t = T('(mail=%s)');
    expect(t.resultIsPlain).toBe(true);
    const v = buf('a@b');
    expect(t.expandResult(v, key)).toBe(v);
    const w = Buffer.from('ab\0c');
    const cut = t.expandResult(w, key)!;
    expect(cut.buffer).toBe(w.buffer);
    expect(cut.byteOffset).toBe(w.byteOffset);
    expect(cut.length).toBe(2);
  });

  it('resultIsPlain only for exactly "%s"', () => {
    expect(T('(a=%s)', '', '%s').resultIsPlain).toBe(true);
    expect(T('(a=%s)', '', '%s ').resultIsPlain).toBe(false);
    expect(T('(a=%s)', '', '%u').resultIsPlain).toBe(false);
    expect(T('(a=%s)', '', '%S').resultIsPlain).toBe(false);
    expect(T('(a=%s)', '', '%%s').resultIsPlain).toBe(false);
    expect(str(T('(a=%s)', '', '%%s').expandResult(buf('v'), key))).toBe('%s');
  });

  it('an empty result_format is treated as the result_filter default %s', () => {
    const t = T('(a=%s)', '', '');
    expect(t.resultIsPlain).toBe(true);
    expect(str(t.expandResult(buf('v'), key))).toBe('v');
  });

  it('expandResult key codes refuse a suppressed key', () => {
    const t = T('(mail=%s)', '', '%D');
    expect(() => t.expandResult(buf('v'), 'john')).toThrow(/suppressed/);
  });
});

describe('invalid templates (Postfix: fatal "Invalid ... template")', () => {
  const expectError = (fn: () => unknown, param: string, re: RegExp): void => {
    let err: unknown;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TemplateError);
    expect(err).toBeInstanceOf(Error);
    expect((err as TemplateError).param).toBe(param);
    expect((err as TemplateError).name).toBe('TemplateError');
    expect((err as TemplateError).message).toMatch(re);
  };

  const badQueryCodes = ['%x', '%0', '%a', '%e', '%t', '%F', '%L', '%-', '% ', '%@', '%{s}', '%\u00e9'];
  for (const code of badQueryCodes) {
    it(`query_filter with ${JSON.stringify(code)}`, () => {
      expectError(() => T(`(mail=${code})`), 'query_filter', /Invalid query template/);
    });
    it(`search_base with ${JSON.stringify(code)}`, () => {
      expectError(() => T('(mail=%s)', `ou=${code}`), 'search_base', /Invalid query template/);
    });
    it(`result_format with ${JSON.stringify(code)}`, () => {
      expectError(() => T('(mail=%s)', '', `x${code}`), 'result_format', /Invalid result template/);
    });
  }

  it('trailing lone % in each template', () => {
    expectError(() => T('(mail=%s)%'), 'query_filter', /lone "%"/);
    expectError(() => T('(mail=%s)', 'dc=%'), 'search_base', /lone "%"/);
    expectError(() => T('(mail=%s)', '', '%s%'), 'result_format', /lone "%"/);
    expectError(() => T('%'), 'query_filter', /lone "%"/);
  });

  it('odd runs of % : %%% is invalid, %%%% is fine', () => {
    expectError(() => T('(a=%%%'), 'query_filter', /lone "%"/);
    expectError(() => T('(a=%%%)'), 'query_filter', /"%\)"/);
    expectError(() => T('(a=%%%x)'), 'query_filter', /"%x"/);
    expect(T('(a=%%%%)').expandFilter('k')).toBe('(a=%%)');
  });

  it('the message names the template and the offending code', () => {
    expectError(() => T('(mail=%s)(x=%q)'), 'query_filter', /"\(mail=%s\)\(x=%q\)".*"%q"/);
  });

  it('search_base is checked before query_filter, query_filter before result_format', () => {
    expectError(() => T('(a=%x)', 'ou=%x', '%x'), 'search_base', /Invalid/);
    expectError(() => T('(a=%x)', '', '%x'), 'query_filter', /Invalid/);
  });
});
