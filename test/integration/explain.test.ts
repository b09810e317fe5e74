/**
 * `ldap-socketmap explain` against a real slapd (test/fixtures/ldap/directory.ldif plus a
 * 5000-member list), run as users run it: the built CLI, and GET /explain on a running daemon.
 *
 * For every case the explanation must name the reason (in the JSON tree and in the text), and
 * its final answer must be byte for byte what the daemon answers over socketmap for the same
 * key (a raw socketmap request; postmap through the socketmap client for two of them).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExplainReport, SearchNode, ValueNode } from '../../src/explain/types.js';
import { startDaemonWithMetrics, type DaemonWithMetrics, runCli } from '../support/daemon.js';
import { bigListExpected, bigListLdif } from '../support/fixtures.js';
import { classify, makePostfixConfigDir, postmapQuery, valueOf, writeFixtureCf } from '../support/postfix.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';
import { socketmapFrame as rawSocketmapFrame } from '../support/socketmap-client.js';

const SALES = 'alice@example.org,robert@example.org,Bob.Builder@Example.ORG,bob@example.org,sales-archive@elsewhere.net';
const ENG = `eng-announce@example.org,carol@example.org,carol@elsewhere.net,${SALES}`;

/** Map name -> fixture template. */
const MAPS: Record<string, string> = {
  aliases: 'aliases',
  mailboxes: 'mailboxes',
  terminal: 'terminal',
  leaf: 'leaf',
  exp3: 'expansion-limit-3',
  size2: 'size-limit-2',
  rec3: 'recursion-limit-3',
  relay: 'fmt-key-relay',
  domains: 'domain-list',
};

let slapd: Slapd;
let daemon: DaemonWithMetrics;
let adminPort: number;
let confDir: string;
const files: Record<string, string> = {};

/** `explain --map NAME=FILE NAME KEY` as JSON and as text. */
async function explain(map: string, key: string): Promise<{ report: ExplainReport; text: string; code: number | null }> {
  const args = ['explain', '--map', `${map}=${files[map]}`, map, key];
  const [json, text] = await Promise.all([runCli([...args, '--json']), runCli(args)]);
  expect(json.stderr).toBe('');
  expect(text.code).toBe(json.code);
  return { report: JSON.parse(json.stdout) as ExplainReport, text: text.stdout, code: json.code };
}

/** One raw socketmap request to the daemon; resolves with the whole reply frame. */
function socketmapFrame(map: string, key: string): Promise<Buffer> {
  return rawSocketmapFrame(daemon.ports[0]!, map, key);
}

async function getExplain(query: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/explain?${query}`);
  return { status: res.status, body: await res.text() };
}

function allValues(n: SearchNode | undefined): ValueNode[] {
  if (!n) return [];
  return n.entries.flatMap((e) => e.values.flatMap((v) => [v, ...allValues(v.search)]));
}

function allSearches(n: SearchNode | undefined): SearchNode[] {
  if (!n) return [];
  return [n, ...n.entries.flatMap((e) => e.values.flatMap((v) => allSearches(v.search)))];
}

beforeAll(async () => {
  slapd = await startSlapd({ ldif: [directoryLdif(), bigListLdif('huge', 5000)] });
  const dir = makeTmpDir('explain-');
  for (const [name, template] of Object.entries(MAPS)) files[name] = writeFixtureCf(dir, template, { LDAP_URL: slapd.url });
  confDir = await makePostfixConfigDir();
  daemon = await startDaemonWithMetrics([
    '--socketmap', 'inet:127.0.0.1:0',
    ...Object.entries(files).flatMap(([name, file]) => ['--map', `${name}=${file}`]),
  ]);
  adminPort = daemon.metricsPort;
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  await slapd?.destroy();
});

interface Case {
  name: string;
  map: string;
  key: string;
  exit: number;
  /** What the text must say. */
  text: RegExp[];
  check(r: ExplainReport): void;
}

const CASES: Case[] = [
  {
    name: 'a plain hit',
    map: 'mailboxes',
    key: 'Alice@Example.org',
    exit: 0,
    text: [/key: folded to "alice@example\.org"/, /search #0 \(depth 1\) on ldap:\/\/127\.0\.0\.1:\d+\//, /uid: "alice" \[result\] appended as item 1 of the answer/],
    check: (r) => {
      const l = r.lookups[0]!;
      expect(l.folded).toBe('alice@example.org');
      expect(l.expansions!.queryFilter.value).toBe('(&(objectClass=*)(mail=alice@example.org))');
      expect(l.search).toMatchObject({ server: slapd.url, base: 'ou=People,dc=example,dc=org', scope: 'sub', attributes: ['uid'], outcome: 'entries', entryCount: 1 });
      expect(l.search!.ms).toBeGreaterThan(0);
      expect(l.search!.entries[0]!.dn).toBe('uid=alice,ou=People,dc=example,dc=org');
      expect(r.answer).toMatchObject({ kind: 'found', value: 'alice', source: 'ldap' });
      expect(r.servers.used).toEqual([slapd.url]);
    },
  },
  {
    name: 'a nested list (eng contains sales)',
    map: 'aliases',
    key: 'eng@example.org',
    exit: 0,
    text: [/contact: "cn=sales,ou=Groups,dc=example,dc=org" \[special\] followed: nested search #\d+/, /search #\d+ \(depth 3\)/],
    check: (r) => {
      const top = r.lookups[0]!.search!;
      const sales = top.entries[0]!.values.find((v) => v.value === 'cn=sales,ou=Groups,dc=example,dc=org')!;
      expect(sales).toMatchObject({ attr: 'contact', class: 'special', action: 'followed' });
      expect(sales.search).toMatchObject({ depth: 2, parent: 0, base: 'cn=sales,ou=Groups,dc=example,dc=org', scope: 'base', filter: '(objectclass=*)' });
      const bob = allSearches(sales.search).find((s) => s.base === 'uid=bob,ou=People,dc=example,dc=org')!;
      expect(bob).toMatchObject({ depth: 3, parent: sales.search!.id });
      const appended = allValues(top).filter((v) => v.action === 'appended').sort((a, b) => a.position! - b.position!);
      expect(appended.map((v) => v.value).join(',')).toBe(ENG);
      expect(r.answer.value).toBe(ENG);
    },
  },
  {
    name: 'a missing DN (ghost)',
    map: 'aliases',
    key: 'ghost',
    exit: 0,
    text: [/contact: "uid=nobody,ou=People,dc=example,dc=org" \[special\] followed/, /DN not found \(noSuchObject\): skipped/],
    check: (r) => {
      const missing = allSearches(r.lookups[0]!.search).filter((s) => s.outcome === 'noSuchObject');
      expect(missing.map((s) => s.base).sort()).toEqual(['cn=x,ou=Nowhere,dc=example,dc=org', 'uid=nobody,ou=People,dc=example,dc=org']);
      for (const m of missing) expect(m).toMatchObject({ code: 32, fate: expect.stringMatching(/skipped/) });
      expect(r.answer.value).toBe('alice@example.org');
    },
  },
  {
    name: 'a loop (loop-a)',
    map: 'aliases',
    key: 'loop-a',
    exit: 75,
    text: [/LOOP: cn=loop-b,ou=Groups,dc=example,dc=org -> cn=loop-a,ou=Groups,dc=example,dc=org -> cn=loop-b,ou=Groups,dc=example,dc=org/],
    check: (r) => {
      expect(r.lookups[0]!.loop).toEqual(['cn=loop-b,ou=Groups,dc=example,dc=org', 'cn=loop-a,ou=Groups,dc=example,dc=org', 'cn=loop-b,ou=Groups,dc=example,dc=org']);
      expect(r.answer).toMatchObject({ kind: 'temp', reason: expect.stringMatching(/^expansion loop: /) });
    },
  },
  {
    name: 'a suppressed search (no domain, %D in result_format)',
    map: 'relay',
    key: 'sales',
    exit: 1,
    text: [/search suppressed: key has no domain part \(%D used\) -> not found, no LDAP search/],
    check: (r) => {
      expect(r.lookups[0]).toMatchObject({ suppressed: 'key has no domain part (%D used)', searches: 0 });
      expect(r.lookups[0]!.search).toBeUndefined();
    },
  },
  {
    name: 'a suppressed search (empty localpart)',
    map: 'relay',
    key: '@example.org',
    exit: 1,
    text: [/search suppressed: empty localpart \(%u used\)/],
    check: (r) => expect(r.lookups[0]!.suppressed).toBe('empty localpart (%u used)'),
  },
  {
    name: 'a domain not in the domain list',
    map: 'domains',
    key: 'sales@other.org',
    exit: 1,
    text: [/domain: "other\.org" is not in the domain list \(example\.org, example\.net\) -> not found, no search/],
    check: (r) => {
      expect(r.lookups[0]!.domain).toEqual({ domain: 'other.org', matched: false, list: ['example.org', 'example.net'] });
      expect(r.lookups[0]!.searches).toBe(0);
    },
  },
  {
    name: 'a terminal entry (term-list)',
    map: 'terminal',
    key: 'term-list',
    exit: 0,
    text: [/terminal: has forwardTo/, /mail: "term-list@example\.org" \[result\] skipped: the entry is terminal/, /contact: .* \[special\] skipped: the entry is terminal, special values are not followed/],
    check: (r) => {
      const e = r.lookups[0]!.search!.entries[0]!;
      expect(e).toMatchObject({ terminal: true, terminalWhy: 'terminal: has forwardTo' });
      expect(e.values.map((v) => [v.attr, v.action])).toEqual(
        expect.arrayContaining([['forwardTo', 'appended'], ['mail', 'skipped-terminal'], ['contact', 'skipped-terminal']]),
      );
      expect(r.lookups[0]!.searches).toBe(1);
    },
  },
  {
    name: 'a terminal flag carried over (twin-term)',
    map: 'terminal',
    key: 'twin-term',
    exit: 0,
    text: [/terminal: the flag carries over from cn=twin-term-a,ou=Groups,dc=example,dc=org/],
    check: (r) => {
      const [, b] = r.lookups[0]!.search!.entries;
      expect(b).toMatchObject({ dn: 'cn=twin-term-b,ou=Groups,dc=example,dc=org', terminal: true });
      expect(r.answer.value).toBe('twin-term-a@forward.example.net');
    },
  },
  {
    name: 'a leaf rule (leaf-list)',
    map: 'leaf',
    key: 'leaf-list',
    exit: 0,
    text: [/non-leaf: has contact values/, /maildrop: "leaf-list-drop@example\.org" \[leaf\] skipped: leaf attribute of a non-leaf entry/, /maildrop: "dave@mailhost\.example\.org" \[leaf\] appended/],
    check: (r) => {
      const list = r.lookups[0]!.search!.entries[0]!;
      expect(list).toMatchObject({ leaf: false });
      expect(list.values.find((v) => v.attr === 'maildrop')).toMatchObject({ action: 'skipped-leaf', class: 'leaf' });
      const dave = allValues(r.lookups[0]!.search).find((v) => v.value === 'dave@mailhost.example.org');
      expect(dave).toMatchObject({ action: 'appended', class: 'leaf' });
    },
  },
  {
    name: 'expansion_limit exceeded',
    map: 'exp3',
    key: 'sales',
    exit: 75,
    text: [/LIMIT expansion_limit exceeded: value number 4, expansion_limit is 3 -> temporary error/, /values: 4 appended, expansion_limit 3 EXCEEDED/],
    check: (r) => {
      expect(r.lookups[0]!.limits.expansion).toMatchObject({ limit: 3, values: 4, exceeded: 'value number 4, expansion_limit is 3' });
      expect(allValues(r.lookups[0]!.search).filter((v) => v.overLimit)).toHaveLength(1);
      expect(r.answer).toMatchObject({ kind: 'temp', reason: 'expansion limit 3 exceeded' });
    },
  },
  {
    name: 'size_limit exceeded',
    map: 'size2',
    key: 'triple',
    exit: 75,
    text: [/LIMIT size_limit exceeded: a search returned 3 entries, size_limit is 2/, /entries: at most 3 per search, size_limit 2 EXCEEDED/],
    check: (r) => {
      expect(r.lookups[0]!.search!.limits).toEqual([{ kind: 'size', detail: 'a search returned 3 entries, size_limit is 2' }]);
      expect(r.lookups[0]!.limits.size).toMatchObject({ limit: 2, largest: 3 });
    },
  },
  {
    name: 'recursion_limit exceeded',
    map: 'rec3',
    key: 'deep1',
    exit: 75,
    text: [/LIMIT recursion_limit exceeded: cn=deep3,ou=Groups,dc=example,dc=org at depth 3 has contact values, recursion_limit is 3/],
    check: (r) => {
      const deep3 = allSearches(r.lookups[0]!.search).find((s) => s.base === 'cn=deep3,ou=Groups,dc=example,dc=org')!;
      expect(deep3.depth).toBe(3);
      expect(deep3.entries[0]!.limits[0]!.kind).toBe('recursion');
      expect(r.lookups[0]!.limits.recursion).toMatchObject({ limit: 3, deepest: 3 });
    },
  },
  {
    name: 'an oversized answer (5000 members)',
    map: 'aliases',
    key: 'huge',
    exit: 75,
    text: [/payload \d+ bytes, limit 100000: the answer needs 115002 bytes, does not fit: TEMP instead/, /note: the answer is 115002 bytes as a socketmap payload/],
    check: (r) => {
      const value = bigListExpected('huge', 5000);
      expect(r.ldapAnswer).toMatchObject({ kind: 'found', valueBytes: value.length });
      expect(r.ldapAnswer.value).toBe(value);
      expect(r.wire.socketmap).toMatchObject({ word: 'TEMP', fits: false, needed: value.length + 3 });
      expect(r.wire.tcpTable).toMatchObject({ status: '400', fits: false });
      expect(r.lookups[0]!.searches).toBe(5001);
    },
  },
];

describe('explain from the CLI: the reason, and the daemon\'s own socketmap answer', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const [{ report, text, code }, frame] = await Promise.all([explain(c.map, c.key), socketmapFrame(c.map, c.key)]);
      expect(Buffer.from(report.wire.socketmap.frameBase64, 'base64').toString('latin1')).toBe(frame.toString('latin1'));
      expect(code).toBe(c.exit);
      expect(report).toMatchObject({ version: 1, map: c.map, file: files[c.map], source: 'cli', key: c.key });
      c.check(report);
      for (const re of c.text) expect(text).toMatch(re);
    });
  }

  it('matches postmap -q through the socketmap client', async () => {
    for (const key of ['eng@example.org', 'ghost']) {
      const [{ report }, pm] = await Promise.all([explain('aliases', key), postmapQuery(confDir, daemon.table('aliases'), key)]);
      expect(classify(pm)).toBe('found');
      expect(report.answer.value).toBe(valueOf(pm));
    }
  });

  it('unknown map: exit 2', async () => {
    const r = await runCli(['explain', '--map', `aliases=${files.aliases}`, 'nope', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown map "nope"/);
  });
});

describe('GET /explain on the daemon\'s admin listener', () => {
  it('shows whether the answer comes from the cache right now', async () => {
    const before = await getExplain('map=aliases&key=dupes');
    expect(before.status).toBe(200);
    const cold = JSON.parse(before.body) as ExplainReport;
    expect(cold).toMatchObject({ source: 'daemon', cache: { enabled: true, state: 'absent', inFlight: false }, answer: { source: 'ldap', kind: 'found' } });
    // Explaining did not fill the cache.
    expect((JSON.parse((await getExplain('map=aliases&key=dupes')).body) as ExplainReport).cache!.state).toBe('absent');

    const frame = await socketmapFrame('aliases', 'dupes');
    expect(Buffer.from(cold.wire.socketmap.frameBase64, 'base64').equals(frame)).toBe(true);

    const warm = JSON.parse((await getExplain('map=aliases&key=dupes')).body) as ExplainReport;
    expect(warm.cache).toMatchObject({ state: 'fresh', cached: { kind: 'found', value: cold.answer.value } });
    expect(warm.cache!.expiresInMs).toBeGreaterThan(290_000);
    expect(warm.answer.source).toBe('cache');
    expect(Buffer.from(warm.wire.socketmap.frameBase64, 'base64').equals(frame)).toBe(true);
    // The tree is there too: the daemon's own walk, on its own pool.
    expect(warm.lookups[0]!.search!.server).toBe(slapd.url);

    const text = await getExplain('map=aliases&key=dupes&format=text');
    expect(text.body).toMatch(/cache: fresh \(\d+ s old, expires in \d+ s\): a request now is answered from the cache/);
    expect(text.body).toMatch(/answer from the cache: found/);

    // The CLI asks the daemon the same way.
    const cli = await runCli(['explain', '--daemon', '--metrics', `127.0.0.1:${adminPort}`, 'aliases', 'dupes']);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/as the running daemon sees it \(cache included\)/);
    expect(cli.stdout).toMatch(/answer from the cache/);
  });

  it('a cached not-found and a key the cache has not seen', async () => {
    await socketmapFrame('mailboxes', 'nobody@example.org');
    const r = JSON.parse((await getExplain('map=mailboxes&key=nobody%40example.org')).body) as ExplainReport;
    expect(r.cache).toMatchObject({ state: 'fresh', cached: { kind: 'notfound' } });
    expect(r.answer).toMatchObject({ source: 'cache', kind: 'notfound' });
    expect(r.wire.socketmap.frame).toBe('9:NOTFOUND ,');
    // Keys are cached as sent: another spelling is not in the cache.
    const other = JSON.parse((await getExplain('map=mailboxes&key=NOBODY%40example.org')).body) as ExplainReport;
    expect(other.cache!.state).toBe('absent');
  });

  it('errors: unknown map 404, missing key 400, wrong method 405', async () => {
    expect((await getExplain('map=nope&key=x')).status).toBe(404);
    expect((await getExplain('map=aliases')).status).toBe(400);
    expect((await fetch(`http://127.0.0.1:${adminPort}/explain?map=aliases&key=x`, { method: 'POST' })).status).toBe(405);
  });
});
