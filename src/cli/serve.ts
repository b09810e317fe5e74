import type { DaemonConfig } from '../config/daemon-config.js';
import { ConfigError } from '../config/errors.js';
import { log, setLogLevel, type LogLevel } from '../log.js';
import { Runtime } from '../runtime/runtime.js';
import type { CommonArgs } from './args.js';
import { loadFromArgs } from './load.js';

export interface ServeArgs extends CommonArgs {
  socketmap?: string[];
  tcpTable?: string[];
  metrics?: string;
  logLevel?: string;
}

/** Runs until SIGTERM/SIGINT; SIGHUP reloads (old config stays if the new one is invalid). */
export async function runServe(a: ServeArgs): Promise<number> {
  const cfg = loadFromArgs(a);
  requireListener(cfg);
  setLogLevel((a.logLevel as LogLevel | undefined) ?? cfg.logLevel);
  const daemon = await Runtime.start(cfg);

  process.on('SIGHUP', () => {
    try {
      const next = loadFromArgs(a);
      daemon.reload(next).catch((err: unknown) => log.error(`reload failed, old configuration stays in force: ${String(err)}`));
    } catch (err) {
      log.error(`reload failed, old configuration stays in force: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  process.on('SIGUSR1', () => {
    log.info(`SIGUSR1: flushed ${daemon.flush()} cached answers`);
  });
  let stopping = false;
  const stop = (sig: string) => {
    // A second signal while draining must not turn a graceful stop into a kill.
    if (stopping) {
      log.info(`${sig}: already stopping`);
      return;
    }
    stopping = true;
    log.info(`${sig}: stopping`);
    daemon.stop().then(
      () => process.exit(0),
      (err: unknown) => { log.error(`stop: ${String(err)}`); process.exit(1); },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return -1;
}

/**
 * A daemon Postfix cannot reach is a mistake, not a configuration: without it a typo'd key or
 * a forgotten --socketmap gave "listening on (nothing)" and a process that answered nobody.
 * Sockets passed by systemd (ldap-socketmap.socket) count; they are only looked at here, the
 * daemon takes them later.
 */
function requireListener(cfg: DaemonConfig): void {
  if (cfg.socketmapListen.length > 0 || cfg.tcpTableListen.length > 0) return;
  if (Number(process.env.LISTEN_PID) === process.pid && Number(process.env.LISTEN_FDS) > 0) return;
  throw new ConfigError(
    'nothing to listen on: set socketmap_listen or tcp_table_listen, give --socketmap LISTEN or ' +
      '--tcp-table NAME=LISTEN, or start the daemon from a systemd socket unit',
    { file: cfg.file ?? 'command line', key: 'socketmap_listen' },
  );
}
