/**
 * One seed of the random differential tests, set up: the directory (and the "wide" directory)
 * loaded into their own slapd, the .cf files written, each map's keys chosen, a Postfix config
 * directory for postmap. differential-random.test.ts and differential-random-tcp.test.ts both
 * start from here, so seed N is the same directory, maps and keys in both; the draws from the
 * PRNG streams happen in one fixed order (changing it changes every seed).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backdate, makePostfixConfigDir } from './postfix.js';
import { randomCf, randomDirectory, randomKeys, Rng, targetedKeys, wideCf, wideDirectory, wideKeys, type Directory } from './random-directory.js';
import { deadPort, startSlapd } from './slapd.js';
import { makeTmpDir } from './tmp.js';

export interface SeedMap {
  file: string;
  text: string;
  summary: string;
  /** The shared keys (classic maps only) and the keys aimed at this map, without repeats. */
  keys: string[];
  wide: boolean;
}

/** The directory server a seed's maps point at: slapd by default, 389-ds in the 389-ds suite. */
export interface SeedServer {
  url: string;
  host: string;
  port: number;
  /** The identity `bind = yes` maps of the generator bind as (the server's administrator). */
  rootDn: string;
  rootPw: string;
  destroy(): Promise<void>;
}

/** Starts a server holding `ldif` (the seed's classic or wide directory). */
export type SeedServerStarter = (ldif: string, which: 'classic' | 'wide') => Promise<SeedServer>;

const startSlapdServer: SeedServerStarter = (ldif) => startSlapd({ ldif });

export interface SeedSetup {
  dir: Directory;
  wideDir?: Directory;
  slapd: SeedServer;
  wideSlapd?: SeedServer;
  /** Postfix config directory for `postmap -c`. */
  confDir: string;
  /** r0… (classic) then w0… (wide), in generation order. */
  maps: Map<string, SeedMap>;
  destroy(): Promise<void>;
}

export interface SeedSizes {
  maps: number;
  keys: number;
  wideMaps: number;
  wideKeys: number;
}

/** Seeds from $NAME (N, N,M,... or FROM-TO), else the pinned ones. */
export function seedsFromEnv(name: string, pinned: number[]): number[] {
  const s = process.env[name]?.trim();
  if (!s) return pinned;
  const range = /^(\d+)-(\d+)$/.exec(s);
  if (range) {
    const out: number[] = [];
    for (let i = Number(range[1]); i <= Number(range[2]); i++) out.push(i);
    return out;
  }
  return s.split(',').map((x) => Number(x.trim())).filter((x) => Number.isInteger(x));
}

/** DIFF_MAPS / DIFF_KEYS / DIFF_WIDE_MAPS / DIFF_WIDE_KEYS, shared so a seed means the same maps in every test. */
export function seedSizesFromEnv(): SeedSizes {
  return {
    maps: Number(process.env.DIFF_MAPS ?? 5),
    keys: Number(process.env.DIFF_KEYS ?? 200),
    wideMaps: Number(process.env.DIFF_WIDE_MAPS ?? 2),
    wideKeys: Number(process.env.DIFF_WIDE_KEYS ?? 120),
  };
}

/**
 * `startServer` (default: a private slapd) gets the classic and the wide directory; both are
 * drawn before either server starts (the wide one from its own PRNG stream, so this does not
 * change what a seed generates) and the two servers start side by side.
 */
export async function setUpSeed(seed: number, sizes: SeedSizes, tmpPrefix: string, startServer: SeedServerStarter = startSlapdServer): Promise<SeedSetup> {
  const rng = new Rng(seed);
  const dir = randomDirectory(rng);
  const wrng = new Rng((seed * 0x9e3779b1 + 0x5eed) >>> 0);
  const wideDir = sizes.wideMaps > 0 ? wideDirectory(wrng) : undefined;
  const started = await Promise.allSettled([startServer(dir.ldif, 'classic'), wideDir ? startServer(wideDir.ldif, 'wide') : Promise.resolve(undefined)]);
  const slapd = started[0].status === 'fulfilled' ? started[0].value : undefined;
  const wideSlapd = started[1].status === 'fulfilled' ? started[1].value : undefined;
  const destroy = async (): Promise<void> => {
    await slapd?.destroy();
    await wideSlapd?.destroy();
  };
  for (const s of started) if (s.status === 'rejected') { await destroy(); throw s.reason; }
  if (!slapd) throw new Error('setUpSeed: no server for the classic directory');
  try {
    const confDir = await makePostfixConfigDir();
    const cfDir = makeTmpDir(tmpPrefix);
    let aux = 0;
    const env = {
      ldapUrl: slapd.url,
      host: slapd.host,
      port: slapd.port,
      deadPort: deadPort(),
      rootDn: slapd.rootDn,
      rootPw: slapd.rootPw,
      writeAux: (name: string, text: string) => {
        const f = join(cfDir, `${aux++}-${name}`);
        writeFileSync(f, text);
        backdate(f);
        return f;
      },
    };
    const writeCf = (name: string, text: string): string => {
      const file = join(cfDir, `${name}.cf`);
      writeFileSync(file, text);
      backdate(file);
      return file;
    };

    const maps = new Map<string, SeedMap>();
    const targeted = new Map<string, string[]>();
    for (let i = 0; i < sizes.maps; i++) {
      const cf = randomCf(rng, dir, env);
      const name = `r${i}`;
      targeted.set(name, targetedKeys(rng, dir, cf, Math.ceil(sizes.keys / 3)));
      maps.set(name, { file: writeCf(name, cf.text), text: cf.text, summary: cf.summary, keys: [], wide: false });
    }
    // Every classic map gets the shared keys plus keys aimed at its own search base and filter.
    const shared = randomKeys(rng, dir, sizes.keys - Math.ceil(sizes.keys / 3));
    for (const [name, m] of maps) m.keys = [...new Set([...shared, ...targeted.get(name)!])];

    // Wide maps: their own directory, server and PRNG stream (the maps above stay as they were).
    if (wideDir && wideSlapd) {
      const wenv = { ...env, ldapUrl: wideSlapd.url, host: wideSlapd.host, port: wideSlapd.port, rootDn: wideSlapd.rootDn, rootPw: wideSlapd.rootPw };
      for (let i = 0; i < sizes.wideMaps; i++) {
        const cf = wideCf(wrng, wideDir, wenv);
        const name = `w${i}`;
        maps.set(name, { file: writeCf(name, cf.text), text: cf.text, summary: cf.summary, keys: [...new Set(wideKeys(wrng, wideDir, cf, sizes.wideKeys))], wide: true });
      }
    }
    return { dir, ...(wideDir ? { wideDir } : {}), slapd, ...(wideSlapd ? { wideSlapd } : {}), confDir, maps, destroy };
  } catch (err) {
    await destroy();
    throw err;
  }
}

/**
 * Where a failing seed leaves its reproduction files (.cf, LDIF, mismatches). Deliberately
 * outside the per-process scratch root: they must outlive the test run.
 */
export function reproDir(test: string, seed: number): string {
  const d = join(tmpdir(), `ldap-socketmap-${test}`, `seed-${seed}`);
  mkdirSync(d, { recursive: true });
  return d;
}
