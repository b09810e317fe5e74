/**
 * Entries whose attribute descriptions repeat (389-ds sends `description;lang-en` once for each
 * requested name that selects it) keep every copy, in the server's order, for the lookup to walk
 * as dict_ldap does; entries without repeats are walked as ldapts builds them.
 */
import { Attribute, BerReader, BerWriter, SearchEntry } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { attributesInOrder } from '../../src/ldap/ldapts-fixes.js';

/** An attribute as ldapts reads it off the wire (binary values are kept only by parse()). */
function parsed(type: string, values: (string | Buffer)[]): Attribute {
  const w = new BerWriter();
  new Attribute({ type, values: values as string[] }).write(w);
  const a = new Attribute();
  a.parse(new BerReader(w.buffer));
  return a;
}

function entry(attrs: [string, (string | Buffer)[]][], requested: string[]) {
  const e = new SearchEntry({ messageId: 1, name: 'uid=p,dc=example,dc=org', attributes: attrs.map(([type, values]) => parsed(type, values)) });
  return e.toObject(requested, []);
}

describe('attributesInOrder', () => {
  it('keeps a repeated attribute twice, where the server put each copy', () => {
    const e = entry([['description;lang-en', ['d-en']], ['description;lang-fr', ['d-fr']], ['mail', ['m@x']], ['description;lang-en', ['d-en']]], ['description', 'mail', 'description;lang-en']);
    expect(attributesInOrder(e)).toEqual([
      ['description;lang-en', ['d-en']],
      ['description;lang-fr', ['d-fr']],
      ['mail', ['m@x']],
      ['description;lang-en', ['d-en']],
    ]);
    // The keyed object still answers by name (ldapts' last copy).
    expect(e['description;lang-en']).toBe('d-en');
  });

  it('binary values of a repeated attribute stay Buffers', () => {
    const bin = Buffer.from([0, 1, 2, 255]);
    const e = entry([['userCertificate;binary', [bin]], ['cn', ['x']], ['userCertificate;binary', [bin]]], ['userCertificate;binary', 'cn']);
    const got = attributesInOrder(e);
    expect(got.map(([k]) => k)).toEqual(['userCertificate;binary', 'cn', 'userCertificate;binary']);
    expect(got[2]![1]).toEqual([bin]);
  });

  it('an entry without repeats is walked in key order, requested but absent names included (empty)', () => {
    const e = entry([['mail', ['a@x', 'b@x']], ['cn', ['x']]], ['mail', 'cn', 'uid']);
    expect(attributesInOrder(e)).toEqual([['mail', ['a@x', 'b@x']], ['cn', 'x'], ['uid', []]]);
  });
});
