/**
 * 389 Directory Server (Debian's 389-ds-base 2.3): the differential maps against native
 * `postmap -q KEY ldap:FILE.cf` on the same server, with and without batch_member_fetch, on a
 * directory past 389-ds's lookthrough limit (5 000 candidates), bound as an ordinary entry (not
 * the Directory Manager, to whom no limit applies).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemonWithMetrics, type DaemonWithMetrics } from '../support/daemon.js';
import { bulkLdif, startDs389, type Ds389 } from '../support/ds389.js';
import { COMMON_KEYS, listKeys, mailKeys, MAP_KEYS } from '../support/differential-keys.js';
import { bigListExpected, bigListLdif } from '../support/fixtures.js';
import { cfTemplate, classify, expandTemplate, makePostfixConfigDir, postmapQuery, postmapQueryAll, writeCf, type PostmapResult } from '../support/postfix.js';
import { deadPort, directoryLdif, FIXTURES_DIR } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';
import { readdirSync } from 'node:fs';

/** Entries under ou=Bulk: with the fixture directory and big1500 the backend holds > 5 000. */
const BULK = 4000;
/** Maps with special result attributes: where batched member fetches happen. */
const BATCH_MAPS = ['aliases', 'aliases-urls', 'leaf', 'terminal', 'recursion-limit-3', 'expansion-limit-3', 'size-limit-2'];

let ds: Ds389;
let daemon: DaemonWithMetrics;
let confDir: string;
const cf = new Map<string, string>();
const counts: string[] = [];

beforeAll(async () => {
  const t0 = performance.now();
  ds = await startDs389({ ldif: [directoryLdif(), bigListLdif('big1500', 1500), bulkLdif(BULK)].join('\n') });
  counts.push(`389-ds: dscreate ${Math.round(ds.createMs)} ms, import of ${ds.entries} entries ${Math.round(ds.importMs)} ms, ready after ${Math.round(performance.now() - t0)} ms`);
  confDir = await makePostfixConfigDir();
  const dir = makeTmpDir('ds389-cf-');
  const vars = { LDAP_URL: ds.url, LDAP_HOST: ds.host, LDAP_PORT: String(ds.port), DEAD_PORT: String(deadPort()) };
  // What a Postfix site binds as: an ordinary entry with read/search rights, subject to limits.
  const bind = `\nbind = yes\nbind_dn = ${ds.bindDn}\nbind_pw = ${ds.bindPw}\n`;
  for (const f of readdirSync(FIXTURES_DIR).filter((n) => n.endsWith('.cf.in'))) {
    const name = f.replace(/\.cf\.in$/, '');
    cf.set(name, writeCf(dir, `${name}.cf`, expandTemplate(cfTemplate(name), vars) + bind, {}));
  }
  const maps: string[] = [];
  for (const [name, file] of cf) maps.push('--map', `${name}=${file}`);
  for (const m of BATCH_MAPS) maps.push('--map', `batch-${m}=${cf.get(m)}`, '--set', `map.batch-${m}.batch_member_fetch=yes`);
  daemon = await startDaemonWithMetrics([
    '--socketmap', 'inet:127.0.0.1:0', '--log-level', 'info',
    '--set', 'cache_ttl=0', '--set', 'cache_negative_ttl=0', '--set', 'change_poll_interval=0',
    ...maps,
  ]);
}, 300_000);

afterAll(async () => {
  await daemon?.stop();
  await ds?.destroy();
  // The figures the README's "what is tested" notes quote.
  console.log(`ds389 suite:\n  ${counts.join('\n  ')}`);
});

function show(r: PostmapResult): string {
  return `${classify(r)} ${r.stdout.length > 300 ? `${r.stdout.slice(0, 300)}…(${r.stdout.length})` : r.stdout}`;
}

/** Native, the daemon, and (when given) the daemon with batching: same outcome and bytes per key. */
async function compare(name: string, keys: string[], batched?: string): Promise<void> {
  const t0 = performance.now();
  const [n, o, b] = await Promise.all([
    postmapQueryAll(confDir, `ldap:${cf.get(name)}`, keys, 16),
    postmapQueryAll(confDir, daemon.table(name), keys, 16),
    batched ? postmapQueryAll(confDir, daemon.table(batched), keys, 16) : undefined,
  ]);
  const diffs: string[] = [];
  const outcomes = new Map<string, number>();
  for (const k of keys) {
    const want = show(n.get(k)!);
    outcomes.set(classify(n.get(k)!), (outcomes.get(classify(n.get(k)!)) ?? 0) + 1);
    expect(classify(n.get(k)!), `native postmap failed oddly for ${k}: ${n.get(k)!.stderr}`).not.toBe('other');
    if (show(o.get(k)!) !== want) diffs.push(`${JSON.stringify(k)}: native ${want} | daemon ${show(o.get(k)!)} ${o.get(k)!.stderr.trim()}`);
    if (b && show(b.get(k)!) !== want) diffs.push(`${JSON.stringify(k)}: native ${want} | batched ${show(b.get(k)!)} ${b.get(k)!.stderr.trim()}`);
  }
  counts.push(`${name}${batched ? ' (+batched)' : ''}: ${keys.length} keys, ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')}, ${diffs.length} mismatches, ${Math.round(performance.now() - t0)} ms`);
  expect(diffs, `map ${name}`).toEqual([]);
  // A map that only ever answers one way tests little.
  expect(outcomes.size, `map ${name} outcomes ${[...outcomes.keys()].join(',')}`).toBeGreaterThanOrEqual(2);
}

describe('the 389-ds instance', () => {
  it('holds more entries than the lookthrough limit, which refuses an unindexed search to the map identity only', async () => {
    expect(ds.entries).toBeGreaterThan(5000);
    // What the modifyTimestamp change watcher asks: few entries match, every entry is examined.
    const now = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
    const filter = `(|(modifyTimestamp>=${now}Z)(createTimestamp>=${now}Z))`;
    const user = await ds.search('user', ds.suffix, 'sub', filter, ['1.1']);
    expect(user.code, user.stderr).toBe(11); // adminLimitExceeded
    const root = await ds.search('root', ds.suffix, 'sub', filter, ['1.1']);
    expect(root.code, root.stderr).toBe(0);
    // Indexed searches over as many entries are fine for the map identity.
    const mails = await ds.search('user', `ou=Bulk,${ds.suffix}`, 'sub', '(mail=bulk1*)', ['1.1']);
    expect(mails.code, mails.stderr).toBe(0);
    expect(mails.stdout.split('\n').filter((l) => l.startsWith('dn')).length).toBe(1111);
  });
});

describe('389-ds: socketmap answers equal native ldap: answers (bound as an ordinary entry)', () => {
  it('core alias map, with and without batch_member_fetch', async () => {
    await compare('aliases', MAP_KEYS.aliases!, 'batch-aliases');
  });

  it('core mailbox map', async () => {
    await compare('mailboxes', MAP_KEYS.mailboxes!);
  });

  it('every feature fixture map (batched too where members are fetched)', async () => {
    const names = [...cf.keys()].filter((n) => n !== 'aliases' && n !== 'mailboxes');
    expect(names.length).toBeGreaterThan(10);
    const keys = [...new Set([...COMMON_KEYS, ...listKeys(), ...mailKeys()])];
    for (const name of names) await compare(name, keys, BATCH_MAPS.includes(name) ? `batch-${name}` : undefined);
  }, 1_200_000);
});

describe('389-ds: batch_member_fetch', () => {
  it('is detected (389-ds answers entrydn equality) and fetches big1500 in batches of 100', async () => {
    const key = 'big1500@example.org';
    const answered0 = await daemon.metric('ldap_socketmap_ldap_batched_dns_total', { result: 'answered' });
    ds.resetSearches();
    const b = await postmapQuery(confDir, daemon.table('batch-aliases'), key);
    const batched = await ds.searches();
    ds.resetSearches();
    const p = await postmapQuery(confDir, daemon.table('aliases'), key);
    const plain = await ds.searches();
    const native0 = performance.now();
    ds.resetSearches();
    const n = await postmapQuery(confDir, `ldap:${cf.get('aliases')}`, key);
    const nativeMs = performance.now() - native0;
    const native = await ds.searches();
    expect(n.stdout).toBe(`${bigListExpected('big1500', 1500)}\n`);
    expect(p.stdout).toBe(n.stdout);
    expect(b.stdout).toBe(n.stdout);
    expect(native.length).toBe(1501);
    expect(plain.length).toBe(1501);
    const batches = batched.filter((s) => /entrydn=/i.test(s.filter));
    expect(batches.length).toBe(15);
    expect(batched.length).toBeLessThanOrEqual(18);
    expect(await daemon.metric('ldap_socketmap_ldap_batched_dns_total', { result: 'answered' })).toBe(answered0 + 1500);
    counts.push(`big1500: native ${native.length} searches (${Math.round(nativeMs)} ms), daemon ${plain.length}, batched ${batched.length} (${batches.length} entrydn batches)`);
  }, 120_000);

  it('odd DN spellings and missing members fall back to their own base searches', async () => {
    const f0 = await daemon.metric('ldap_socketmap_ldap_batched_dns_total', { result: 'fallback' });
    for (const key of ['odd-dn@example.org', 'ghost@example.org']) {
      const [n, b] = await Promise.all([postmapQuery(confDir, `ldap:${cf.get('aliases')}`, key), postmapQuery(confDir, daemon.table('batch-aliases'), key)]);
      expect(show(b)).toBe(show(n));
    }
    expect(await daemon.metric('ldap_socketmap_ldap_batched_dns_total', { result: 'fallback' })).toBeGreaterThan(f0);
  }, 60_000);
});
