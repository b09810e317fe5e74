#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ConfigError } from '../config/errors.js';
import { log } from '../log.js';
import { runCacheFlush } from './cache-flush.js';
import { runCheck } from './check.js';
import { runExplain } from './explain.js';
import { runQuery } from './query.js';
import { runServe } from './serve.js';
import { common, EXIT_CONFIG, shieldArgs, toList, unshield } from './args.js';

async function main(): Promise<number> {
  let exit = 0;
  const run = (p: () => Promise<number>) => async () => { exit = await p(); };
  const parser = yargs(shieldArgs(hideBin(process.argv)))
    .scriptName('ldap-socketmap')
    .usage('$0 <command> [options]\n\nPostfix socketmap / tcp_table lookups from LDAP, answered exactly like Postfix\'s own ldap: table.')
    .command(
      'serve',
      'run the daemon',
      (y) => common(y)
        .option('socketmap', { type: 'string', coerce: toList, describe: 'listen for socketmap requests: inet:HOST:PORT or unix:/PATH (repeatable)' })
        .option('tcp-table', { type: 'string', coerce: toList, describe: 'NAME=LISTEN: a tcp_table(5) listener serving map NAME (repeatable)' })
        .option('metrics', { type: 'string', describe: 'HOST:PORT for /metrics, /healthz, /readyz (loopback recommended)' })
        .option('log-level', { type: 'string', choices: ['error', 'warn', 'info', 'debug'] }),
      (a) => run(() => runServe(a))(),
    )
    .command(
      'query <name> <key>',
      'look KEY up in map NAME directly in LDAP and print the answer like postmap -q (KEY "-" reads keys from stdin; put "--" before a key that starts with "-")',
      (y) => common(y)
        .positional('name', { type: 'string', demandOption: true, describe: 'map name' })
        .positional('key', { type: 'string', demandOption: true, describe: 'lookup key, or - for keys on stdin' })
        .epilogue('Exit status: 0 found, 1 not found, 75 temporary error, 2 usage or configuration error.'),
      (a) => run(() => runQuery(unshield(a) as typeof a & { name: string; key: string }))(),
    )
    .command(
      'explain <name> <key>',
      'look KEY up in map NAME (put "--" before a key that starts with "-") and show how the answer came about: key folding, domain check, template expansions, every LDAP search, entry and value, the limits, and the answer as it goes on the wire',
      (y) => common(y)
        .positional('name', { type: 'string', demandOption: true, describe: 'map name' })
        .positional('key', { type: 'string', demandOption: true, describe: 'lookup key, exactly as Postfix sends it' })
        .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' })
        .option('daemon', { type: 'boolean', default: false, describe: 'ask the running daemon through its admin listener (its cache included) instead of LDAP directly' })
        .option('metrics', { type: 'string', describe: 'with --daemon: HOST:PORT of the daemon\'s admin listener (default: metrics_listen from the config)' })
        .epilogue('Exit status, from the socketmap answer: 0 OK, 1 NOTFOUND, 75 TEMP or TIMEOUT (including an answer too large for the wire), 2 usage or configuration error.'),
      (a) => run(() => runExplain(unshield(a) as typeof a & { name: string; key: string }))(),
    )
    .command(
      'cache flush [map] [key]',
      'drop cached answers in the running daemon (all maps, one map, or one key) through its admin listener',
      (y) => y
        .option('config', { alias: 'c', type: 'string', describe: 'daemon config file (for metrics_listen)' })
        .positional('map', { type: 'string', describe: 'map name (default: all maps)' })
        .positional('key', { type: 'string', describe: 'the key exactly as Postfix sends it (default: the whole map)' })
        .option('metrics', { type: 'string', describe: 'HOST:PORT of the daemon\'s admin listener (default: metrics_listen from the config)' }),
      (a) => run(() => runCacheFlush(unshield(a)))(),
    )
    .command(
      'check',
      'validate the config and every .cf file, and try to connect and bind to each map\'s servers',
      (y) => common(y).option('strict', { type: 'boolean', default: false, describe: 'exit 2 on any warning too (unknown or ignored .cf parameters, duplicates): run it before every reload' }).epilogue('Exit status: 0 all good, 1 some server unusable, 2 configuration error (with --strict: or a warning).'),
      (a) => run(() => runCheck(a))(),
    )
    .command(
      'migrate',
      'read a Postfix configuration (postconf -n, -M, -P) and write the daemon config, the postconf commands that switch every ldap: table to the daemon, and the master.cf overrides for virtual(8)/local(8)',
      (y) => y
        .option('postfix-config', { type: 'string', demandOption: true, describe: "Postfix config_directory (e.g. /etc/postfix)" })
        .option('out', { type: 'string', demandOption: true, describe: 'directory for ldap-socketmap.conf, postconf-commands.sh, master.cf-overrides' })
        .option('listen', { type: 'string', default: 'inet:127.0.0.1:9054', describe: 'where Postfix reaches the daemon: inet:HOST:PORT or unix:/PATH' })
        .option('keep', { type: 'string', coerce: toList, describe: 'PARAM or SERVICE/TYPE/PARAM to leave on ldap: (repeatable)' })
        .option('apply', { type: 'boolean', default: false, describe: 'edit main.cf/master.cf with postconf (backups kept), run postfix check, restore on failure' })
        .epilogue('Exit status: 0 done, 2 usage or configuration error.'),
      (a) => run(() => import('./migrate.js').then((m) => m.runMigrate(a)))(),
    )
    .command(
      'verify',
      'prove the daemon answers exactly what postmap -q KEY ldap:FILE.cf answers, for keys from files, a mail log and the directory itself',
      (y) => y
        .option('config', { alias: 'c', type: 'string', demandOption: true, describe: 'daemon config file' })
        .option('keys', { type: 'string', coerce: toList, describe: 'MAP=FILE: keys for map MAP, one per line (repeatable)' })
        .option('from-log', { type: 'string', describe: 'a Postfix mail log: its recipients (to=<...>) are asked of every map' })
        .option('daemon', { type: 'string', describe: 'LISTEN of a running daemon (inet:HOST:PORT or unix:/PATH); default: start one with --config on a free loopback port' })
        .option('postfix-config', { type: 'string', describe: 'Postfix config_directory for postmap -c (default: postmap\'s own)' })
        .option('rate', { type: 'number', default: 50, describe: 'lookups started per second, native and daemon together' })
        .option('max-keys', { type: 'number', default: 500, describe: 'keys per map (directory keys and their variants; 0: none from the directory)' })
        .option('parallel', { type: 'number', default: 4, describe: 'lookups in flight at once' })
        .option('timeout', { type: 'number', default: 600, describe: 'seconds for the whole run' })
        .option('explain', { type: 'number', default: 20, describe: "differences shown with explain's view" })
        .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
        .epilogue('Exit status: 0 every answer equal, 1 a difference (or not every key asked in time), 2 usage or configuration error.'),
      (a) => run(() => import('./verify.js').then((m) => m.runVerify(a)))(),
    )
    .demandCommand(1, 'name a command: serve, query, explain, check, cache flush, migrate or verify')
    .strict()
    .help()
    .alias('h', 'help')
    .version()
    .fail((msg, err, y) => {
      if (err) throw err;
      process.stderr.write(`${y.help()}\n\n${msg}\n`);
      process.exit(EXIT_CONFIG);
    });
  try {
    await parser.parseAsync();
  } catch (err) {
    if (err instanceof ConfigError) {
      log.error(err.message);
      return EXIT_CONFIG;
    }
    throw err;
  }
  return exit;
}

main().then(
  (code) => {
    // serve keeps running (its listeners hold the event loop open) and returns -1.
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    // One line for the admin; the stack only when debugging. Exit even if some handle (an LDAP
    // socket, a timer) would keep a half-started daemon alive.
    log.error(err instanceof Error ? err.message : String(err));
    if (err instanceof Error && err.stack) log.debug(err.stack);
    process.stderr.write('', () => process.exit(1));
  },
);
