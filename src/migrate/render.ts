/**
 * The files and the summary `migrate` writes, from a plan (pure text).
 */
import type { MigrationPlan, ParamSwitch, ServiceOverride } from './plan.js';

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=,@+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The daemon configuration (ldap-socketmap.conf). */
export function renderDaemonConfig(plan: MigrationPlan, source: string): string {
  const out: string[] = [
    `# ldap-socketmap.conf written by "ldap-socketmap migrate" from the Postfix configuration in ${source}.`,
    '# Each map serves one ldap_table(5) .cf file, read as Postfix reads it; the map names are the',
    '# parameters that use them (the part after the last ":" of socketmap:...:NAME in main.cf).',
    `socketmap_listen = ${plan.listen}`,
  ];
  if (plan.listen.startsWith('unix:')) {
    out.push('# Postfix (user postfix) must be able to connect to the socket.', 'unix_socket_group = postfix', 'unix_socket_mode = 0660');
  }
  out.push(
    `# Fold keys as Postfix does: smtputf8_enable = ${plan.smtputf8 ? 'yes' : 'no'} in main.cf.`,
    `smtputf8 = ${plan.smtputf8 ? 'yes' : 'no'}`,
  );
  for (const m of plan.maps) {
    out.push('', `# map ${m.name}: written in ${m.writtenIn.join(', ')}; used by ${m.consumers.join(', ')}`);
    for (const n of m.notes) out.push(`# ${n}`);
    out.push(`map.${m.name} = ${m.file}`);
    out.push(`map.${m.name}.fallback = ${m.fallback}`);
    if (m.fallback === 'address') {
      out.push(`map.${m.name}.recipient_delimiter = ${m.recipientDelimiter}`);
      out.push(`map.${m.name}.propagate_extension = ${m.propagateExtension ? 'yes' : 'no'}`);
    }
  }
  return out.join('\n') + '\n';
}

function postconfArgs(s: ParamSwitch | ServiceOverride, configDir: string, value: string): string {
  const dir = `-c ${shellQuote(configDir)}`;
  if ('scope' in s && s.scope === 'main') return `postconf ${dir} -e ${shellQuote(`${s.name} = ${value}`)}`;
  const service = 'scope' in s ? s.service! : s.service;
  return `postconf ${dir} -P ${shellQuote(`${service}/${s.name}=${value}`)}`;
}

/** The postconf commands that switch Postfix over, as a reviewable shell script. */
export function renderPostconfScript(plan: MigrationPlan, configDir: string): string {
  const out: string[] = [
    '#!/bin/sh',
    '# Written by "ldap-socketmap migrate". Review, start the daemon with ldap-socketmap.conf,',
    '# run "ldap-socketmap verify", then run this script (or migrate --apply) and "postfix reload".',
    'set -e',
  ];
  for (const s of plan.switches) {
    out.push('', `# before: ${s.scope === 'main' ? s.name : `${s.service}/${s.name}`} = ${s.before}`);
    out.push(postconfArgs(s, configDir, s.after));
  }
  if (plan.overrides.length > 0) {
    out.push('', '# master.cf: delivery agents that refuse socketmap tables keep the native table');
    for (const o of plan.overrides) {
      out.push(`# ${o.reason}`);
      out.push(postconfArgs(o, configDir, o.value));
    }
  }
  out.push('', `postfix -c ${shellQuote(configDir)} check`);
  return out.join('\n') + '\n';
}

/** The master.cf part, for people who edit master.cf by hand. */
export function renderMasterFragment(plan: MigrationPlan): string {
  const out: string[] = ['# master.cf overrides written by "ldap-socketmap migrate".'];
  if (plan.overrides.length === 0) out.push('# None needed: no service that refuses socketmap tables reads a switched parameter.');
  const byService = new Map<string, ServiceOverride[]>();
  for (const o of plan.overrides) byService.set(o.service, [...(byService.get(o.service) ?? []), o]);
  for (const [service, list] of byService) {
    out.push('');
    for (const o of list) out.push(`# ${o.reason}`);
    out.push(`# add to the "${service.replace('/', ' ')}" service (${list[0]!.command}):`);
    for (const o of list) out.push(`  -o ${o.name}=${o.value}`);
  }
  const masterSwitches = plan.switches.filter((s) => s.scope === 'master');
  if (masterSwitches.length > 0) {
    out.push('', '# existing -o overrides switched to the daemon:');
    for (const s of masterSwitches) out.push(`#   ${s.service}: -o ${s.name}=${s.after}   (was ${s.before})`);
  }
  const native = plan.native;
  if (native.length > 0) {
    out.push('', '# tables that stay ldap: (native):');
    for (const n of native) out.push(`#   ${n.where}: ${n.table}: ${n.reason}`);
  }
  return out.join('\n') + '\n';
}

/** The human summary printed on stdout. */
export function renderSummary(plan: MigrationPlan, files: string[], applied: boolean): string {
  const out: string[] = [];
  out.push(`${plan.maps.length} map${plan.maps.length === 1 ? '' : 's'} for the daemon (socketmap:${plan.listen}:NAME):`);
  const width = Math.max(4, ...plan.maps.map((m) => m.name.length));
  for (const m of plan.maps) {
    const fb = m.fallback === 'address' ? `fallback=address delimiter=${JSON.stringify(m.recipientDelimiter)} propagate=${m.propagateExtension ? 'yes' : 'no'}` : 'fallback=none';
    out.push(`  ${m.name.padEnd(width)}  ${m.file}  [${fb}]  used by ${m.consumers.join(', ')}`);
  }
  out.push('', `${plan.switches.length} parameter${plan.switches.length === 1 ? '' : 's'} switched:`);
  for (const s of plan.switches) out.push(`  ${s.scope === 'main' ? 'main.cf  ' : 'master.cf'} ${s.scope === 'main' ? s.name : `${s.service}/${s.name}`} = ${s.after}`);
  if (plan.overrides.length > 0) {
    out.push('', 'master.cf overrides (stay native):');
    for (const o of plan.overrides) out.push(`  ${o.service} -o ${o.name}=${o.value}  (${o.command}(8) refuses socketmap tables)`);
  }
  if (plan.native.length > 0) {
    out.push('', 'left on ldap:');
    for (const n of plan.native) out.push(`  ${n.where}: ${n.table} (${n.reason})`);
  }
  if (plan.warnings.length > 0) {
    out.push('', 'warnings (lookups a socketmap is never asked):');
    for (const w of plan.warnings) out.push(`  ${w}`);
  }
  out.push('', 'written:');
  for (const f of files) out.push(`  ${f}`);
  out.push('', applied ? 'applied to the Postfix configuration (backups kept); run "postfix reload" once the daemon runs.' : 'Postfix configuration unchanged (use --apply, or run the postconf script).');
  return out.join('\n') + '\n';
}
