#!/usr/bin/env node
// Generates src/fold/casefold-data.ts from the Unicode Character Database file CaseFolding.txt
// (Debian package unicode-data: /usr/share/unicode/CaseFolding.txt).
//
// Usage: node scripts/gen-casefold.mjs [path/to/CaseFolding.txt] [output.ts]
//
// What is kept: status C (common) and F (full) mappings. That is Unicode *full* case folding
// without the Turkic special cases, which is what ICU's ucasemap_utf8FoldCase() does with
// U_FOLD_CASE_DEFAULT, which is what Postfix's casefold() calls (util/casefold.c).
// Status S (simple) lines are dropped: every S line has an F line for the same code point
// and full folding uses the F one. Status T (Turkic) lines are dropped.
//
// Encoding (keeps the generated file small; decoded once at module load by key-fold.ts):
//   SINGLE: runs of one-code-point mappings, ';'-separated, each "start,count,step,delta"
//           in base 36 (delta may be negative): for i in 0..count-1,
//           start + i*step  folds to  start + i*step + delta.
//   MULTI:  ';'-separated "cp,t1 t2 [t3]" in base 36: cp folds to the sequence t1 t2 [t3].
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const input = process.argv[2] ?? '/usr/share/unicode/CaseFolding.txt';
const output = process.argv[3] ?? resolve(here, '../src/fold/casefold-data.ts');

const text = readFileSync(input, 'utf8');
const versionMatch = /^#\s*CaseFolding-(\d+\.\d+\.\d+)\.txt/m.exec(text);
if (!versionMatch) throw new Error(`${input}: no "# CaseFolding-X.Y.Z.txt" header line`);
const version = versionMatch[1];
const dateMatch = /^#\s*Date:\s*(.*)$/m.exec(text);

/** @type {Map<number, number[]>} */
const fold = new Map();
const seen = new Map();
for (const rawLine of text.split('\n')) {
  const line = rawLine.replace(/#.*/, '').trim();
  if (line === '') continue;
  const fields = line.split(';').map((f) => f.trim());
  if (fields.length < 3) throw new Error(`bad line: ${rawLine}`);
  const [cpHex, status, mapping] = fields;
  const cp = parseInt(cpHex, 16);
  const target = mapping.split(/\s+/).map((h) => parseInt(h, 16));
  if (!Number.isInteger(cp) || target.some((t) => !Number.isInteger(t))) throw new Error(`bad line: ${rawLine}`);
  if (status === 'C' || status === 'F') {
    if (fold.has(cp)) throw new Error(`duplicate C/F mapping for U+${cpHex}`);
    fold.set(cp, target);
  } else if (status === 'S' || status === 'T') {
    seen.set(cp, status);
  } else {
    throw new Error(`unknown status ${status}: ${rawLine}`);
  }
}
// Sanity: every S line must have an F line (otherwise full folding would need the S one).
for (const [cp, status] of seen) {
  if (status === 'S' && !fold.has(cp)) throw new Error(`S mapping without F for U+${cp.toString(16)}`);
}

const cps = [...fold.keys()].sort((a, b) => a - b);
const singles = cps.filter((cp) => fold.get(cp).length === 1);
const multis = cps.filter((cp) => fold.get(cp).length > 1);

// Greedy run building over the sorted single mappings: extend a run while the next code
// point is exactly `step` further and has the same delta.
const runs = [];
for (let i = 0; i < singles.length; ) {
  const start = singles[i];
  const delta = fold.get(start)[0] - start;
  let best = { count: 1, step: 1 };
  for (const step of [1, 2]) {
    let count = 1;
    while (
      i + count < singles.length &&
      singles[i + count] === start + count * step &&
      fold.get(singles[i + count])[0] - singles[i + count] === delta
    ) {
      count++;
    }
    if (count > best.count) best = { count, step };
  }
  runs.push([start, best.count, best.step, delta]);
  i += best.count;
}

const b36 = (n) => n.toString(36);
const singleStr = runs.map(([s, c, st, d]) => [b36(s), b36(c), b36(st), b36(d)].join(',')).join(';');
const multiStr = multis.map((cp) => `${b36(cp)},${fold.get(cp).map(b36).join(' ')}`).join(';');

// Self-check: decode and compare with the parsed table.
const check = new Map();
for (const run of singleStr.split(';')) {
  const [s, c, st, d] = run.split(',').map((x) => parseInt(x, 36));
  for (let k = 0; k < c; k++) check.set(s + k * st, [s + k * st + d]);
}
for (const m of multiStr.split(';')) {
  const [cp, t] = m.split(',');
  check.set(parseInt(cp, 36), t.split(' ').map((x) => parseInt(x, 36)));
}
if (check.size !== fold.size) throw new Error('self-check: size mismatch');
for (const [cp, t] of fold) {
  if (JSON.stringify(check.get(cp)) !== JSON.stringify(t)) throw new Error(`self-check failed at U+${cp.toString(16)}`);
}

const wrap = (s, width = 96) => {
  const out = [];
  for (let i = 0; i < s.length; i += width) out.push(s.slice(i, i + width));
  return out.map((l) => `  '${l}'`).join(' +\n');
};

const ts = `// GENERATED FILE - do not edit. Regenerate with: node scripts/gen-casefold.mjs
// Source: CaseFolding-${version}.txt (Unicode ${version})${dateMatch ? `, ${dateMatch[1].trim()}` : ''}
// Contents: Unicode full case folding = status C + F mappings (no T, no S), as used by ICU
// ucasemap_utf8FoldCase() with U_FOLD_CASE_DEFAULT (Postfix casefold()).
// ${fold.size} mappings: ${singles.length} single (${runs.length} runs), ${multis.length} multi-code-point.
// Encoding: see scripts/gen-casefold.mjs. Decoded by src/fold/key-fold.ts.

export const UNICODE_VERSION = '${version}';

/** Runs "start,count,step,delta" (base 36), ';'-separated. */
export const SINGLE_RUNS =
${wrap(singleStr)};

/** "cp,t1 t2 [t3]" (base 36), ';'-separated. */
export const MULTI_MAPPINGS =
${wrap(multiStr)};
`;
writeFileSync(output, ts);
console.log(`wrote ${output}: Unicode ${version}, ${fold.size} mappings, ${runs.length} runs, ${multis.length} multi, ${ts.length} bytes`);
