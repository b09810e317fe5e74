import { exitCodeFor, explainLookup } from '../explain/explain.js';
import { AdminHttpError, requestExplain } from './admin-client.js';
import { renderReport } from '../explain/render.js';
import { ServerTap } from '../explain/server-tap.js';
import type { ExplainReport } from '../explain/types.js';
import { log, setLogLevel } from '../log.js';
import { buildMaps } from '../chain/build.js';
import { EXIT_CONFIG, EXIT_TEMP, type CommonArgs } from './args.js';
import { loadFromArgs } from './load.js';

export interface ExplainArgs extends CommonArgs {
  name: string;
  key: string;
  json?: boolean;
  /** Ask the running daemon (its admin listener) instead of LDAP directly. */
  daemon?: boolean;
  metrics?: string;
}

/**
 * `explain NAME KEY`: the lookup `query` makes, with the whole story of how it was answered
 * (see src/explain/). With --daemon, the running daemon's report, cache included.
 * Exit status follows the socketmap answer: 0 OK, 1 NOTFOUND, 75 TEMP or TIMEOUT (an answer
 * too large for the wire included), 2 usage or configuration error.
 */
export async function runExplain(a: ExplainArgs): Promise<number> {
  // The report says everything; the daemon's running commentary would only repeat it.
  setLogLevel('error');
  const report = a.daemon ? await fromDaemon(a) : await fromLdap(a);
  if (typeof report === 'number') return report;
  process.stdout.write(a.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report));
  return exitCodeFor(report);
}

async function fromLdap(a: ExplainArgs): Promise<ExplainReport | number> {
  const cfg = loadFromArgs(a);
  const tap = new ServerTap();
  const built = buildMaps(cfg, { warnings: false, observer: tap.observer });
  try {
    const map = built.maps.get(a.name);
    if (!map) {
      log.error(`unknown map ${JSON.stringify(a.name)}; known maps: ${[...built.maps.keys()].join(', ') || '(none)'}`);
      return EXIT_CONFIG;
    }
    return await explainLookup(map, Buffer.from(a.key, 'utf8'), { source: 'cli', tap, maxReply: cfg.limits?.socketmapMaxReplySize });
  } finally {
    await built.close();
  }
}

async function fromDaemon(a: ExplainArgs): Promise<ExplainReport | number> {
  const cfg = loadFromArgs({ config: a.config, metrics: a.metrics });
  if (!cfg.metricsListen) {
    log.error('no admin listener to ask: give --metrics HOST:PORT or set metrics_listen in the config');
    return EXIT_CONFIG;
  }
  try {
    return await requestExplain(cfg.metricsListen, a.name, a.key);
  } catch (err) {
    log.error(err instanceof Error ? err.message : String(err));
    if (err instanceof AdminHttpError && err.status >= 400 && err.status < 500) return EXIT_CONFIG;
    return EXIT_TEMP;
  }
}
