/**
 * The cache snapshot (top-level keys only): where the daemon keeps its cached answers across
 * restarts, and how often it writes them. One table of definitions, like the map settings, so
 * ldap-socketmap.conf(5) is generated from it.
 */
import type { NumberSettingDef, StringSettingDef } from './settings.js';

export interface SnapshotSettings {
  /** Absolute path of the snapshot file; '' = no snapshot. */
  cacheSnapshotFile: string;
  /** Seconds between two writes while running (one more is written on a clean stop). */
  cacheSnapshotInterval: number;
}

export const SNAPSHOT_SETTING_DEFS: {
  readonly cacheSnapshotFile: StringSettingDef;
  readonly cacheSnapshotInterval: NumberSettingDef;
} = {
  cacheSnapshotFile: {
    name: 'cache_snapshot_file',
    kind: 'string',
    default: '',
    doc: 'file the cached answers of every map are written to on a clean stop and every cache_snapshot_interval, and read back at start (a relative path is taken from the directory of the configuration file); answers whose map configuration changed are dropped, and a damaged file is logged and ignored (empty = off; the systemd unit sets it under its StateDirectory)',
  },
  cacheSnapshotInterval: {
    name: 'cache_snapshot_interval',
    kind: 'seconds',
    default: 300,
    min: 1,
    max: 86400,
    doc: 'seconds between two writes of cache_snapshot_file while the daemon runs, so that a crash or SIGKILL loses at most this much',
  },
};

export const SNAPSHOT_PROPS = Object.keys(SNAPSHOT_SETTING_DEFS) as (keyof SnapshotSettings)[];
export const SNAPSHOT_BY_NAME = new Map<string, keyof SnapshotSettings>(SNAPSHOT_PROPS.map((p) => [SNAPSHOT_SETTING_DEFS[p].name, p]));

export function defaultSnapshotSettings(): SnapshotSettings {
  return { cacheSnapshotFile: SNAPSHOT_SETTING_DEFS.cacheSnapshotFile.default, cacheSnapshotInterval: SNAPSHOT_SETTING_DEFS.cacheSnapshotInterval.default };
}
