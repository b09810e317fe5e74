import { loadDaemonConfig, type DaemonConfig } from '../config/daemon-config.js';
import type { CommonArgs } from './args.js';

export function loadFromArgs(a: CommonArgs & { socketmap?: string[]; tcpTable?: string[]; metrics?: string }): DaemonConfig {
  return loadDaemonConfig(a.config, {
    maps: a.map,
    socketmap: a.socketmap,
    tcpTable: a.tcpTable,
    metrics: a.metrics,
    settings: a.set,
  });
}
