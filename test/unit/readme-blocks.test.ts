/** The rules by which the README's ```sh demo blocks are read and their output compared. */
import { describe, expect, it } from 'vitest';
import { demoExamples, mismatch } from '../support/readme-blocks.js';

const md = [
  'Intro.',
  '```sh',
  '$ not run: plain sh block',
  '```',
  '```sh demo',
  '$ postmap -q a socketmap:inet:127.0.0.1:9054:aliases',
  'alice@example.org',
  '$ ldap-socketmap serve --socketmap inet:127.0.0.1:9054 \\',
  '    --map aliases=/etc/postfix/ldap-aliases.cf',
  '```',
  '```',
  '$ not run either',
  '```',
].join('\n');

describe('demoExamples', () => {
  it('takes only ```sh demo blocks, joins continuation lines, keeps the expected output', () => {
    expect(demoExamples(md)).toEqual([
      { line: 6, command: 'postmap -q a socketmap:inet:127.0.0.1:9054:aliases', expected: ['alice@example.org'] },
      { line: 8, command: 'ldap-socketmap serve --socketmap inet:127.0.0.1:9054 --map aliases=/etc/postfix/ldap-aliases.cf', expected: [] },
    ]);
  });

  it('refuses text before the first command and an unclosed block', () => {
    expect(() => demoExamples('```sh demo\noutput first\n$ x\n```')).toThrow(/line 2/);
    expect(() => demoExamples('```sh demo\n$ x\n')).toThrow(/not closed/);
  });
});

describe('mismatch', () => {
  it('matches line by line, times normalized', () => {
    expect(mismatch(['a', '  2.85 ms: 1 entry', 'took 3.1 s'], 'a\n  0.4 ms: 1 entry\ntook 12 s\n')).toBeUndefined();
    expect(mismatch(['  2.85 ms: 1 entry'], '  0.4 ms: 2 entries\n')).toMatch(/README: .*\nactual: /);
  });

  it('"…" inside a line is any text, "..." alone skips lines', () => {
    expect(mismatch(['x …/migration/y'], 'x /tmp/w/migration/y\n')).toBeUndefined();
    expect(mismatch(['first', '...', 'last'], 'first\n1\n2\nlast\n')).toBeUndefined();
    expect(mismatch(['first', '...'], 'first\nmore\n')).toBeUndefined();
    expect(mismatch(['first', '...', 'last'], 'first\n1\n')).toBeDefined();
  });

  it('output beyond what is shown, or missing, is a mismatch; no output matches no lines', () => {
    expect(mismatch(['a'], 'a\nb\n')).toMatch(/goes on/);
    expect(mismatch(['a', 'b'], 'a\n')).toMatch(/ended/);
    expect(mismatch([], '')).toBeUndefined();
    expect(mismatch([], 'x\n')).toBeDefined();
  });
});
