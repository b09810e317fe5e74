/** Daemon-wide limits (top-level keys only): they protect the process, not one map. */
import type { NumberSettingDef } from './settings.js';

export interface DaemonLimits {
  /** Largest socketmap request payload / tcp_table request line, in bytes. */
  maxRequestSize: number;
  /** Client connections open at once, all listeners together; more are answered TEMP and closed. */
  maxConnections: number;
  /** Seconds a client connection may stay silent between requests. */
  idleTimeout: number;
  /** Seconds a started request may take to arrive completely (slowloris guard). */
  requestReadTimeout: number;
  /** Largest socketmap reply payload the clients accept (Postfix's socketmap_max_reply_size). */
  socketmapMaxReplySize: number;
}

export const DAEMON_LIMIT_DEFS: { readonly [K in keyof DaemonLimits]: NumberSettingDef } = {
  maxRequestSize: {
    name: 'max_request_size',
    kind: 'int',
    default: 16384,
    min: 64,
    max: 1048576,
    doc: 'bytes; a larger socketmap request, or tcp_table key (its %XX-encoded line may take three times as many), is a protocol error and closes the connection',
  },
  maxConnections: {
    name: 'max_connections',
    kind: 'int',
    default: 2000,
    min: 1,
    doc: 'client connections open at once (all listeners); a connection beyond it gets a temporary error and is closed',
  },
  idleTimeout: {
    name: 'idle_timeout',
    kind: 'seconds',
    default: 60,
    min: 1,
    doc: 'seconds a client connection may stay idle between requests before it is closed',
  },
  requestReadTimeout: {
    name: 'request_read_timeout',
    kind: 'seconds',
    default: 10,
    min: 1,
    doc: 'seconds a partly received request may take to complete before the connection is closed (slowloris guard)',
  },
  socketmapMaxReplySize: {
    name: 'socketmap_max_reply_size',
    kind: 'int',
    default: 100000,
    min: 9,
    doc: "bytes; Postfix's socketmap_max_reply_size (a main.cf setting since Postfix 3.10, 100000 before): a longer answer is sent as a temporary error and logged, never truncated",
  },
};

export const LIMIT_PROPS = Object.keys(DAEMON_LIMIT_DEFS) as (keyof DaemonLimits)[];
export const LIMIT_BY_NAME = new Map<string, keyof DaemonLimits>(LIMIT_PROPS.map((p) => [DAEMON_LIMIT_DEFS[p].name, p]));

export function defaultDaemonLimits(): DaemonLimits {
  const out: Record<string, number> = {};
  for (const p of LIMIT_PROPS) out[p] = DAEMON_LIMIT_DEFS[p].default;
  return out as unknown as DaemonLimits;
}
