import { log } from '../log.js';
import { requestFlush } from './admin-client.js';
import { EXIT_CONFIG } from './args.js';
import { loadFromArgs } from './load.js';

export async function runCacheFlush(a: { config?: string; map?: string; key?: string; metrics?: string }): Promise<number> {
  const cfg = loadFromArgs({ config: a.config, metrics: a.metrics });
  if (!cfg.metricsListen) {
    log.error('no admin listener: give --metrics HOST:PORT or set metrics_listen in the config');
    return EXIT_CONFIG;
  }
  const n = await requestFlush(cfg.metricsListen, a.map, a.key);
  process.stdout.write(`flushed ${n} cached answer${n === 1 ? '' : 's'}\n`);
  return 0;
}
