import { describe, expect, it } from 'vitest';
import { keyAssertions, keyFromValue, staticBase } from '../../src/verify/filter-keys.js';
import { parseKeyFile, recipientsFromLog, uniqueKeys, variantsOf } from '../../src/verify/key-variants.js';
import { postmapAnswer, sameAnswer, socketmapAnswer, type Answer } from '../../src/verify/answer.js';
import { addressChain, postfixExtension, propagateExtension } from '../../src/verify/fallback-oracle.js';
import { progressLine, renderSummaryTable, newTally } from '../../src/verify/report.js';

describe('keys from a query_filter', () => {
  it('finds equality assertions with key codes', () => {
    expect(keyAssertions('(&(objectClass=*)(listName=%u))')).toEqual([{ attribute: 'listName', pattern: '%u' }]);
    expect(keyAssertions('(|(mail=%s)(mailAlias=%s)(cn~=%s)(uid>=%u)(x=100%%))')).toEqual([
      { attribute: 'mail', pattern: '%s' }, { attribute: 'mailAlias', pattern: '%s' },
    ]);
    expect(keyAssertions('(&(mail=%u@%d)(active=TRUE))')).toEqual([{ attribute: 'mail', pattern: '%u@%d' }]);
  });

  it('turns attribute values back into keys', () => {
    expect(keyFromValue('%s', 'Alice@Example.org')).toBe('Alice@Example.org');
    expect(keyFromValue('%u', 'sales')).toBe('sales');
    expect(keyFromValue('%u@%d', 'bob@example.org')).toBe('bob@example.org');
    expect(keyFromValue('%d', 'example.org')).toBe('example.org');
    expect(keyFromValue('smtp:[%d]', 'smtp:[relay.example]')).toBe('relay.example');
    expect(keyFromValue('%u@%d', 'no-at-sign')).toBeUndefined();
    expect(keyFromValue('%u@%2.%1', 'a@example.org')).toBe('a');
  });

  it('searches the code-free part of a search_base', () => {
    expect(staticBase('ou=%d,ou=Domains,dc=example,dc=org')).toBe('ou=Domains,dc=example,dc=org');
    expect(staticBase('ou=People,dc=example,dc=org')).toBe('ou=People,dc=example,dc=org');
  });
});

describe('key variants and sources', () => {
  it('adds case variants, an extension and misses, without repeats', () => {
    expect(variantsOf('alice@example.org', { delimiter: '+-', missToken: 'zz' })).toEqual([
      'alice@example.org', 'ALICE@EXAMPLE.ORG', 'Alice@Example.Org', 'alice+zz@example.org', 'zz@example.org',
    ]);
    expect(variantsOf('sales', { delimiter: '', missToken: 'zz' })).toEqual(['sales', 'SALES', 'Sales', 'saleszz']);
    expect(uniqueKeys(['a', '', 'a', '-', 'b', 'x\ny'])).toEqual(['a', 'b']);
  });

  it('reads key files and mail log recipients', () => {
    expect(parseKeyFile('# keys\na@x\n\nb@x\r\n')).toEqual(['a@x', 'b@x']);
    const log = 'Jan 1 postfix/virtual[1]: 1234: to=<alice@example.org>, orig_to=<sales@example.org>, relay=virtual, status=sent\n' +
      'Jan 1 postfix/smtp[2]: 5678: to=<x@elsewhere.net>, relay=none, status=deferred\n';
    expect(recipientsFromLog(log)).toEqual(['alice@example.org', 'sales@example.org', 'x@elsewhere.net']);
  });
});

describe('answers', () => {
  it('classifies postmap -q like Postfix 3.7 prints it', () => {
    expect(postmapAnswer(0, null, 'a@x,b@x\n', '')).toEqual({ kind: 'found', value: 'a@x,b@x' });
    expect(postmapAnswer(1, null, '', 'postmap: warning: dict_ldap_get_values[1]: DN x not found, skipping\n')).toEqual({ kind: 'notfound' });
    expect(postmapAnswer(1, null, '', 'postmap: fatal: table ldap:/x.cf: query error: Operation now in progress\n').kind).toBe('temp');
    expect(postmapAnswer(1, null, '', 'postmap: fatal: open /nope: No such file\n').kind).toBe('error');
    expect(postmapAnswer(null, 'SIGKILL', '', '').kind).toBe('error');
  });

  it('reads socketmap replies', () => {
    expect(socketmapAnswer('OK a@x')).toEqual({ kind: 'found', value: 'a@x' });
    expect(socketmapAnswer('NOTFOUND ')).toEqual({ kind: 'notfound' });
    expect(socketmapAnswer('TIMEOUT slow').kind).toBe('temp');
    expect(socketmapAnswer('PERM unknown map').kind).toBe('error');
  });

  it('compares values byte for byte, other outcomes by kind', () => {
    expect(sameAnswer({ kind: 'found', value: 'a' }, { kind: 'found', value: 'a' })).toBe(true);
    expect(sameAnswer({ kind: 'found', value: 'a' }, { kind: 'found', value: 'a ' })).toBe(false);
    expect(sameAnswer({ kind: 'temp', detail: 'x' }, { kind: 'temp', detail: 'y' })).toBe(true);
    expect(sameAnswer({ kind: 'notfound' }, { kind: 'temp', detail: 'y' })).toBe(false);
  });
});

describe('the native address chain for fallback = address maps', () => {
  it('splits extensions as split_addr() does', () => {
    expect(postfixExtension('alice+tag', '+')).toEqual({ bare: 'alice', ext: '+tag' });
    expect(postfixExtension('+tag', '+')).toBeUndefined();
    expect(postfixExtension('owner-list', '-')).toBeUndefined();
    expect(postfixExtension('list-request', '-+')).toBeUndefined();
    expect(postfixExtension('Postmaster', '+')).toBeUndefined();
    expect(propagateExtension('a@x,b,c@d@y', '+t')).toBe('a+t@x,b+t,c@d+t@y');
  });

  it('asks the full key, then without extension, then @domain, and stops at a temporary error', async () => {
    const table: Record<string, Answer> = {
      'list@x.org': { kind: 'found', value: 'a@x.org,b@y.org' },
      '@c.org': { kind: 'found', value: 'catchall@c.org' },
      'bad@t.org': { kind: 'temp', detail: 'down' },
    };
    const asked: string[] = [];
    const lookup = async (k: string) => { asked.push(k); return table[k.toLowerCase()] ?? { kind: 'notfound' as const }; };
    expect(await addressChain('List+Tag@x.org', { delimiter: '+', propagate: true }, lookup)).toEqual({ kind: 'found', value: 'a+Tag@x.org,b+Tag@y.org' });
    expect(asked).toEqual(['List+Tag@x.org', 'List@x.org']);
    expect(await addressChain('list+t@x.org', { delimiter: '+', propagate: false }, lookup)).toEqual({ kind: 'found', value: 'a@x.org,b@y.org' });
    asked.length = 0;
    expect(await addressChain('who@c.org', { delimiter: '+', propagate: true }, lookup)).toEqual({ kind: 'found', value: 'catchall@c.org' });
    expect(asked).toEqual(['who@c.org', '@c.org']);
    asked.length = 0;
    expect((await addressChain('bad+x@t.org', { delimiter: '+', propagate: true }, async (k) => { asked.push(k); return k === 'bad@t.org' ? { kind: 'temp', detail: 'down' } : { kind: 'notfound' }; })).kind).toBe('temp');
    expect(asked).toEqual(['bad+x@t.org', 'bad@t.org']);
    expect(await addressChain('bare', { delimiter: '+', propagate: true }, lookup)).toEqual({ kind: 'notfound' });
  });
});

describe('report', () => {
  it('renders the summary table and a progress line', () => {
    const t = newTally('aliases', '/a.cf', 'none');
    Object.assign(t, { keys: 3, asked: 3, equal: 2, different: 1, found: 2, notfound: 1 });
    const text = renderSummaryTable([t]);
    expect(text.split('\n')[0]).toMatch(/^map\s+keys\s+asked\s+equal\s+differ\s+found\s+notfound\s+temp\s+error$/);
    expect(text).toMatch(/^aliases\s+3\s+3\s+2\s+1\s+2\s+1\s+0\s+0$/m);
    expect(text).toMatch(/^total\s+3\s+3\s+2\s+1/m);
    expect(progressLine(5, 10, 1, 2500, 10)).toBe('[#####.....] 5/10 keys, 1 difference, 2.5 s');
  });
});
