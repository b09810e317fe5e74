#!/usr/bin/env node
// Checks that src/ is layered one way: no import cycle between files, and no import from a
// folder to a folder above it. The layers, lowest first (a folder may import only from folders
// of a lower rank, and from files of its own folder):
//
//   0 contracts, log.ts   what every layer agrees on: results, maps, the trace; logging
//   1 fold, protocol, ldap   key folding; pure wire codecs; the LDAP client
//   2 template             %-templates (parse, expand, describe)
//   3 config               .cf files and the daemon config
//   4 lookup, cache        ldap_table semantics and wrappers; the answer cache
//   5 chain, freshness     the one map-chain builder; the change watcher
//   6 explain, server      explain over the chain; listeners, connections, handlers
//   7 metrics              Prometheus observers of every layer below
//   8 runtime              the daemon as `serve` runs it (composition root), admin HTTP
//   8 migrate, verify      admin tools: main.cf migration, native-vs-daemon comparison
//   9 cli                  commands
//
// Usage: node scripts/check-layers.mjs [SRC_DIR]   (exit 0: clean, 1: violations listed)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RANKS = {
  contracts: 0, 'log.ts': 0,
  fold: 1, protocol: 1, ldap: 1,
  template: 2,
  config: 3,
  lookup: 4, cache: 4,
  chain: 5, freshness: 5,
  explain: 6, server: 6,
  metrics: 7,
  runtime: 8, migrate: 8, verify: 8,
  cli: 9,
};

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Relative imports and re-exports of a file, type-only ones included: a cycle of types is still a cycle. */
function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const out = [];
  const re = /^\s*(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gms;
  for (const m of text.matchAll(re)) out.push(resolve(dirname(file), m[1].replace(/\.js$/, '.ts')));
  return out;
}

/** The layer name of a file: its top folder under src, or the file name for files at the top. */
function layerOf(src, file) {
  const rel = relative(src, file).split(sep);
  return rel.length === 1 ? rel[0] : rel[0];
}

export function checkLayers(srcDir) {
  const src = resolve(srcDir);
  const files = walk(src);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  const problems = [];
  for (const [file, deps] of graph) {
    const from = layerOf(src, file);
    if (!(from in RANKS)) problems.push(`${relative(src, file)}: folder ${from} has no layer (add it to RANKS in scripts/check-layers.mjs)`);
    for (const dep of deps) {
      if (!graph.has(dep)) {
        problems.push(`${relative(src, file)}: imports ${relative(src, dep)}, which does not exist`);
        continue;
      }
      const to = layerOf(src, dep);
      if (from === to || !(from in RANKS) || !(to in RANKS)) continue;
      if (RANKS[to] >= RANKS[from]) {
        problems.push(`${relative(src, file)}: imports ${relative(src, dep)} (${from}, layer ${RANKS[from]}, may not import ${to}, layer ${RANKS[to]})`);
      }
    }
  }
  // Cycles between files (Tarjan's strongly connected components).
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v), idx.get(w)));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) {
        problems.push(`import cycle: ${scc.map((f) => relative(src, f)).sort().join(' <-> ')}`);
      }
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
  return { files: files.length, problems };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const here = dirname(fileURLToPath(import.meta.url));
  const { files, problems } = checkLayers(process.argv[2] ?? join(here, '..', 'src'));
  for (const p of problems) console.error(p);
  console.log(`${files} files, ${problems.length} layering problem${problems.length === 1 ? '' : 's'}`);
  process.exit(problems.length === 0 ? 0 : 1);
}
