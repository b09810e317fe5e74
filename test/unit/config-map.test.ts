import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCf } from '../../src/config/cf-file.js';
import { ConfigError } from '../../src/config/errors.js';
import { type MapConfig, loadMapConfig, mapConfigFromCf } from '../../src/config/map-config.js';
import { makeTmpDir } from '../support/tmp.js';
import { thrownBy } from '../support/throws.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/config/', import.meta.url));
const F = '/etc/postfix/t.cf';
const dir = makeTmpDir('cfg-map-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cfg(text: string, options?: { mode?: number; baseDir?: string }): MapConfig {
  return mapConfigFromCf(parseCf(text, F), options);
}

function messages(c: MapConfig): string[] {
  return c.warnings.map((w) => `${w.line ?? '-'} ${w.key ?? '-'}: ${w.message}`);
}

let n = 0;
function writeCf(text: string, mode = 0o600): string {
  const p = join(dir, `m${n++}.cf`);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
}

describe('worked example (§9a)', () => {
  it('loads aliases.cf: continuation keeps four spaces, server list as Postfix builds it', () => {
    const c = loadMapConfig(join(FIXTURES, 'aliases.cf'));
    expect(c.searchBase).toBe('ou=people,    dc=example,dc=com');
    expect(c.serverHost.map((s) => s.url).join(' ')).toBe('ldap://ldap1.example.com ldap://ldap2.example.com:3389');
    expect(c.serverHost).toEqual([
      { url: 'ldap://ldap1.example.com', scheme: 'ldap', host: 'ldap1.example.com', port: 389 },
      { url: 'ldap://ldap2.example.com:3389', scheme: 'ldap', host: 'ldap2.example.com', port: 3389 },
    ]);
    expect(c.queryFilter).toBe('(&(objectClass=mailUser)(mail=%s))');
    expect(c.resultAttribute).toEqual(['maildrop']);
    expect(c.specialResultAttribute).toEqual(['member']);
    expect(c.terminalResultAttribute).toEqual(['forwardTo']);
    expect(c.leafResultAttribute).toEqual([]);
    expect(c.lines).toEqual({
      server_host: 2,
      search_base: 3,
      query_filter: 5,
      result_attribute: 6,
      special_result_attribute: 7,
      terminal_result_attribute: 8,
    });
    expect(c.warnings).toEqual([]);
  });

  it('accepts a relative path', () => {
    const rel = relative(process.cwd(), join(FIXTURES, 'aliases.cf'));
    expect(rel.startsWith('/')).toBe(false);
    const c = loadMapConfig(rel);
    expect(c.file).toBe(rel);
    expect(c.searchBase).toBe('ou=people,    dc=example,dc=com');
  });

  it('a missing file is a ConfigError naming it', () => {
    const e = thrownBy(ConfigError, () => loadMapConfig(join(dir, 'nope.cf')));
    expect(e.message).toContain('nope.cf: cannot read file: ENOENT');
  });
});

describe('defaults (Debian build)', () => {
  it('has every default of §2', () => {
    const c = cfg('');
    expect(c).toMatchObject({
      file: F,
      lines: {},
      serverHost: [{ url: 'ldap://localhost:389', scheme: 'ldap', host: 'localhost', port: 389 }],
      serverPort: 389,
      timeout: 10,
      searchBase: '',
      queryFilter: '(mailacceptinggeneralid=%s)',
      resultFormat: '%s',
      resultAttribute: ['maildrop'],
      specialResultAttribute: [],
      terminalResultAttribute: [],
      leafResultAttribute: [],
      scope: 'sub',
      bind: 'simple',
      bindDn: '',
      bindPw: '',
      recursionLimit: 1000,
      expansionLimit: 0,
      sizeLimit: 0,
      dereference: 0,
      chaseReferrals: false,
      version: 3,
      startTls: false,
      tls: { requireCert: false },
      debuglevel: 0,
      warnings: [],
    });
    expect(c.domain).toBeUndefined();
  });
});

describe('server_host (§2.1)', () => {
  const hosts = (text: string) => cfg(text).serverHost;

  it('bare host gets server_port; host:port is ldap:// as is; IPv6 literal without port gets 389', () => {
    expect(hosts('server_host = a.example, b.example:636 [::1]\n\t[2001:db8::1]:1389\nserver_port = 1389')).toEqual([
      { url: 'ldap://a.example:1389', scheme: 'ldap', host: 'a.example', port: 1389 },
      { url: 'ldap://b.example:636', scheme: 'ldap', host: 'b.example', port: 636 },
      { url: 'ldap://[::1]', scheme: 'ldap', host: '::1', port: 389 },
      { url: 'ldap://[2001:db8::1]:1389', scheme: 'ldap', host: '2001:db8::1', port: 1389 },
    ]);
  });

  it('URLs: scheme case-insensitive, default ports, ldapi percent-decoded', () => {
    expect(
      hosts('server_host = LDAPS://secure.example ldap://[::1]:3389/dc=x??sub ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi Ldap://plain'),
    ).toEqual([
      { url: 'LDAPS://secure.example', scheme: 'ldaps', host: 'secure.example', port: 636 },
      { url: 'ldap://[::1]:3389/dc=x??sub', scheme: 'ldap', host: '::1', port: 3389 },
      { url: 'ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi', scheme: 'ldapi', socketPath: '/var/run/slapd/ldapi' },
      { url: 'Ldap://plain', scheme: 'ldap', host: 'plain', port: 389 },
    ]);
  });

  it('accepts <URL:…> wrapping and empty hosts (library defaults)', () => {
    expect(hosts('server_host = <URL:ldap://w.example:1234/> ldap:/// ldapi://')).toEqual([
      { url: 'ldap://w.example:1234/', scheme: 'ldap', host: 'w.example', port: 1234 },
      { url: 'ldap:///', scheme: 'ldap', host: 'localhost', port: 389 },
      { url: 'ldapi://', scheme: 'ldapi', socketPath: '/var/run/slapd/ldapi' },
    ]);
  });

  it('list separators: comma, space, tab, CR, LF', () => {
    expect(hosts('server_host = a,b c\td\re').map((s) => s.host)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('a malformed URL item is skipped with a warning', () => {
    const c = cfg('server_host = ldap://bad:99999 ldap://[::1 ldap://x/?a?nope <ldap://y ldap://good\n');
    expect(c.serverHost.map((s) => s.url)).toEqual(['ldap://good']);
    expect(c.warnings).toHaveLength(4);
    for (const w of c.warnings) {
      expect(w).toMatchObject({ file: F, line: 1, key: 'server_host' });
      expect(w.message).toMatch(/^error parsing URL .*; skipping$/);
    }
  });

  it('nothing usable left → ConfigError', () => {
    const e = thrownBy(ConfigError, () => cfg('# x\nserver_host = ldap://bad:0\n'));
    expect(e.message).toBe(`${F}:2: server_host: no usable LDAP server in the list`);
  });

  it('explicitly empty → ConfigError', () => {
    expect(thrownBy(ConfigError, () => cfg('server_host =\n')).message).toBe(`${F}:1: server_host: value must not be empty`);
  });

  it('host:port items that are no valid URL → ConfigError (Postfix would fail every lookup)', () => {
    expect(thrownBy(ConfigError, () => cfg('server_host = h:abc')).message).toMatch(/^\/etc\/postfix\/t\.cf:1: server_host: item 'h:abc'/);
    expect(thrownBy(ConfigError, () => cfg('server_host = ::1')).message).toMatch(/IPv6 address in brackets/);
  });

  it('a bare host with an unusable server_port names server_port', () => {
    const e = thrownBy(ConfigError, () => cfg('server_host = a\nserver_port = 0\n'));
    expect(e.message).toMatch(/^\/etc\/postfix\/t\.cf:2: server_port: port 0 out of range/);
    expect(cfg('server_host = ldap://a\nserver_port = 0\n').serverPort).toBe(0);
    expect(thrownBy(ConfigError, () => cfg('server_port = x\n')).key).toBe('server_port');
  });
});

describe('templates and result_format', () => {
  it('result_format empty/unset falls back to result_filter, then %s', () => {
    expect(cfg('result_format = %u').resultFormat).toBe('%u');
    expect(cfg('result_filter = %d').resultFormat).toBe('%d');
    expect(cfg('result_format =\nresult_filter = smtp:[%d]').resultFormat).toBe('smtp:[%d]');
    expect(cfg('result_format = %s\nresult_filter =').resultFormat).toBe('%s');
    expect(thrownBy(ConfigError, () => cfg('result_filter =')).message).toBe(`${F}:1: result_filter: value must not be empty`);
  });

  it('invalid % codes are ConfigErrors naming the key; fixed query_filter warns', () => {
    expect(thrownBy(ConfigError, () => cfg('x = 1\nquery_filter = (mail=%x)')).message).toMatch(
      /^\/etc\/postfix\/t\.cf:2: query_filter: invalid template: unknown expansion '%x'/,
    );
    expect(thrownBy(ConfigError, () => cfg('search_base = dc=%')).message).toMatch(/search_base: invalid template: lone '%'/);
    expect(thrownBy(ConfigError, () => cfg('result_filter = %q')).key).toBe('result_filter');
    expect(messages(cfg('query_filter = (objectClass=*)'))).toEqual([
      '1 query_filter: fixed query_filter (objectClass=*) is probably useless',
    ]);
    expect(cfg('query_filter = (mail=%u@%9)\nsearch_base = o=%%,dc=%1\nresult_format = %S%U%D').warnings).toEqual([]);
  });
});

describe('scalar parameters', () => {
  it('scope: case-insensitive; other → warning + sub; empty → error', () => {
    expect(cfg('scope = ONE').scope).toBe('one');
    expect(cfg('scope = Base').scope).toBe('base');
    const c = cfg('scope = subtree');
    expect(c.scope).toBe('sub');
    expect(messages(c)).toEqual(["1 scope: unrecognized value 'subtree' for scope; using sub"]);
    expect(thrownBy(ConfigError, () => cfg('scope =')).message).toBe(`${F}:1: scope: value must not be empty`);
  });

  it('bind: yes/simple, no/none, sasl case-insensitive; other fatal', () => {
    expect(cfg('bind = YES').bind).toBe('simple');
    expect(cfg('bind = simple').bind).toBe('simple');
    expect(cfg('bind = No').bind).toBe('none');
    expect(cfg('bind = none').bind).toBe('none');
    const sasl = cfg('bind = SASL\nsasl_mechs = plain external\nsasl_realm = R\nsasl_authz_id = dn:uid=x');
    expect(sasl.bind).toBe('sasl');
    expect(sasl.sasl).toEqual({ mechs: ['PLAIN', 'EXTERNAL'], realm: 'R', authzId: 'dn:uid=x', minSsf: 0 });
    expect(thrownBy(ConfigError, () => cfg('bind = maybe')).message).toMatch(/^\/etc\/postfix\/t\.cf:1: bind: unsupported parameter value 'maybe'/);
    expect(thrownBy(ConfigError, () => cfg('bind =')).key).toBe('bind');
  });

  it('bind = sasl: mechanisms we cannot perform or no mechanism are refused at startup; a minimum SSF is a warning', () => {
    const gssapi = thrownBy(ConfigError, () => cfg('a = 1\nbind = SASL\nsasl_mechs = GSSAPI EXTERNAL'));
    expect(gssapi.message).toMatch(/^\/etc\/postfix\/t\.cf:3: sasl_mechs: SASL mechanism GSSAPI is not supported .*use sasl_mechs = EXTERNAL over ldapi/);
    expect(thrownBy(ConfigError, () => cfg('bind = sasl')).message).toMatch(/^\/etc\/postfix\/t\.cf:1: bind: bind = sasl needs sasl_mechs/);
    expect(messages(cfg('bind = sasl\nsasl_mechs = EXTERNAL\nsasl_minssf = 56'))).toEqual([
      expect.stringMatching(/^3 sasl_minssf: 56 is not enforced, as Postfix's own ldap: table does not enforce it either/),
    ]);
    expect(thrownBy(ConfigError, () => cfg('bind = sasl\nsasl_mechs = EXTERNAL\nsasl_minssf = 5000')).message).toMatch(/^\/etc\/postfix\/t\.cf:3: sasl_minssf: /);
    expect(cfg('bind = sasl\nsasl_mechs = scram-sha-256,DIGEST-MD5').sasl?.mechs).toEqual(['SCRAM-SHA-256', 'DIGEST-MD5']);
  });

  it('sasl_* parameters are known (no unknown warning) and not parsed without bind = sasl', () => {
    expect(cfg('sasl_mechs = PLAIN\nsasl_realm = R\nsasl_authz_id = a\nsasl_minssf = lots').warnings).toEqual([]);
  });

  it('timeout: any int, including 0 and negative', () => {
    expect(cfg('timeout = 0').timeout).toBe(0);
    expect(cfg('timeout = -3').timeout).toBe(-3);
    expect(thrownBy(ConfigError, () => cfg('timeout = 5s')).message).toMatch(/^\/etc\/postfix\/t\.cf:1: timeout: bad numerical/);
  });

  it('recursion_limit < 1 → error', () => {
    expect(cfg('recursion_limit = 1').recursionLimit).toBe(1);
    expect(thrownBy(ConfigError, () => cfg('recursion_limit = 0')).message).toBe(`${F}:1: recursion_limit: invalid parameter value 0 < 1`);
    expect(thrownBy(ConfigError, () => cfg('recursion_limit = -1')).key).toBe('recursion_limit');
  });

  it('size_limit defaults to expansion_limit', () => {
    expect(cfg('expansion_limit = 50')).toMatchObject({ expansionLimit: 50, sizeLimit: 50 });
    expect(cfg('expansion_limit = 50\nsize_limit = 7')).toMatchObject({ expansionLimit: 50, sizeLimit: 7 });
    expect(cfg('size_limit = 7')).toMatchObject({ expansionLimit: 0, sizeLimit: 7 });
  });

  it('dereference: 0..3; out of range → warning + 0', () => {
    expect(cfg('dereference = 3').dereference).toBe(3);
    const c = cfg('dereference = 4');
    expect(c.dereference).toBe(0);
    expect(messages(c)).toEqual(['1 dereference: unrecognized value 4 for dereference; using 0']);
    expect(cfg('dereference = -1').dereference).toBe(0);
  });

  it('chase_referrals, start_tls, tls_require_cert are strict booleans', () => {
    expect(cfg('chase_referrals = yes').chaseReferrals).toBe(true);
    expect(thrownBy(ConfigError, () => cfg('chase_referrals = true')).message).toMatch(/chase_referrals: bad boolean configuration/);
    expect(thrownBy(ConfigError, () => cfg('start_tls = 1')).key).toBe('start_tls');
    expect(thrownBy(ConfigError, () => cfg('tls_require_cert = on')).key).toBe('tls_require_cert');
  });

  it('debuglevel is an int', () => {
    expect(cfg('debuglevel = 255').debuglevel).toBe(255);
    expect(thrownBy(ConfigError, () => cfg('debuglevel = all')).key).toBe('debuglevel');
  });
});

describe('version', () => {
  it('defaults to 3 (Debian), accepts 2 and 3', () => {
    expect(cfg('').version).toBe(3);
    expect(cfg('version = 2').version).toBe(2);
    expect(cfg('version = 3').version).toBe(3);
  });

  it('other than 2/3 → warning, 2; below 2 → error', () => {
    const c = cfg('version = 4');
    expect(c.version).toBe(2);
    expect(messages(c)).toEqual([
      '1 version: unknown version 4, using 2',
      '1 version: ldap-socketmap always speaks LDAP version 3 (Postfix would use version 2; servers that refuse version 2 binds answer Postfix differently)',
    ]);
    expect(thrownBy(ConfigError, () => cfg('version = 1')).message).toBe(`${F}:1: version: invalid parameter value 1 < 2`);
    expect(thrownBy(ConfigError, () => cfg('version = 0')).key).toBe('version');
  });

  it('settings we do not act on are said at startup, never silently ignored', () => {
    expect(messages(cfg('debuglevel = 1'))[0]).toMatch(/^1 debuglevel: /);
    // Followed since referral chasing exists (test/integration/referrals.test.ts): nothing to say.
    expect(messages(cfg('chase_referrals = yes'))).toEqual([]);
    expect(messages(cfg('chase_referrals = no\ndebuglevel = 0'))).toEqual([]);
  });

  it('a non-ldap URL scheme forces 3 with a warning', () => {
    const c = cfg('version = 2\nserver_host = ldap://a ldaps://b ldapi://');
    expect(c.version).toBe(3);
    expect(messages(c)).toEqual(['2 server_host: URL scheme ldaps requires protocol version 3; using 3']);
  });

  it('start_tls = yes forces 3 with a warning', () => {
    const c = cfg('version = 2\nstart_tls = yes');
    expect(c.version).toBe(3);
    expect(c.startTls).toBe(true);
    expect(messages(c)).toEqual(['2 start_tls: start_tls requires protocol version 3; using 3']);
    expect(cfg('start_tls = yes').warnings).toEqual([]);
  });
});

describe('attribute lists', () => {
  it('split on comma/space; empty value = empty list', () => {
    const c = cfg('result_attribute = mail, maildrop\tuid\nspecial_result_attribute = member,memberURL\nleaf_result_attribute = l\nterminal_result_attribute =');
    expect(c.resultAttribute).toEqual(['mail', 'maildrop', 'uid']);
    expect(c.specialResultAttribute).toEqual(['member', 'memberURL']);
    expect(c.leafResultAttribute).toEqual(['l']);
    expect(c.terminalResultAttribute).toEqual([]);
    expect(cfg('result_attribute =').resultAttribute).toEqual([]);
  });
});

describe('cache and tls parameters', () => {
  it('cache, cache_expiry, cache_size: accepted with a warning, still syntax-checked', () => {
    const c = cfg('cache = yes\ncache_expiry = 30\ncache_size = 1024');
    expect(c.warnings.map((w) => [w.line, w.key])).toEqual([
      [1, 'cache'],
      [2, 'cache_expiry'],
      [3, 'cache_size'],
    ]);
    expect(c.warnings[0]!.message).toMatch(/ignored/);
    expect(thrownBy(ConfigError, () => cfg('cache = maybe')).key).toBe('cache');
    expect(thrownBy(ConfigError, () => cfg('cache_size = big')).key).toBe('cache_size');
  });

  it('tls settings are passed through; empty = unset', () => {
    const c = cfg(
      'start_tls = yes\ntls_ca_cert_file = /ca.pem\ntls_ca_cert_dir = /certs\ntls_cert = /c.pem\ntls_key = /k.pem\ntls_cipher_suite = HIGH\ntls_require_cert = yes',
    );
    expect(c.tls).toEqual({
      caCertFile: '/ca.pem',
      caCertDir: '/certs',
      cert: '/c.pem',
      key: '/k.pem',
      cipherSuite: 'HIGH',
      requireCert: true,
    });
    expect(c.warnings).toEqual([]);
    expect(cfg('start_tls = yes\ntls_cert =').tls).toEqual({ requireCert: false });
  });

  it('tls_random_file is accepted with a warning', () => {
    expect(messages(cfg('start_tls = yes\ntls_random_file = /dev/urandom'))).toEqual([
      '2 tls_random_file: ignored (Node.js does not need a random seed file)',
    ]);
  });

  it('tls settings without start_tls or ldaps warn that they are ignored', () => {
    expect(messages(cfg('tls_ca_cert_file = /ca.pem'))).toEqual([
      '1 tls_ca_cert_file: TLS settings apply only with start_tls = yes or an ldaps:// server; ignored',
    ]);
    expect(cfg('server_host = ldaps://x\ntls_ca_cert_file = /ca.pem').warnings).toEqual([]);
  });
});

describe('unknown parameters', () => {
  it('warn (with a suggestion) but do not fail', () => {
    const c = cfg('serch_base = dc=x\nfrobnicate = 1\nServer_Host = x');
    expect(messages(c)).toEqual([
      "1 serch_base: unknown parameter, ignored (as Postfix does); did you mean 'search_base'?",
      '2 frobnicate: unknown parameter, ignored (as Postfix does)',
      "3 Server_Host: unknown parameter, ignored (as Postfix does); did you mean 'server_host'?",
    ]);
    expect(c.searchBase).toBe('');
    expect(c.lines).toEqual({ serch_base: 1, frobnicate: 2, Server_Host: 3 });
  });
});

describe('domain', () => {
  it('unset or empty → no restriction', () => {
    expect(cfg('domain =').domain).toBeUndefined();
  });

  it('items, negation, first match wins, case-insensitive exact', () => {
    const c = cfg('domain = !bad.example.com, Example.COM sub.example.com\n  !!double.example');
    const d = c.domain!;
    expect(d.items).toEqual([
      { name: 'bad.example.com', negate: true },
      { name: 'example.com', negate: false },
      { name: 'sub.example.com', negate: false },
      { name: 'double.example', negate: false },
    ]);
    expect(d.match('EXAMPLE.com')).toBe(true);
    expect(d.match('bad.example.com')).toBe(false);
    expect(d.match('x.example.com')).toBe(false); // no parent-domain matching
    expect(d.match('double.example')).toBe(true);
    expect(d.match('other')).toBe(false);
  });

  it('type:table items are unsupported → ConfigError naming the key', () => {
    const e = thrownBy(ConfigError, () => cfg('a = 1\ndomain = example.com, hash:/etc/postfix/domains'));
    expect(e.message).toMatch(/^\/etc\/postfix\/t\.cf:2: domain: lookup table item 'hash:\/etc\/postfix\/domains' is not supported/);
    expect(thrownBy(ConfigError, () => cfg('domain = !ldap:/etc/x.cf')).key).toBe('domain');
  });

  it("'!' without pattern → ConfigError", () => {
    expect(thrownBy(ConfigError, () => cfg('domain = a, !')).message).toMatch(/domain: .*no pattern after '!'/);
  });

  it('/path items read more items from a file', () => {
    const c = cfg(`domain = first.example ${join(FIXTURES, 'domains.txt')}`);
    const d = c.domain!;
    expect(d.items).toEqual([
      { name: 'first.example', negate: false },
      { name: 'example.com', negate: false },
      { name: 'example.net', negate: false },
      { name: 'blocked.example.org', negate: true },
      { name: 'other.example.org', negate: false },
    ]);
    expect(d.match('example.NET')).toBe(true);
    expect(d.match('blocked.example.org')).toBe(false);
  });

  it('an unreadable /path is a ConfigError naming the key', () => {
    const e = thrownBy(ConfigError, () => cfg('domain = /nonexistent/domains'));
    expect(e.message).toMatch(/^\/etc\/postfix\/t\.cf:1: domain: cannot read domain list file \/nonexistent\/domains: ENOENT/);
  });
});

describe('passwords', () => {
  it('bind_pw is read; a world-readable file with bind_pw warns, without the password', () => {
    const p = writeCf('bind_dn = cn=postfix\nbind_pw = s3cr3t\n', 0o644);
    const c = loadMapConfig(p);
    expect(c.bindPw).toBe('s3cr3t');
    expect(c.bindDn).toBe('cn=postfix');
    expect(c.warnings).toHaveLength(1);
    expect(c.warnings[0]).toMatchObject({ file: p, line: 2, key: 'bind_pw' });
    expect(c.warnings[0]!.message).toMatch(/bind_pw_file/);
    expect(JSON.stringify(c.warnings)).not.toContain('s3cr3t');
    expect(loadMapConfig(writeCf('bind_pw = s3cr3t\n', 0o640)).warnings).toEqual([]);
  });

  it('bind_pw_file: read, one trailing newline stripped, relative to the .cf directory', () => {
    writeFileSync(join(dir, 'pw'), 'pa ss\n\n');
    chmodSync(join(dir, 'pw'), 0o600);
    expect(loadMapConfig(writeCf('bind_pw_file = pw\n')).bindPw).toBe('pa ss\n');
    writeFileSync(join(dir, 'pw2'), 'abc\r\n');
    chmodSync(join(dir, 'pw2'), 0o600);
    const c = loadMapConfig(writeCf(`bind_pw_file = ${join(dir, 'pw2')}\n`));
    expect(c.bindPw).toBe('abc');
    expect(c.warnings).toEqual([]);
    expect(c.lines.bind_pw_file).toBe(1);
  });

  it('bind_pw_file readable by others warns', () => {
    writeFileSync(join(dir, 'pw3'), 'x');
    chmodSync(join(dir, 'pw3'), 0o644);
    const c = loadMapConfig(writeCf('bind_pw_file = pw3\n'));
    expect(c.warnings.map((w) => w.key)).toEqual(['bind_pw_file']);
    expect(c.warnings[0]!.message).toMatch(/readable by other users/);
  });

  it('unreadable bind_pw_file → error naming the key; both set → error', () => {
    const e = thrownBy(ConfigError, () => loadMapConfig(writeCf('a = 1\nbind_pw_file = missing-pw\n')));
    expect(e.key).toBe('bind_pw_file');
    expect(e.line).toBe(2);
    expect(e.message).toMatch(/cannot read password file .*missing-pw: ENOENT/);
    const both = thrownBy(ConfigError, () => cfg('bind_pw = s3cr3t\nbind_pw_file = /x'));
    expect(both.message).toBe(`${F}:2: bind_pw_file: bind_pw and bind_pw_file are both set; use only one`);
    expect(both.message).not.toContain('s3cr3t');
  });

  it('the password never appears in any error or warning', () => {
    const secret = 'Tr0ub4dor&3';
    const texts = [
      `bind_pw = ${secret}\nbind_pw = ${secret}x\n`,
      `bind_pw = ${secret}\nscope = weird\nversion = 9\n`,
      `  bind_pw = ${secret}\n`,
    ];
    for (const t of texts) {
      const c = loadMapConfig(writeCf(t, 0o644));
      expect(JSON.stringify(c.warnings)).not.toContain(secret);
    }
    const e = thrownBy(ConfigError, () => loadMapConfig(writeCf(`bind_pw = x\n${secret}\n`)));
    expect(e.message).not.toContain(secret);
  });
});
