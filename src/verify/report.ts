/**
 * verify's results and how they are shown: the summary table, each difference with both
 * answers, and a progress line for terminals. Pure text.
 */
import { describeAnswer, type Answer } from './answer.js';
import type { ChainStep } from './fallback-oracle.js';

export interface MapTally {
  map: string;
  file: string;
  fallback: 'none' | 'address';
  keys: number;
  asked: number;
  equal: number;
  different: number;
  /** Native outcomes by kind. */
  found: number;
  notfound: number;
  temp: number;
  error: number;
  /** Where the keys came from. */
  sources: string[];
  problems: string[];
}

export interface Difference {
  map: string;
  key: string;
  native: Answer;
  daemon: Answer;
  /** For fallback = address maps: the native lookups the answer was built from. */
  nativeSteps?: ChainStep[];
  explain?: { exitCode: number | null; text?: string; json?: unknown; error?: string };
}

export function newTally(map: string, file: string, fallback: 'none' | 'address'): MapTally {
  return { map, file, fallback, keys: 0, asked: 0, equal: 0, different: 0, found: 0, notfound: 0, temp: 0, error: 0, sources: [], problems: [] };
}

export function countNative(t: MapTally, a: Answer): void {
  t[a.kind]++;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

export function renderSummaryTable(tallies: MapTally[]): string {
  const rows = [['map', 'keys', 'asked', 'equal', 'differ', 'found', 'notfound', 'temp', 'error']];
  for (const t of tallies) rows.push([t.map, t.keys, t.asked, t.equal, t.different, t.found, t.notfound, t.temp, t.error].map(String));
  const sum = (f: keyof MapTally) => tallies.reduce((n, t) => n + (t[f] as number), 0);
  rows.push(['total', ...(['keys', 'asked', 'equal', 'different', 'found', 'notfound', 'temp', 'error'] as const).map((f) => String(sum(f)))]);
  return table(rows) + '\n';
}

function indent(text: string, prefix: string, maxLines: number): string {
  const lines = text.replace(/\n$/, '').split('\n');
  const shown = lines.slice(0, maxLines).map((l) => prefix + l);
  if (lines.length > maxLines) shown.push(`${prefix}... (${lines.length - maxLines} more lines)`);
  return shown.join('\n');
}

export function renderDifference(d: Difference, configFile: string, explainLines = 60): string {
  const out = [`DIFFERENCE map ${d.map} key ${JSON.stringify(d.key)}`];
  out.push(`  native (postmap -q … ldap:): ${describeAnswer(d.native)}`);
  if (d.nativeSteps && d.nativeSteps.length > 1) {
    for (const s of d.nativeSteps) out.push(`      step ${JSON.stringify(s.key)}: ${describeAnswer(s.answer)}`);
  }
  out.push(`  daemon (socketmap):          ${describeAnswer(d.daemon)}`);
  if (d.explain) {
    out.push(`  explain (ldap-socketmap explain --config ${configFile} ${d.map} -- ${JSON.stringify(d.key)}), exit ${d.explain.exitCode}:`);
    if (d.explain.text) out.push(indent(d.explain.text, '    ', explainLines));
    if (d.explain.error) out.push(`    ${d.explain.error}`);
  }
  return out.join('\n') + '\n';
}

/** One progress line (for a terminal; written with \r). */
export function progressLine(done: number, total: number, differences: number, elapsedMs: number, width = 30): string {
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} keys, ${differences} difference${differences === 1 ? '' : 's'}, ${(elapsedMs / 1000).toFixed(1)} s`;
}
