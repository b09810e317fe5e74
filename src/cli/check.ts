import { defaultDaemonLimits } from '../config/daemon-config.js';
import { formatWarning } from '../config/errors.js';
import { changeMarkerReport } from '../freshness/check.js';
import { redactSecrets, setLogLevel } from '../log.js';
import { buildMaps } from '../server/build-maps.js';
import { describeListen } from '../server/listener.js';
import type { CommonArgs } from './main.js';
import { loadFromArgs } from './load.js';

/**
 * `check`: everything that can be known before mail flows. Config errors throw ConfigError
 * (exit 2, naming file, line and key); then each map's servers are connected and bound.
 */
export async function runCheck(a: CommonArgs): Promise<number> {
  setLogLevel('error');
  const cfg = loadFromArgs(a);
  const built = buildMaps(cfg, { warnings: false });
  const out: string[] = [];
  let bad = 0;
  out.push(`config: ${cfg.file ?? '(command line)'}`);
  for (const l of cfg.socketmapListen) out.push(`listen socketmap ${describeListen(l)}`);
  for (const t of cfg.tcpTableListen) out.push(`listen tcp_table ${describeListen(t.listen)} -> map ${t.map}`);
  const limits = cfg.limits ?? defaultDaemonLimits();
  out.push(
    `limits: max_request_size ${limits.maxRequestSize} bytes, max_connections ${limits.maxConnections}, ` +
      `idle_timeout ${limits.idleTimeout} s, request_read_timeout ${limits.requestReadTimeout} s`,
  );
  try {
    for (const m of built.maps.values()) {
      out.push(`map ${m.name}: ${m.file}`);
      for (const w of m.config.warnings) out.push(`  ${formatWarning(w)}`);
      out.push(`  servers: ${m.config.serverHost.map((s) => s.url).join(' ')}`);
      out.push(`  attributes requested: ${m.ldap.attributes.join(' ')}`);
      try {
        await m.ldap.pool.ensureConnected();
        out.push(`  LDAP: connected${m.config.bind === 'simple' ? ' and bound' : ''}`);
        const settings = cfg.maps.find((e) => e.name === m.name)?.settings;
        if (settings) {
          const report = await changeMarkerReport(m.ldap.pool, m.config.searchBase, settings);
          out.push(...report.lines);
          if (!report.ok) bad++;
        }
      } catch (err) {
        bad++;
        out.push(`  LDAP: FAILED: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  } finally {
    await built.close();
  }
  process.stdout.write(redactSecrets(out.join('\n')) + '\n');
  return bad > 0 ? 1 : 0;
}
