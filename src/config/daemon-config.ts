/**
 * The daemon's own configuration file. Same syntax as Postfix `.cf` files (parseCf): comment
 * lines, continuation lines, `name = value`, later duplicates win. Unlike ldap_table files,
 * unknown keys are errors here: this is our file, so typos must fail.
 *
 *   socketmap_listen = unix:/run/ldap-socketmap/socketmap.sock, inet:127.0.0.1:10001
 *   tcp_table_listen = aliases=inet:127.0.0.1:10002
 *   metrics_listen   = 127.0.0.1:9105
 *   log_level        = info
 *   client_allow     = 127.0.0.0/8, ::1/128, 192.0.2.0/24
 *   map.aliases      = /etc/postfix/ldap-aliases.cf
 *   map.mailboxes    = /etc/postfix/ldap-mailboxes.cf
 *   cache_ttl        = 5m                   # default for every map
 *   map.aliases.pool_size = 4               # this map only
 *
 * Command-line values override the file (see DaemonOverrides).
 */
import { dirname, resolve } from 'node:path';
import { asciiLower, readCfFile, splitList } from './cf-file.js';
import { parseClientAllow, type AllowRule } from './client-allow.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';
import { ConfigError, type ConfigWarning, type ConfigWhere } from './errors.js';
import { DAEMON_LIMIT_DEFS, defaultDaemonLimits, LIMIT_BY_NAME, LIMIT_PROPS, type DaemonLimits } from './limits.js';
import { formatListen, parseListen, type Listen } from './listen.js';
import { closestName } from './names.js';
import { defaultMapSettings, MAP_SETTING_DEFS, parseSettingValue, SETTING_BY_NAME, type MapSettings } from './settings.js';
import { defaultSnapshotSettings, SNAPSHOT_BY_NAME, SNAPSHOT_PROPS, SNAPSHOT_SETTING_DEFS, type SnapshotSettings } from './snapshot-settings.js';

/* ----------------------------------------------------------------------------------------- */
/* The daemon configuration                                                                   */
/* ----------------------------------------------------------------------------------------- */


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
  /** Peers the inet listeners answer (client_allow); absent: every peer, with a warning
   *  at startup when a listener is not on loopback. */
  clientAllow?: AllowRule[];
  /** The cache snapshot (cache_snapshot_file, cache_snapshot_interval); absent means off. */
  snapshot?: SnapshotSettings;
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

export const DAEMON_KEYS: readonly string[] = [
  'socketmap_listen',
  'tcp_table_listen',
  'metrics_listen',
  'log_level',
  'unix_socket_mode',
  'unix_socket_owner',
  'unix_socket_group',
  'client_allow',
  ...LIMIT_PROPS.map((p) => DAEMON_LIMIT_DEFS[p].name),
  ...SNAPSHOT_PROPS.map((p) => SNAPSHOT_SETTING_DEFS[p].name),
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
  const snapshot = defaultSnapshotSettings();
  // Postfix (user postfix) must be able to connect; 0660 with unix_socket_group = postfix is
  // the usual choice, and never world-writable by default.
  const unixSocket: UnixSocketSettings = { mode: 0o660 };
  let clientAllow: AllowRule[] | undefined;

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
        if (LIMIT_BY_NAME.has(settingName) || SNAPSHOT_BY_NAME.has(settingName)) {
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
    const snap = SNAPSHOT_BY_NAME.get(key);
    if (snap === 'cacheSnapshotFile') {
      snapshot.cacheSnapshotFile = value === '' ? '' : resolve(baseDir, value);
      continue;
    }
    if (snap === 'cacheSnapshotInterval') {
      snapshot.cacheSnapshotInterval = parseSettingValue(SNAPSHOT_SETTING_DEFS.cacheSnapshotInterval, value, where) as number;
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
      case 'client_allow': {
        const rules = parseClientAllow(value, where);
        clientAllow = rules.length > 0 ? rules : undefined;
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
  if (clientAllow !== undefined) config.clientAllow = clientAllow;
  if (snapshot.cacheSnapshotFile !== '') config.snapshot = snapshot;
  return config;
}
