/** The cache snapshot's series (cache_snapshot_file): writes, loads, entries, the last write. */
import { Counter, Gauge, type Registry } from 'prom-client';

/** What the cache snapshot (src/runtime/cache-snapshot.ts) reports. */
export interface SnapshotObserver {
  /** A snapshot file was written: its entries and how long encoding and writing took. */
  written(entries: number, seconds: number): void;
  writeFailed(): void;
  /** At start: answers restored, and answers in the file that were not (map changed or gone, expired). */
  loaded(entries: number, dropped: number): void;
  /** At start: no file yet (missing), or a file that could not be used (failed). */
  notLoaded(why: 'missing' | 'failed'): void;
}

export function snapshotMetrics(registers: Registry[]): SnapshotObserver {
  const writes = new Counter({
    name: 'ldap_socketmap_cache_snapshot_writes_total',
    help: 'Cache snapshot writes (cache_snapshot_file), by result (ok, error).',
    labelNames: ['result'],
    registers,
  });
  const loads = new Counter({
    name: 'ldap_socketmap_cache_snapshot_loads_total',
    help: 'Cache snapshot reads at start, by result: ok, missing (no file yet), error (damaged or unreadable file, ignored).',
    labelNames: ['result'],
    registers,
  });
  const entries = new Gauge({
    name: 'ldap_socketmap_cache_snapshot_entries',
    help: 'Cached answers in the last snapshot written (op="written"), restored at start (op="loaded"), and in the file but not restored at start (op="dropped": map configuration changed or map gone, expired past stale_if_error).',
    labelNames: ['op'],
    registers,
  });
  const duration = new Gauge({
    name: 'ldap_socketmap_cache_snapshot_last_write_duration_seconds',
    help: 'How long the last successful cache snapshot took to encode and write (fsync included).',
    registers,
  });
  const lastWrite = new Gauge({
    name: 'ldap_socketmap_cache_snapshot_last_write_timestamp_seconds',
    help: 'Unix time of the last successful cache snapshot write (0: none yet).',
    registers,
  });
  for (const result of ['ok', 'error']) writes.inc({ result }, 0);
  for (const result of ['ok', 'missing', 'error']) loads.inc({ result }, 0);
  for (const op of ['written', 'loaded', 'dropped']) entries.set({ op }, 0);
  return {
    written: (n, seconds) => {
      writes.inc({ result: 'ok' });
      entries.set({ op: 'written' }, n);
      duration.set(seconds);
      lastWrite.set(Date.now() / 1000);
    },
    writeFailed: () => writes.inc({ result: 'error' }),
    loaded: (n, dropped) => {
      loads.inc({ result: 'ok' });
      entries.set({ op: 'loaded' }, n);
      entries.set({ op: 'dropped' }, dropped);
    },
    notLoaded: (why) => loads.inc({ result: why === 'missing' ? 'missing' : 'error' }),
  };
}
