import { describe, expect, it } from 'vitest';
import { compactList, findLdapTables, replaceItems, splitItems } from '../../src/migrate/tables.js';
import { parseMasterLines, parseParamLines, parseServiceParamLines } from '../../src/migrate/postconf-output.js';
import { changes, planMigration, type PostfixView } from '../../src/migrate/plan.js';

describe('finding ldap: tables in parameter values', () => {
  it('splits at commas and whitespace, keeps { } groups whole', () => {
    expect(splitItems(' a, b\tc,,\n d ').map((i) => i.text)).toEqual(['a', 'b', 'c', 'd']);
    expect(splitItems('inline:{ a=b, c=d }, ldap:/x.cf').map((i) => i.text)).toEqual(['inline:{ a=b, c=d }', 'ldap:/x.cf']);
  });

  it('finds ldap: and proxy:ldap: items, file form and main.cf-prefix form', () => {
    const v = 'permit_mynetworks, check_recipient_access proxy:ldap:/etc/postfix/a.cf,hash:/x ldap:ldapsource, reject';
    expect(findLdapTables(v).map((t) => [t.text, t.proxy, t.target, t.isFile])).toEqual([
      ['proxy:ldap:/etc/postfix/a.cf', true, '/etc/postfix/a.cf', true],
      ['ldap:ldapsource', false, 'ldapsource', false],
    ]);
    expect(findLdapTables('socketmap:inet:127.0.0.1:9054:ldap')).toEqual([]);
  });

  it('replaces items in place and compacts for master.cf -o', () => {
    const v = 'permit_mynetworks, check_recipient_access ldap:/a.cf, reject';
    const [t] = findLdapTables(v);
    const after = replaceItems(v, [{ start: t!.start, end: t!.end, text: 'socketmap:inet:127.0.0.1:9054:acc' }]);
    expect(after).toBe('permit_mynetworks, check_recipient_access socketmap:inet:127.0.0.1:9054:acc, reject');
    expect(compactList(after)).toBe('permit_mynetworks,check_recipient_access,socketmap:inet:127.0.0.1:9054:acc,reject');
  });
});

describe('postconf output', () => {
  it('parses -n, -P and -M lines', () => {
    expect([...parseParamLines('a = b c\nempty =\n')]).toEqual([['a', 'b c'], ['empty', '']]);
    expect(parseServiceParamLines('127.0.0.1:2525/inet/smtpd_sender_login_maps = ldap:/x.cf\n')).toEqual([
      { service: '127.0.0.1:2525', type: 'inet', name: 'smtpd_sender_login_maps', value: 'ldap:/x.cf' },
    ]);
    expect(parseMasterLines('virtual    unix  -       n       n       -       -       virtual -o x=y\n')).toEqual([{ service: 'virtual', type: 'unix', command: 'virtual' }]);
    expect(() => parseParamLines('garbage')).toThrow(/cannot parse/);
  });
});

function view(raw: Record<string, string>, extra: Partial<PostfixView> = {}): PostfixView {
  const m = new Map(Object.entries(raw));
  // A small stand-in for postconf -x: the defaults that matter here, then $name expanded.
  const defaults: Record<string, string> = { virtual_alias_domains: '$virtual_alias_maps', propagate_unmatched_extensions: 'canonical, virtual', smtputf8_enable: 'yes' };
  const all = new Map([...Object.entries(defaults), ...m]);
  const expand = (v: string, depth = 0): string => (depth > 10 ? v : v.replace(/\$([a-z_]+)/g, (_s, n: string) => expand(all.get(n) ?? '', depth + 1)));
  return {
    raw: m,
    expanded: new Map([...all].map(([k, v]) => [k, expand(v)])),
    services: [
      { service: 'smtp', type: 'inet', command: 'smtpd' },
      { service: 'virtual', type: 'unix', command: 'virtual' },
      { service: 'local', type: 'unix', command: 'local' },
    ],
    serviceRaw: [],
    serviceExpanded: [],
    ...extra,
  };
}

describe('the migration plan', () => {
  const L = 'inet:127.0.0.1:9054';

  it('names maps after parameters, shares one map per file, uniquifies several files in one parameter', () => {
    const p = planMigration(view({
      relay_recipient_maps: 'ldap:/m.cf',
      virtual_alias_maps: 'proxy:ldap:/a.cf, ldap:/b.cf',
      virtual_mailbox_maps: 'ldap:/m.cf',
      recipient_delimiter: '+',
    }), { listen: L });
    expect(p.maps.map((m) => [m.name, m.file, m.fallback, m.propagateExtension, m.recipientDelimiter])).toEqual([
      ['virtual_alias_maps', '/a.cf', 'address', true, '+'],
      ['virtual_alias_maps_2', '/b.cf', 'address', true, '+'],
      ['virtual_mailbox_maps', '/m.cf', 'address', false, '+'],
    ]);
    expect(p.switches.find((s) => s.name === 'relay_recipient_maps')?.after).toBe(`socketmap:${L}:virtual_mailbox_maps`);
    expect(p.switches.find((s) => s.name === 'virtual_alias_maps')?.after).toBe(`socketmap:${L}:virtual_alias_maps, socketmap:${L}:virtual_alias_maps_2`);
  });

  it('takes propagation from propagate_unmatched_extensions and smtputf8 from smtputf8_enable', () => {
    const p = planMigration(view({ virtual_alias_maps: 'ldap:/a.cf', canonical_maps: 'ldap:/c.cf', propagate_unmatched_extensions: 'virtual', smtputf8_enable: 'no' }), { listen: L });
    expect(p.maps.map((m) => [m.name, m.propagateExtension])).toEqual([['virtual_alias_maps', true], ['canonical_maps', false]]);
    expect(p.smtputf8).toBe(false);
  });

  it('keeps virtual(8)-only tables native and gives virtual(8) and local(8) their native value back', () => {
    const p = planMigration(view({ virtual_mailbox_maps: 'ldap:/m.cf', virtual_uid_maps: 'ldap:/u.cf', alias_maps: 'ldap:/al.cf' }), { listen: L });
    expect(p.native).toEqual([{ where: 'virtual_uid_maps', table: 'ldap:/u.cf', reason: expect.stringMatching(/only virtual\(8\) reads virtual_uid_maps/) }]);
    expect(p.overrides.map((o) => [o.service, o.name, o.value])).toEqual([
      ['virtual/unix', 'virtual_mailbox_maps', 'ldap:/m.cf'],
      ['local/unix', 'alias_maps', 'ldap:/al.cf'],
    ]);
    expect(p.maps.find((m) => m.name === 'alias_maps')?.fallback).toBe('none');
  });

  it('follows $name: a user parameter used in a restriction list is an access map, rewritten where it is written', () => {
    const p = planMigration(view({ my_access: 'ldap:/acc.cf', smtpd_recipient_restrictions: 'check_recipient_access $my_access, reject' }), { listen: L });
    expect(p.switches.map((s) => [s.name, s.after])).toEqual([['my_access', `socketmap:${L}:my_access`]]);
    expect(p.maps[0]).toMatchObject({ name: 'my_access', fallback: 'none', consumers: ['my_access', 'smtpd_recipient_restrictions'] });
    expect(p.warnings[0]).toMatch(/parent domains/);
  });

  it('switches master.cf -o overrides, but not a refused table in its own delivery agent', () => {
    const serviceRaw = [
      { service: 'smtp', type: 'inet', name: 'smtpd_sender_login_maps', value: 'ldap:/login.cf' },
      { service: 'virtual', type: 'unix', name: 'virtual_mailbox_maps', value: 'ldap:/m.cf' },
    ];
    const p = planMigration(view({ virtual_mailbox_maps: 'ldap:/m.cf' }, { serviceRaw, serviceExpanded: serviceRaw }), { listen: L });
    expect(p.switches.map((s) => [s.scope, s.service, s.name, s.after])).toEqual([
      ['main', undefined, 'virtual_mailbox_maps', `socketmap:${L}:virtual_mailbox_maps`],
      ['master', 'smtp/inet', 'smtpd_sender_login_maps', `socketmap:${L}:smtpd_sender_login_maps`],
    ]);
    expect(p.native.map((n) => n.where)).toEqual(['virtual/unix/virtual_mailbox_maps']);
    expect(p.overrides).toEqual([]); // virtual(8) already has its own value
  });

  it('leaves --keep parameters and the main.cf-prefix form on ldap:', () => {
    const p = planMigration(view({ transport_maps: 'ldap:/t.cf', virtual_alias_maps: 'ldap:aliases' }), { listen: L, keep: new Set(['transport_maps']) });
    expect(p.maps).toEqual([]);
    expect(p.native.map((n) => [n.where, n.reason.slice(0, 20)])).toEqual([
      ['virtual_alias_maps', 'main.cf-prefix form '],
      ['transport_maps', 'kept on ldap: (--kee'],
    ]);
  });

  it('knows when a parameter changes through $name references', () => {
    const raw = new Map([['virtual_mailbox_maps', '$mb'], ['mb', '${x}'], ['x', 'ldap:/m.cf']]);
    expect(changes('virtual_mailbox_maps', raw, new Set(['x']), new Set())).toBe(true);
    expect(changes('virtual_mailbox_maps', raw, new Set(['y']), new Set())).toBe(false);
  });
});
