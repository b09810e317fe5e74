/**
 * Random differential test, second half: the tcp_table listener and `explain`, over the same
 * seeded random directories, maps and keys as test/integration/differential-random.test.ts
 * (generators in test/support/random-directory.ts, drawn in the same order with the same
 * counts, so seed N here is seed N there).
 *
 * 1. tcp_table: for every compared (map, key), the real `postmap -q KEY ldap:FILE.cf` and
 *    `postmap -q KEY tcp:127.0.0.1:PORT` (one `--tcp-table NAME=inet:127.0.0.1:0` listener per
 *    map, the daemon started as users start it) must end the same way (found / not found /
 *    temporary error) and print the same bytes. The one documented exception (README
 *    "Differences" 4): a found value whose reply line `200 <%XX-quoted value>\n` is longer than
 *    4096 bytes must be a temporary error over tcp. Keys go one `postmap -q KEY` each (from the
 *    command line, so they may hold spaces, `%`, control characters, newlines and non-ASCII
 *    text, all of which tcp_table(5) %XX-quotes on the wire); Postfix's one-second sleep before
 *    a fatal exit is skipped by killing postmap at its fatal line.
 *    Besides a sample of the generator's keys, every map gets keys aimed at the tcp_table
 *    quoting (literal `%XX` text, a trailing `%`, spaces, control bytes, non-ASCII), drawn from a
 *    PRNG stream of their own (the generator's maps and keys are unchanged by them).
 * 2. explain: for a sample of (map, key), `ldap-socketmap explain --map NAME=FILE.cf --json
 *    NAME KEY` must report as its final answer exactly what the daemon answers over socketmap
 *    for the same key (a raw socketmap request): the same reply frame byte for byte (found value,
 *    not found, temporary error and its reason), an `answer` consistent with that frame, the
 *    tcp_table line the tcp listener sends, and the exit status 0 / 1 / 75.
 *
 * Seeds: DIFF_TCP_SEED=N, N,M,... or FROM-TO replace the pinned seeds (every run prints its seed).
 * DIFF_TCP_KEYS: generator keys compared over tcp per map (default 35; `all` = every key),
 * DIFF_TCP_EXTRA: tcp-quoting keys per map (default 12), DIFF_TCP_EXPLAIN: explain checks per
 * seed (default 8). DIFF_MAPS / DIFF_KEYS / DIFF_WIDE_MAPS / DIFF_WIDE_KEYS / DIFF_AVOID /
 * DIFF_INCLUDE are read as differential-random.test.ts reads them (they change what a seed
 * generates). A mismatch writes a reproduction to $TMPDIR/ldap-socketmap-diff-random-tcp/.
 * Keys for which the native postmap itself crashes (a Postfix 3.7 / libldap 2.5 bug) are listed,
 * not compared.
 */
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ExplainReport } from '../../src/explain/types.js';
import { startDaemon, type RunningDaemon, runCli } from '../support/daemon.js';
import { mapLimit } from '../support/map-limit.js';
import { Rng, type Directory } from '../support/random-directory.js';
import { seedSizesFromEnv, seedsFromEnv, setUpSeed, reproDir } from '../support/random-seed.js';
import { socketmapFrame } from '../support/socketmap-client.js';
import { postmapOutcome, type PostmapOutcome, postmapRun, type PostmapRun, showPostmapRun } from '../support/postmap-run.js';

/** Seeds run by `npm test` (all pass); a mix of alias, mailbox, dynamic and echo maps, loops and limits. */
const PINNED_SEEDS = [3, 12];

const SEEDS = seedsFromEnv('DIFF_TCP_SEED', PINNED_SEEDS);
// Generation: exactly as differential-random.test.ts, so that a seed means the same directory.
const SIZES = seedSizesFromEnv();
// Comparison: how much of it is compared here.
const TCP_KEYS = process.env.DIFF_TCP_KEYS === 'all' ? Infinity : Number(process.env.DIFF_TCP_KEYS ?? 35);
const TCP_EXTRA = Number(process.env.DIFF_TCP_EXTRA ?? 12);
const EXPLAIN_KEYS = Number(process.env.DIFF_TCP_EXPLAIN ?? 8);
const PARALLEL = Number(process.env.DIFF_TCP_PARALLEL ?? 6);
/** Postfix's tcp_table client reads at most this many bytes of a reply line (README "Differences" 4). */
const TCP_MAX_REPLY = 4096;

// ---------------------------------------------------------------------------------------
// postmap runner

function postmap(confDir: string, key: string, table: string): Promise<PostmapRun> {
  return postmapRun(confDir, ['-q', key, table], { timeoutMs: 120_000, stderrCap: 100_000 });
}


/** Bytes of hex_quote(value): '%', 0x00-0x20 and 0x7f-0xff take three bytes. */
function quotedLength(b: Buffer): number {
  let n = 0;
  for (const c of b) n += c === 0x25 || c <= 0x20 || c >= 0x7f ? 3 : 1;
  return n;
}

// ---------------------------------------------------------------------------------------
// raw protocol clients and the explain CLI

/** One raw tcp_table request (key %XX-quoted like Postfix's hex_quote); resolves with the reply line. */
function tcpLine(port: number, key: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const k = Buffer.from(key, 'utf8');
    let q = '';
    for (const c of k) q += c === 0x25 || c <= 0x20 || c >= 0x7f ? `%${c.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(c);
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(`get ${q}\n`, 'latin1'));
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf(0x0a);
      if (nl >= 0) { s.destroy(); resolve(buf.subarray(0, nl + 1)); }
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`tcp_table connection closed before a reply (${JSON.stringify(key)})`)));
  });
}

// ---------------------------------------------------------------------------------------
// keys aimed at tcp_table's %XX quoting

const TCP_BITS = [
  ' ', '  ', '%', '%25', '%41', '%4', '%zz', '%%', '%20', '%0A', '%00', '%s', '+', '\t', '\r', '\x01', '\x1b', '\x7f', '\x0b',
  '\x0c', '\n', 'é', 'Ü', '\u00a0', '\u2028', '\ufffd', 'ÿ', '😀', 'ß', 'İ', '\u0301', '=', '"', '\\',
];

function tcpKeys(rng: Rng, dir: Directory, n: number): string[] {
  const tokens = dir.tokens.filter((t) => t.length > 0);
  const out = new Set<string>();
  let guard = 0;
  while (out.size < n && guard++ < n * 20 && tokens.length) {
    let k = rng.pick(tokens);
    for (let m = rng.int(1, 3); m > 0; m--) {
      const bit = rng.pick(TCP_BITS);
      switch (rng.int(0, 3)) {
        case 0: k = bit + k; break;
        case 1: k = k + bit; break;
        default: { const pos = rng.int(0, k.length); k = k.slice(0, pos) + bit + k.slice(pos); }
      }
    }
    if (rng.chance(0.2)) k = k.toUpperCase();
    // A command-line argument: no NUL; Postfix never looks up an empty key.
    if (k.length > 0 && !k.includes('\0') && Buffer.byteLength(k) < 4000) out.add(k);
  }
  return [...out];
}

// ---------------------------------------------------------------------------------------

interface Mismatch {
  kind: 'tcp' | 'explain';
  seed: number;
  map: string;
  key: string;
  expected: string;
  actual: string;
  detail?: string;
}

interface MapInfo {
  file: string;
  text: string;
  summary: string;
  keys: string[];
  extra: string[];
  wide: boolean;
}

async function runSeed(seed: number): Promise<{ mismatches: Mismatch[]; report: string[] }> {
  // The same directories, maps and keys as differential-random.test.ts for this seed.
  const setup = await setUpSeed(seed, SIZES, 'diff-random-tcp-cf-');
  const { dir, wideDir, confDir } = setup;
  let daemon: RunningDaemon | undefined;
  const report: string[] = [];
  try {
    const maps = new Map<string, MapInfo>();
    for (const [name, m] of setup.maps) maps.set(name, { file: m.file, text: m.text, summary: m.summary, keys: m.keys, extra: [], wide: m.wide });
    // This test's own stream: the sample of keys compared, the tcp-quoting keys, the explain sample.
    const trng = new Rng((seed * 0x85ebca6b + 0x7c9) >>> 0);
    for (const m of maps.values()) {
      m.keys = Number.isFinite(TCP_KEYS) ? trng.some(m.keys, TCP_KEYS) : m.keys;
      m.extra = tcpKeys(trng, m.wide ? wideDir! : dir, TCP_EXTRA).filter((k) => !m.keys.includes(k));
    }

    daemon = await startDaemon([
      '--socketmap', 'inet:127.0.0.1:0',
      ...[...maps].flatMap(([name, m]) => ['--map', `${name}=${m.file}`, '--tcp-table', `${name}=inet:127.0.0.1:0`]),
    ]);
    const names = [...maps.keys()];
    const tcpPort = (name: string) => daemon!.tcpPorts[names.indexOf(name)]!;

    const mismatches: Mismatch[] = [];
    const perMap = new Map<string, Mismatch[]>();
    const note = (m: Mismatch) => { mismatches.push(m); perMap.set(m.map, [...(perMap.get(m.map) ?? []), m]); };

    // 1. tcp_table against the native ldap: table.
    /** (map, key) pairs the native table found or failed (half of the explain sample comes from them). */
    const answered: [string, string][] = [];
    for (const [name, m] of maps) {
      const t0 = Date.now();
      const stats: Record<PostmapOutcome | 'oversize', number> = { found: 0, notfound: 0, temp: 0, crash: 0, other: 0, oversize: 0 };
      const crashes: string[] = [];
      await mapLimit([...m.keys, ...m.extra], PARALLEL, async (key) => {
        const [n, o] = await Promise.all([postmap(confDir, key, `ldap:${m.file}`), postmap(confDir, key, `tcp:127.0.0.1:${tcpPort(name)}`)]);
        const no = postmapOutcome(n);
        if (no === 'crash') { crashes.push(key); return; }
        stats[no]++;
        if (no !== 'notfound') answered.push([name, key]);
        let expected = showPostmapRun(n);
        if (no === 'found') {
          const value = n.stdout.subarray(0, n.stdout.length - 1);
          if (4 + quotedLength(value) + 1 > TCP_MAX_REPLY) { expected = 'temp'; stats.oversize++; }
        }
        if (expected !== showPostmapRun(o)) {
          note({ kind: 'tcp', seed, map: name, key, expected, actual: showPostmapRun(o), detail: `native stderr: ${n.stderr.slice(0, 1500)}\ntcp stderr: ${o.stderr.slice(0, 1500)}` });
        }
      });
      report.push(`seed ${seed} ${name} [${m.summary}] tcp: ${m.keys.length}+${m.extra.length} keys found=${stats.found} notfound=${stats.notfound} temp=${stats.temp} oversize=${stats.oversize} mismatches=${perMap.get(name)?.length ?? 0} ${Date.now() - t0}ms${crashes.length ? ` native-crashes=${JSON.stringify(crashes)}` : ''}`);
    }

    // 2. explain against the daemon's socketmap (and tcp_table) answer.
    answered.sort((a, b) => (a.join('\0') < b.join('\0') ? -1 : 1)); // filled in completion order
    const sample: [string, string][] = [];
    for (let i = 0; i < EXPLAIN_KEYS; i++) {
      let name = trng.pick(names);
      let key: string;
      if (answered.length && trng.chance(0.5)) [name, key] = trng.pick(answered);
      else {
        const m = maps.get(name)!;
        key = trng.pick(trng.chance(0.3) && m.extra.length ? m.extra : m.keys);
      }
      // The explain command line cannot carry a key that starts with '-' (yargs takes it for an
      // option, also after `--`, and turns the key `-` into an empty key): not compared.
      if (!key.startsWith('-')) sample.push([name, key]);
    }
    const t1 = Date.now();
    const kinds: Record<string, number> = {};
    const reasonDiffs: string[] = [];
    await mapLimit(sample, 2, async ([name, key]) => {
      const m = maps.get(name)!;
      const [ex, frame, line] = await Promise.all([runCli(['explain', '--map', `${name}=${m.file}`, '--json', name, key]), socketmapFrame(daemon!.ports[0]!, name, key), tcpLine(tcpPort(name), key)]);
      const fail = (expected: string, actual: string, detail?: string) => note({ kind: 'explain', seed, map: name, key, expected, actual, detail });
      let r: ExplainReport;
      try {
        r = JSON.parse(ex.stdout) as ExplainReport;
      } catch {
        fail(`daemon ${JSON.stringify(frame.toString('utf8'))}`, `explain exit ${ex.code}, no JSON`, `stdout: ${ex.stdout.slice(0, 1000)}\nstderr: ${ex.stderr.slice(0, 2000)}`);
        return;
      }
      kinds[r.answer.kind] = (kinds[r.answer.kind] ?? 0) + 1;
      const exFrame = Buffer.from(r.wire.socketmap.frameBase64, 'base64');
      const exLine = Buffer.from(r.wire.tcpTable.lineBase64, 'base64');
      const tempWord = (f: Buffer) => /^\d+:(TEMP|TIMEOUT) /.exec(f.toString('latin1'))?.[1];
      if (tempWord(frame) !== undefined && tempWord(frame) === tempWord(exFrame) && line[0] === 0x34 && exLine[0] === 0x34) {
        // Both temporary. When an expansion meets several errors at once (concurrent nested
        // searches), which one names the reason depends on timing, in the daemon as in explain:
        // the reason text is reported, not compared.
        if (!exFrame.equals(frame)) reasonDiffs.push(`${name} ${JSON.stringify(key)}: daemon ${JSON.stringify(frame.toString('utf8'))} | explain ${JSON.stringify(exFrame.toString('utf8'))}`);
      } else {
        if (!exFrame.equals(frame)) fail(`socketmap ${JSON.stringify(frame.toString('utf8'))}`, `explain ${JSON.stringify(exFrame.toString('utf8'))}`);
        if (!exLine.equals(line)) fail(`tcp_table ${JSON.stringify(line.toString('utf8'))}`, `explain ${JSON.stringify(exLine.toString('utf8'))}`);
      }
      // The answer must say what the frame says.
      const payload = exFrame.subarray(exFrame.indexOf(0x3a) + 1, exFrame.length - 1).toString('utf8');
      const word = payload.split(' ', 1)[0]!;
      const expectedWord = { found: 'OK', notfound: 'NOTFOUND', temp: 'TEMP', timeout: 'TIMEOUT', perm: 'PERM' }[r.answer.kind];
      const consistent = word === expectedWord || (r.answer.kind === 'found' && word === 'TEMP' && !r.wire.socketmap.fits);
      if (!consistent || (word === 'OK' && payload.slice(3) !== r.answer.value)) fail(`answer ${r.answer.kind} ${JSON.stringify(r.answer.value ?? r.answer.reason ?? '')}`, `its own frame ${JSON.stringify(payload)}`);
      const exit = { OK: 0, NOTFOUND: 1, TEMP: 75, TIMEOUT: 75 }[word as 'OK'];
      if (ex.code !== exit) fail(`exit ${exit} (frame ${word})`, `exit ${ex.code}`, ex.stderr.slice(0, 1000));
      if (ex.stderr !== '') fail('no stderr', `stderr ${JSON.stringify(ex.stderr.slice(0, 500))}`);
    });
    report.push(`seed ${seed} explain: ${sample.length} keys ${JSON.stringify(kinds)} ${Date.now() - t1}ms`);
    for (const d of reasonDiffs) report.push(`  temporary error, reason differs (timing): ${d}`);

    if (mismatches.length > 0) {
      const d = reproDir('diff-random-tcp', seed);
      writeFileSync(join(d, 'directory.ldif'), dir.ldif);
      if (wideDir) writeFileSync(join(d, 'wide-directory.ldif'), wideDir.ldif);
      for (const [name, list] of perMap) {
        const m = maps.get(name)!;
        writeFileSync(join(d, `${name}.cf`), m.text);
        writeFileSync(join(d, `${name}-mismatches.json`), JSON.stringify(list, null, 2));
        for (const x of list) report.push(`MISMATCH (${x.kind}) seed ${seed} map ${name} key ${JSON.stringify(x.key)}\n  expected: ${x.expected}\n  actual:   ${x.actual}`);
        report.push(`  .cf (${name}):\n${m.text.replace(/^/gm, '    ')}`);
      }
      report.push(`  reproduction files: ${d}`);
    }
    return { mismatches, report };
  } finally {
    await daemon?.stop();
    await setup.destroy();
  }
}

describe('random differential: tcp_table answers equal native ldap: answers; explain equals the daemon', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}`, async () => {
      console.log(`differential-random-tcp: seed ${seed} (reproduce with DIFF_TCP_SEED=${seed})`);
      const { mismatches, report } = await runSeed(seed);
      console.log(report.join('\n'));
      expect(mismatches.map((m) => `${m.kind} ${m.map} ${JSON.stringify(m.key)}: expected ${m.expected} | actual ${m.actual}`)).toEqual([]);
    }, 900_000);
  }
});
