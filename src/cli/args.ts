/**
 * What every subcommand shares: exit statuses, the common options, and the shielding of
 * arguments yargs would mangle. Subcommands import this, never the entry point (main.ts), which
 * runs the command line as soon as it is loaded.
 */
import type { Argv } from 'yargs';

/** sysexits.h EX_TEMPFAIL, what a "try again later" answer exits with. */
export const EXIT_TEMP = 75;
export const EXIT_CONFIG = 2;

export interface CommonArgs {
  config?: string;
  map?: string[];
  set?: string[];
}

/** Repeatable options: yargs arrays would swallow the positional arguments that follow them. */
export function toList(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v : [v]).map(String);
}

export function common<T>(y: Argv<T>) {
  return y
    .option('config', { alias: 'c', type: 'string', describe: 'daemon config file (key = value, like Postfix .cf files)' })
    .option('map', { type: 'string', coerce: toList, describe: 'NAME=FILE.cf: serve an ldap_table(5) file as map NAME (repeatable; overrides the config file)' })
    .option('set', { type: 'string', coerce: toList, describe: 'SETTING=VALUE or map.NAME.SETTING=VALUE (repeatable; overrides the config file)' });
}

/**
 * Keys are arbitrary text, and yargs mangles two kinds: a lone `-` (query's "keys on stdin")
 * arrives as '', and a key starting with `-` is taken for an option, even after `--`. Such
 * arguments are handed to yargs as stand-ins (NUL cannot occur in a real argument) and put back
 * afterwards: a lone `-` anywhere, and every argument after `--` (`explain map -- -tag@x`).
 */
const standIns = new Map<string, string>();

export function shieldArgs(args: string[]): string[] {
  const out: string[] = [];
  let rest = false;
  for (const arg of args) {
    if (!rest && arg === '--') {
      rest = true;
      continue;
    }
    if (rest || arg === '-') {
      const standIn = `\u0000arg${standIns.size}\u0000`;
      standIns.set(standIn, arg);
      out.push(standIn);
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** The argument as given on the command line (see shieldArgs). */
export function unshield<T extends Record<string, unknown>>(a: T): T {
  for (const [k, v] of Object.entries(a)) {
    if (typeof v === 'string' && standIns.has(v)) (a as Record<string, unknown>)[k] = standIns.get(v);
  }
  return a;
}
