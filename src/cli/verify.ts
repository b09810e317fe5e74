import { ConfigError } from '../config/errors.js';
import { parseListen } from '../config/listen.js';
import { log, setLogLevel } from '../log.js';
import { renderDifference, renderSummaryTable } from '../verify/report.js';
import { runVerification } from '../verify/run.js';
import { EXIT_CONFIG } from './args.js';

export interface VerifyArgs {
  config: string;
  keys?: string[];
  fromLog?: string;
  daemon?: string;
  postfixConfig?: string;
  rate: number;
  maxKeys: number;
  parallel: number;
  timeout: number;
  explain: number;
  json?: boolean;
}

/**
 * `verify`: native postmap against the daemon, key by key (see src/verify/).
 * Exit status: 0 every answer equal, 1 a difference (or not every key asked in time), 2 usage
 * or configuration error.
 */
export async function runVerify(a: VerifyArgs): Promise<number> {
  setLogLevel('error');
  const keyFiles = new Map<string, string[]>();
  for (const spec of a.keys ?? []) {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq === spec.length - 1) {
      log.error(`--keys ${spec}: expected MAP=FILE`);
      return EXIT_CONFIG;
    }
    const map = spec.slice(0, eq);
    keyFiles.set(map, [...(keyFiles.get(map) ?? []), spec.slice(eq + 1)]);
  }
  for (const [flag, v] of [['--rate', a.rate], ['--max-keys', a.maxKeys], ['--parallel', a.parallel], ['--timeout', a.timeout]] as const) {
    if (!Number.isFinite(v) || v < (flag === '--max-keys' ? 0 : 1)) {
      log.error(`${flag} ${v}: expected a positive number`);
      return EXIT_CONFIG;
    }
  }
  const tty = process.stderr.isTTY === true && a.json !== true;
  try {
    const r = await runVerification({
      config: a.config,
      keyFiles,
      ...(a.fromLog !== undefined ? { fromLog: a.fromLog } : {}),
      ...(a.daemon !== undefined ? { daemon: parseListen(a.daemon, { file: 'command line', key: '--daemon' }) } : {}),
      ...(a.postfixConfig !== undefined ? { postfixConfig: a.postfixConfig } : {}),
      rate: a.rate,
      maxKeys: a.maxKeys,
      parallel: a.parallel,
      timeoutSec: a.timeout,
      json: a.json === true,
      explainLimit: a.explain,
      ...(tty ? { progress: (line: string) => process.stderr.write(`\r${line}`) } : {}),
    });
    if (tty) process.stderr.write('\n');
    const equal = r.complete && r.differences.length === 0;
    if (a.json === true) {
      process.stdout.write(`${JSON.stringify({ equal, ...r }, null, 2)}\n`);
    } else {
      for (const d of r.differences) process.stdout.write(renderDifference(d, a.config) + '\n');
      for (const t of r.tallies) {
        process.stdout.write(`map ${t.map} (${t.file}, fallback ${t.fallback}): keys ${t.sources.join('; ') || 'none given'}\n`);
        for (const p of t.problems) process.stdout.write(`  note: ${p}\n`);
      }
      process.stdout.write(`\nnative postmap -q … ldap: against the daemon at ${r.daemon}, ${(r.elapsedMs / 1000).toFixed(1)} s\n`);
      process.stdout.write(renderSummaryTable(r.tallies));
      process.stdout.write(
        !r.complete ? `INCOMPLETE: --timeout ${a.timeout} s reached before every key was asked\n`
          : equal ? 'EQUAL: the daemon answered every key exactly as the native ldap: table\n'
            : `${r.differences.length} DIFFERENCE${r.differences.length === 1 ? '' : 'S'}\n`,
      );
    }
    return equal ? 0 : 1;
  } catch (err) {
    if (err instanceof ConfigError) {
      log.error(err.message);
      return EXIT_CONFIG;
    }
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      log.error((err as Error).message);
      return EXIT_CONFIG;
    }
    throw err;
  }
}
