/**
 * An LDAP-map stand-in for the change watcher's unit tests: reads a fake server's entries
 * (list -> member DNs -> mail) and reports its searches and entries to the trace as the real map
 * does, so the cache records the dependencies the watcher matches changes against.
 */
import type { LookupContext, LookupMap } from '../../src/contracts/map.js';
import { found, NOTFOUND, type LookupResult } from '../../src/contracts/result.js';
import { normalizeDn } from '../../src/ldap/dn.js';

export interface ListEntries {
  entries: Map<string, Record<string, string[]>>;
}

export class ListMap implements LookupMap {
  calls = 0;
  /** While set, lookups wait for it before they read anything. */
  gate?: Promise<void>;
  constructor(readonly name: string, private readonly server: ListEntries, private readonly base: string) {}

  async lookup(key: Buffer, ctx?: LookupContext): Promise<LookupResult> {
    const trace = ctx?.trace;
    this.calls++;
    if (this.gate) await this.gate;
    const name = key.toString();
    trace?.search?.(0, undefined, { base: this.base, scope: 'sub', filter: `(listName=${name})`, attributes: ['mail'], deref: 0 }, 1);
    const hit = [...this.server.entries].find(([dn, a]) => normalizeDn(dn).endsWith(normalizeDn(this.base)) && a.listName?.includes(name));
    if (!hit) return NOTFOUND;
    trace?.entry?.(0, hit[0], 'no', 'no');
    const mails: string[] = [];
    for (const m of hit[1].member ?? []) {
      trace?.search?.(1, 0, { base: m, scope: 'base', filter: '(objectclass=*)', attributes: ['mail'], deref: 0 }, 2);
      const e = this.server.entries.get(m);
      if (!e) continue;
      trace?.entry?.(1, m, 'no', 'no');
      mails.push(...(e.mail ?? []));
    }
    return mails.length ? found(Buffer.from(mails.join(','))) : NOTFOUND;
  }
}
