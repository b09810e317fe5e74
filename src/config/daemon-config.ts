/**
 * The daemon's own configuration file. Same syntax as Postfix `.cf` files (parseCf): comment
 * lines, continuation lines, `name = value`, later duplicates win. Unlike ldap_table files,
 * unknown keys are errors here: this is our file, so typos must fail.
 *
 *   socketmap_listen = unix:/run/ldap-socketmap/socketmap.sock, inet:127.0.0.1:10001
 *   tcp_table_listen = aliases=inet:127.0.0.1:10002
 *   metrics_listen   = 127.0.0.1:9105
 *   log_level        = info
 *   map.aliases      = /etc/postfix/ldap-aliases.cf
 *   map.mailboxes    = /etc/postfix/ldap-mailboxes.cf
 *   cache_ttl        = 5m                   # default for every map
 *   map.aliases.pool_size = 4               # this map only
 *
 * Command-line values override the file (see DaemonOverrides).
 */
import { dirname, resolve } from 'node:path';
import {
  asciiLower,
  checkRange,
  isSpace,
  parseBoolValue,
  readCfFile,
  splitList,
} from './cf-file.js';
import { ConfigError, type ConfigWarning, type ConfigWhere } from './errors.js';
import { closestName } from './map-config.js';

/* ----------------------------------------------------------------------------------------- */
/* Listen addresses                                                                            */
/* ----------------------------------------------------------------------------------------- */

export type Listen = { kind: 'inet'; host: string; port: number } | { kind: 'unix'; path: string };

/**
 * Parses a listen address in Postfix notation: `inet:host:port`, `inet:[::1]:port`,
 * `unix:/path`, bare `host:port` / `[::1]:port` (= inet) or a bare absolute path (= unix).
 * Port 0 (let the OS choose) is allowed. Errors name the spec; `where` says where it came from.
 */
export function parseListen(spec: string, where: ConfigWhere = { file: 'listen address' }): Listen {
  const fail = (reason: string): never => {
    throw new ConfigError(`invalid listen address '${spec}': ${reason}`, where);
  };
  if (spec === '') fail('empty');
  for (const ch of spec) if (isSpace(ch)) fail('contains whitespace');
  if (/^unix:/i.test(spec)) {
    const path = spec.slice(5);
    if (path === '') fail('missing socket path after unix:');
    return { kind: 'unix', path };
  }
  if (spec.startsWith('/')) return { kind: 'unix', path: spec };
  const rest = /^inet:/i.test(spec) ? spec.slice(5) : spec;
  let host: string;
  let portText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) return fail("missing ']' after IPv6 address");
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (!after.startsWith(':')) return fail("expected ':port' after ']'");
    portText = after.slice(1);
    if (host === '') fail('empty IPv6 address');
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon < 0) return fail('expected host:port, inet:host:port or unix:/path');
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
    if (host.includes(':')) fail('write an IPv6 address in brackets, e.g. inet:[::1]:10001');
    if (host === '') fail('missing host (use 0.0.0.0 or [::] for all addresses)');
  }
  if (!/^[0-9]+$/.test(portText)) fail(`bad port '${portText}'`);
  const port = Number(portText);
  if (port > 65535) fail(`port ${port} out of range 0..65535`);
  return { kind: 'inet', host, port };
}

export function formatListen(l: Listen): string {
  if (l.kind === 'unix') return `unix:${l.path}`;
  return l.host.includes(':') ? `inet:[${l.host}]:${l.port}` : `inet:${l.host}:${l.port}`;
}

/* ----------------------------------------------------------------------------------------- */
/* Per-map settings: one table of definitions                                                 */
/* ----------------------------------------------------------------------------------------- */

export interface MapSettings {
  /** Fold non-ASCII keys with Unicode full case folding (Postfix smtputf8_enable = yes). */
  smtputf8: boolean;
  /** How group loops are expanded: like Postfix (until recursion_limit) or each DN once. */
  loopHandling: 'postfix' | 'expand_once';
  /** Emulate Postfix's fixed-table address search order (extension, @domain, …). */
  fallback: 'none' | 'address';
  /** Postfix recipient_delimiter (each character is a delimiter), for fallback = address. */
  recipientDelimiter: string;
  /** With fallback = address: append the unmatched extension to the addresses of an answer
   *  found without it (Postfix propagate_unmatched_extensions, default on for virtual/canonical). */
  propagateExtension: boolean;
  /** LDAP connections per map. */
  poolSize: number;
  /** Seconds a found result is cached (0 = not cached). */
  cacheTtl: number;
  /** Seconds a not-found result is cached (0 = not cached). */
  cacheNegativeTtl: number;
  /** Maximum number of cached results per map. */
  cacheMaxEntries: number;
  /** Maximum bytes of cached results per map. */
  cacheMaxBytes: number;
  /** Seconds an expired entry may still be served while LDAP fails (0 = never). */
  staleIfError: number;
  /** Seconds one lookup may take in total before the daemon answers with a temporary error. */
  requestTimeout: number;
  /** Seconds between polls of the directory's change marker (0 = no change watcher for this map). */
  changePollInterval: number;
  /** LDAP searches in flight at once on the map's connection pool (0 = 32 per connection). */
  ldapMaxInFlight: number;
  /** Fetch member DNs in batches of entryDN searches (OpenLDAP, detected; exact per-DN fallback). */
  batchMemberFetch: boolean;
  /** Fetch the remaining ranges of ranged values (AD's MaxValRange); off = Postfix's answer. */
  rangeRetrieval: boolean;
}

interface SettingCommon {
  /** The name in the configuration file (`NAME` or `map.MAP.NAME`). */
  name: string;
  doc: string;
}
export interface BoolSettingDef extends SettingCommon {
  kind: 'bool';
  default: boolean;
}
export interface NumberSettingDef extends SettingCommon {
  /** int: plain integer; seconds: integer with optional unit s, m, h, d or w. */
  kind: 'int' | 'seconds';
  default: number;
  min: number;
  max?: number;
}
export interface StringSettingDef extends SettingCommon {
  kind: 'string';
  default: string;
}
export interface EnumSettingDef<T extends string = string> extends SettingCommon {
  kind: 'enum';
  default: T;
  values: readonly T[];
}
export type SettingDef = BoolSettingDef | NumberSettingDef | StringSettingDef | EnumSettingDef;

type DefFor<T> = [T] extends [boolean]
  ? BoolSettingDef
  : [T] extends [number]
    ? NumberSettingDef
    : [T] extends [string]
      ? string extends T
        ? StringSettingDef
        : EnumSettingDef<T>
      : never;

/** All per-map settings. To add one: add a field to MapSettings and an entry here. */
export const MAP_SETTING_DEFS: { readonly [K in keyof MapSettings]: DefFor<MapSettings[K]> } = {
  smtputf8: {
    name: 'smtputf8',
    kind: 'bool',
    default: true,
    doc: 'fold non-ASCII keys with Unicode case folding, like Postfix with smtputf8_enable = yes',
  },
  loopHandling: {
    name: 'loop_handling',
    kind: 'enum',
    default: 'postfix',
    values: ['postfix', 'expand_once'],
    doc: 'postfix: expand group loops until recursion_limit like Postfix; expand_once: expand each DN once per lookup',
  },
  fallback: {
    name: 'fallback',
    kind: 'enum',
    default: 'none',
    values: ['none', 'address'],
    doc: "none: look up the key only; address: emulate Postfix's fixed-table address search order",
  },
  recipientDelimiter: {
    name: 'recipient_delimiter',
    kind: 'string',
    default: '',
    doc: 'Postfix recipient_delimiter, used by fallback = address',
  },
  propagateExtension: {
    name: 'propagate_extension',
    kind: 'bool',
    default: true,
    doc: 'with fallback = address, append an unmatched address extension to the result like cleanup does for virtual/canonical maps',
  },
  poolSize: { name: 'pool_size', kind: 'int', default: 2, min: 1, doc: 'LDAP connections per map' },
  cacheTtl: { name: 'cache_ttl', kind: 'seconds', default: 300, min: 0, doc: 'seconds to cache found results (0 = off)' },
  cacheNegativeTtl: {
    name: 'cache_negative_ttl',
    kind: 'seconds',
    default: 60,
    min: 0,
    doc: 'seconds to cache not-found results (0 = off)',
  },
  cacheMaxEntries: { name: 'cache_max_entries', kind: 'int', default: 100000, min: 1, doc: 'maximum cached results per map' },
  cacheMaxBytes: { name: 'cache_max_bytes', kind: 'int', default: 67108864, min: 1, doc: 'maximum cached bytes per map' },
  staleIfError: {
    name: 'stale_if_error',
    kind: 'seconds',
    default: 600,
    min: 0,
    doc: 'seconds past expiry a cached result may be served while LDAP fails (0 = never)',
  },
  requestTimeout: {
    name: 'request_timeout',
    kind: 'seconds',
    default: 30,
    min: 1,
    doc: 'seconds one lookup may take before the answer is a temporary error',
  },
  changePollInterval: {
    name: 'change_poll_interval',
    kind: 'seconds',
    default: 5,
    min: 0,
    max: 86400,
    doc: 'seconds between polls of the directory change marker (contextCSN or modifyTimestamp); cached answers a change touched are expired (0 = off)',
  },
  ldapMaxInFlight: {
    name: 'ldap_max_in_flight',
    kind: 'int',
    default: 0,
    min: 0,
    doc: 'LDAP searches in flight at once per connection pool; more wait in a queue for at most the map timeout (0 = 32 x pool_size)',
  },
  batchMemberFetch: {
    name: 'batch_member_fetch',
    kind: 'bool',
    default: false,
    doc: "fetch a list's member DNs with a few subtree searches on OpenLDAP's entryDN instead of one base search each (detected at run time; every DN not answered exactly gets its own base search)",
  },
  rangeRetrieval: {
    name: 'range_retrieval',
    kind: 'bool',
    default: false,
    doc: "fetch the rest of an attribute a server sent in ranges (Active Directory's MaxValRange, 1500: member;range=0-1499); off answers from the first range, as Postfix does (logged and counted either way)",
  },
};

const SETTING_PROPS = Object.keys(MAP_SETTING_DEFS) as (keyof MapSettings)[];
const SETTING_BY_NAME = new Map<string, keyof MapSettings>(SETTING_PROPS.map((p) => [MAP_SETTING_DEFS[p].name, p]));

export function defaultMapSettings(): MapSettings {
  const out: Record<string, unknown> = {};
  for (const p of SETTING_PROPS) out[p] = MAP_SETTING_DEFS[p].default;
  return out as unknown as MapSettings;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Parses a setting value according to its definition. */
export function parseSettingValue(def: SettingDef, text: string, where: ConfigWhere): boolean | number | string {
  switch (def.kind) {
    case 'bool':
      return parseBoolValue(text, where);
    case 'string':
      return text;
    case 'enum': {
      const v = asciiLower(text);
      if (!def.values.includes(v)) {
        throw new ConfigError(`bad value '${text}' (use one of: ${def.values.join(', ')})`, where);
      }
      return v;
    }
    case 'int':
    case 'seconds': {
      const m = def.kind === 'int' ? /^([+-]?[0-9]+)$/.exec(text) : /^([+-]?[0-9]+)([smhdw]?)$/i.exec(text);
      if (m === null) {
        throw new ConfigError(
          def.kind === 'int'
            ? `bad numerical configuration: '${text}' is not a decimal integer`
            : `bad time value '${text}' (use seconds, or a number with unit s, m, h, d or w)`,
          where,
        );
      }
      const unit = m[2] !== undefined && m[2] !== '' ? UNIT_SECONDS[m[2].toLowerCase()]! : 1;
      const n = Number(m[1]) * unit;
      if (!Number.isSafeInteger(n)) throw new ConfigError(`bad numerical configuration: '${text}' is out of range`, where);
      if (n < def.min) throw new ConfigError(`invalid parameter value ${n} < ${def.min}`, where);
      if (def.max !== undefined) checkRange(n, where, 0, def.max);
      return n === 0 ? 0 : n;
    }
  }
}

/* ----------------------------------------------------------------------------------------- */
/* The daemon configuration                                                                   */
/* ----------------------------------------------------------------------------------------- */

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export interface MapDeclaration {
  name: string;
  /** Path of the ldap_table .cf file (relative paths resolved against the config file's
   *  directory, or the current directory for --map). */
  file: string;
  settings: MapSettings;
}

export interface DaemonConfig {
  file?: string;
  socketmapListen: Listen[];
  tcpTableListen: { map: string; listen: Listen }[];
  metricsListen?: { host: string; port: number };
  logLevel: LogLevel;
  maps: MapDeclaration[];
  warnings: ConfigWarning[];
  /** Daemon-wide limits; absent means the defaults (defaultDaemonLimits()). */
  limits?: DaemonLimits;
  /** Who may connect to the Unix sockets the daemon creates (unix_socket_mode/owner/group). */
  unixSocket?: UnixSocketSettings;
}

export interface UnixSocketSettings {
  mode: number;
  /** User and group names or numeric ids; undefined leaves what the process creates. */
  owner?: string;
  group?: string;
}

/** Command-line values. A flag given (non-empty) replaces the file's value for that key. */
export interface DaemonOverrides {
  /** `NAME=FILE`; adds or replaces maps by name (--map). */
  maps?: string[];
  /** Listen specs (--socketmap); each element may itself be a comma/space separated list. */
  socketmap?: string[];
  /** `NAME=LISTEN` (--tcp-table). */
  tcpTable?: string[];
  /** `host:port`, or '' to turn metrics off (--metrics). */
  metrics?: string;
  /** `KEY=VALUE` with any key valid in the file, e.g. `cache_ttl=60` or `map.aliases.pool_size=4` (--set). */
  settings?: string[];
}

/** Flag names used in error messages for command-line values. */
export const FLAG_NAMES = {
  maps: '--map',
  socketmap: '--socketmap',
  tcpTable: '--tcp-table',
  metrics: '--metrics',
  settings: '--set',
} as const;

/* ----------------------------------------------------------------------------------------- */
/* Daemon-wide limits (top-level keys only; they protect the process, not one map)            */
/* ----------------------------------------------------------------------------------------- */

export interface DaemonLimits {
  /** Largest socketmap request payload / tcp_table request line, in bytes. */
  maxRequestSize: number;
  /** Client connections open at once, all listeners together; more are answered TEMP and closed. */
  maxConnections: number;
  /** Seconds a client connection may stay silent between requests. */
  idleTimeout: number;
  /** Seconds a started request may take to arrive completely (slowloris guard). */
  requestReadTimeout: number;
}

export const DAEMON_LIMIT_DEFS: { readonly [K in keyof DaemonLimits]: NumberSettingDef } = {
  maxRequestSize: {
    name: 'max_request_size',
    kind: 'int',
    default: 16384,
    min: 64,
    max: 1048576,
    doc: 'bytes; a larger socketmap request, or tcp_table key (its %XX-encoded line may take three times as many), is a protocol error and closes the connection',
  },
  maxConnections: {
    name: 'max_connections',
    kind: 'int',
    default: 2000,
    min: 1,
    doc: 'client connections open at once (all listeners); a connection beyond it gets a temporary error and is closed',
  },
  idleTimeout: {
    name: 'idle_timeout',
    kind: 'seconds',
    default: 60,
    min: 1,
    doc: 'seconds a client connection may stay idle between requests before it is closed',
  },
  requestReadTimeout: {
    name: 'request_read_timeout',
    kind: 'seconds',
    default: 10,
    min: 1,
    doc: 'seconds a partly received request may take to complete before the connection is closed (slowloris guard)',
  },
};

const LIMIT_PROPS = Object.keys(DAEMON_LIMIT_DEFS) as (keyof DaemonLimits)[];
const LIMIT_BY_NAME = new Map<string, keyof DaemonLimits>(LIMIT_PROPS.map((p) => [DAEMON_LIMIT_DEFS[p].name, p]));

export function defaultDaemonLimits(): DaemonLimits {
  const out: Record<string, number> = {};
  for (const p of LIMIT_PROPS) out[p] = DAEMON_LIMIT_DEFS[p].default;
  return out as unknown as DaemonLimits;
}

export const DAEMON_KEYS: readonly string[] = [
  'socketmap_listen',
  'tcp_table_listen',
  'metrics_listen',
  'log_level',
  'unix_socket_mode',
  'unix_socket_owner',
  'unix_socket_group',
  ...LIMIT_PROPS.map((p) => DAEMON_LIMIT_DEFS[p].name),
];

const MAP_NAME_RE = /^[A-Za-z0-9_-]+$/;

interface Entry {
  value: string;
  where: ConfigWhere;
  /** Directory that relative paths in this value are resolved against. */
  baseDir: string;
}

const COMMAND_LINE = 'command line';

function splitAssignment(text: string, where: ConfigWhere, what: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq < 0) throw new ConfigError(`expected ${what}, got '${text}'`, where);
  return [text.slice(0, eq).trim(), text.slice(eq + 1).trim()];
}

/**
 * Loads the daemon configuration from `path` (optional) and applies command-line overrides.
 * Throws ConfigError naming the file, line and key (or the flag) of the first problem.
 */
export function loadDaemonConfig(path?: string, overrides: DaemonOverrides = {}): DaemonConfig {
  const warnings: ConfigWarning[] = [];
  const entries = new Map<string, Entry>();
  const cwd = process.cwd();

  if (path !== undefined) {
    const parsed = readCfFile(path);
    warnings.push(...parsed.warnings);
    const baseDir = dirname(resolve(path));
    for (const [key, e] of parsed.params) {
      entries.set(key, { value: e.value, where: { file: path, line: e.line, key }, baseDir });
    }
  }

  for (const s of overrides.settings ?? []) {
    const where0: ConfigWhere = { file: COMMAND_LINE, key: FLAG_NAMES.settings };
    const [key, value] = splitAssignment(s, where0, 'KEY=VALUE');
    if (key === '') throw new ConfigError(`missing key in '${s}'`, where0);
    entries.set(key, { value, where: { file: COMMAND_LINE, key: `${FLAG_NAMES.settings} ${key}` }, baseDir: cwd });
  }

  for (const m of overrides.maps ?? []) {
    const where: ConfigWhere = { file: COMMAND_LINE, key: FLAG_NAMES.maps };
    const [name, file] = splitAssignment(m, where, 'NAME=FILE');
    if (!MAP_NAME_RE.test(name)) {
      throw new ConfigError(`bad map name '${name}' (letters, digits, _ and - only)`, where);
    }
    // Map.set keeps the position of a map the file already declared.
    entries.set(`map.${name}`, { value: file, where: { file: COMMAND_LINE, key: `${FLAG_NAMES.maps} ${name}` }, baseDir: cwd });
  }

  const listFlag = (list: string[] | undefined, key: string, flag: string): void => {
    if (list === undefined || list.length === 0) return;
    entries.set(key, { value: list.join(' '), where: { file: COMMAND_LINE, key: flag }, baseDir: cwd });
  };
  listFlag(overrides.socketmap, 'socketmap_listen', FLAG_NAMES.socketmap);
  listFlag(overrides.tcpTable, 'tcp_table_listen', FLAG_NAMES.tcpTable);
  if (overrides.metrics !== undefined) {
    entries.set('metrics_listen', {
      value: overrides.metrics.trim(),
      where: { file: COMMAND_LINE, key: FLAG_NAMES.metrics },
      baseDir: cwd,
    });
  }

  return interpret(path, entries, warnings);
}

function interpret(path: string | undefined, entries: Map<string, Entry>, warnings: ConfigWarning[]): DaemonConfig {
  const globalSettings = defaultMapSettings();
  const maps = new Map<string, { file: string; where: ConfigWhere }>();
  const perMap: { map: string; prop: keyof MapSettings; value: unknown; where: ConfigWhere }[] = [];
  let socketmapListen: Listen[] = [];
  let tcpTableSpecs: { map: string; listen: Listen; where: ConfigWhere }[] = [];
  let metricsListen: { host: string; port: number } | undefined;
  let logLevel: LogLevel = 'info';
  const limits = defaultDaemonLimits();
  // Postfix (user postfix) must be able to connect; 0660 with unix_socket_group = postfix is
  // the usual choice, and never world-writable by default.
  const unixSocket: UnixSocketSettings = { mode: 0o660 };

  for (const [key, { value, where, baseDir }] of entries) {
    if (key.startsWith('map.')) {
      const parts = key.split('.');
      const name = parts[1] ?? '';
      if (!MAP_NAME_RE.test(name) || parts.length > 3) {
        throw new ConfigError(
          'bad map key: expected map.NAME or map.NAME.SETTING, NAME made of letters, digits, _ and - only',
          where,
        );
      }
      if (parts.length === 2) {
        let file = value;
        if (file.startsWith('ldap:')) file = file.slice(5); // accept Postfix's ldap:/path notation
        if (file === '') throw new ConfigError('missing path of the ldap_table .cf file', where);
        maps.set(name, { file: resolve(baseDir, file), where });
        continue;
      }
      const settingName = parts[2] ?? '';
      const prop = SETTING_BY_NAME.get(settingName);
      if (prop === undefined) {
        if (LIMIT_BY_NAME.has(settingName)) {
          throw new ConfigError(`${settingName} is daemon-wide: set it as a top-level key, not per map`, where);
        }
        const guess = closestName(settingName, [...SETTING_BY_NAME.keys()]);
        throw new ConfigError(
          `unknown map setting '${settingName}'${guess !== undefined ? `; did you mean '${guess}'?` : ''}`,
          where,
        );
      }
      perMap.push({ map: name, prop, value: parseSettingValue(MAP_SETTING_DEFS[prop], value, where), where });
      continue;
    }

    const prop = SETTING_BY_NAME.get(key);
    if (prop !== undefined) {
      (globalSettings as unknown as Record<string, unknown>)[prop] = parseSettingValue(MAP_SETTING_DEFS[prop], value, where);
      continue;
    }
    const limit = LIMIT_BY_NAME.get(key);
    if (limit !== undefined) {
      limits[limit] = parseSettingValue(DAEMON_LIMIT_DEFS[limit], value, where) as number;
      continue;
    }

    switch (key) {
      case 'socketmap_listen':
        socketmapListen = splitList(value).map((s) => parseListen(s, where));
        break;
      case 'tcp_table_listen':
        tcpTableSpecs = splitList(value).map((item) => {
          const [map, spec] = splitAssignment(item, where, 'MAPNAME=LISTEN');
          if (!MAP_NAME_RE.test(map)) throw new ConfigError(`bad map name '${map}' in '${item}'`, where);
          return { map, listen: parseListen(spec, where), where };
        });
        break;
      case 'metrics_listen': {
        if (value === '') {
          metricsListen = undefined;
          break;
        }
        const l = parseListen(value, where);
        if (l.kind !== 'inet') throw new ConfigError(`metrics must listen on host:port, not '${value}'`, where);
        metricsListen = { host: l.host, port: l.port };
        break;
      }
      case 'unix_socket_mode': {
        if (!/^0?[0-7]{3}$/.test(value)) throw new ConfigError(`bad value '${value}' (an octal mode like 0660)`, where);
        unixSocket.mode = parseInt(value, 8);
        break;
      }
      case 'unix_socket_owner':
      case 'unix_socket_group': {
        if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(value) && value !== '') {
          throw new ConfigError(`bad value '${value}' (a user or group name, or a numeric id)`, where);
        }
        const field = key === 'unix_socket_owner' ? 'owner' : 'group';
        if (value === '') delete unixSocket[field];
        else unixSocket[field] = value;
        break;
      }
      case 'log_level': {
        const v = asciiLower(value);
        if (!(LOG_LEVELS as readonly string[]).includes(v)) {
          throw new ConfigError(`bad value '${value}' (use one of: ${LOG_LEVELS.join(', ')})`, where);
        }
        logLevel = v as LogLevel;
        break;
      }
      default: {
        const known = [...DAEMON_KEYS, ...SETTING_BY_NAME.keys()];
        const guess = closestName(key, known);
        throw new ConfigError(
          `unknown parameter${guess !== undefined ? `; did you mean '${guess}'?` : ''} ` +
            '(maps are declared as map.NAME = /path/to/file.cf)',
          where,
        );
      }
    }
  }

  for (const s of perMap) {
    if (!maps.has(s.map)) throw new ConfigError(`map '${s.map}' is not declared (add map.${s.map} = /path/to/file.cf)`, s.where);
  }
  for (const t of tcpTableSpecs) {
    if (!maps.has(t.map)) throw new ConfigError(`tcp_table_listen refers to undeclared map '${t.map}'`, t.where);
  }

  // The same address twice cannot be listened on.
  const seen = new Map<string, string>();
  const claim = (l: Listen, where: ConfigWhere, what: string): void => {
    if (l.kind === 'inet' && l.port === 0) return;
    const id = l.kind === 'unix' ? `unix:${l.path}` : `inet:${l.host.toLowerCase()}:${l.port}`;
    const earlier = seen.get(id);
    if (earlier !== undefined) throw new ConfigError(`${formatListen(l)} is used twice (${earlier} and ${what})`, where);
    seen.set(id, what);
  };
  const whereOfKey = (key: string): ConfigWhere => entries.get(key)?.where ?? { file: path ?? COMMAND_LINE, key };
  for (const l of socketmapListen) claim(l, whereOfKey('socketmap_listen'), 'socketmap_listen');
  for (const t of tcpTableSpecs) claim(t.listen, t.where, `tcp_table_listen ${t.map}`);
  if (metricsListen !== undefined) {
    claim({ kind: 'inet', ...metricsListen }, whereOfKey('metrics_listen'), 'metrics_listen');
  }

  const mapList: MapDeclaration[] = [...maps].map(([name, m]) => {
    const settings = { ...globalSettings };
    for (const s of perMap) {
      if (s.map === name) (settings as unknown as Record<string, unknown>)[s.prop] = s.value;
    }
    return { name, file: m.file, settings };
  });

  const config: DaemonConfig = {
    socketmapListen,
    tcpTableListen: tcpTableSpecs.map(({ map, listen }) => ({ map, listen })),
    logLevel,
    maps: mapList,
    warnings,
    limits,
    unixSocket,
  };
  if (path !== undefined) config.file = path;
  if (metricsListen !== undefined) config.metricsListen = metricsListen;
  return config;
}
