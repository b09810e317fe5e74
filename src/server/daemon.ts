import type net from 'node:net';
import { ClientAllowList, isLoopbackAddress, SUGGESTED_CLIENT_ALLOW } from '../config/client-allow.js';
import { type DaemonConfig } from '../config/daemon-config.js';
import { defaultDaemonLimits, type DaemonLimits } from '../config/limits.js';
import { log, RateLimitedLog } from '../log.js';
import { buildMaps, type BuildOptions, type BuiltMaps, type CacheLayer } from '../chain/build.js';
import type { LookupMap, ServedMap } from '../contracts/map.js';
import { temp } from '../contracts/result.js';
import { encodeSocketmapReply } from '../protocol/socketmap.js';
import { socketmapAnswers, type SocketmapForm } from '../protocol/socketmap-answers.js';
import { encodeTcpReply } from '../protocol/tcp-table.js';
import { serveConnection } from './connection.js';
import { socketmapProtocol, tcpLineLimit, tcpTableProtocol, type LookupObserver, type MapRegistry } from './handlers.js';
import { boundAddress, closeServer, describeListen, listen, type ListenSpec, type UnixSocketOptions } from './listener.js';
import { resolveId, takeListenFds } from './systemd.js';

export interface DaemonHooks extends Omit<BuildOptions<SocketmapForm>, 'cache'> {
  /** A cache in front of each map; its answers are kept in socketmap form (the daemon's codec). */
  cache?: Omit<CacheLayer<SocketmapForm>, 'codec'>;
  lookups?: LookupObserver;
  /** Per-protocol lookup observer (metrics label replies by protocol); falls back to `lookups`. */
  lookupsFor?(protocol: 'socketmap' | 'tcp_table'): LookupObserver;
  connections?: ConnectionObserver;
  /** Runs once the maps are built and before any listener opens (the cache snapshot is loaded here). */
  beforeListen?(daemon: Daemon): Promise<void>;
}

/** What happens to client connections, per protocol (for metrics). */
export interface ConnectionObserver {
  opened?(protocol: string): void;
  closed?(protocol: string): void;
  protocolError?(protocol: string, reason: string): void;
  /** A connection refused because max_connections were open. */
  rejected?(protocol: string): void;
  /** A connection closed unanswered because its peer is not in client_allow. */
  denied?(protocol: string): void;
  /** A connection closed by the daemon: idle too long, or a request too slow to arrive (slowloris). */
  timedOut?(protocol: string, kind: 'idle' | 'read'): void;
}

interface Bound {
  spec: ListenSpec;
  address: ListenSpec;
  server: net.Server;
  protocol: 'socketmap' | 'tcp_table';
  /** An inet listener on an address other hosts may reach (not loopback). */
  exposed: boolean;
}

/** A refused connection is given this long to send its request (which is read and dropped). */
const REFUSED_LINGER_MS = 1_000;
/** At most this many refused connections linger at once; in a flood the rest are closed bare. */
const MAX_LINGERING = 256;

function unixSocketOptions(cfg: DaemonConfig): UnixSocketOptions {
  const u = cfg.unixSocket;
  if (!u) return {};
  return {
    mode: u.mode,
    uid: u.owner !== undefined ? resolveId(u.owner, '/etc/passwd') : undefined,
    gid: u.group !== undefined ? resolveId(u.group, '/etc/group') : undefined,
  };
}

function allowListOf(cfg: DaemonConfig): ClientAllowList | undefined {
  return cfg.clientAllow !== undefined ? new ClientAllowList(cfg.clientAllow) : undefined;
}

/**
 * The running daemon: maps (rebuilt on reload), listeners (kept across reloads), and the set of
 * open client connections (kept across reloads; drained on stop).
 */
export class Daemon implements MapRegistry {
  private built!: BuiltMaps<SocketmapForm>;
  private readonly bound: Bound[] = [];
  private readonly sockets = new Set<{ socket: net.Socket; drain(): Promise<void> }>();
  private stopping = false;
  private refused = 0;
  private lingering = 0;
  private denied = 0;
  private readonly rlog = new RateLimitedLog(10_000);
  /** client_allow in force (read per connection, so a reload applies it to new connections). */
  private allow: ClientAllowList | undefined;

  private constructor(private cfg: DaemonConfig, private readonly hooks: DaemonHooks) {
    this.allow = allowListOf(cfg);
  }

  static async start(cfg: DaemonConfig, hooks: DaemonHooks = {}): Promise<Daemon> {
    const d = new Daemon(cfg, hooks);
    d.built = d.build(cfg);
    try {
      await hooks.beforeListen?.(d);
      const inherited = takeListenFds();
      if (inherited.length > 0) {
        // Socket activation: systemd's sockets replace the configured listeners.
        for (const s of inherited) {
          const spec: ListenSpec = { kind: 'fd', fd: s.fd, name: s.name };
          if (s.name === 'socketmap') await d.listenOn(spec, 'socketmap');
          else if (s.name.startsWith('tcp_table.') && d.built.maps.has(s.name.slice(10))) await d.listenOn(spec, 'tcp_table', s.name.slice(10));
          else throw new Error(`socket fd ${s.fd} from systemd is named ${JSON.stringify(s.name)}; expected "socketmap" or "tcp_table.MAP" with MAP one of: ${d.names().join(', ')}`);
        }
      } else {
        for (const spec of cfg.socketmapListen) await d.listenOn(spec, 'socketmap');
        for (const t of cfg.tcpTableListen) await d.listenOn(t.listen, 'tcp_table', t.map);
      }
    } catch (err) {
      await d.stop();
      throw err;
    }
    d.warnIfOpen();
    log.info(`ready: maps ${[...d.built.maps.keys()].join(', ') || '(none)'}; listening on ${d.listeners().map((l) => `${l.protocol} ${describeListen(l.address)}`).join(', ') || '(nothing)'}`);
    return d;
  }

  /** The maps' chains, cached answers kept as the socketmap replies they are sent as. */
  private build(cfg: DaemonConfig): BuiltMaps<SocketmapForm> {
    const { cache, ...rest } = this.hooks;
    const maxReply = (cfg.limits ?? defaultDaemonLimits()).socketmapMaxReplySize;
    return buildMaps<SocketmapForm>(cfg, cache ? { ...rest, cache: { ...cache, codec: socketmapAnswers(maxReply) } } : rest);
  }

  get(name: string): ServedMap<SocketmapForm> | undefined {
    return this.built.maps.get(name)?.served;
  }

  names(): string[] {
    return [...this.built.maps.keys()];
  }

  get maps(): BuiltMaps<SocketmapForm> {
    return this.built;
  }

  get config(): DaemonConfig {
    return this.cfg;
  }

  /** Limits in force (read per connection, so a reload applies them to new connections). */
  get limits(): DaemonLimits {
    return this.cfg.limits ?? defaultDaemonLimits();
  }

  /** Client connections open now (all listeners). */
  get openConnections(): number {
    return this.sockets.size;
  }

  /**
   * Over max_connections: the newcomer gets a temporary error as its answer (Postfix reads it as
   * the reply to the request it is about to send, and defers the mail with that reason) and is
   * closed. Connections already open are not touched.
   */
  private refuse(socket: net.Socket, protocol: 'socketmap' | 'tcp_table', label: string): void {
    const max = this.limits.maxConnections;
    this.hooks.connections?.rejected?.(protocol);
    this.refused++;
    this.rlog.emit('warn', 'refuse', `${label}: ${max} client connections open (max_connections); refusing new ones (${this.refused} refused so far)`);
    socket.on('error', () => undefined);
    if (this.lingering >= MAX_LINGERING) {
      socket.destroy();
      return;
    }
    this.lingering++;
    socket.once('close', () => { this.lingering--; });
    const reason = temp(`too many connections to ldap-socketmap (max_connections = ${max})`);
    const reply = protocol === 'socketmap' ? encodeSocketmapReply(reason, this.limits.socketmapMaxReplySize).frame : encodeTcpReply(reason).line;
    // Read (and drop) what the client sends: closing with unread data would reset the
    // connection, and a reset can destroy our answer before the client reads it.
    socket.on('data', () => socket.destroy());
    socket.setTimeout(REFUSED_LINGER_MS, () => socket.destroy());
    socket.end(reply);
  }

  /**
   * Without client_allow, an inet listener that other hosts can reach answers all of them:
   * say so once, with the setting that closes it (also after a reload that removed it).
   */
  private warnIfOpen(): void {
    if (this.allow !== undefined) return;
    const open = this.bound.filter((b) => b.exposed).map((b) => `${b.protocol} ${describeListen(b.address)}`);
    if (open.length === 0) return;
    log.warn(
      `${open.join(', ')}: not on loopback and client_allow is not set, so every host that can reach ` +
        `${open.length === 1 ? 'it' : 'them'} may query every map; restrict the clients with ` +
        `"${SUGGESTED_CLIENT_ALLOW}" plus the networks of your Postfix hosts (or --set client_allow=...)`,
    );
  }

  /**
   * A peer outside client_allow: closed before anything is read or written, so it learns
   * nothing, not even that this is a lookup service. Counted, and logged at most once per
   * listener per 10 s (a scan must not flood the log).
   */
  private deny(socket: net.Socket, protocol: 'socketmap' | 'tcp_table', label: string): void {
    const peer = socket.remoteAddress;
    socket.destroy();
    // A peer gone before we looked has no address and nothing to refuse.
    if (peer === undefined) return;
    this.denied++;
    this.hooks.connections?.denied?.(protocol);
    this.rlog.emit('warn', `deny:${label}`, `${label}: connection from ${peer} refused: not in client_allow (${this.denied} refused so far)`);
  }

  /** Where the listeners are bound (port 0 resolved), in configuration order. */
  addresses(): ListenSpec[] {
    return this.bound.map((b) => b.address);
  }

  listeners(): { protocol: string; address: ListenSpec }[] {
    return this.bound.map((b) => ({ protocol: b.protocol, address: b.address }));
  }

  private async listenOn(spec: ListenSpec, protocol: 'socketmap' | 'tcp_table', mapName?: string): Promise<void> {
    const label = `${protocol} ${describeListen(spec)}`;
    // Unix sockets are guarded by their file permissions; a socket from systemd is whatever it
    // turns out to be once bound (before that, the peer's address family tells).
    let inet: boolean | undefined = spec.kind === 'fd' ? undefined : spec.kind === 'inet';
    const onConnection = (socket: net.Socket): void => {
      if (this.stopping) {
        socket.destroy();
        return;
      }
      const allow = this.allow;
      if (allow !== undefined && (inet ?? socket.remoteFamily !== undefined) && !allow.allows(socket.remoteAddress)) {
        this.deny(socket, protocol, label);
        return;
      }
      const limits = this.limits;
      if (this.sockets.size >= limits.maxConnections) {
        this.refuse(socket, protocol, label);
        return;
      }
      const connHooks = {
        opened: () => this.hooks.connections?.opened?.(protocol),
        closed: () => this.hooks.connections?.closed?.(protocol),
        protocolError: (reason: string) => this.hooks.connections?.protocolError?.(protocol, reason),
        timedOut: (kind: 'idle' | 'read') => this.hooks.connections?.timedOut?.(protocol, kind),
      };
      const opts = {
        idleTimeoutMs: limits.idleTimeout * 1000,
        requestReadTimeoutMs: limits.requestReadTimeout * 1000,
        maxRequestSize: limits.maxRequestSize,
        hooks: connHooks,
        label,
      };
      let handle;
      const lookups = this.hooks.lookupsFor?.(protocol) ?? this.hooks.lookups;
      if (protocol === 'socketmap') {
        const p = socketmapProtocol(this, lookups, limits.maxRequestSize, limits.socketmapMaxReplySize);
        handle = serveConnection(socket, p.decoder(), p.handle, opts);
      } else {
        // Resolved per request, so a reload's new map is used by connections already open.
        const lookupMap: LookupMap = {
          name: mapName!,
          lookup: (key) => this.get(mapName!)!.lookup(key),
        };
        const p = tcpTableProtocol(lookupMap, lookups, tcpLineLimit(limits.maxRequestSize));
        handle = serveConnection(socket, p.decoder(), p.handle, opts);
      }
      const entry = { socket, drain: handle.drain };
      this.sockets.add(entry);
      socket.once('close', () => this.sockets.delete(entry));
    };
    const server = await listen(spec, onConnection, unixSocketOptions(this.cfg));
    const a = server.address();
    inet = a !== null && typeof a === 'object';
    const exposed = a !== null && typeof a === 'object' && !isLoopbackAddress(a.address);
    this.bound.push({ spec, address: boundAddress(server, spec), server, protocol, exposed });
  }

  /**
   * Re-reads every .cf file named by the new configuration. All or nothing: if anything is
   * invalid the old maps stay in force and the error is thrown for the caller to log. Listeners
   * and open connections are kept (listener changes need a restart).
   */
  async reload(cfg: DaemonConfig): Promise<void> {
    const fresh = this.build(cfg);
    for (const t of cfg.tcpTableListen) {
      if (!fresh.maps.has(t.map)) {
        await fresh.close();
        throw new Error(`tcp_table listener names unknown map ${t.map}`);
      }
    }
    const old = this.built;
    const wasRestricted = this.allow !== undefined;
    this.built = fresh;
    this.cfg = cfg;
    this.allow = allowListOf(cfg);
    if (wasRestricted) this.warnIfOpen();
    // Lookups already running on the old pools finish there; give them a moment before closing.
    setTimeout(() => void old.close(), 5_000).unref();
    log.info(`reloaded: maps ${[...fresh.maps.keys()].join(', ')}`);
  }

  /** Stop accepting, let in-flight answers finish within `graceMs`, close LDAP. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const closing = this.bound.map((b) => closeServer(b.server, b.spec));
    const drained = Promise.all([...this.sockets].map(async (s) => {
      await s.drain();
      s.socket.end();
    }));
    await Promise.race([drained, new Promise((r) => setTimeout(r, graceMs).unref())]);
    for (const s of this.sockets) s.socket.destroy();
    await Promise.all(closing);
    await this.built?.close();
  }
}
