// Summarizes a V8 .cpuprofile (node --cpu-prof) for a terminal: self time per function and per
// package/file, and inclusive time per function (time with the function anywhere on the stack).
//
//   node bench/lib/profile-summary.mjs FILE.cpuprofile [--last MS] [--skip-end MS]
//
// --last/--skip-end restrict the summary to a window at the end of the profile (e.g. the load
// phase before the daemon was stopped, leaving out the cache fill before it).
import { readFileSync } from 'node:fs';

function where(url) {
  if (!url) return '(native/vm)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  const dist = /\/dist\/(.*)$/.exec(url);
  if (dist) return `dist/${dist[1]}`;
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

const META = new Set(['(program)', '(garbage collector)', '(root)', '(idle)']);

/**
 * Returns { totalMs, idleMs, busyMs, byFunction, byFile, inclusive }. `window` = { lastMs,
 * skipEndMs }: only samples between (end - skipEndMs - lastMs) and (end - skipEndMs) count.
 */
export function summarizeProfile(file, window = {}) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const deltas = prof.timeDeltas ?? [];
  const times = new Float64Array(prof.samples.length);
  let t = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) { t += deltas[i] ?? 0; times[i] = t; }
  const end = prof.samples.length ? times[prof.samples.length - 1] : prof.startTime;
  const hi = end - (window.skipEndMs ?? 0) * 1000;
  const lo = window.lastMs !== undefined ? hi - window.lastMs * 1000 : -Infinity;

  const keyOf = (n) => {
    const cf = n.callFrame;
    const name = cf.functionName || '(anonymous)';
    const f = META.has(name) ? name : where(cf.url);
    return { key: `${name}\u0000${f}\u0000${cf.lineNumber + 1}`, name, file: f };
  };
  const self = new Map();
  const byFile = new Map();
  const incl = new Map();
  let totalMs = 0;
  let idleMs = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    if (times[i] < lo || times[i] > hi) continue;
    const dt = (i + 1 < prof.samples.length ? times[i + 1] - times[i] : 0) / 1000;
    totalMs += dt;
    const leaf = nodes.get(prof.samples[i]);
    const k = keyOf(leaf);
    if (k.name === '(idle)') { idleMs += dt; continue; }
    self.set(k.key, (self.get(k.key) ?? 0) + dt);
    byFile.set(k.file, (byFile.get(k.file) ?? 0) + dt);
    const seen = new Set();
    for (let id = leaf.id; id !== undefined; id = parent.get(id)) {
      const kk = keyOf(nodes.get(id)).key;
      if (seen.has(kk)) continue;
      seen.add(kk);
      incl.set(kk, (incl.get(kk) ?? 0) + dt);
    }
  }
  const busy = totalMs - idleMs;
  const rows = (m) => [...m].sort((a, b) => b[1] - a[1]).map(([key, ms]) => {
    const [name, f, line] = key.split('\u0000');
    return { name, file: f, line: Number(line), ms, pct: (100 * ms) / busy };
  });
  return {
    totalMs,
    idleMs,
    busyMs: busy,
    byFunction: rows(self),
    byFile: [...byFile].sort((a, b) => b[1] - a[1]).map(([f, ms]) => ({ file: f, ms, pct: (100 * ms) / busy })),
    inclusive: rows(incl).filter((r) => !META.has(r.name)),
  };
}

export function formatSummary(s, top = 25) {
  const lines = [];
  const row = (r, label) => `    ${r.pct.toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(6)} ms  ${label}`;
  lines.push(`  sampled ${s.totalMs.toFixed(0)} ms, idle ${s.idleMs.toFixed(0)} ms, busy ${s.busyMs.toFixed(0)} ms (percentages of busy)`);
  lines.push('  self time by package/file:');
  for (const r of s.byFile.slice(0, 15)) lines.push(row(r, r.file));
  lines.push('  self time by function:');
  for (const r of s.byFunction.slice(0, top)) lines.push(row(r, `${r.name}  ${r.file}:${r.line}`));
  lines.push('  inclusive time by function (our code and libraries):');
  for (const r of s.inclusive.filter((x) => x.file !== '(native/vm)' && !x.file.startsWith('node:')).slice(0, top)) lines.push(row(r, `${r.name}  ${r.file}:${r.line}`));
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const window = {};
  const files = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--last') window.lastMs = Number(args[++i]);
    else if (args[i] === '--skip-end') window.skipEndMs = Number(args[++i]);
    else files.push(args[i]);
  }
  for (const f of files) {
    console.log(f);
    console.log(formatSummary(summarizeProfile(f, window), 40));
  }
}
