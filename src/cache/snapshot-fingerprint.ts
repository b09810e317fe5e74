/**
 * What a map's cached answers depend on, as one hash, so a snapshot's answers are used only by a
 * map that would give the same answers: everything its .cf file says (as parsed: comments,
 * spacing and line numbers do not count, but a changed query_filter, search_base, result
 * attribute, server or bind identity does) and the daemon settings that shape answers. A map
 * whose fingerprint differs starts with an empty cache.
 *
 * Left out: the file's path (moving a file changes no answer), where each parameter was set,
 * warnings, debuglevel and timeout (how long LDAP may take, not what it says). The bind password
 * is part of it (another identity may see other entries), and only as part of this one-way hash.
 */
import { createHash } from 'node:crypto';
import type { MapConfig } from '../config/map-config.js';
import type { MapSettings } from '../config/settings.js';

const IGNORED_CONFIG: ReadonlySet<string> = new Set(['file', 'lines', 'warnings', 'debuglevel', 'timeout']);

/** The map settings that change what an answer is (the rest change when or how fast). */
const ANSWER_SETTINGS = ['smtputf8', 'loopHandling', 'fallback', 'recipientDelimiter', 'propagateExtension'] as const;

/** Hex SHA-256 over the map's parsed configuration and its answer-shaping settings. */
export function snapshotFingerprint(config: MapConfig, settings: MapSettings): string {
  const cfg: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) if (!IGNORED_CONFIG.has(k)) cfg[k] = v;
  const set: Record<string, unknown> = {};
  for (const k of ANSWER_SETTINGS) set[k] = settings[k];
  return createHash('sha256').update(stableJson({ format: 1, config: cfg, settings: set })).digest('hex');
}

/** JSON with object keys sorted at every level; functions and undefined left out. */
export function stableJson(v: unknown): string {
  if (v === null || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (Buffer.isBuffer(v)) return JSON.stringify({ buffer: v.toString('base64') });
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined || typeof x === 'function' ? 'null' : stableJson(x))).join(',')}]`;
  if (v instanceof Set) return stableJson([...v].map((x) => stableJson(x)).sort());
  if (v instanceof Map) return stableJson(Object.fromEntries([...v].map(([k, x]) => [String(k), x])));
  if (v instanceof RegExp) return JSON.stringify(String(v));
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined && typeof o[k] !== 'function').sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`).join(',')}}`;
  }
  return 'null';
}
