/**
 * The comparison engine of the random differential tests: for one map, every key through the
 * native `postmap -q … ldap:FILE.cf` and through the daemon (`socketmap:…`), same end (found /
 * not found / temporary error) and same bytes, or a Mismatch. Shared by the OpenLDAP random
 * differential (test/integration/differential-random.test.ts) and the Active Directory one
 * (test/directories/ad-random.test.ts), so both referee the same way.
 *
 * Speed: keys go through `postmap -q -` batches; a batch stops at the first temporary error
 * (and then loses its buffered stdout), so batches run with -v, the verbose log tells at which
 * key each side stopped, the keys before it are re-run as a batch and compared, the stopping key
 * is compared on its own, and the batch goes on after it. Postfix's one-second sleep before a
 * fatal exit is skipped by killing postmap as soon as its fatal line is out (postmap-run.ts).
 */
import { mapLimit } from './map-limit.js';
import type { RunningDaemon } from './daemon.js';
import { postmapOutcome, type PostmapOutcome, postmapRun, type PostmapRun, QUERY_ERROR_RE, showPostmapRun } from './postmap-run.js';

export interface Mismatch {
  seed: number;
  map: string;
  key: string;
  native: string;
  ours: string;
  oursStderr: string;
  nativeStderr: string;
}

/** The generator wrote a map native postmap refuses or ends oddly with: a generator bug, not a finding. */
export class GeneratorError extends Error {}

export interface MapCtx {
  seed: number;
  name: string;
  cfFile: string;
  cfText: string;
  confDir: string;
  daemon: RunningDaemon;
  stats: Record<PostmapOutcome, number>;
  /** Keys for which the native postmap crashed (Postfix/libldap bug, nothing to compare). */
  crashes: string[];
  /** A command both postmaps run under (`ip netns exec NS …` for a DC in its own namespace). */
  prefix?: string[];
  /** After this many temporary errors in one map, the rest of its keys are compared one by one (a sample). */
  tempSwitch?: number;
  perKeySample?: number;
  parallel?: number;
  /** Keys compared so far (a temporary-error-heavy map compares a sample only). */
  compared?: number;
}

export function newStats(): Record<PostmapOutcome, number> {
  return { found: 0, notfound: 0, temp: 0, crash: 0, other: 0 };
}

const LDAP_LOOKUP_RE = /^postmap: dict_ldap_lookup: In dict_ldap_lookup$/;
const SOCKMAP_LOOKUP_RE = /^postmap: dict_sockmap_lookup: key /;

function postmap(ctx: MapCtx, args: string[], input: string | undefined, countRe?: RegExp): Promise<PostmapRun> {
  return postmapRun(ctx.confDir, args, { input, countRe, timeoutMs: 300_000, stderrCap: 200_000, ...(ctx.prefix ? { prefix: ctx.prefix } : {}) });
}

/** postmap's stdout as text (batch outputs are compared and split as text). */
const text = (r: PostmapRun): string => r.stdout.toString('utf8');

export async function perKey(ctx: MapCtx, keys: string[]): Promise<Mismatch[]> {
  const found: Mismatch[] = [];
  await mapLimit(keys, ctx.parallel ?? 4, async (key) => {
    const [n, o] = await Promise.all([
      postmap(ctx, ['-q', key, `ldap:${ctx.cfFile}`], undefined),
      postmap(ctx, ['-q', key, ctx.daemon.table(ctx.name)], undefined),
    ]);
    const no = postmapOutcome(n);
    if (no === 'crash') {
      ctx.crashes.push(key);
      return;
    }
    if (no === 'other') throw new GeneratorError(`native postmap ended oddly for map ${ctx.name} key ${JSON.stringify(key)}: ${showPostmapRun(n)}\n${n.stderr}\n--- ${ctx.cfFile}\n${ctx.cfText}`);
    ctx.stats[no]++;
    ctx.compared = (ctx.compared ?? 0) + 1;
    // Bytes, not only their UTF-8 reading: binary values (objectGUID, invalid UTF-8) read as U+FFFD alike.
    if (showPostmapRun(n) !== showPostmapRun(o) || !n.stdout.equals(o.stdout)) {
      found.push({ seed: ctx.seed, map: ctx.name, key, native: showPostmapRun(n), ours: showPostmapRun(o), oursStderr: o.stderr.slice(0, 2000), nativeStderr: n.stderr.slice(0, 2000) });
    }
  });
  return found;
}

function batchInput(keys: string[]): string {
  return keys.map((k) => k + '\n').join('');
}

/** Compares every key of one map; returns the mismatches. */
export async function compareMap(ctx: MapCtx, keys: string[]): Promise<Mismatch[]> {
  const tempSwitch = ctx.tempSwitch ?? 6;
  const sample = ctx.perKeySample ?? 40;
  const mismatches: Mismatch[] = [];
  let rest = keys;
  let temps = 0;
  while (rest.length > 0) {
    if (temps >= tempSwitch) {
      // A map that mostly fails: every batch would stop at once. Compare a sample key by key.
      mismatches.push(...(await perKey(ctx, rest.slice(0, sample))));
      break;
    }
    const input = batchInput(rest);
    const [n, o] = await Promise.all([
      postmap(ctx, ['-v', '-q', '-', `ldap:${ctx.cfFile}`], input, LDAP_LOOKUP_RE),
      postmap(ctx, ['-v', '-q', '-', ctx.daemon.table(ctx.name)], input, SOCKMAP_LOOKUP_RE),
    ]);
    if (n.crashed !== undefined || o.crashed !== undefined) {
      // Native postmap crashed somewhere in the batch: go key by key (a sample) for the rest.
      mismatches.push(...(await perKey(ctx, rest.slice(0, sample))));
      break;
    }
    if (n.fatal !== undefined && !QUERY_ERROR_RE.test(n.fatal)) {
      throw new GeneratorError(`native postmap refused map ${ctx.name}: ${n.fatal}\n--- ${ctx.cfFile}\n${ctx.cfText}`);
    }
    if (n.fatal === undefined && o.fatal === undefined) {
      if (!n.stdout.equals(o.stdout)) mismatches.push(...(await perKey(ctx, rest)));
      else {
        for (const line of text(n).split('\n')) if (line.includes('\t')) ctx.stats.found++;
        ctx.compared = (ctx.compared ?? 0) + rest.length;
      }
      break;
    }
    const nStop = n.fatal !== undefined ? n.lookups - 1 : rest.length;
    const oStop = o.fatal !== undefined ? o.lookups - 1 : rest.length;
    if (nStop < 0 || oStop < 0) throw new Error(`could not tell where postmap stopped (native ${n.lookups}, ours ${o.lookups} lookups): ${n.fatal ?? ''} ${o.fatal ?? ''}`);
    const stop = Math.min(nStop, oStop);
    const prefix = rest.slice(0, stop);
    if (prefix.length > 0) {
      const [pn, po] = await Promise.all([
        postmap(ctx, ['-q', '-', `ldap:${ctx.cfFile}`], batchInput(prefix)),
        postmap(ctx, ['-q', '-', ctx.daemon.table(ctx.name)], batchInput(prefix)),
      ]);
      if (pn.fatal !== undefined || po.fatal !== undefined || !pn.stdout.equals(po.stdout)) mismatches.push(...(await perKey(ctx, prefix)));
      else {
        for (const line of text(pn).split('\n')) if (line.includes('\t')) ctx.stats.found++;
        ctx.compared = (ctx.compared ?? 0) + prefix.length;
      }
    }
    const key = rest[stop]!;
    if (nStop === oStop) {
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
    `MISMATCH seed ${m.seed} map ${m.map} key ${JSON.stringify(m.key)}`,
    `  native: ${m.native}`,
    `  ours:   ${m.ours}`,
    `  .cf:\n${cfText.replace(/^/gm, '    ')}`,
  ].join('\n');
}
