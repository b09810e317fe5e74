/**
 * socketmap_max_reply_size (Postfix 3.10's setting, default 100000): an answer over it is a TEMP
 * reply and is reported as oversize, never truncated, whether it comes from LDAP or from the
 * cache (the codec the cache keeps its answers in uses the same limit).
 */
import { describe, expect, it } from 'vitest';
import { CachedMap } from '../../src/cache/cache-map.js';
import { found, type LookupResult } from '../../src/contracts/result.js';
import { socketmapAnswers, type SocketmapForm } from '../../src/protocol/socketmap-answers.js';
import { socketmapProtocol, type MapRegistry } from '../../src/server/handlers.js';

const VALUE = Buffer.from('a'.repeat(40));

async function reply(p: ReturnType<typeof socketmapProtocol>, payload: string): Promise<string> {
  const r = await p.handle(Buffer.from(payload));
  return Buffer.isBuffer(r) ? r.toString('latin1') : String(r);
}

describe('socketmap_max_reply_size', () => {
  for (const max of [100000, 43, 42]) {
    it(`limit ${max}: a 43-byte payload ("OK " + 40) ${max >= 43 ? 'goes out' : 'is TEMP'}, from LDAP and from the cache alike`, async () => {
      const ldap = { name: 'm', lookup: async (): Promise<LookupResult> => found(VALUE) };
      const cache = new CachedMap<SocketmapForm>(ldap, { ttlSec: 60, negativeTtlSec: 60, maxEntries: 10, maxBytes: 1e6, staleIfErrorSec: 0 }, socketmapAnswers(max));
      const registry: MapRegistry = { get: () => cache, names: () => ['m'] };
      const oversize: (number | undefined)[] = [];
      const p = socketmapProtocol(registry, { answered: (_m, _r, o) => oversize.push(o) }, 16384, max);
      const first = await reply(p, 'm k');
      const second = await reply(p, 'm k'); // the synchronous cache hit
      if (max >= 43) {
        expect(first).toBe(`43:OK ${VALUE.toString()},`);
        expect(oversize).toEqual([undefined, undefined]);
      } else {
        expect(first).toMatch(/^\d+:TEMP reply too large \(43 bytes\),$/);
        expect(oversize).toEqual([43, 43]);
      }
      expect(second).toBe(first);
    });
  }
});
