import { formatAllowRule } from '../config/client-allow.js';
import { defaultDaemonLimits } from '../config/limits.js';
import { ConfigError, formatWarning } from '../config/errors.js';
import { changeMarkerReport } from '../freshness/check.js';
import { redactSecrets, setLogLevel } from '../log.js';
import { buildMaps } from '../chain/build.js';
import { describeListen } from '../server/listener.js';
import type { CommonArgs } from './args.js';
import { loadFromArgs } from './load.js';

/** check --strict with warnings: a configuration not to be used, like a config error. */
export const EXIT_STRICT_WARNINGS = 2;

/**
 * `check`: everything that can be known before mail flows. Config errors throw ConfigError
 * (exit 2, naming file, line and key); then each map's servers are connected and bound.
 */
export async function runCheck(a: CommonArgs & { strict?: boolean }): Promise<number> {
  setLogLevel('error');
  const cfg = loadFromArgs(a);
  // Checking nothing and saying "good" would let a config with a typo'd map key pass.
  if (cfg.maps.length === 0) {
    throw new ConfigError('no maps to check: declare map.NAME = /path/to/file.cf or give --map NAME=FILE.cf', {
      file: cfg.file ?? 'command line',
    });
  }
  const built = buildMaps(cfg, { warnings: false });
  const out: string[] = [];
  let bad = 0;
  let warnings = cfg.warnings.length;
  out.push(`config: ${cfg.file ?? '(command line)'}`);
  for (const w of cfg.warnings) out.push(`  ${formatWarning(w)}`);
  for (const l of cfg.socketmapListen) out.push(`listen socketmap ${describeListen(l)}`);
  for (const t of cfg.tcpTableListen) out.push(`listen tcp_table ${describeListen(t.listen)} -> map ${t.map}`);
  if (cfg.socketmapListen.some((l) => l.kind === 'inet') || cfg.tcpTableListen.some((t) => t.listen.kind === 'inet')) {
    out.push(`client_allow: ${cfg.clientAllow ? cfg.clientAllow.map(formatAllowRule).join(', ') : '(not set: every client that reaches an inet listener)'}`);
  }
  const limits = cfg.limits ?? defaultDaemonLimits();
  out.push(
    `limits: max_request_size ${limits.maxRequestSize} bytes, max_connections ${limits.maxConnections}, ` +
      `idle_timeout ${limits.idleTimeout} s, request_read_timeout ${limits.requestReadTimeout} s`,
  );
  try {
    for (const m of built.maps.values()) {
      out.push(`map ${m.name}: ${m.file}`);
      for (const w of m.config.warnings) out.push(`  ${formatWarning(w)}`);
      warnings += m.config.warnings.length;
      out.push(`  servers: ${m.config.serverHost.map((s) => s.url).join(' ')}`);
      out.push(`  attributes requested: ${m.ldap.attributes.join(' ')}`);
      try {
        await m.ldap.pool.ensureConnected();
        const mech = m.ldap.pool.saslMechanism;
        out.push(`  LDAP: connected${m.config.bind !== 'none' ? ` and bound${mech !== undefined ? ` (SASL ${mech})` : ''}` : ''}`);
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
  // --strict: a warning (an unknown or ignored .cf parameter, a duplicate) is how a typo such
  // as serach_base shows; Postfix only warns, and the map then answers TEMP for every key.
  if (a.strict === true && warnings > 0) {
    out.push(`strict: ${warnings} warning${warnings === 1 ? '' : 's'}, treated as errors`);
    process.stdout.write(redactSecrets(out.join('\n')) + '\n');
    return EXIT_STRICT_WARNINGS;
  }
  process.stdout.write(redactSecrets(out.join('\n')) + '\n');
  return bad > 0 ? 1 : 0;
}
