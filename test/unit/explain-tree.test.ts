/**
 * explain's tree comes from the trace of the real LdapMap walk. These tests drive LdapMap over
 * a scripted pool (entries in a fixed order, nested searches finishing in the order a test
 * chooses, typically reversed) and check that the tree is built by search id / parent id, not
 * by event order, and that every fate, limit and loop lands where it happened.
 */
import type { Entry } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { parseCf } from '../../src/config/cf-file.js';
import { defaultMapSettings, type MapSettings } from '../../src/config/settings.js';
import { mapConfigFromCf, type MapConfig } from '../../src/config/map-config.js';
import { LdapFailure } from '../../src/ldap/errors.js';
import type { LdapPool } from '../../src/ldap/pool.js';
import type { SearchRequest } from '../../src/ldap/search-request.js';
import { exitCodeFor, explainLookup, type ExplainTarget } from '../../src/explain/explain.js';
import { Uncached } from '../../src/cache/uncached.js';
import { DeadlineMap } from '../../src/lookup/deadline.js';
import { FallbackMap } from '../../src/lookup/fallback.js';
import { q, renderReport } from '../../src/explain/render.js';
import { ServerTap } from '../../src/explain/server-tap.js';
import type { EntryNode, ExplainReport, SearchNode, ValueNode } from '../../src/explain/types.js';
import { LdapMap } from '../../src/lookup/ldap-map.js';

const SERVER = 'ldap://ldap.test:389/';

/** The directory: DN -> entry (attributes in server order). */
type Dir = Record<string, Record<string, string[]>>;

/**
 * A pool answering from `dir`: the top-level search returns the entries listed for its filter,
 * a base search returns the entry at that DN or noSuchObject. `delay(dn)` says how long a base
 * search takes, so a test can make later searches finish first.
 */
function scriptedPool(dir: Dir, top: Record<string, string[]>, delay: (base: string) => number, tap: ServerTap): LdapPool {
  const entry = (dn: string): Entry => ({ dn, ...dir[dn]! }) as Entry;
  const pool = {
    connected: true,
    failingServers: [],
    ensureConnected: async () => {},
    search: async (req: SearchRequest): Promise<Entry[]> => {
      await new Promise((r) => setTimeout(r, req.scope === 'base' ? delay(req.base) : 0));
      if (req.scope !== 'base') {
        tap.observer.request?.(SERVER, 'success', 0.001);
        return (top[req.filter] ?? []).map(entry);
      }
      if (!dir[req.base]) {
        tap.observer.request?.(SERVER, 'noSuchObject', 0.001);
        throw new LdapFailure('noSuchObject', 'No Such Object', 32, SERVER);
      }
      tap.observer.request?.(SERVER, 'success', 0.001);
      return [entry(req.base)];
    },
    close: async () => {},
  };
  return pool as unknown as LdapPool;
}

const CF = `
server_host = ${SERVER}
search_base = ou=Groups,dc=t
query_filter = (listName=%u)
result_attribute = mail
special_result_attribute = member
`;

const DIR: Dir = {
  'cn=list,ou=Groups,dc=t': { member: ['uid=a,dc=t', 'cn=sub,ou=Groups,dc=t', 'uid=ghost,dc=t', 'uid=c,dc=t'], mail: ['list@t'] },
  'cn=sub,ou=Groups,dc=t': { mail: ['sub@t'], member: ['uid=b,dc=t'] },
  'uid=a,dc=t': { mail: ['a@t'] },
  'uid=b,dc=t': { mail: ['b1@t', 'b2@t'] },
  'uid=c,dc=t': { mail: ['c@t'] },
  'cn=loop1,ou=Groups,dc=t': { mail: ['l1@t'], member: ['cn=loop2,ou=Groups,dc=t'] },
  'cn=loop2,ou=Groups,dc=t': { member: ['cn=loop1,ou=Groups,dc=t'] },
  'cn=term,ou=Groups,dc=t': { forwardTo: ['fwd@t'], mail: ['term@t'], member: ['uid=a,dc=t'] },
  'cn=leaf,ou=Groups,dc=t': { maildrop: ['drop@t'], mail: ['leaf@t'], member: ['uid=d,dc=t'] },
  'uid=d,dc=t': { mail: ['d@t'], maildrop: ['d-drop@t'] },
  'cn=t1,ou=Groups,dc=t': { forwardTo: ['t1@fwd'] },
  'cn=t2,ou=Groups,dc=t': { mail: ['t2@t'], member: ['uid=a,dc=t'] },
};

const TOP: Record<string, string[]> = {
  '(listName=list)': ['cn=list,ou=Groups,dc=t'],
  '(listName=loop1)': ['cn=loop1,ou=Groups,dc=t'],
  '(listName=term)': ['cn=term,ou=Groups,dc=t'],
  '(listName=leaf)': ['cn=leaf,ou=Groups,dc=t'],
  '(listName=twins)': ['cn=t1,ou=Groups,dc=t', 'cn=t2,ou=Groups,dc=t'],
  '(listName=three)': ['uid=a,dc=t', 'uid=b,dc=t', 'uid=c,dc=t'],
};

/** The chain the builder makes for the command line (no cache), over this scripted LDAP map. */
function chainOf(ldap: LdapMap, config: MapConfig, s: MapSettings): ExplainTarget {
  const below = s.fallback === 'address' ? new FallbackMap(ldap, { recipientDelimiter: s.recipientDelimiter, propagateExtension: s.propagateExtension }) : ldap;
  const served = new DeadlineMap(new Uncached(below), s.requestTimeout * 1000);
  return { name: 'm', file: '/test/map.cf', config, settings: s, ldap, served, direct: served };
}

async function explain(key: string, extraCf = '', settings: Partial<MapSettings> = {}, delay: (base: string) => number = () => 0): Promise<ExplainReport> {
  const config = mapConfigFromCf(parseCf(CF + extraCf, '/test/map.cf'));
  const tap = new ServerTap();
  const s = { ...defaultMapSettings(), ...settings };
  const ldap = new LdapMap('m', config, scriptedPool(DIR, TOP, delay, tap), { smtputf8: s.smtputf8, loopHandling: s.loopHandling });
  return explainLookup(chainOf(ldap, config, s), Buffer.from(key, 'utf8'), { source: 'cli', tap, settleMs: 2000 });
}

function values(n: SearchNode | undefined): ValueNode[] {
  if (!n) return [];
  return n.entries.flatMap((e) => e.values.flatMap((v) => [v, ...values(v.search)]));
}

function entry(n: SearchNode | undefined, dn: string): EntryNode {
  const found = n?.entries.find((e) => e.dn === dn);
  if (found) return found;
  for (const v of n?.entries.flatMap((e) => e.values) ?? []) {
    try {
      return entry(v.search, dn);
    } catch { /* not below this value */ }
  }
  throw new Error(`no entry ${dn}`);
}

describe('explain tree from the real walk', () => {
  it('nests searches by parent id even when later searches finish first', async () => {
    // The first member's search is the slowest: events arrive in reverse of walk order.
    const slowFirst = (base: string) => ({ 'uid=a,dc=t': 60, 'cn=sub,ou=Groups,dc=t': 40, 'uid=b,dc=t': 5, 'uid=c,dc=t': 1 })[base] ?? 20;
    const r = await explain('List', '', {}, slowFirst);
    expect(r.answer).toMatchObject({ kind: 'found', value: 'a@t,sub@t,b1@t,b2@t,c@t,list@t', source: 'ldap' });
    const l = r.lookups[0]!;
    expect(l.folded).toBe('list');
    expect(l.expansions!.queryFilter).toMatchObject({ value: '(listName=list)', substitutions: [{ code: '%u', raw: 'list', escaped: 'list' }] });
    const top = l.search!;
    expect(top).toMatchObject({ id: 0, depth: 1, outcome: 'entries', entryCount: 1, server: SERVER });
    const members = top.entries[0]!.values.filter((v) => v.attr === 'member');
    expect(members.map((v) => [v.value, v.action, v.search?.via?.value])).toEqual([
      ['uid=a,dc=t', 'followed', 'uid=a,dc=t'],
      ['cn=sub,ou=Groups,dc=t', 'followed', 'cn=sub,ou=Groups,dc=t'],
      ['uid=ghost,dc=t', 'followed', 'uid=ghost,dc=t'],
      ['uid=c,dc=t', 'followed', 'uid=c,dc=t'],
    ]);
    // sub's own member search hangs under sub's value, at depth 3.
    const sub = members[1]!.search!;
    expect(sub.entries[0]!.values.find((v) => v.attr === 'member')!.search).toMatchObject({ base: 'uid=b,dc=t', depth: 3, parent: sub.id });
    // The missing DN is a skipped search, not an error.
    expect(members[2]!.search).toMatchObject({ outcome: 'noSuchObject', code: 32 });
    expect(members[2]!.search!.fate).toMatch(/DN not found .*skipped/);
    // Every appended value knows its place in the answer, in output order.
    const appended = values(top).filter((v) => v.action === 'appended');
    expect(appended.sort((a, b) => a.position! - b.position!).map((v) => v.value)).toEqual(['a@t', 'sub@t', 'b1@t', 'b2@t', 'c@t', 'list@t']);
    expect(l.limits).toMatchObject({ recursion: { deepest: 3, limit: 1000 }, expansion: { values: 6, limit: 0 }, size: { largest: 1 } });
    expect(l.searches).toBe(6);
    expect(r.wire.socketmap).toMatchObject({ word: 'OK', fits: true, frame: '33:OK a@t,sub@t,b1@t,b2@t,c@t,list@t,' });
    expect(r.wire.tcpTable).toMatchObject({ status: '200', line: '200 a@t,sub@t,b1@t,b2@t,c@t,list@t\n', fits: true });
    expect(exitCodeFor(r)).toBe(0);
  });

  it('marks the value that went over expansion_limit and fails the lookup', async () => {
    const r = await explain('list', 'expansion_limit = 3\n');
    expect(r.answer).toMatchObject({ kind: 'temp', reason: 'expansion limit 3 exceeded' });
    const l = r.lookups[0]!;
    expect(l.limits.expansion).toMatchObject({ limit: 3, values: 4 });
    expect(l.limits.expansion.exceeded).toMatch(/value number 4, expansion_limit is 3/);
    const over = values(l.search).filter((v) => v.overLimit);
    expect(over).toHaveLength(1);
    expect(over[0]!.limits[0]!.kind).toBe('expansion');
    expect(over[0]!.why).toMatch(/over the limit/);
    expect(r.wire.socketmap.frame).toBe('31:TEMP expansion limit 3 exceeded,');
    expect(exitCodeFor(r)).toBe(75);
  });

  it('puts the recursion limit on the entry that hit it', async () => {
    const r = await explain('list', 'recursion_limit = 2\n');
    expect(r.answer.kind).toBe('temp');
    const sub = entry(r.lookups[0]!.search, 'cn=sub,ou=Groups,dc=t');
    expect(sub.limits).toEqual([{ kind: 'recursion', detail: expect.stringMatching(/cn=sub,ou=Groups,dc=t at depth 2 has member values, recursion_limit is 2/) }]);
    expect(r.lookups[0]!.limits.recursion.exceeded).toBeDefined();
  });

  it('puts the size limit on the search that returned too many entries', async () => {
    const r = await explain('three', 'size_limit = 2\n');
    expect(r.answer).toMatchObject({ kind: 'temp', reason: 'size limit 2 exceeded: 3 entries' });
    expect(r.lookups[0]!.search!.limits).toEqual([{ kind: 'size', detail: 'a search returned 3 entries, size_limit is 2' }]);
  });

  it('reports a loop with its path on the entry that closes it', async () => {
    const r = await explain('loop1');
    expect(r.answer.kind).toBe('temp');
    const l = r.lookups[0]!;
    expect(l.loop).toEqual(['cn=loop2,ou=Groups,dc=t', 'cn=loop1,ou=Groups,dc=t', 'cn=loop2,ou=Groups,dc=t']);
    // The top entry (loop1 at depth 1) and loop2 start no loop; loop1 reached again closes it.
    expect(l.search!.entries[0]!.loop).toBeUndefined();
    const closing = values(l.search).flatMap((v) => v.search?.entries ?? []).find((e) => e.loop);
    expect(closing?.dn).toBe('cn=loop1,ou=Groups,dc=t');
  });

  it('loop_handling = expand_once: the repeated search is skipped, not a loop', async () => {
    const r = await explain('loop1', '', { loopHandling: 'expand_once' });
    expect(r.answer).toMatchObject({ kind: 'found', value: 'l1@t,l1@t' });
    expect(values(r.lookups[0]!.search).some((v) => v.action === 'skipped-repeat')).toBe(true);
  });

  it('explains terminal entries, and the sticky flag of later entries', async () => {
    const r = await explain('term', 'terminal_result_attribute = forwardTo\n');
    expect(r.answer).toMatchObject({ kind: 'found', value: 'fwd@t' });
    const e = r.lookups[0]!.search!.entries[0]!;
    expect(e).toMatchObject({ terminal: true, terminalWhy: 'terminal: has forwardTo' });
    expect(e.values.map((v) => [v.attr, v.action])).toEqual([['forwardTo', 'appended'], ['mail', 'skipped-terminal'], ['member', 'skipped-terminal']]);

    const twins = await explain('twins', 'terminal_result_attribute = forwardTo\n');
    const [t1, t2] = twins.lookups[0]!.search!.entries;
    expect(t1!.terminalWhy).toBe('terminal: has forwardTo');
    expect(t2!.terminal).toBe(true);
    expect(t2!.terminalWhy).toMatch(/carries over from cn=t1,ou=Groups,dc=t/);
  });

  it('explains the leaf rule', async () => {
    const r = await explain('leaf', 'leaf_result_attribute = maildrop\n');
    expect(r.answer).toMatchObject({ kind: 'found', value: 'leaf@t,d@t,d-drop@t' });
    const list = r.lookups[0]!.search!.entries[0]!;
    expect(list).toMatchObject({ leaf: false, leafWhy: 'non-leaf: has member values' });
    expect(list.values.find((v) => v.attr === 'maildrop')).toMatchObject({ action: 'skipped-leaf' });
    const d = entry(r.lookups[0]!.search, 'uid=d,dc=t');
    expect(d).toMatchObject({ leaf: true, leafWhy: 'leaf: no special attribute values' });
  });

  it('explains suppression, result_format skips and the domain list', async () => {
    const sup = await explain('@x', 'query_filter = (listName=%u)\nresult_format = %U\n');
    expect(sup.lookups[0]!.suppressed).toBe('empty localpart (%u used)');
    expect(sup.lookups[0]!.search).toBeUndefined();
    expect(sup.wire.socketmap.frame).toBe('9:NOTFOUND ,');
    expect(exitCodeFor(sup)).toBe(1);

    const dom = await explain('list@other.test', 'domain = t.test\n');
    expect(dom.lookups[0]!.domain).toEqual({ domain: 'other.test', matched: false, list: ['t.test'] });

    const fmt = await explain('list', 'result_format = %d\n');
    // 'list@t' etc. have a domain; nothing is skipped, the output is the domain.
    expect(fmt.answer.value).toBe('t,t,t,t,t,t');
    expect(values(fmt.lookups[0]!.search).find((v) => v.action === 'appended')!.output).toBe('t');
  });

  it('fallback = address: one lookup per key asked, in order', async () => {
    const r = await explain('list+x@t', '', { fallback: 'address', recipientDelimiter: '+' });
    expect(r.lookups.map((l) => [l.key, l.role, l.result.kind])).toEqual([
      ['list+x@t', 'key', 'notfound'],
      ['list@t', 'without extension', 'found'],
    ]);
    expect(r.answer.value).toBe('a+x@t,sub+x@t,b1+x@t,b2+x@t,c+x@t,list+x@t');
  });
});

describe('explain text rendering', () => {
  it('draws the same tree: searches inlined under the value that caused them', async () => {
    const text = renderReport(await explain('List', 'terminal_result_attribute = forwardTo\n'));
    const lines = text.split('\n');
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    expect(lines[0]).toBe('map m (/test/map.cf), asked LDAP directly (no cache)');
    expect(text).toContain('├─ key: folded to "list"');
    expect(text).toContain('├─ query_filter: "(listName=%u)" -> "(listName=list)"');
    // cn=sub's search sits between the member value that caused it and the next member value.
    const subValue = at(/member: "cn=sub,ou=Groups,dc=t" \[special\] followed: nested search #2/);
    const subSearch = at(/search #2 \(depth 2\) on ldap:\/\/ldap\.test:389\//);
    const ghost = at(/member: "uid=ghost,dc=t"/);
    expect(subValue).toBeGreaterThan(0);
    expect(subSearch).toBe(subValue + 1);
    expect(ghost).toBeGreaterThan(subSearch);
    expect(text).toMatch(/DN not found \(noSuchObject\): skipped/);
    expect(text).toContain('mail: "list@t" [result] appended as item 6 of the answer');
    expect(text).toContain('socketmap  "33:OK a@t,sub@t,b1@t,b2@t,c@t,list@t,"');
    expect(text).toContain('tcp_table  "200 a@t,sub@t,b1@t,b2@t,c@t,list@t\\n"');
  });

  it('quotes for people: backslashes stay single, control bytes are escaped, long text is cut', () => {
    expect(q('(cn=a\\2Ab)')).toBe('"(cn=a\\2Ab)"');
    expect(q('a\nb\x01')).toBe('"a\\nb\\x01"');
    expect(q('x'.repeat(200), 10)).toBe('"xxxxxxxxxx"...(200 chars)');
  });
});
