/**
 * One Postfix ldap_table(5) `.cf` file → a typed MapConfig, with exactly the defaults and
 * parsing rules of `dict_ldap_open()` (docs/postfix-ldap-semantics §2), Debian build (default
 * `version = 3`).
 *
 * Where Postfix is fatal we throw ConfigError (file, line, key). Where Postfix logs a warning and
 * carries on we add a ConfigWarning and do what Postfix does. Features we cannot provide (SASL
 * bind, `type:table` items in `domain`) are ConfigErrors, never silently ignored. Unknown
 * parameter names are ignored like Postfix does, with a warning (typos matter).
 *
 * Our one extension: `bind_pw_file` (read the password from a file).
 */
import { statSync } from 'node:fs';
import { parseTemplate, TemplateError, VALID_CODES, type TemplateKind } from '../template/parse.js';
import {
  type CfSource,
  type ParsedCf,
  asciiLower,
  cfGetBool,
  cfGetInt,
  cfGetOptStr,
  cfGetStr,
  cfHas,
  readCfFile,
  splitList,
  whereOf,
} from './cf-file.js';
import { type DomainList, parseDomainList } from './domain-list.js';
import { ConfigError, type ConfigWarning, warningAt } from './errors.js';
import type { SaslTarget, ServerTarget, TlsTarget } from '../ldap/target.js';
import { readBindMode, readBindPw, readSasl, readTls, type BindMode, type MapConfigOptions } from './map-bind.js';
import { closestName } from './names.js';
import { parseServerHost } from './server-host.js';
export type { DomainList } from './domain-list.js';

export interface MapConfig {
  file: string;
  /** parameter name -> line number where its value was set (parameters present in the file). */
  lines: Record<string, number>;
  serverHost: ServerTarget[];
  serverPort: number;
  /** Seconds; 0 or negative are kept as given (Postfix accepts them; lookups then fail). */
  timeout: number;
  /** Raw templates; resultFormat already has the result_filter fallback applied. */
  searchBase: string;
  queryFilter: string;
  resultFormat: string;
  domain?: DomainList;
  resultAttribute: string[];
  specialResultAttribute: string[];
  terminalResultAttribute: string[];
  leafResultAttribute: string[];
  scope: 'sub' | 'one' | 'base';
  bind: BindMode;
  /** Only with bind = sasl. */
  sasl?: SaslTarget;
  bindDn: string;
  /** From bind_pw, or from the file named by bind_pw_file. Never log it. */
  bindPw: string;
  recursionLimit: number;
  expansionLimit: number;
  sizeLimit: number;
  dereference: 0 | 1 | 2 | 3;
  chaseReferrals: boolean;
  version: 2 | 3;
  startTls: boolean;
  tls: TlsTarget;
  debuglevel: number;
  warnings: ConfigWarning[];
}

/** Every parameter name dict_ldap_open() reads, plus our bind_pw_file. */
export const MAP_PARAMETERS: readonly string[] = [
  'server_host',
  'server_port',
  'timeout',
  'search_base',
  'query_filter',
  'result_format',
  'result_filter',
  'domain',
  'result_attribute',
  'special_result_attribute',
  'terminal_result_attribute',
  'leaf_result_attribute',
  'scope',
  'bind',
  'bind_dn',
  'bind_pw',
  'bind_pw_file',
  'cache',
  'cache_expiry',
  'cache_size',
  'recursion_limit',
  'expansion_limit',
  'size_limit',
  'dereference',
  'chase_referrals',
  'version',
  'debuglevel',
  'start_tls',
  'tls_ca_cert_file',
  'tls_ca_cert_dir',
  'tls_cert',
  'tls_key',
  'tls_random_file',
  'tls_cipher_suite',
  'tls_require_cert',
  'sasl_mechs',
  'sasl_realm',
  'sasl_authz_id',
  'sasl_minssf',
];

/** Debian's libldap/Postfix build uses protocol version 3 by default (upstream: 2). */
export const DEFAULT_VERSION = 3;
export const DEFAULT_QUERY_FILTER = '(mailacceptinggeneralid=%s)';

/** Reads and interprets a `.cf` file (absolute or relative path). */
export function loadMapConfig(file: string): MapConfig {
  const parsed = readCfFile(file);
  let mode: number | undefined;
  try {
    mode = statSync(file).mode;
  } catch {
    mode = undefined;
  }
  return mapConfigFromCf(parsed, { mode });
}


/** Interprets an already parsed `.cf` file (useful for tests and `check`). */
export function mapConfigFromCf(parsed: ParsedCf, options: MapConfigOptions = {}): MapConfig {
  const cf: CfSource = parsed;
  const file = parsed.file;
  const warnings: ConfigWarning[] = [...parsed.warnings];
  const warn = (key: string, message: string): void => {
    warnings.push(warningAt(whereOf(cf, key), message));
  };

  // Unknown names: Postfix ignores them silently; we warn (typos such as serch_base matter).
  for (const [name, entry] of parsed.params) {
    if (MAP_PARAMETERS.includes(name)) continue;
    const guess = closestName(name, MAP_PARAMETERS);
    warnings.push(
      warningAt(
        { file, line: entry.line, key: name },
        `unknown parameter, ignored (as Postfix does)${guess !== undefined ? `; did you mean '${guess}'?` : ''}`,
      ),
    );
  }

  const serverHostValue = cfGetStr(cf, 'server_host', 'localhost', 1, 0);
  const serverPort = cfGetInt(cf, 'server_port', 389);

  // Protocol version: int, min 2; anything but 2/3 → warning, 2.
  let version: 2 | 3;
  const versionValue = cfGetInt(cf, 'version', DEFAULT_VERSION, 2, 0);
  if (versionValue === 2 || versionValue === 3) {
    version = versionValue;
  } else {
    warn('version', `unknown version ${versionValue}, using 2`);
    version = 2;
  }

  const serverHost = parseServerHost(
    serverHostValue,
    serverPort,
    whereOf(cf, 'server_host'),
    whereOf(cf, 'server_port'),
    warnings,
  );
  for (const s of serverHost) {
    if (s.scheme !== 'ldap' && version !== 3) {
      warn('server_host', `URL scheme ${s.scheme} requires protocol version 3; using 3`);
      version = 3;
    }
  }

  const scopeValue = cfGetStr(cf, 'scope', 'sub', 1, 0);
  let scope: MapConfig['scope'];
  switch (asciiLower(scopeValue)) {
    case 'one':
      scope = 'one';
      break;
    case 'base':
      scope = 'base';
      break;
    case 'sub':
      scope = 'sub';
      break;
    default:
      warn('scope', `unrecognized value '${scopeValue}' for scope; using sub`);
      scope = 'sub';
  }

  const searchBase = cfGetStr(cf, 'search_base', '');
  const timeout = cfGetInt(cf, 'timeout', 10);
  const queryFilter = cfGetStr(cf, 'query_filter', DEFAULT_QUERY_FILTER);

  // result_format: if absent or empty, result_filter (min length 1, default %s).
  let resultFormat = cfGetOptStr(cf, 'result_format');
  let resultFormatKey = 'result_format';
  if (resultFormat === undefined) {
    resultFormat = cfGetStr(cf, 'result_filter', '%s', 1, 0);
    resultFormatKey = 'result_filter';
  }

  // Templates: an unknown % code is fatal at open time (db_common_parse).
  checkTemplate(cf, 'search_base', searchBase);
  if (!checkTemplate(cf, 'query_filter', queryFilter)) {
    warn('query_filter', `fixed query_filter ${queryFilter} is probably useless`);
  }
  checkTemplate(cf, resultFormatKey, resultFormat, 'result');

  const domainValue = cfGetStr(cf, 'domain', '');
  const domain = domainValue === '' ? undefined : parseDomainList(domainValue, whereOf(cf, 'domain'), warnings);

  const terminalResultAttribute = splitList(cfGetStr(cf, 'terminal_result_attribute', ''));
  const leafResultAttribute = splitList(cfGetStr(cf, 'leaf_result_attribute', ''));
  const resultAttribute = splitList(cfGetStr(cf, 'result_attribute', 'maildrop'));
  const specialResultAttribute = splitList(cfGetStr(cf, 'special_result_attribute', ''));

  const bind = readBindMode(cf);

  const bindDn = cfGetStr(cf, 'bind_dn', '');
  const bindPw = readBindPw(cf, options, warnings);

  // Caching never worked in Postfix and is ignored (we have our own cache settings).
  if (cfHas(cf, 'cache')) {
    cfGetBool(cf, 'cache', false);
    warn('cache', 'ignored (Postfix ignores it too); ldap-socketmap caching is configured in the daemon configuration');
  }
  for (const key of ['cache_expiry', 'cache_size']) {
    if (cfHas(cf, key)) {
      cfGetInt(cf, key, -1);
      warn(key, 'ignored (Postfix ignores it too); ldap-socketmap caching is configured in the daemon configuration');
    }
  }

  const recursionLimit = cfGetInt(cf, 'recursion_limit', 1000, 1, 0);
  const expansionLimit = cfGetInt(cf, 'expansion_limit', 0);
  const sizeLimit = cfGetInt(cf, 'size_limit', expansionLimit);

  let dereferenceValue = cfGetInt(cf, 'dereference', 0);
  if (dereferenceValue < 0 || dereferenceValue > 3) {
    warn('dereference', `unrecognized value ${dereferenceValue} for dereference; using 0`);
    dereferenceValue = 0;
  }
  const dereference = dereferenceValue as MapConfig['dereference'];
  const chaseReferrals = cfGetBool(cf, 'chase_referrals', false);

  const sasl = bind === 'sasl' ? readSasl(cf, warn) : undefined;
  if (sasl !== undefined && version < 3) {
    warn('version', 'bind = sasl requires protocol version 3; using 3');
    version = 3;
  }

  const startTls = cfGetBool(cf, 'start_tls', false);
  if (startTls && version < 3) {
    warn('start_tls', 'start_tls requires protocol version 3; using 3');
    version = 3;
  }
  const tls = readTls(cf, startTls || serverHost.some((h) => h.scheme === 'ldaps'), warn);

  if (version === 2) {
    warn('version', 'ldap-socketmap always speaks LDAP version 3 (Postfix would use version 2; servers that refuse version 2 binds answer Postfix differently)');
  }
  const debuglevel = cfGetInt(cf, 'debuglevel', 0);
  if (debuglevel !== 0) warn('debuglevel', 'libldap debug output does not exist here; use the daemon\'s log_level = debug');

  const lines: Record<string, number> = {};
  for (const [name, entry] of parsed.params) lines[name] = entry.line;

  return {
    file,
    lines,
    serverHost,
    serverPort,
    timeout,
    searchBase,
    queryFilter,
    resultFormat,
    ...(domain !== undefined ? { domain } : {}),
    resultAttribute,
    specialResultAttribute,
    terminalResultAttribute,
    leafResultAttribute,
    scope,
    bind,
    ...(sasl !== undefined ? { sasl } : {}),
    bindDn,
    bindPw,
    recursionLimit,
    expansionLimit,
    sizeLimit,
    dereference,
    chaseReferrals,
    version,
    startTls,
    tls,
    debuglevel,
    warnings,
  };
}

/**
 * Validates a `%` template with the template module's own parser (fatal on an unknown code or a
 * trailing `%`, like db_common_parse), worded for a config file. Returns true if the template is
 * data dependent (uses any code other than `%%`).
 */
export function checkTemplate(cf: CfSource, key: string, template: string, kind: TemplateKind = 'query'): boolean {
  try {
    return parseTemplate(key, kind, template).dynamic;
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    const message = err.problem === 'lone-percent'
      ? "invalid template: lone '%' at the end (write %% for a literal %)"
      : `invalid template: unknown expansion '%${err.code}' (valid: ${VALID_CODES})`;
    throw new ConfigError(message, whereOf(cf, key));
  }
}
