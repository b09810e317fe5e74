import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type DaemonOverrides, loadDaemonConfig } from '../../src/config/daemon-config.js';
import { parseListen } from '../../src/config/listen.js';
import { MAP_SETTING_DEFS, defaultMapSettings } from '../../src/config/settings.js';
import { ConfigError } from '../../src/config/errors.js';
import { makeTmpDir } from '../support/tmp.js';
import { thrownBy } from '../support/throws.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/config/', import.meta.url));
const dir = makeTmpDir('cfg-daemon-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function load(text: string, overrides?: DaemonOverrides) {
  const p = join(dir, `d${n++}.cf`);
  writeFileSync(p, text);
  return { path: p, config: loadDaemonConfig(p, overrides) };
}

function errorOf(text: string, overrides?: DaemonOverrides): { path: string; error: ConfigError } {
  const p = join(dir, `e${n++}.cf`);
  writeFileSync(p, text);
  return { path: p, error: thrownBy(ConfigError, () => loadDaemonConfig(p, overrides)) };
}

describe('parseListen', () => {
  it('accepts Postfix notation', () => {
    expect(parseListen('inet:127.0.0.1:10001')).toEqual({ kind: 'inet', host: '127.0.0.1', port: 10001 });
    expect(parseListen('inet:[::1]:10001')).toEqual({ kind: 'inet', host: '::1', port: 10001 });
    expect(parseListen('unix:/run/x.sock')).toEqual({ kind: 'unix', path: '/run/x.sock' });
    expect(parseListen('localhost:0')).toEqual({ kind: 'inet', host: 'localhost', port: 0 });
    expect(parseListen('[::]:9105')).toEqual({ kind: 'inet', host: '::', port: 9105 });
    expect(parseListen('/run/y.sock')).toEqual({ kind: 'unix', path: '/run/y.sock' });
    expect(parseListen('unix:relative.sock')).toEqual({ kind: 'unix', path: 'relative.sock' });
  });

  it('errors name the spec', () => {
    for (const [spec, re] of [
      ['inet:host', /expected host:port/],
      ['inet:::1:25', /IPv6 address in brackets/],
      ['inet:[::1]25', /expected ':port' after '\]'/],
      ['inet:[::1:25', /missing '\]'/],
      ['host:http', /bad port 'http'/],
      ['host:65536', /out of range/],
      [':25', /missing host/],
      ['unix:', /missing socket path/],
      ['', /empty/],
      ['a b:1', /whitespace/],
    ] as const) {
      const e = thrownBy(ConfigError, () => parseListen(spec, { file: 'x.cf', line: 7, key: 'socketmap_listen' }));
      expect(e.message.startsWith(`x.cf:7: socketmap_listen: invalid listen address '${spec}': `)).toBe(true);
      expect(e.message).toMatch(re);
    }
  });
});

describe('settings table', () => {
  it('has the documented defaults', () => {
    expect(defaultMapSettings()).toEqual({
      smtputf8: true,
      loopHandling: 'postfix',
      fallback: 'none',
      recipientDelimiter: '',
      propagateExtension: true,
      poolSize: 2,
      cacheTtl: 300,
      cacheNegativeTtl: 60,
      cacheMaxEntries: 100000,
      cacheMaxBytes: 67108864,
      staleIfError: 600,
      requestTimeout: 30,
      changePollInterval: 5,
      blindCacheTtl: 30,
      ldapMaxInFlight: 0,
      batchMemberFetch: false,
      rangeRetrieval: false,
    });
    for (const def of Object.values(MAP_SETTING_DEFS)) {
      expect(def.name).toMatch(/^[a-z0-9_]+$/);
      expect(def.doc.length).toBeGreaterThan(10);
    }
  });
});

describe('loadDaemonConfig: file', () => {
  it('reads the fixture', () => {
    const path = join(FIXTURES, 'daemon.cf');
    const c = loadDaemonConfig(path);
    expect(c.file).toBe(path);
    expect(c.socketmapListen).toEqual([
      { kind: 'unix', path: '/run/ldap-socketmap/socketmap.sock' },
      { kind: 'inet', host: '127.0.0.1', port: 10001 },
    ]);
    expect(c.tcpTableListen).toEqual([{ map: 'aliases', listen: { kind: 'inet', host: '127.0.0.1', port: 10002 } }]);
    expect(c.metricsListen).toEqual({ host: '127.0.0.1', port: 9105 });
    expect(c.logLevel).toBe('debug');
    expect(c.maps.map((m) => [m.name, m.file])).toEqual([
      ['aliases', resolve(FIXTURES, 'aliases.cf')],
      ['mailboxes', '/etc/postfix/ldap-mailboxes.cf'],
    ]);
    const [aliases, mailboxes] = c.maps;
    expect(aliases!.settings).toMatchObject({ cacheTtl: 300, poolSize: 4, fallback: 'address', recipientDelimiter: '+' });
    expect(mailboxes!.settings).toMatchObject({ cacheTtl: 300, poolSize: 2, fallback: 'none', recipientDelimiter: '+' });
    expect(c.warnings).toEqual([]);
  });

  it('defaults with an empty file or no file', () => {
    const { config } = load('');
    expect(config).toMatchObject({ socketmapListen: [], tcpTableListen: [], logLevel: 'info', maps: [], warnings: [] });
    expect(config.metricsListen).toBeUndefined();
    const none = loadDaemonConfig();
    expect(none.file).toBeUndefined();
    expect(none.maps).toEqual([]);
  });

  it('global settings are defaults for every map, map.NAME.SETTING overrides one map', () => {
    const { config } = load(
      [
        'map.a = /a.cf',
        'map.b = /b.cf',
        'map.a.cache_ttl = 10',
        'cache_ttl = 2h',
        'smtputf8 = NO',
        'loop_handling = Expand_Once',
        'stale_if_error = 1w',
        'map.b.request_timeout = 90s',
        'cache_negative_ttl = 0',
        'map.b.propagate_extension = no',
      ].join('\n'),
    );
    const [a, b] = config.maps;
    expect(a!.settings).toMatchObject({ cacheTtl: 10, smtputf8: false, loopHandling: 'expand_once', staleIfError: 604800 });
    expect(b!.settings).toMatchObject({ cacheTtl: 7200, requestTimeout: 90, cacheNegativeTtl: 0, propagateExtension: false });
    expect(a!.settings.propagateExtension).toBe(true);
  });

  it('duplicates: later wins with a warning', () => {
    const { path, config } = load('log_level = warn\nlog_level = error\n');
    expect(config.logLevel).toBe('error');
    expect(config.warnings).toEqual([{ file: path, line: 2, key: 'log_level', message: 'overriding earlier entry at line 1' }]);
  });

  it('metrics_listen empty = off; unix is refused', () => {
    expect(load('metrics_listen =').config.metricsListen).toBeUndefined();
    expect(load('metrics_listen = inet:[::1]:0').config.metricsListen).toEqual({ host: '::1', port: 0 });
    const { path, error } = errorOf('metrics_listen = unix:/x');
    expect(error.message).toBe(`${path}:1: metrics_listen: metrics must listen on host:port, not 'unix:/x'`);
  });

  it('relative map paths are resolved against the config file directory; ldap: prefix accepted', () => {
    const { config } = load('map.x = sub/x.cf\nmap.y = ldap:y.cf');
    expect(config.maps.map((m) => m.file)).toEqual([join(dir, 'sub/x.cf'), join(dir, 'y.cf')]);
  });
});

describe('loadDaemonConfig: errors name file, line and key', () => {
  const cases: [string, number, string, RegExp][] = [
    ['log_level = chatty', 1, 'log_level', /bad value 'chatty' \(use one of: error, warn, info, debug\)/],
    ['# c\ncache_tl = 5', 2, 'cache_tl', /unknown parameter; did you mean 'cache_ttl'\?/],
    ['server_host = x', 1, 'server_host', /unknown parameter/],
    ['map.a.b = /x', 1, 'map.a.b', /unknown map setting 'b'/],
    ['map.a = /a.cf\nmap.a.pool_siz = 2', 2, 'map.a.pool_siz', /did you mean 'pool_size'/],
    ['map.a.b.c = 1', 1, 'map.a.b.c', /bad map key/],
    ['map.a:b = /x', 1, 'map.a:b', /bad map key/],
    ['map. = /x', 1, 'map.', /bad map key/],
    ['map.a =', 1, 'map.a', /missing path/],
    ['map.a.pool_size = 2', 1, 'map.a.pool_size', /map 'a' is not declared/],
    ['map.a = /a.cf\npool_size = 0', 2, 'pool_size', /invalid parameter value 0 < 1/],
    ['pool_size = two', 1, 'pool_size', /bad numerical configuration/],
    ['cache_ttl = 5 min', 1, 'cache_ttl', /bad time value/],
    ['cache_ttl = -1', 1, 'cache_ttl', /invalid parameter value -1 < 0/],
    ['request_timeout = 0', 1, 'request_timeout', /invalid parameter value 0 < 1/],
    ['smtputf8 = true', 1, 'smtputf8', /bad boolean configuration/],
    ['fallback = all', 1, 'fallback', /use one of: none, address/],
    ['socketmap_listen = inet:x', 1, 'socketmap_listen', /invalid listen address 'inet:x'/],
    ['tcp_table_listen = inet:127.0.0.1:1', 1, 'tcp_table_listen', /expected MAPNAME=LISTEN/],
    ['tcp_table_listen = nomap=inet:127.0.0.1:1', 1, 'tcp_table_listen', /undeclared map 'nomap'/],
    [
      'map.a = /a.cf\nsocketmap_listen = inet:127.0.0.1:7\ntcp_table_listen = a=127.0.0.1:7',
      3,
      'tcp_table_listen',
      /inet:127.0.0.1:7 is used twice/,
    ],
    ['bad line', 1, '', /missing '='/],
  ];
  for (const [text, line, key, re] of cases) {
    it(`${JSON.stringify(text)} → line ${line} ${key}`, () => {
      const { path, error } = errorOf(text);
      expect(error.file).toBe(path);
      expect(error.line).toBe(line);
      if (key !== '') {
        expect(error.key).toBe(key);
        expect(error.message.startsWith(`${path}:${line}: ${key}: `)).toBe(true);
      }
      expect(error.problem).toMatch(re);
    });
  }

  it('a missing config file is an error naming it', () => {
    const e = thrownBy(ConfigError, () => loadDaemonConfig(join(dir, 'absent.cf')));
    expect(e.message).toMatch(/absent\.cf: cannot read file: ENOENT/);
  });

  it('port 0 may repeat (each gets its own port)', () => {
    expect(load('socketmap_listen = 127.0.0.1:0 127.0.0.1:0').config.socketmapListen).toHaveLength(2);
  });
});

describe('loadDaemonConfig: command-line overrides', () => {
  const base = 'socketmap_listen = inet:127.0.0.1:1\nmap.a = /a.cf\nmap.b = /b.cf\ntcp_table_listen = a=inet:127.0.0.1:2\nmetrics_listen = 127.0.0.1:3\n';

  it('flags replace the file list for their key; --map adds/replaces by name', () => {
    const { config } = load(base, {
      socketmap: ['unix:/s1, unix:/s2', 'inet:[::1]:4'],
      tcpTable: ['b=inet:127.0.0.1:5'],
      metrics: '',
      maps: ['b=rel/b2.cf', 'c=/c.cf'],
    });
    expect(config.socketmapListen).toEqual([
      { kind: 'unix', path: '/s1' },
      { kind: 'unix', path: '/s2' },
      { kind: 'inet', host: '::1', port: 4 },
    ]);
    expect(config.tcpTableListen).toEqual([{ map: 'b', listen: { kind: 'inet', host: '127.0.0.1', port: 5 } }]);
    expect(config.metricsListen).toBeUndefined();
    expect(config.maps.map((m) => [m.name, m.file])).toEqual([
      ['a', '/a.cf'],
      ['b', resolve(process.cwd(), 'rel/b2.cf')],
      ['c', '/c.cf'],
    ]);
  });

  it('absent or empty flag lists keep the file values', () => {
    const { config } = load(base, { socketmap: [], tcpTable: undefined, maps: [] });
    expect(config.socketmapListen).toEqual([{ kind: 'inet', host: '127.0.0.1', port: 1 }]);
    expect(config.tcpTableListen).toHaveLength(1);
    expect(config.metricsListen).toEqual({ host: '127.0.0.1', port: 3 });
  });

  it('--set KEY=VALUE overrides global and per-map settings and other keys', () => {
    const { config } = load(base + 'cache_ttl = 60\n', {
      settings: ['cache_ttl=120', 'map.b.pool_size = 8', 'log_level=warn'],
    });
    expect(config.maps.map((m) => m.settings.cacheTtl)).toEqual([120, 120]);
    expect(config.maps.map((m) => m.settings.poolSize)).toEqual([2, 8]);
    expect(config.logLevel).toBe('warn');
  });

  it('works without a file', () => {
    const c = loadDaemonConfig(undefined, { maps: ['x=/x.cf'], socketmap: ['inet:127.0.0.1:0'], tcpTable: ['x=127.0.0.1:0'] });
    expect(c.maps).toHaveLength(1);
    expect(c.tcpTableListen[0]!.map).toBe('x');
  });

  it('errors from flags name the flag', () => {
    const cl = (o: DaemonOverrides) => thrownBy(ConfigError, () => loadDaemonConfig(undefined, o));
    expect(cl({ socketmap: ['nope'] }).message).toBe(
      "command line: --socketmap: invalid listen address 'nope': expected host:port, inet:host:port or unix:/path",
    );
    expect(cl({ tcpTable: ['zz=127.0.0.1:1'] }).message).toBe("command line: --tcp-table: tcp_table_listen refers to undeclared map 'zz'");
    expect(cl({ metrics: 'x' }).message).toMatch(/^command line: --metrics: invalid listen address 'x'/);
    expect(cl({ maps: ['noequals'] }).message).toBe("command line: --map: expected NAME=FILE, got 'noequals'");
    expect(cl({ maps: ['bad.name=/x'] }).message).toBe("command line: --map: bad map name 'bad.name' (letters, digits, _ and - only)");
    expect(cl({ settings: ['pool_size=0'] }).message).toBe('command line: --set pool_size: invalid parameter value 0 < 1');
    expect(cl({ settings: ['bogus=1'] }).message).toMatch(/^command line: --set bogus: unknown parameter/);
    expect(cl({ settings: ['=1'] }).message).toMatch(/^command line: --set: missing key/);
    const e = cl({ settings: ['map.q.pool_size=3'] });
    expect(e.file).toBe('command line');
    expect(e.line).toBeUndefined();
    expect(e.message).toMatch(/map 'q' is not declared/);
  });
});
