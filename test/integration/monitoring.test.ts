/**
 * The monitoring files the package ships (contrib/ -> /usr/share/ldap-socketmap/):
 * - the Prometheus alert rules pass the real `promtool check rules`, and `promtool test rules`
 *   with series that must fire each alert and series that must not; a rules file with a broken
 *   threshold fails those tests (they are not vacuous);
 * - every metric the rules and the Grafana dashboard query is one a running daemon (the built
 *   CLI, against a real slapd) exports on /metrics, and every label they filter or group by is
 *   one of that metric's labels in the daemon's registry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO, startDaemon, type RunningDaemon } from '../support/daemon.js';
import { socketmapFrame } from '../support/socketmap-client.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';
import { type CommandRun, runCommand } from '../support/run.js';

const PROMTOOL = '/usr/bin/promtool';
const RULES = resolve(REPO, 'contrib/prometheus/ldap-socketmap.rules.yml');
const RULE_TESTS = resolve(REPO, 'contrib/prometheus/ldap-socketmap.rules.test.yml');
const DASHBOARD = resolve(REPO, 'contrib/dashboards/ldap-socketmap.json');
/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = ['instance', 'job'];

function promtool(args: string[], cwd?: string): Promise<CommandRun> {
  if (!existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} not found: install the Debian package 'prometheus'`);
  return runCommand(PROMTOOL, args, { cwd, timeoutMs: 60_000 });
}

/** PromQL expressions of the rules file (block scalars and one-line `expr:`). */
function ruleExprs(text: string): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)expr:\s*(.*)$/.exec(lines[i]!);
    if (!m) continue;
    if (m[2] !== '|' && m[2] !== '>') { out.push(m[2]!); continue; }
    const body: string[] = [];
    while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || lines[i + 1]!.search(/\S/) > m[1]!.length)) body.push(lines[++i]!);
    out.push(body.join('\n'));
  }
  return out;
}

function dashboardExprs(dash: { panels: { targets?: { expr: string }[] }[]; templating: { list: { query?: unknown }[] } }): string[] {
  const out = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  for (const v of dash.templating.list) {
    const q = v.query as { query?: string } | string | undefined;
    const text = typeof q === 'string' ? q : q?.query;
    if (text !== undefined && text !== 'prometheus') out.push(text);
  }
  return out;
}

const METRIC_RE = /\b((?:ldap_socketmap|process|nodejs)_[a-z0-9_]+)\b/g;

/** Series name -> family name, from the exposition's `# TYPE` lines (histograms add _bucket, ...). */
function exportedSeries(exposition: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    out.set(name, name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.set(name + s, name);
    if (type === 'summary') for (const s of ['_sum', '_count']) out.set(name + s, name);
  }
  return out;
}

let slapd: Slapd;
let daemon: RunningDaemon;
let series: Map<string, string>;
let labelsOf: Map<string, string[]>;

beforeAll(async () => {
  slapd = await startSlapd({ ldif: directoryLdif() });
  const dir = makeTmpDir('monitoring-');
  const cf = join(dir, 'aliases.cf');
  writeFileSync(cf, readFileSync(join(REPO, 'postfix-snippets', 'ldap-aliases.cf'), 'utf8').replace(/^server_host = .*$/m, `server_host = ${slapd.url}`));
  daemon = await startDaemon(['--socketmap', 'inet:127.0.0.1:0', '--metrics', '127.0.0.1:0', '--map', `aliases=${cf}`]);
  // Some traffic, so that labelled series exist as well as their families.
  for (const key of ['sales@example.org', 'sales@example.org', 'nope@example.org']) await socketmapFrame(daemon.ports[0]!, 'aliases', key);
  const res = await fetch(`http://127.0.0.1:${daemon.metricsPort}/metrics`);
  expect(res.status).toBe(200);
  series = exportedSeries(await res.text());
  // Label names from the daemon's own registry (the same definitions the scrape came from).
  const mod = (await import(pathToFileURL(resolve(REPO, 'dist/metrics/metrics.js')).href)) as {
    Metrics: new () => { registry: { getMetricsAsArray(): { name: string; labelNames?: readonly string[] }[] } };
  };
  labelsOf = new Map(new mod.Metrics().registry.getMetricsAsArray().map((m) => [m.name, [...(m.labelNames ?? [])]]));
});

afterAll(async () => {
  await daemon?.stop();
  await slapd?.destroy();
});

/** Metric names an expression uses that the daemon does not export, and labels it uses that those metrics lack. */
function problems(expr: string): string[] {
  const out: string[] = [];
  const metrics = [...expr.matchAll(METRIC_RE)].map((m) => m[1]!);
  if (metrics.length === 0) out.push(`no ldap-socketmap metric in: ${expr}`);
  for (const name of metrics) {
    const family = series.get(name);
    if (family === undefined) { out.push(`${name} is not exported by the daemon`); continue; }
    const labels = [...(labelsOf.get(family) ?? []), ...TARGET_LABELS, ...(name.endsWith('_bucket') ? ['le'] : [])];
    const selector = new RegExp(`\\b${name}\\{([^}]*)\\}`, 'g');
    for (const sel of expr.matchAll(selector)) {
      for (const lm of sel[1]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) {
        if (!labels.includes(lm[1]!)) out.push(`${name} has no label ${lm[1]}`);
      }
    }
  }
  const allLabels = new Set([...metrics.flatMap((n) => labelsOf.get(series.get(n) ?? '') ?? []), ...TARGET_LABELS, 'le']);
  for (const by of expr.matchAll(/\b(?:by|on)\s*\(([^)]*)\)/g)) {
    for (const l of by[1]!.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (!allLabels.has(l)) out.push(`grouping by ${l}, a label none of ${metrics.join(', ')} has`);
    }
  }
  return out;
}

describe('alert rules', () => {
  it('pass promtool check rules', async () => {
    const r = await promtool(['check', 'rules', RULES]);
    expect(r.output).toMatch(/SUCCESS: 5 rules found/);
    expect(r.code).toBe(0);
  });

  // promtool compares exp_alerts exactly: the series of each case that are not listed (other
  // instances, maps below the threshold, flat counters) are tested NOT to fire.
  it('pass promtool test rules, and each alert has a case where it must fire', async () => {
    const r = await promtool(['test', 'rules', RULE_TESTS]);
    expect(r.output).toMatch(/SUCCESS/);
    expect(r.code).toBe(0);
    const alerts = [...readFileSync(RULES, 'utf8').matchAll(/^\s*- alert: (\S+)$/gm)].map((m) => m[1]!);
    expect(alerts).toHaveLength(5);
    const tests = readFileSync(RULE_TESTS, 'utf8');
    for (const a of alerts) {
      expect(tests, `${a}: no firing case`).toMatch(new RegExp(`alertname: ${a}\\n\\s*exp_alerts:\\n\\s*- exp_labels:`));
    }
  });

  it('the rule tests catch a broken rule (they are not vacuous)', async () => {
    const dir = makeTmpDir('rules-broken-');
    writeFileSync(join(dir, 'ldap-socketmap.rules.yml'), readFileSync(RULES, 'utf8').replace('> 0.05\n        for: 5m\n        labels:\n          severity: critical', '> 0.5\n        for: 5m\n        labels:\n          severity: critical'));
    expect(readFileSync(join(dir, 'ldap-socketmap.rules.yml'), 'utf8')).not.toBe(readFileSync(RULES, 'utf8'));
    copyFileSync(RULE_TESTS, join(dir, 'tests.yml'));
    const r = await promtool(['test', 'rules', 'tests.yml'], dir);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/alertname: LdapSocketmapDeferringLookups/);
  });

  it('query only metrics and labels the daemon exports', () => {
    const exprs = ruleExprs(readFileSync(RULES, 'utf8'));
    expect(exprs).toHaveLength(5);
    expect(exprs.flatMap(problems)).toEqual([]);
  });
});

describe('Grafana dashboard', () => {
  it('is a dashboard with panels, each with at least one query', () => {
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { title: string; uid: string; panels: { title: string; targets?: unknown[] }[] };
    expect(dash.title).toBe('ldap-socketmap');
    expect(dash.panels.length).toBeGreaterThanOrEqual(10);
    for (const p of dash.panels) expect(p.targets?.length ?? 0, p.title).toBeGreaterThan(0);
  });

  it('has no panel on a metric or label the daemon does not export', () => {
    const exprs = dashboardExprs(JSON.parse(readFileSync(DASHBOARD, 'utf8')));
    expect(exprs.flatMap(problems)).toEqual([]);
    // The check itself: a made-up metric and a made-up label are caught.
    expect(problems('sum(rate(ldap_socketmap_lookups_totl[5m]))')).toEqual(['ldap_socketmap_lookups_totl is not exported by the daemon']);
    expect(problems('sum by (mapp) (ldap_socketmap_cache_entries{mapp="x"})')).toEqual([
      'ldap_socketmap_cache_entries has no label mapp',
      'grouping by mapp, a label none of ldap_socketmap_cache_entries has',
    ]);
  });

  it('covers the daemon\'s lookup, cache, LDAP and connection metrics', () => {
    const used = new Set(dashboardExprs(JSON.parse(readFileSync(DASHBOARD, 'utf8'))).flatMap((e) => [...e.matchAll(METRIC_RE)].map((m) => series.get(m[1]!))));
    for (const family of ['ldap_socketmap_lookups_total', 'ldap_socketmap_lookup_duration_seconds', 'ldap_socketmap_cache_hits_total',
      'ldap_socketmap_ldap_requests_total', 'ldap_socketmap_ldap_connection_events_total', 'ldap_socketmap_client_connections']) {
      expect(used.has(family), family).toBe(true);
    }
  });
});
