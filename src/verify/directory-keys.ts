/**
 * Keys from the admin's own directory: for each attribute the map's query_filter matches a key
 * code against, the values stored under the map's search_base (bounded), turned back into the
 * keys that would find them. One connection, made as the map makes it (server_host list, bind,
 * TLS), closed afterwards.
 */
import { connectAny } from '../ldap/connect.js';
import type { MapConfig } from '../config/map-config.js';
import { keyAssertions, keyFromValue, staticBase } from './filter-keys.js';

export interface HarvestResult {
  keys: string[];
  /** What was searched, for the report. */
  searched: { base: string; filter: string; values: number }[];
  problems: string[];
}

export async function keysFromDirectory(cfg: MapConfig, maxKeys: number): Promise<HarvestResult> {
  const result: HarvestResult = { keys: [], searched: [], problems: [] };
  const assertions = keyAssertions(cfg.queryFilter);
  if (assertions.length === 0) {
    result.problems.push(`query_filter ${cfg.queryFilter} has no attr=%s/%u/%d assertion to take keys from`);
    return result;
  }
  const base = staticBase(cfg.searchBase);
  let conn;
  try {
    conn = await connectAny(
      { servers: cfg.serverHost, timeoutSec: cfg.timeout > 0 ? cfg.timeout : 10, bind: cfg.bind, ...(cfg.sasl ? { sasl: cfg.sasl } : {}), bindDn: cfg.bindDn, bindPw: cfg.bindPw, startTls: cfg.startTls, tls: cfg.tls },
      cfg.serverHost,
      () => {},
    );
  } catch (e) {
    result.problems.push(`cannot connect to take keys from the directory: ${(e as Error).message}`);
    return result;
  }
  const seen = new Set<string>();
  try {
    for (const a of assertions) {
      if (result.keys.length >= maxKeys) break;
      const filter = `(${a.attribute}=*)`;
      let values = 0;
      try {
        // Paged, and stopped as soon as there are enough keys: a big directory is not read whole.
        outer: for await (const page of conn.client.searchPaginated(base, { scope: 'sub', filter, attributes: [a.attribute], paged: { pageSize: 200 } })) {
          for (const entry of page.searchEntries) {
            for (const [name, raw] of Object.entries(entry)) {
              if (name.toLowerCase() !== a.attribute.toLowerCase()) continue;
              for (const v of Array.isArray(raw) ? raw : [raw]) {
                const text = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
                values++;
                const key = keyFromValue(a.pattern, text);
                if (key === undefined || seen.has(key)) continue;
                seen.add(key);
                result.keys.push(key);
                if (result.keys.length >= maxKeys) break outer;
              }
            }
          }
        }
      } catch (e) {
        result.problems.push(`search ${base} ${filter}: ${(e as Error).message}`);
      }
      result.searched.push({ base, filter, values });
    }
  } finally {
    await conn.client.unbind().catch(() => {});
    conn.socket.destroy();
  }
  return result;
}
