import { createInterface } from 'node:readline';
import { log, setLogLevel } from '../log.js';
import { buildMaps } from '../chain/build.js';
import { EXIT_CONFIG, EXIT_TEMP, type CommonArgs } from './args.js';
import { loadFromArgs } from './load.js';

/**
 * `query NAME KEY`: the same lookup the daemon would answer, straight from LDAP (no cache),
 * printed the way `postmap -q` prints it, so the two can be compared line for line.
 */
export async function runQuery(a: CommonArgs & { name: string; key: string }): Promise<number> {
  // Like postmap: one line for a failed lookup, not the daemon's running commentary.
  setLogLevel('error');
  const cfg = loadFromArgs(a);
  const built = buildMaps(cfg, { warnings: false });
  try {
    const map = built.maps.get(a.name);
    if (!map) {
      log.error(`unknown map ${JSON.stringify(a.name)}; known maps: ${[...built.maps.keys()].join(', ') || '(none)'}`);
      return EXIT_CONFIG;
    }
    if (a.key !== '-') {
      const r = await map.served.lookup(Buffer.from(a.key, 'utf8'));
      switch (r.kind) {
        case 'found':
          process.stdout.write(Buffer.concat([r.value, Buffer.from('\n')]));
          return 0;
        case 'notfound':
          return 1;
        default:
          log.error(`table ${a.name}: query error: ${r.reason}`);
          return r.kind === 'perm' ? EXIT_CONFIG : EXIT_TEMP;
      }
    }
    // Like `postmap -q -`: key<TAB>value for each found key; stop at the first error.
    let anyFound = false;
    const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
    for await (const line of rl) {
      const key = line.trim();
      if (key === '') continue;
      const r = await map.served.lookup(Buffer.from(key, 'utf8'));
      if (r.kind === 'found') {
        anyFound = true;
        process.stdout.write(Buffer.concat([Buffer.from(`${key}\t`), r.value, Buffer.from('\n')]));
      } else if (r.kind !== 'notfound') {
        log.error(`table ${a.name}: query error for ${JSON.stringify(key)}: ${r.reason}`);
        return EXIT_TEMP;
      }
    }
    return anyFound ? 0 : 1;
  } finally {
    await built.close();
  }
}
