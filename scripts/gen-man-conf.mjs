#!/usr/bin/env node
/**
 * Writes the settings lists of man/ldap-socketmap.conf.5 from the settings tables in code
 * (MAP_SETTING_DEFS in src/config/settings.ts, DAEMON_LIMIT_DEFS in src/config/limits.ts,
 * SNAPSHOT_SETTING_DEFS in src/config/snapshot-settings.ts, read from the build in
 * dist/), so the page cannot drift from what the daemon accepts. Only the text between the
 * GENERATED markers is replaced; the rest of the page is written by hand.
 *
 *   node scripts/gen-man-conf.mjs           rewrite the page
 *   node scripts/gen-man-conf.mjs --check   exit 1 if the page is not what the code says
 *
 * test/integration/man-pages.test.ts runs the check.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const PAGE = resolve(REPO, 'man/ldap-socketmap.conf.5');

/** Text safe in a roff line: backslashes escaped, no line starting with a control character. */
function roff(text) {
  const t = text.replace(/\\/g, '\\e').replace(/-/g, '\\-');
  return /^[.']/.test(t) ? `\\&${t}` : t;
}

/** Filled text as roff lines of at most 78 bytes, broken between words. */
function fill(text) {
  const lines = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > 78) {
      lines.push(roff(line));
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(roff(line));
  return lines;
}

function defaultText(def) {
  if (def.kind === 'bool') return def.default ? 'yes' : 'no';
  if (def.kind === 'string') return def.default === '' ? '(empty)' : def.default;
  return String(def.default);
}

function valueText(def) {
  switch (def.kind) {
    case 'bool':
      return 'yes or no';
    case 'string':
      return 'text';
    case 'enum':
      return `one of ${def.values.join(', ')}`;
    case 'int':
      return `an integer, at least ${def.min}${def.max !== undefined ? ` and at most ${def.max}` : ''}`;
    case 'seconds':
      return `seconds, at least ${def.min}${def.max !== undefined ? ` and at most ${def.max}` : ''}; a suffix s, m, h, d or w gives another unit`;
    default:
      throw new Error(`unknown setting kind ${def.kind}`);
  }
}

/** One .TP entry per definition, in the table's order. */
export function renderDefs(defs) {
  const out = [];
  for (const def of Object.values(defs)) {
    out.push('.TP', `.BR ${def.name} " = ${roff(defaultText(def))}"`);
    out.push(...fill(`${def.doc}.`), ...fill(`Value: ${valueText(def)}.`));
  }
  return out.join('\n');
}

const BLOCKS = {
  'MAP SETTINGS': 'MAP_SETTING_DEFS',
  'DAEMON LIMITS': 'DAEMON_LIMIT_DEFS',
  'CACHE SNAPSHOT': 'SNAPSHOT_SETTING_DEFS',
};

/** The page with every generated block rewritten from `config` (the settings tables, loadConfigModule). */
export function updatePage(text, config) {
  let out = text;
  for (const [block, exportName] of Object.entries(BLOCKS)) {
    const begin = `.\\" BEGIN GENERATED ${block} (scripts/gen-man-conf.mjs from ${exportName}; do not edit)`;
    const end = `.\\" END GENERATED ${block}`;
    const i = out.indexOf(begin);
    const j = out.indexOf(end);
    if (i < 0 || j < i) throw new Error(`${PAGE}: markers for ${block} are missing`);
    out = `${out.slice(0, i + begin.length)}\n${renderDefs(config[exportName])}\n${out.slice(j)}`;
  }
  return out;
}

/** The settings tables, from the build: per-map settings, daemon limits, and the daemon's own keys. */
export async function loadConfigModule() {
  const load = (m) => import(pathToFileURL(resolve(REPO, `dist/config/${m}.js`)).href);
  const [settings, limits, snapshot, daemon] = await Promise.all([load('settings'), load('limits'), load('snapshot-settings'), load('daemon-config')]);
  return { ...settings, ...limits, ...snapshot, ...daemon };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const config = await loadConfigModule();
  const text = readFileSync(PAGE, 'utf8');
  const next = updatePage(text, config);
  if (process.argv.includes('--check')) {
    if (next !== text) {
      process.stderr.write(`${PAGE} differs from the settings in code: run node scripts/gen-man-conf.mjs\n`);
      process.exit(1);
    }
  } else if (next !== text) {
    writeFileSync(PAGE, next);
  }
}
