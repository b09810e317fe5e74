/**
 * The migration plan: from what postconf prints about a Postfix configuration to the daemon's
 * maps, the main.cf / master.cf edits, and what must stay native. Pure: the caller runs postconf.
 *
 * Rules (spec §0, §11, postfix-snippets/MIGRATION.md):
 * - every `ldap:` / `proxy:ldap:` item written literally in a main.cf parameter or a master.cf
 *   `-o` override is a table to switch, found by splitting the value like Postfix does;
 * - `$name` references are not rewritten (they follow the parameter they name); postconf's
 *   expansion (`postconf -x`) says which parameters end up using a table ("consumers"), which
 *   decides the map's fallback settings and whether a delivery agent that refuses socketmap
 *   tables reads it;
 * - one map per (.cf file, settings): the same file used by two parameters is one map, named
 *   after the first parameter that writes it; a parameter with several files gets NAME, NAME_2…;
 * - virtual(8) and local(8) refuse socketmap tables in virtual_mailbox_maps / virtual_uid_maps /
 *   virtual_gid_maps / alias_maps: their services get a master.cf override with the native value;
 *   parameters only those agents read (virtual_uid_maps, virtual_gid_maps) are not switched.
 */
import { compactList, findLdapTables, replaceItems } from './tables.js';
import { lostLookups, namingRank, NOT_LOOKUPS, roleOf, type KeyKind, type ParameterRole } from './parameter-roles.js';
import type { MasterService, ServiceParam } from './postconf-output.js';

export interface PostfixView {
  /** `postconf -n`: explicitly set main.cf parameters, values as written. */
  raw: Map<string, string>;
  /** `postconf -x`: every parameter (defaults included), `$name` expanded. */
  expanded: Map<string, string>;
  /** `postconf -M`. */
  services: MasterService[];
  /** `postconf -P`: master.cf -o overrides as written. */
  serviceRaw: ServiceParam[];
  /** `postconf -x -P`: the same, expanded. */
  serviceExpanded: ServiceParam[];
}

export interface PlanOptions {
  /** Where Postfix reaches the daemon, in socketmap notation: `inet:127.0.0.1:9054` or `unix:/path`. */
  listen: string;
  /** Parameters (main.cf names, or `service/type/name`) to keep on ldap: as they are. */
  keep?: ReadonlySet<string>;
}

export interface PlannedMap {
  name: string;
  file: string;
  fallback: 'none' | 'address';
  recipientDelimiter: string;
  propagateExtension: boolean;
  /** Where the table is written (`param` or `service/type/param`), in order. */
  writtenIn: string[];
  /** Parameters that use it after expansion (main.cf names), in order. */
  consumers: string[];
  /** Why the settings are what they are, and what a socketmap cannot be asked. */
  notes: string[];
}

export interface ParamSwitch {
  /** `main` → `postconf -e name=value`; `master` → `postconf -P service/type/name=value`. */
  scope: 'main' | 'master';
  /** `service/type` for master scope. */
  service?: string;
  name: string;
  before: string;
  after: string;
}

export interface StaysNative {
  where: string;
  table: string;
  reason: string;
}

export interface ServiceOverride {
  /** `service/type`. */
  service: string;
  command: string;
  name: string;
  value: string;
  reason: string;
}

export interface MigrationPlan {
  listen: string;
  smtputf8: boolean;
  maps: PlannedMap[];
  switches: ParamSwitch[];
  native: StaysNative[];
  overrides: ServiceOverride[];
  warnings: string[];
}

const MAP_NAME_OK = /^[A-Za-z0-9_-]+$/;

interface Occurrence {
  scope: 'main' | 'master';
  service?: string;
  name: string;
  raw: string;
}

function whereOf(o: { scope: 'main' | 'master'; service?: string; name: string }): string {
  return o.scope === 'main' ? o.name : `${o.service}/${o.name}`;
}

function bool(v: string | undefined, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  return /^yes$/i.test(v.trim()) ? true : /^no$/i.test(v.trim()) ? false : dflt;
}

function words(v: string | undefined): string[] {
  return (v ?? '').split(/[\s,]+/).filter((w) => w !== '');
}

/**
 * Parameters whose expanded value contains an ldap: item for `file`: main.cf names, and
 * `service/type/name` for master.cf -o overrides.
 */
function consumersOf(file: string, view: PostfixView): string[] {
  const out: string[] = [];
  const uses = (value: string) => value.includes(file) && findLdapTables(value).some((t) => t.target === file);
  for (const [name, value] of view.expanded) if (!NOT_LOOKUPS.has(name) && uses(value)) out.push(name);
  for (const p of view.serviceExpanded) if (uses(p.value)) out.push(`${p.service}/${p.type}/${p.name}`);
  return out;
}

/** The parameter name of a consumer (`service/type/name` → `name`). */
function paramName(consumer: string): string {
  return consumer.slice(consumer.lastIndexOf('/') + 1);
}

/** The role that decides a table's settings: where it is written if known, else its consumers. */
function decidingRole(occ: Occurrence, consumers: string[]): { param: string; role: ParameterRole } {
  const own = roleOf(occ.name);
  if (own.keys !== 'other') return { param: occ.name, role: own };
  const rank: KeyKind[] = ['address', 'local', 'access', 'transport', 'domain'];
  for (const kind of rank) {
    const hit = consumers.find((c) => paramName(c) !== occ.name && roleOf(paramName(c)).keys === kind);
    if (hit !== undefined) return { param: hit, role: roleOf(paramName(hit)) };
  }
  return { param: occ.name, role: own };
}

export function planMigration(view: PostfixView, opts: PlanOptions): MigrationPlan {
  const keep = opts.keep ?? new Set<string>();
  const delimiter = view.expanded.get('recipient_delimiter') ?? view.raw.get('recipient_delimiter') ?? '';
  const propagate = new Set(words(view.expanded.get('propagate_unmatched_extensions') ?? 'canonical, virtual'));
  const plan: MigrationPlan = {
    listen: opts.listen,
    smtputf8: bool(view.expanded.get('smtputf8_enable'), true),
    maps: [],
    switches: [],
    native: [],
    overrides: [],
    warnings: [],
  };

  const occurrences: Occurrence[] = [];
  const mainNames = [...view.raw.keys()].filter((n) => !NOT_LOOKUPS.has(n));
  mainNames.sort((a, b) => namingRank(a) - namingRank(b)); // stable: postconf order among equals
  for (const name of mainNames) occurrences.push({ scope: 'main', name, raw: view.raw.get(name)! });
  for (const p of view.serviceRaw) {
    occurrences.push({ scope: 'master', service: `${p.service}/${p.type}`, name: p.name, raw: p.value });
  }
  const commandOf = new Map(view.services.map((s) => [`${s.service}/${s.type}`, s.command]));

  const byKey = new Map<string, PlannedMap>();
  const usedNames = new Set<string>();
  const uniqueName = (base: string): string => {
    const clean = MAP_NAME_OK.test(base) ? base : base.replace(/[^A-Za-z0-9_-]/g, '_');
    let name = clean;
    for (let n = 2; usedNames.has(name); n++) name = `${clean}_${n}`;
    usedNames.add(name);
    return name;
  };

  for (const occ of occurrences) {
    const tables = findLdapTables(occ.raw);
    if (tables.length === 0) continue;
    const where = whereOf(occ);
    const replacements: { start: number; end: number; text: string }[] = [];
    for (const t of tables) {
      if (!t.isFile) {
        plan.native.push({ where, table: t.text, reason: `main.cf-prefix form (settings in main.cf as ${t.target}_*); the daemon reads only .cf files: write them to a file to switch it` });
        continue;
      }
      if (keep.has(where) || keep.has(occ.name)) {
        plan.native.push({ where, table: t.text, reason: 'kept on ldap: (--keep)' });
        continue;
      }
      const own = roleOf(occ.name);
      if (occ.scope === 'master' && own.refusedBy !== undefined && commandOf.get(occ.service!) === own.refusedBy) {
        plan.native.push({ where, table: t.text, reason: `${own.refusedBy}(8) opens ${occ.name} as security-sensitive and refuses socketmap tables` });
        continue;
      }
      const consumers = occ.scope === 'main' ? consumersOf(t.target, view) : [where];
      if (consumers.length === 0) consumers.push(occ.name);
      const known = consumers.filter((c) => roleOf(paramName(c)).keys !== 'other');
      if (known.length > 0 && known.every((c) => roleOf(paramName(c)).onlyReader === true)) {
        plan.native.push({ where, table: t.text, reason: `only ${roleOf(paramName(known[0]!)).refusedBy}(8) reads ${known.join(', ')}, and it refuses socketmap tables there` });
        continue;
      }
      const { param, role } = decidingRole(occ, consumers);
      const fallback = role.keys === 'address' ? 'address' : 'none';
      const propagateExtension = fallback === 'address' && role.propagateClass !== undefined && propagate.has(role.propagateClass);
      const settingsKey = `${t.target}\u0000${fallback}\u0000${propagateExtension}`;
      let map = byKey.get(settingsKey);
      if (map === undefined) {
        const notes: string[] = [];
        if (fallback === 'address') {
          notes.push(`${param}: Postfix asks a fixed table also the address without its extension and @domain; fallback = address asks them for it`);
          notes.push(propagateExtension
            ? `propagate_extension = yes: "${role.propagateClass}" is in propagate_unmatched_extensions`
            : `propagate_extension = no: ${param} results are not address lists that get the extension`);
          if (delimiter === '') notes.push('recipient_delimiter is empty in main.cf: no extension is split');
        }
        const lost = lostLookups(role.keys);
        if (lost !== undefined) {
          notes.push(`${param}: ${lost}; keep it native (--keep ${occ.name}) if the directory relies on those keys`);
          plan.warnings.push(`${where} (${t.target}): ${lost}`);
        }
        if (byKeyFile(byKey, t.target)) notes.push('the same .cf file is another map too, with other settings for another parameter');
        map = { name: uniqueName(occ.name), file: t.target, fallback, recipientDelimiter: fallback === 'address' ? delimiter : '', propagateExtension, writtenIn: [], consumers: [], notes };
        byKey.set(settingsKey, map);
        plan.maps.push(map);
      }
      if (!map.writtenIn.includes(where)) map.writtenIn.push(where);
      for (const c of consumers) if (!map.consumers.includes(c)) map.consumers.push(c);
      replacements.push({ start: t.start, end: t.end, text: `socketmap:${opts.listen}:${map.name}` });
    }
    if (replacements.length === 0) continue;
    let after = replaceItems(occ.raw, replacements);
    if (occ.scope === 'master') after = compactList(after);
    plan.switches.push({ scope: occ.scope, ...(occ.service !== undefined ? { service: occ.service } : {}), name: occ.name, before: occ.raw, after });
  }

  addRefusingOverrides(view, plan, commandOf);
  return plan;
}

function byKeyFile(byKey: Map<string, PlannedMap>, file: string): boolean {
  for (const m of byKey.values()) if (m.file === file) return true;
  return false;
}

/**
 * virtual(8) / local(8) read main.cf's value of their security-sensitive tables: once main.cf
 * points at the daemon, each such service gets the native value back as an -o override
 * (unless master.cf already gives it its own value).
 */
function addRefusingOverrides(view: PostfixView, plan: MigrationPlan, commandOf: Map<string, string>): void {
  const switchedMain = new Set(plan.switches.filter((s) => s.scope === 'main').map((s) => s.name));
  if (switchedMain.size === 0) return;
  for (const param of ['virtual_mailbox_maps', 'virtual_uid_maps', 'virtual_gid_maps', 'alias_maps']) {
    const role = roleOf(param);
    // Only a parameter set in main.cf can change (no default names an ldap: table): it changes
    // when it, or a parameter it names with $name, was switched.
    if (!changes(param, view.raw, switchedMain, new Set())) continue;
    const native = view.expanded.get(param) ?? '';
    const uses = findLdapTables(native).filter((t) => t.isFile);
    for (const [service, command] of commandOf) {
      if (command !== role.refusedBy) continue;
      const own = view.serviceRaw.some((p) => `${p.service}/${p.type}` === service && p.name === param);
      if (own) continue;
      plan.overrides.push({
        service,
        command,
        name: param,
        value: compactList(native),
        reason: `${command}(8) opens ${param} as security-sensitive and refuses socketmap tables: it keeps reading the same .cf file${uses.length > 1 ? 's' : ''} natively`,
      });
    }
  }
}

/** Whether `param`'s value changes when the parameters in `switched` change ($name references followed). */
export function changes(param: string, raw: Map<string, string>, switched: Set<string>, seen: Set<string>): boolean {
  if (switched.has(param)) return true;
  const value = raw.get(param);
  if (value === undefined || seen.has(param)) return false;
  seen.add(param);
  for (const m of value.matchAll(/\$(?:\{([A-Za-z0-9_]+)[^}]*\}|\(([A-Za-z0-9_]+)[^)]*\)|([A-Za-z0-9_]+))/g)) {
    const ref = m[1] ?? m[2] ?? m[3]!;
    if (changes(ref, raw, switched, seen)) return true;
  }
  return false;
}
