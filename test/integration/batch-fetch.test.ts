/**
 * batch_member_fetch against real slapd and Postfix's native `ldap:` table: with batching on,
 * the daemon must answer exactly what `postmap -q KEY ldap:FILE.cf` answers (and what the daemon
 * answers with batching off), for the fixture directory's awkward lists (odd DN spellings, ghosts,
 * members outside every naming context, loops, limits, URLs, big lists), while making far fewer
 * searches; and where the server cannot answer entryDN searches (hidden by an ACL) or refuses
 * the batches (a server size limit smaller than a batch), it falls back to one base search per
 * DN with the same answers.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemonWithMetrics, type DaemonWithMetrics } from '../support/daemon.js';
import { bigListExpected, bigListLdif, cfVars } from '../support/fixtures.js';
import { classify, makePostfixConfigDir, postmapQuery, postmapQueryAll, writeFixtureCf, type PostmapResult } from '../support/postfix.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';

/** Maps with special result attributes: where member fetches happen. */
const MAPS = ['aliases', 'aliases-urls', 'leaf', 'terminal', 'recursion-limit-3', 'expansion-limit-3', 'size-limit-2'];

const LISTS = [
  'sales', 'eng', 'deep1', 'deep2', 'deep3', 'deep4', 'loop-a', 'self-loop', 'ghost', 'all-ghosts', 'outside', 'odd-dn',
  'dupes', 'dup-sub1', 'url-list', 'bad-url', 'bad-filter-url', 'term-list', 'term-members', 'leaf-list', 'twin-term',
  'twin-rev', 'twin-leaf', 'triple', 'blank-list', 'no-at', 'nothing', 'with-frank', 'upperlist', 'jürgen-liste',
  'special-mails', 'star*list', 'paren(list)', 'nope', 'big1500', 'big300',
];
const KEYS = LISTS.map((n) => `${n}@example.org`);

// Carol is hidden from everyone by an ACL (base search: noSuchObject, so skipped; a batch does
// not return her either): exercises the per-DN fallback on the batching server.
const HIDE_CAROL = [
  'access to dn.base="uid=carol,ou=People,dc=example,dc=org" by * none',
  'access to * by * read',
].join('\n');

interface Server {
  slapd: Slapd;
  cf: Map<string, string>;
}

let confDir: string;
let main: Server;
let noEntryDn: Server;
let limited: Server;
let daemon: DaemonWithMetrics;

async function server(name: string, opts: Parameters<typeof startSlapd>[0]): Promise<Server> {
  const slapd = await startSlapd({ ldif: [directoryLdif(), bigListLdif('big1500', 1500), bigListLdif('big300', 300)], ...opts });
  const dir = join(makeTmpDir('batch-cf-'), name);
  mkdirSync(dir);
  const cf = new Map<string, string>();
  for (const m of MAPS) cf.set(m, writeFixtureCf(dir, m, cfVars(slapd)));
  return { slapd, cf };
}

beforeAll(async () => {
  confDir = await makePostfixConfigDir();
  [main, noEntryDn, limited] = await Promise.all([
    server('main', { extraConfig: HIDE_CAROL }),
    // entryDN may not even be searched: the probe finds no support, nothing is batched.
    server('no-entrydn', { extraConfig: ['access to attrs=entryDN by * none', 'access to * by * read'].join('\n') }),
    // Every batch of more than 50 DNs fails with sizeLimitExceeded; one base search per DN is fine.
    server('limited', { sizelimit: 50 }),
  ]);
  const maps: string[] = [];
  for (const m of MAPS) {
    maps.push('--map', `plain-${m}=${main.cf.get(m)}`, '--map', `batch-${m}=${main.cf.get(m)}`);
    maps.push('--set', `map.batch-${m}.batch_member_fetch=yes`);
  }
  maps.push('--map', `noentrydn=${noEntryDn.cf.get('aliases')}`, '--set', 'map.noentrydn.batch_member_fetch=yes');
  maps.push('--map', `limited=${limited.cf.get('aliases')}`, '--set', 'map.limited.batch_member_fetch=yes');
  daemon = await startDaemonWithMetrics([
    '--socketmap', 'inet:127.0.0.1:0', '--log-level', 'info',
    '--set', 'cache_ttl=0', '--set', 'cache_negative_ttl=0', '--set', 'change_poll_interval=0',
    ...maps,
  ]);
}, 180_000);

afterAll(async () => {
  await daemon?.stop();
  await Promise.all([main?.slapd.stop(), noEntryDn?.slapd.stop(), limited?.slapd.stop()]);
});

function show(r: PostmapResult): string {
  return `${classify(r)} ${r.stdout.length > 300 ? `${r.stdout.slice(0, 300)}…(${r.stdout.length})` : r.stdout}`;
}

/** Native, daemon without and daemon with batching: the same outcome and bytes for every key. */
async function compare(native: string, plain: string | undefined, batched: string, keys: string[]): Promise<Set<string>> {
  const [n, p, b] = await Promise.all([
    postmapQueryAll(confDir, `ldap:${native}`, keys, 8),
    plain ? postmapQueryAll(confDir, daemon.table(plain), keys, 8) : undefined,
    postmapQueryAll(confDir, daemon.table(batched), keys, 8),
  ]);
  const diffs: string[] = [];
  const outcomes = new Set<string>();
  for (const k of keys) {
    const want = show(n.get(k)!);
    outcomes.add(classify(n.get(k)!));
    if (p && show(p.get(k)!) !== want) diffs.push(`${k}: native ${want} | plain ${show(p.get(k)!)}`);
    if (show(b.get(k)!) !== want) diffs.push(`${k}: native ${want} | batched ${show(b.get(k)!)}`);
  }
  expect(diffs).toEqual([]);
  return outcomes;
}

/**
 * SRCH operations in slapd's stats log since the last reset. Counted from the raw lines: slapd
 * cuts long log lines, so a batch's filter does not fit the harness's parser.
 */
/** The SRCH lines since the last reset, once slapd has written them all. */
async function srchLines(slapd: Slapd): Promise<string[]> {
  await slapd.logSettled();
  return slapd.logSince().split('\n').filter((l) => / op=\d+ SRCH base=/.test(l));
}

describe('batch_member_fetch = yes answers exactly what the native table answers', () => {
  for (const m of MAPS) {
    it(`map ${m}`, async () => {
      const outcomes = await compare(main.cf.get(m)!, `plain-${m}`, `batch-${m}`, KEYS);
      expect(outcomes.size).toBeGreaterThanOrEqual(2);
    }, 120_000);
  }

  it('the ACL-hidden member is really skipped (the fallback gives noSuchObject like the base search)', async () => {
    const r = await postmapQuery(confDir, daemon.table('batch-aliases'), 'with-frank@example.org');
    const n = await postmapQuery(confDir, `ldap:${main.cf.get('aliases')}`, 'with-frank@example.org');
    expect(show(r)).toBe(show(n));
    const eng = await postmapQuery(confDir, daemon.table('batch-aliases'), 'eng@example.org');
    expect(eng.stdout).not.toContain('carol@');
  }, 60_000);
});

describe('what a batch answers and what it leaves to base searches', () => {
  async function delta(key: string): Promise<{ answered: number; fallback: number; log: string[]; value: string }> {
    const a0 = await daemon.metric('ldap_socketmap_ldap_batched_dns_total', { result: 'answered' });
    const f0 = await daemon.metric('ldap_socketmap_ldap_batched_dns_total', { result: 'fallback' });
    main.slapd.resetSearchCount();
    const r = await postmapQuery(confDir, daemon.table('batch-aliases'), key);
    return {
      answered: (await daemon.metric('ldap_socketmap_ldap_batched_dns_total', { result: 'answered' })) - a0,
      fallback: (await daemon.metric('ldap_socketmap_ldap_batched_dns_total', { result: 'fallback' })) - f0,
      log: await srchLines(main.slapd),
      value: r.stdout,
    };
  }

  it('ghost: the existing member from the batch, the missing ones by their own base search (noSuchObject, skipped)', async () => {
    const d = await delta('ghost@example.org');
    expect(d.value).toBe('alice@example.org\n');
    expect({ answered: d.answered, fallback: d.fallback }).toEqual({ answered: 1, fallback: 2 });
    expect(d.log.filter((l) => /scope=0 .*filter="\(objectClass=\*\)"/.test(l)).map((l) => /base="([^"]*)"/.exec(l)![1])).toEqual(
      expect.arrayContaining(['uid=nobody,ou=People,dc=example,dc=org', 'cn=x,ou=Nowhere,dc=example,dc=org']),
    );
  }, 60_000);

  it('odd-dn: a DN is taken from the batch only when the server spells it exactly so', async () => {
    const d = await delta('odd-dn@example.org');
    // The contacts name existing entries in odd spellings. Under no naming context as written
    // (not batched): `CN=smith\, john , OU=people,DC=Example,  DC=ORG`, `uid = bob , … , dc = org`.
    // Batched: `cn=Smith\2C John,…` (exactly how slapd spells that entry's DN: answered),
    // `UID=ALICE,…` and `CN=SALES,…` (other spellings: their own base searches). The sales
    // list's two ordinary members then come from the next batch.
    expect({ answered: d.answered, fallback: d.fallback }).toEqual({ answered: 3, fallback: 2 });
    expect(d.log.filter((l) => / scope=0 .*filter="\(objectClass=\*\)"/.test(l)).map((l) => /base="([^"]*)"/.exec(l)![1]!.toLowerCase()).sort()).toEqual([
      'cn=sales,ou=groups,dc=example,dc=org',
      'cn=smith\\2c john,ou=people,dc=example,dc=org',
      'uid=alice,ou=people,dc=example,dc=org',
      'uid=bob,ou=people,dc=example,dc=org',
    ]);
  }, 60_000);

  it('outside: a DN under no naming context is not batched at all', async () => {
    const d = await delta('outside@example.org');
    expect(d.value).toBe('outside@example.org\n');
    expect({ answered: d.answered, fallback: d.fallback }).toEqual({ answered: 0, fallback: 0 });
    expect(d.log.some((l) => l.includes('base="cn=someone,dc=other,dc=com" scope=0'))).toBe(true);
  }, 60_000);
});

describe('fewer searches', () => {
  it('big1500: one base search per member without batching, about one search per 100 members with it', async () => {
    const key = 'big1500@example.org';
    const answered0 = await daemon.metric('ldap_socketmap_ldap_batched_dns_total', { result: 'answered' });
    main.slapd.resetSearchCount();
    const b = await postmapQuery(confDir, daemon.table('batch-aliases'), key);
    await main.slapd.logSettled();
    // Counted from the short RESULT lines: slapd's threads write the long SRCH lines of
    // concurrent batches (5 KB of filter each) into its log interleaved, breaking some of them.
    const batchedResults = main.slapd.logSince().split('\n').filter((l) => / SEARCH RESULT tag=101 /.test(l));
    main.slapd.resetSearchCount();
    const p = await postmapQuery(confDir, daemon.table('plain-aliases'), key);
    const plainSearches = (await srchLines(main.slapd)).length;
    expect(b.stdout).toBe(`${bigListExpected('big1500', 1500)}\n`);
    expect(p.stdout).toBe(b.stdout);
    expect(plainSearches).toBe(1501);
    // 1 for the list, 15 batches of 100 (plus at most the probe's 2, if this ran first).
    expect(batchedResults.filter((l) => / nentries=100 /.test(l))).toHaveLength(15);
    expect(batchedResults.length).toBeLessThanOrEqual(18);
    expect(await daemon.metric('ldap_socketmap_ldap_batched_dns_total', { result: 'answered' })).toBe(answered0 + 1500);
  }, 60_000);
});

describe('falls back to one base search per DN', () => {
  it('when entryDN cannot be searched (ACL): nothing is batched, same answers', async () => {
    await compare(noEntryDn.cf.get('aliases')!, undefined, 'noentrydn', KEYS);
    noEntryDn.slapd.resetSearchCount();
    const r = await postmapQuery(confDir, daemon.table('noentrydn'), 'big300@example.org');
    expect(r.stdout).toBe(`${bigListExpected('big300', 300)}\n`);
    const log = await srchLines(noEntryDn.slapd);
    expect(log.length).toBe(301);
    expect(log.filter((l) => l.includes('entryDN='))).toEqual([]);
    await daemon.waitForLog(/batched member fetch off for .*no naming context answers an entryDN search/);
  }, 120_000);

  it('when the server refuses a batch (size limit below the batch size): same answers, then batching pauses', async () => {
    await compare(limited.cf.get('aliases')!, undefined, 'limited', ['big300@example.org', 'sales@example.org', 'eng@example.org', 'ghost@example.org', 'odd-dn@example.org', 'big1500@example.org']);
    await daemon.waitForLog(/batched member fetch failed 3 times in a row/);
    expect(await daemon.metric('ldap_socketmap_ldap_batched_dns_total', { result: 'fallback' })).toBeGreaterThanOrEqual(300);
  }, 120_000);
});
