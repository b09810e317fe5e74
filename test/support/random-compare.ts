/**
 * The comparison engine of the random differential tests (OpenLDAP's
 * test/integration/differential-random.test.ts, 389-ds's test/directories/ds389-random.test.ts
 * and Samba AD's test/directories/ad-random.test.ts, whose postmaps run in the DC's namespace):
 * for every key of one map, native `postmap -q KEY ldap:FILE.cf` against one or more daemon
 * tables (`socketmap:inet:…:NAME`, e.g. the same .cf with and without batch_member_fetch) must
 * end the same way (found / not found / temporary error) with the same bytes.
 *
 * Speed: keys go through `postmap -q -` batches; a batch stops at the first temporary error (and
 * then loses its buffered stdout), so batches run with -v, the verbose log tells at which key
 * each side stopped, the keys before it are re-run as a batch and compared, the stopping key is
 * compared on its own, and the batch goes on after it. Postfix's one-second sleep before a fatal
 * exit is skipped by killing postmap as soon as its fatal line is out.
 */
import { mapLimit } from './map-limit.js';
import { postmapOutcome, type PostmapOutcome, postmapRun, type PostmapRun, QUERY_ERROR_RE, showPostmapRun } from './postmap-run.js';

/** After this many temporary errors in one map, the rest of its keys are compared one by one (a sample). */
const TEMP_SWITCH = 6;
const PER_KEY_SAMPLE = 40;
const PARALLEL = 4;

const LDAP_LOOKUP_RE = /^postmap: dict_ldap_lookup: In dict_ldap_lookup$/;
const SOCKMAP_LOOKUP_RE = /^postmap: dict_sockmap_lookup: key /;

function postmapIn(ctx: MapCtx, args: string[], input: string | undefined, countRe?: RegExp): Promise<PostmapRun> {
  return postmapRun(ctx.confDir, args, { input, countRe, timeoutMs: 300_000, stderrCap: 200_000, ...(ctx.prefix ? { prefix: ctx.prefix } : {}) });
}

/** Runs native postmap (side -1) or table i's, adding its wall time to ctx.ms. */
async function timed(ctx: MapCtx, side: number, run: Promise<PostmapRun>): Promise<PostmapRun> {
  const t0 = performance.now();
  const r = await run;
  if (ctx.ms) {
    if (side < 0) ctx.ms.native += performance.now() - t0;
    else ctx.ms.tables[side] = (ctx.ms.tables[side] ?? 0) + performance.now() - t0;
  }
  return r;
}

/** postmap's stdout as text (batch outputs are compared and split as text). */
const text = (r: PostmapRun): string => r.stdout.toString('utf8');

export interface Mismatch {
  seed: number;
  map: string;
  /** Which daemon table disagreed (its label). */
  table: string;
  key: string;
  native: string;
  ours: string;
  oursStderr: string;
  nativeStderr: string;
}

/** The native postmap refused a map or ended oddly: the generator made something Postfix rejects. */
export class GeneratorError extends Error {}

export interface DaemonTable {
  /** Short name for reports ("plain", "batched"). */
  label: string;
  /** The postmap table argument, `socketmap:inet:127.0.0.1:PORT:NAME`. */
  table: string;
}

export interface MapCtx {
  seed: number;
  name: string;
  cfFile: string;
  cfText: string;
  confDir: string;
  /** The daemon tables each compared with native (at least one). */
  tables: DaemonTable[];
  stats: Record<PostmapOutcome, number>;
  /** Keys for which the native postmap crashed (Postfix/libldap bug, nothing to compare). */
  crashes: string[];
  /** Milliseconds spent in native postmap runs and in each table's runs (summed; for reports). */
  ms?: { native: number; tables: number[] };
  /** Why native postmap failed temporarily, first seen reason per distinct warning (for reports). */
  tempReasons?: Set<string>;
  /** A command every postmap runs under (`ip netns exec NS …` for a DC in a namespace of its own). */
  prefix?: string[];
  /** Keys compared (a map that mostly fails temporarily compares a sample only). */
  compared?: number;
}

/** Notes native's warning before a temporary error (the LDAP error Postfix logged) in ctx.tempReasons. */
function noteTempReason(ctx: MapCtx, r: PostmapRun): void {
  if (!ctx.tempReasons || r.fatal === undefined || ctx.tempReasons.size >= 4) return;
  const warn = r.stderr.split('\n').filter((l) => /^postmap: warning: /.test(l)).pop();
  if (warn) ctx.tempReasons.add(warn.replace(/^postmap: warning: /, '').replace(/ for (search|key) .*$/, '').slice(0, 200));
}

export function newStats(): Record<PostmapOutcome, number> {
  return { found: 0, notfound: 0, temp: 0, crash: 0, other: 0 };
}

async function perKey(ctx: MapCtx, keys: string[]): Promise<Mismatch[]> {
  const found: Mismatch[] = [];
  await mapLimit(keys, PARALLEL, async (key) => {
    const [n, ...os] = await Promise.all([
      timed(ctx, -1, postmapIn(ctx, ['-q', key, `ldap:${ctx.cfFile}`], undefined)),
      ...ctx.tables.map((t, i) => timed(ctx, i, postmapIn(ctx, ['-q', key, t.table], undefined))),
    ]);
    const no = postmapOutcome(n!);
    if (no === 'temp') noteTempReason(ctx, n!);
    if (no === 'crash') {
      ctx.crashes.push(key);
      return;
    }
    if (no === 'other') throw new GeneratorError(`native postmap ended oddly for map ${ctx.name} key ${JSON.stringify(key)}: ${showPostmapRun(n!)}\n${n!.stderr}\n--- ${ctx.cfFile}\n${ctx.cfText}`);
    ctx.stats[no]++;
    ctx.compared = (ctx.compared ?? 0) + 1;
    os.forEach((o, i) => {
      // Bytes too, not only their UTF-8 reading: binary values (objectGUID) read as U+FFFD alike.
      if (showPostmapRun(n!) !== showPostmapRun(o) || !n!.stdout.equals(o.stdout)) {
        found.push({ seed: ctx.seed, map: ctx.name, table: ctx.tables[i]!.label, key, native: showPostmapRun(n!), ours: showPostmapRun(o), oursStderr: o.stderr.slice(0, 2000), nativeStderr: n!.stderr.slice(0, 2000) });
      }
    });
  });
  return found;
}

function batchInput(keys: string[]): string {
  return keys.map((k) => k + '\n').join('');
}

function countFound(ctx: MapCtx, r: PostmapRun, keys: number): void {
  for (const line of text(r).split('\n')) if (line.includes('\t')) ctx.stats.found++;
  ctx.compared = (ctx.compared ?? 0) + keys;
}

/** Compares every key of one map against every daemon table; returns the mismatches. */
export async function compareMap(ctx: MapCtx, keys: string[]): Promise<Mismatch[]> {
  const mismatches: Mismatch[] = [];
  let rest = keys;
  let temps = 0;
  while (rest.length > 0) {
    if (temps >= TEMP_SWITCH) {
      // A map that mostly fails: every batch would stop at once. Compare a sample key by key.
      mismatches.push(...(await perKey(ctx, rest.slice(0, PER_KEY_SAMPLE))));
      break;
    }
    const input = batchInput(rest);
    const [n, ...os] = await Promise.all([
      timed(ctx, -1, postmapIn(ctx, ['-v', '-q', '-', `ldap:${ctx.cfFile}`], input, LDAP_LOOKUP_RE)),
      ...ctx.tables.map((t, i) => timed(ctx, i, postmapIn(ctx, ['-v', '-q', '-', t.table], input, SOCKMAP_LOOKUP_RE))),
    ]);
    if (n!.crashed !== undefined || os.some((o) => o.crashed !== undefined)) {
      // Native postmap crashed somewhere in the batch: go key by key (a sample) for the rest.
      mismatches.push(...(await perKey(ctx, rest.slice(0, PER_KEY_SAMPLE))));
      break;
    }
    if (n!.fatal !== undefined && !QUERY_ERROR_RE.test(n!.fatal)) {
      throw new GeneratorError(`native postmap refused map ${ctx.name}: ${n!.fatal}\n--- ${ctx.cfFile}\n${ctx.cfText}`);
    }
    if (n!.fatal === undefined && os.every((o) => o.fatal === undefined)) {
      if (os.some((o) => !n!.stdout.equals(o.stdout))) mismatches.push(...(await perKey(ctx, rest)));
      else countFound(ctx, n!, rest.length);
      break;
    }
    noteTempReason(ctx, n!);
    const nStop = n!.fatal !== undefined ? n!.lookups - 1 : rest.length;
    const oStops = os.map((o) => (o.fatal !== undefined ? o.lookups - 1 : rest.length));
    if (nStop < 0 || oStops.some((s) => s < 0)) throw new Error(`could not tell where postmap stopped (native ${n!.lookups}, ours ${os.map((o) => o.lookups).join('/')} lookups): ${n!.fatal ?? ''} ${os.map((o) => o.fatal ?? '').join(' ')}`);
    const stop = Math.min(nStop, ...oStops);
    const prefix = rest.slice(0, stop);
    if (prefix.length > 0) {
      const [pn, ...pos] = await Promise.all([
        timed(ctx, -1, postmapIn(ctx, ['-q', '-', `ldap:${ctx.cfFile}`], batchInput(prefix))),
        ...ctx.tables.map((t, i) => timed(ctx, i, postmapIn(ctx, ['-q', '-', t.table], batchInput(prefix)))),
      ]);
      if (pn!.fatal !== undefined || pos.some((po) => po.fatal !== undefined || !pn!.stdout.equals(po.stdout))) mismatches.push(...(await perKey(ctx, prefix)));
      else countFound(ctx, pn!, prefix.length);
    }
    const key = rest[stop]!;
    if (oStops.every((s) => s === nStop)) {
      ctx.stats.temp++;
      ctx.compared = (ctx.compared ?? 0) + 1;
      temps++;
    } else {
      mismatches.push(...(await perKey(ctx, [key])));
    }
    rest = rest.slice(stop + 1);
  }
  return mismatches;
}

export function describeMismatch(m: Mismatch, cfText: string): string {
  return [
    `MISMATCH seed ${m.seed} map ${m.map} (${m.table}) key ${JSON.stringify(m.key)}`,
    `  native: ${m.native}`,
    `  ours:   ${m.ours}`,
    `  .cf:\n${cfText.replace(/^/gm, '    ')}`,
  ].join('\n');
}
