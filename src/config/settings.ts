/**
 * Per-map settings of the daemon config: one table of definitions (name, kind, default, range,
 * doc) from which defaults, parsing, the README table and ldap-socketmap.conf(5) all come.
 */
import { asciiLower, checkRange, parseBoolValue } from './cf-file.js';
import { ConfigError, type ConfigWhere } from './errors.js';

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
  /** Seconds a cached answer stays fresh at most while the map's change watcher cannot poll (0 = normal TTLs). */
  blindCacheTtl: number;
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
    doc: 'postfix: a group loop is a temporary error, as Postfix\'s recursion_limit makes it, but at once and logged with the loop\'s path; expand_once: every nested search runs once per lookup (a deviation: loops and repeated sub-lists expand once, duplicates Postfix would keep are dropped)',
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
    doc: 'seconds between polls of the directory change marker (contextCSN, entryUSN, the 389-ds retro changelog, AD uSNChanged or modifyTimestamp; check prints the one in use); cached answers a change touched are expired (0 = off)',
  },
  blindCacheTtl: {
    name: 'blind_cache_ttl',
    kind: 'seconds',
    default: 30,
    min: 0,
    doc: 'while the change watcher cannot poll because the server refuses the poll, cached answers stay fresh at most this long (0 = keep cache_ttl / cache_negative_ttl)',
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
    doc: "fetch a list's member DNs with a few subtree searches on entryDN (OpenLDAP, 389-ds) instead of one base search each (detected at run time; every DN not answered exactly gets its own base search)",
  },
  rangeRetrieval: {
    name: 'range_retrieval',
    kind: 'bool',
    default: false,
    doc: "fetch the rest of an attribute a server sent in ranges (Active Directory's MaxValRange, 1500: member;range=0-1499); off answers from the first range, as Postfix does (logged and counted either way)",
  },
};

export const SETTING_PROPS = Object.keys(MAP_SETTING_DEFS) as (keyof MapSettings)[];
export const SETTING_BY_NAME = new Map<string, keyof MapSettings>(SETTING_PROPS.map((p) => [MAP_SETTING_DEFS[p].name, p]));

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
