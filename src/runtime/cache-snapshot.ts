/**
 * The cache that survives restarts (cache_snapshot_file): on a clean stop and every
 * cache_snapshot_interval the cached answers of every map are written to one file, with each
 * map's configuration fingerprint and each change watcher's markers; at start, before anything
 * is served, they are read back.
 *
 * What is restored, and why it is safe:
 * - Only into a map whose fingerprint (snapshotFingerprint: its parsed .cf and the settings that
 *   shape answers) is unchanged; a changed or removed map loses its answers.
 * - Remaining times are shortened by the time the daemon was down (wall clock between writing
 *   and reading), so nothing is fresh longer than its TTL allowed; an answer past its TTL but
 *   within stale_if_error is restored expired, to be served only if LDAP fails.
 * - The watchers resume from the markers recorded with the answers (ChangeWatcher's `resume`):
 *   their first poll, made before the listeners open when the directory answers, expires what
 *   changed in the directory since (the same decisions as any poll: changed, deleted, newly
 *   matching entries). A watcher that cannot reach the directory leaves the answers as they
 *   are: fresh for their remaining TTL, then stale-if-error, exactly like answers cached
 *   before an outage.
 * - A damaged, truncated or foreign file is logged once and ignored: the daemon starts with
 *   empty caches, as without a snapshot.
 */
import type { CachedMap } from '../cache/cache-map.js';
import { decodeSnapshot, SnapshotEncoder, SnapshotFormatError, type Snapshot, type SnapshotMarker } from '../cache/snapshot.js';
import type { SnapshotSettings } from '../config/snapshot-settings.js';
import type { ContextMarker } from '../freshness/watcher.js';
import { log, RateLimitedLog } from '../log.js';
import type { SnapshotObserver } from '../metrics/snapshot.js';
import { readSnapshotFile, SnapshotReadError, writeFileAtomic } from './snapshot-file.js';

/** Answers read out of a cache per slice of a snapshot write (about 10 ms of work each). */
const EXPORT_CHUNK = 2000;

/** A map's cache as the snapshot sees it. */
export interface SnapshotMapSource {
  name: string;
  /** snapshotFingerprint(config, settings) */
  fingerprint: string;
  cache: Pick<CachedMap<unknown>, 'exportChunks' | 'importEntries'>;
}

/** A change watcher as the snapshot sees it. */
export interface SnapshotWatcherSource {
  readonly servers: string;
  markers(): ContextMarker[];
}

export interface SnapshotSources {
  maps: SnapshotMapSource[];
  watchers: SnapshotWatcherSource[];
}

export interface Restored {
  /** Answers restored, all maps. */
  entries: number;
  /** Markers to resume from, per watcher (its servers string). */
  markers: Map<string, ContextMarker[]>;
}

export class CacheSnapshots {
  private timer?: NodeJS.Timeout;
  private writing?: Promise<void>;
  private readonly rlog = new RateLimitedLog(600_000);

  constructor(
    private readonly settings: SnapshotSettings,
    /** Largest file read at start (a snapshot is never larger than the caches it came from). */
    private readonly maxFileBytes: number,
    private readonly observer?: SnapshotObserver,
  ) {}

  get file(): string {
    return this.settings.cacheSnapshotFile;
  }

  /** Reads the file and restores what still applies into the maps' caches. Never throws. */
  load(maps: SnapshotMapSource[]): Restored {
    const none: Restored = { entries: 0, markers: new Map() };
    const started = performance.now();
    let snapshot: Snapshot;
    try {
      const bytes = readSnapshotFile(this.file, this.maxFileBytes);
      if (bytes === undefined) {
        log.info(`cache snapshot ${this.file}: none yet; caches start empty`);
        this.observer?.notLoaded('missing');
        return none;
      }
      snapshot = decodeSnapshot(bytes);
    } catch (err) {
      if (!(err instanceof SnapshotFormatError || err instanceof SnapshotReadError)) throw err;
      log.warn(`cache snapshot ${this.file} is not usable (${err.message}); ignored, caches start empty`);
      this.observer?.notLoaded('failed');
      return none;
    }
    const downMs = Math.max(0, Date.now() - snapshot.writtenAt);
    const byName = new Map(maps.map((m) => [m.name, m]));
    let entries = 0;
    let dropped = 0;
    const notes: string[] = [];
    for (const m of snapshot.maps) {
      const target = byName.get(m.name);
      if (!target || target.fingerprint !== m.fingerprint) {
        dropped += m.entries.length;
        if (m.entries.length > 0) notes.push(`${m.name}: ${m.entries.length} dropped, ${target ? 'its configuration changed' : 'no longer configured'}`);
        continue;
      }
      const n = target.cache.importEntries(m.entries, downMs);
      entries += n;
      dropped += m.entries.length - n;
      notes.push(`${m.name}: ${n}${n < m.entries.length ? ` (${m.entries.length - n} expired or over the limits)` : ''}`);
    }
    const markers = new Map<string, ContextMarker[]>();
    for (const mk of snapshot.markers) {
      const list = markers.get(mk.servers) ?? [];
      const { servers: _, ...marker } = mk;
      list.push(marker);
      markers.set(mk.servers, list);
    }
    const ms = Math.round(performance.now() - started);
    log.info(`cache snapshot ${this.file}: restored ${entries} answers in ${ms} ms, written ${Math.round(downMs / 1000)} s ago (${notes.join('; ') || 'no maps'})`);
    this.observer?.loaded(entries, dropped);
    return { entries, markers };
  }

  /** Writes every interval from now on (unref'd: it never keeps the process alive). */
  start(sources: () => SnapshotSources): void {
    this.timer = setInterval(() => void this.write(sources()), this.settings.cacheSnapshotInterval * 1000);
    this.timer.unref();
  }

  /** Stops the interval; the caller writes the last snapshot itself (write()). */
  stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One snapshot now (a write still running is waited for, then this one is made). Never throws. */
  async write(sources: SnapshotSources): Promise<boolean> {
    while (this.writing) await this.writing;
    let ok = false;
    const run = async (): Promise<void> => {
      const started = performance.now();
      try {
        // The markers first, then the answers a slice at a time with the event loop running in
        // between (100 000 answers took 0.6 s in one piece, a stall every interval). That order
        // keeps a restore safe: whatever changes while the answers are read out happened after
        // the markers, so the resumed watcher's first poll sees it and expires what it touched;
        // and each slice's remaining times count from when it is read, later than writtenAt,
        // so they only ever understate how long an answer may be served.
        const markers: SnapshotMarker[] = [];
        for (const w of sources.watchers) {
          for (const c of w.markers()) markers.push({ ...c, servers: w.servers, ...(c.csn ? { csn: [...c.csn] } : {}) });
        }
        const enc = new SnapshotEncoder(Date.now(), markers);
        let n = 0;
        for (const m of sources.maps) {
          enc.map(m.name, m.fingerprint);
          for (const chunk of m.cache.exportChunks(EXPORT_CHUNK)) {
            for (const e of chunk) enc.add(e);
            n += chunk.length;
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
        }
        await writeFileAtomic(this.file, enc.finish());
        const seconds = (performance.now() - started) / 1000;
        this.observer?.written(n, seconds);
        log.debug(`cache snapshot ${this.file}: ${n} answers written in ${Math.round(seconds * 1000)} ms`);
        ok = true;
      } catch (err) {
        this.observer?.writeFailed();
        this.rlog.emit('warn', 'write', `cache snapshot ${this.file}: cannot write: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    this.writing = run().finally(() => { this.writing = undefined; });
    await this.writing;
    return ok;
  }
}
