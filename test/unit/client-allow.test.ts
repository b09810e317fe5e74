/**
 * client_allow: parsing (CIDR, bare addresses, brackets, errors naming file, line and key) and
 * matching (both families, IPv4-mapped IPv6 peers against IPv4 rules and back).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ClientAllowList,
  formatAllowRule,
  isLoopbackAddress,
  parseAllowItem,
  parseClientAllow,
} from '../../src/config/client-allow.js';
import { loadDaemonConfig } from '../../src/config/daemon-config.js';
import { ConfigError } from '../../src/config/errors.js';
import { makeTmpDir } from '../support/tmp.js';

const WHERE = { file: 'test.conf', line: 3, key: 'client_allow' };

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const list = (value: string): ClientAllowList => new ClientAllowList(parseClientAllow(value, WHERE));

describe('parsing client_allow', () => {
  it('takes IPv4 and IPv6 networks, bare addresses and bracketed IPv6, separated by commas or spaces', () => {
    expect(parseClientAllow('127.0.0.0/8, ::1/128  192.0.2.0/24,198.51.100.7 [2001:db8::]/32 [::1]', WHERE)).toEqual([
      { family: 'ipv4', network: '127.0.0.0', prefix: 8 },
      { family: 'ipv6', network: '::1', prefix: 128 },
      { family: 'ipv4', network: '192.0.2.0', prefix: 24 },
      { family: 'ipv4', network: '198.51.100.7', prefix: 32 },
      { family: 'ipv6', network: '2001:db8::', prefix: 32 },
      { family: 'ipv6', network: '::1', prefix: 128 },
    ]);
    expect(parseClientAllow('', WHERE)).toEqual([]);
    expect(parseClientAllow('0.0.0.0/0, ::/0', WHERE).map(formatAllowRule)).toEqual(['0.0.0.0/0', '::/0']);
    expect(parseClientAllow('::ffff:127.0.0.0/104', WHERE)).toEqual([{ family: 'ipv6', network: '::ffff:127.0.0.0', prefix: 104 }]);
  });

  it('refuses what is not a network, with the location and the item', () => {
    const cases: [string, RegExp][] = [
      ['localhost', /expected an IPv4 or IPv6 address/],
      ['127.1', /expected an IPv4 or IPv6 address/],
      ['010.0.0.1', /expected an IPv4 or IPv6 address/],
      ['300.0.0.0/8', /expected an IPv4 or IPv6 address/],
      ['127.0.0.0/33', /prefix length 33 is more than 32/],
      ['::1/129', /prefix length 129 is more than 128/],
      ['127.0.0.0/', /bad prefix length ''/],
      ['127.0.0.0/+8', /bad prefix length '\+8'/],
      ['127.0.0.0/8/8', /bad prefix length '8\/8'/],
      ['fe80::1%eth0', /zone index/],
      ['*', /expected an IPv4 or IPv6 address/],
    ];
    for (const [item, re] of cases) {
      const e = errorOf(() => parseClientAllow(`127.0.0.0/8, ${item}`, WHERE));
      expect(e.message, item).toMatch(/^test\.conf:3: client_allow: bad network '/);
      expect(e.problem, item).toContain(`'${item}'`);
      expect(e.problem, item).toMatch(re);
    }
  });

  it('refuses host bits past the prefix and names the network meant', () => {
    expect(errorOf(() => parseAllowItem('192.0.2.1/24', WHERE)).problem).toBe(
      "bad network '192.0.2.1/24': host bits are set; the network is 192.0.2.0/24",
    );
    expect(errorOf(() => parseAllowItem('10.1.2.3/12', WHERE)).problem).toMatch(/the network is 10\.0\.0\.0\/12$/);
    expect(errorOf(() => parseAllowItem('2001:db8::1/64', WHERE)).problem).toMatch(/the network is 2001:db8:0:0:0:0:0:0\/64$/);
    expect(errorOf(() => parseAllowItem('[::1]/64', WHERE)).problem).toMatch(/the network is \[0:0:0:0:0:0:0:0\]\/64$/);
    expect(errorOf(() => parseAllowItem('::ffff:127.0.0.1/104', WHERE)).problem).toMatch(/the network is 0:0:0:0:0:ffff:7f00:0\/104$/);
    // Bits inside the prefix are fine, at every boundary.
    expect(parseAllowItem('192.0.2.128/25', WHERE).prefix).toBe(25);
    expect(parseAllowItem('2001:db8:8000::/33', WHERE).prefix).toBe(33);
    expect(parseAllowItem('::ffff:192.0.2.1/128', WHERE).prefix).toBe(128);
  });
});

describe('matching peers', () => {
  it('IPv4 rules match IPv4 peers and IPv4-mapped IPv6 peers (dual-stack listeners)', () => {
    const l = list('127.0.0.0/8, 192.0.2.0/24');
    expect(l.allows('127.0.0.1')).toBe(true);
    expect(l.allows('127.255.255.255')).toBe(true);
    expect(l.allows('::ffff:127.0.0.1')).toBe(true);
    expect(l.allows('::ffff:7f00:2')).toBe(true);
    expect(l.allows('::FFFF:192.0.2.200')).toBe(true);
    expect(l.allows('128.0.0.1')).toBe(false);
    expect(l.allows('::ffff:10.0.0.1')).toBe(false);
    expect(l.allows('192.0.3.0')).toBe(false);
    // An IPv6 peer is not an IPv4 one by accident.
    expect(l.allows('::1')).toBe(false);
    expect(l.allows('::7f00:1')).toBe(false);
  });

  it('a bare address is one host', () => {
    const l = list('127.0.0.1, 2001:db8::5');
    expect(l.allows('127.0.0.1')).toBe(true);
    expect(l.allows('127.0.0.2')).toBe(false);
    expect(l.allows('::ffff:127.0.0.1')).toBe(true);
    expect(l.allows('2001:db8::5')).toBe(true);
    expect(l.allows('2001:db8:0:0:0:0:0:5')).toBe(true);
    expect(l.allows('2001:db8::6')).toBe(false);
  });

  it('IPv6 rules match IPv6 peers; a rule in ::ffff:0:0/96 also matches the IPv4 peers it covers', () => {
    const l = list('::1/128, 2001:db8::/32');
    expect(l.allows('::1')).toBe(true);
    expect(l.allows('2001:db8:ffff::1')).toBe(true);
    expect(l.allows('2001:db9::1')).toBe(false);
    expect(l.allows('127.0.0.1')).toBe(false);
    const mapped = list('::ffff:127.0.0.0/104');
    expect(mapped.allows('127.0.0.9')).toBe(true);
    expect(mapped.allows('::ffff:127.0.0.9')).toBe(true);
    expect(mapped.allows('10.0.0.1')).toBe(false);
  });

  it('an empty list allows nobody; /0 allows a whole family; no address or not an address is refused', () => {
    expect(list('').allows('127.0.0.1')).toBe(false);
    const v4 = list('0.0.0.0/0');
    expect(v4.allows('203.0.113.9')).toBe(true);
    expect(v4.allows('::ffff:203.0.113.9')).toBe(true);
    expect(v4.allows('2001:db8::1')).toBe(false);
    expect(list('::/0').allows('2001:db8::1')).toBe(true);
    expect(v4.allows(undefined)).toBe(false);
    expect(v4.allows('')).toBe(false);
    expect(v4.allows('example.org')).toBe(false);
  });

  it('prints the rules as written', () => {
    expect(list('127.0.0.0/8, ::1/128 , 192.0.2.7').toString()).toBe('127.0.0.0/8, ::1, 192.0.2.7');
  });
});

describe('loopback listeners', () => {
  it('127.0.0.0/8, ::1, mapped 127/8 and localhost are loopback; unspecified and others are not', () => {
    for (const a of ['127.0.0.1', '127.0.0.2', '::1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) expect(isLoopbackAddress(a), a).toBe(true);
    for (const a of ['0.0.0.0', '::', '192.0.2.1', '::ffff:192.0.2.1', 'mail.example.org', '::2']) expect(isLoopbackAddress(a), a).toBe(false);
  });
});

describe('client_allow in the daemon config', () => {
  const dir = makeTmpDir('client-allow-');
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('is read from the file and from --set (which wins); empty means unset', () => {
    const p = file('ok.conf', 'socketmap_listen = inet:0.0.0.0:0\nclient_allow = 127.0.0.0/8,\n  ::1/128\n');
    expect(loadDaemonConfig(p).clientAllow).toEqual([
      { family: 'ipv4', network: '127.0.0.0', prefix: 8 },
      { family: 'ipv6', network: '::1', prefix: 128 },
    ]);
    expect(loadDaemonConfig(p, { settings: ['client_allow=192.0.2.0/24'] }).clientAllow).toEqual([
      { family: 'ipv4', network: '192.0.2.0', prefix: 24 },
    ]);
    expect(loadDaemonConfig(p, { settings: ['client_allow='] }).clientAllow).toBeUndefined();
    expect(loadDaemonConfig(file('none.conf', 'socketmap_listen = inet:127.0.0.1:0\n')).clientAllow).toBeUndefined();
  });

  it('a bad network is a config error naming file, line and key (or the flag)', () => {
    const p = file('bad.conf', 'socketmap_listen = inet:0.0.0.0:0\n# comment\nclient_allow = 127.0.0.0/8, 192.0.2.1/24\n');
    const e = errorOf(() => loadDaemonConfig(p));
    expect(e.message).toBe(`${p}:3: client_allow: bad network '192.0.2.1/24': host bits are set; the network is 192.0.2.0/24`);
    expect({ file: e.file, line: e.line, key: e.key }).toEqual({ file: p, line: 3, key: 'client_allow' });
    const flag = errorOf(() => loadDaemonConfig(undefined, { settings: ['client_allow=10.0.0.0/40'] }));
    expect(flag.message).toBe("command line: --set client_allow: bad network '10.0.0.0/40': prefix length 40 is more than 32");
  });
});
