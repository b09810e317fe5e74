/**
 * Reading the Prometheus text exposition in tests: one parser, one way to add series up.
 * Label values are kept as written (escapes not undone): tests compare them with plain names.
 */
import { httpRequest } from './http.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Text exposition → samples; HELP/TYPE comments and blank lines are skipped, anything else unparsable throws. */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const lm of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]!] = lm[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

const samplesOf = (from: string | Sample[]): Sample[] => (typeof from === 'string' ? parseExposition(from) : from);

/** Sum over every sample of `name` whose labels include all of `labels` (exposition text or parsed). */
export function metricValue(from: string | Sample[], name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const s of samplesOf(from)) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

/** The value of the one series of `name` with exactly these labels, or undefined when there is none. */
export function seriesValue(from: string | Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels);
  const hit = samplesOf(from).find((s) => s.name === name
    && Object.keys(s.labels).length === want.length
    && want.every(([k, v]) => s.labels[k] === v));
  return hit?.value;
}

/** GET /metrics on the admin listener at 127.0.0.1:PORT: the exposition text. */
export async function metricsText(port: number): Promise<string> {
  return (await httpRequest(port, '/metrics', 'GET', 10_000)).body;
}

/** GET /metrics, parsed. */
export async function scrapeMetrics(port: number): Promise<Sample[]> {
  return parseExposition(await metricsText(port));
}
