/**
 * verify: for every map of a daemon config, the same keys through native `postmap -q … ldap:`
 * and through the daemon, compared answer by answer.
 */
import { readFileSync } from 'node:fs';
import { loadDaemonConfig, type MapDeclaration } from '../config/daemon-config.js';
import type { Listen } from '../config/listen.js';
import { ConfigError } from '../config/errors.js';
import { loadMapConfig } from '../config/map-config.js';
import { sameAnswer, type Answer } from './answer.js';
import { keysFromDirectory } from './directory-keys.js';
import { explainKey } from './explain-child.js';
import { addressChain, type ChainStep } from './fallback-oracle.js';
import { parseKeyFile, recipientsFromLog, uniqueKeys, variantsOf } from './key-variants.js';
import { postmapQuery } from './native.js';
import { eachLimited, RateLimiter } from './pace.js';
import { SocketmapPool, startOwnDaemon } from './daemon.js';
import { countNative, newTally, progressLine, type Difference, type MapTally } from './report.js';

export interface VerifyOptions {
  config: string;
  /** map name → key files. */
  keyFiles: Map<string, string[]>;
  fromLog?: string;
  /** A running daemon's socketmap listener; else one is started. */
  daemon?: Listen;
  /** Postfix config_directory for postmap -c (its smtputf8_enable folds the native keys). */
  postfixConfig?: string;
  rate: number;
  maxKeys: number;
  parallel: number;
  timeoutSec: number;
  json: boolean;
  /** How many differences get explain's view. */
  explainLimit: number;
  progress?: (line: string) => void;
}

export interface VerifyResult {
  tallies: MapTally[];
  differences: Difference[];
  complete: boolean;
  elapsedMs: number;
  daemon: string;
}

interface Job {
  map: MapDeclaration;
  tally: MapTally;
  key: string;
}

export async function runVerification(o: VerifyOptions): Promise<VerifyResult> {
  const started = Date.now();
  const cfg = loadDaemonConfig(o.config);
  if (cfg.maps.length === 0) throw new ConfigError('no maps to verify (declare map.NAME = FILE.cf)', { file: o.config });
  for (const name of o.keyFiles.keys()) {
    if (!cfg.maps.some((m) => m.name === name)) {
      throw new ConfigError(`--keys names map '${name}', which ${o.config} does not declare (maps: ${cfg.maps.map((m) => m.name).join(', ')})`, { file: 'command line', key: '--keys' });
    }
  }
  const logKeys = o.fromLog !== undefined ? recipientsFromLog(readFileSync(o.fromLog, 'utf8')) : [];
  const missToken = `verify-miss-${process.pid.toString(36)}${Date.now().toString(36)}`;

  const jobs: Job[] = [];
  const tallies: MapTally[] = [];
  for (const map of cfg.maps) {
    const tally = newTally(map.name, map.file, map.settings.fallback);
    tallies.push(tally);
    const mapCfg = loadMapConfig(map.file);
    const given: string[] = [];
    for (const f of o.keyFiles.get(map.name) ?? []) {
      const k = parseKeyFile(readFileSync(f, 'utf8'));
      tally.sources.push(`${k.length} from ${f}`);
      given.push(...k);
    }
    if (logKeys.length > 0) tally.sources.push(`${logKeys.length} recipients from ${o.fromLog}`);
    const harvest = o.maxKeys > 0 ? await keysFromDirectory(mapCfg, Math.max(1, Math.floor(o.maxKeys / 5))) : { keys: [], searched: [], problems: [] };
    for (const s of harvest.searched) tally.sources.push(`${s.values} values of ${s.filter} under ${s.base}`);
    tally.problems.push(...harvest.problems);
    // With a `domain` list, a bare %u key is never searched: ask it in each listed domain too.
    const listed = (mapCfg.domain?.items ?? []).filter((i) => !i.negate && !i.name.startsWith('/')).map((i) => i.name);
    const derived = harvest.keys.flatMap((k) => (k.includes('@') || listed.length === 0 ? [k] : [k, ...listed.map((d) => `${k}@${d}`)]));
    const variants = { delimiter: map.settings.recipientDelimiter || '+', missToken };
    const keys = uniqueKeys([...given, ...logKeys, ...derived.flatMap((k) => variantsOf(k, variants))]);
    const bounded = keys.slice(0, Math.max(o.maxKeys, given.length + logKeys.length));
    tally.keys = bounded.length;
    for (const key of bounded) jobs.push({ map, tally, key });
  }

  const own = o.daemon === undefined ? await startOwnDaemon(o.config) : undefined;
  const listen = o.daemon ?? own!.listen;
  const pool = new SocketmapPool(listen, o.parallel);
  const limiter = new RateLimiter(o.rate);
  const deadline = started + o.timeoutSec * 1000;
  const differences: Difference[] = [];
  let done = 0;
  let lastProgress = 0;
  const report = (force = false) => {
    const now = Date.now();
    if (!o.progress || (!force && now - lastProgress < 100)) return;
    lastProgress = now;
    o.progress(progressLine(done, jobs.length, differences.length, now - started));
  };

  try {
    await eachLimited(jobs, o.parallel, async (job) => {
      const steps: ChainStep[] = [];
      const native1 = async (k: string): Promise<Answer> => { await limiter.take(); return postmapQuery(job.map.file, k, o.postfixConfig !== undefined ? { postfixConfig: o.postfixConfig } : {}); };
      const native = job.map.settings.fallback === 'address'
        ? await addressChain(job.key, { delimiter: job.map.settings.recipientDelimiter, propagate: job.map.settings.propagateExtension }, native1, steps)
        : await native1(job.key);
      await limiter.take();
      const daemon = await pool.ask(job.map.name, job.key);
      job.tally.asked++;
      countNative(job.tally, native);
      if (sameAnswer(native, daemon)) job.tally.equal++;
      else {
        job.tally.different++;
        differences.push({ map: job.map.name, key: job.key, native, daemon, ...(steps.length > 1 ? { nativeSteps: steps } : {}) });
      }
      done++;
      report();
    }, () => Date.now() > deadline);
    report(true);
  } finally {
    pool.close();
    await own?.stop();
  }

  for (const d of differences.slice(0, o.explainLimit)) {
    if (Date.now() > deadline) break;
    d.explain = await explainKey(o.config, d.map, d.key, o.json);
  }
  return {
    tallies,
    differences,
    complete: done === jobs.length,
    elapsedMs: Date.now() - started,
    daemon: listen.kind === 'unix' ? `unix:${listen.path}` : `inet:${listen.host}:${listen.port}${own ? ' (started by verify)' : ''}`,
  };
}
