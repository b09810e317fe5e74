/**
 * The cache that survives restarts (cache_snapshot_file), everything real: a private slapd with
 * syncprov, the built daemon, Postfix's own `postmap -q` both as the reference (`ldap:FILE.cf`,
 * asked while slapd is up) and as the client (`socketmap:...`).
 *
 * - SIGTERM writes the snapshot; with slapd stopped, a new daemon answers the keys it had cached
 *   with the values native postmap gave, and TEMP for the rest.
 * - SIGKILL after an interval write (1 s): the restart answers from the last snapshot.
 * - A map whose .cf changed loses its answers; a map whose .cf only got a comment keeps them.
 * - A damaged or truncated file: one warning with the reason, the daemon starts and answers
 *   from LDAP.
 * - The directory changed while the daemon was down (slapd up): the changed key answers the new
 *   value at once, while an untouched key is still answered from the restored cache.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../support/daemon.js';
import { classify, makePostfixConfigDir, postmapQuery, valueOf, writeFixtureCf } from '../support/postfix.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';

type Answer = { kind: string; value: string };

/** Keys each test caches (map, key), and keys it never asks before the restart. */
const CACHED: [string, string][] = [
  ['aliases', 'sales@example.org'],
  ['aliases', 'eng@example.org'],
  ['aliases', 'nope@example.org'],
  ['aliases', 'deep1'],
  ['mailboxes', 'alice@example.org'],
  ['mailboxes', 'nobody@example.org'],
];
const UNCACHED: [string, string][] = [
  ['aliases', 'ghost'],
  ['mailboxes', 'bob@example.org'],
];

const ADD_ERIN_TO_SALES = `dn: cn=sales,ou=Groups,dc=example,dc=org
changetype: modify
add: contact
contact: uid=erin,ou=People,dc=example,dc=org
`;

let slapd: Slapd;
let confDir: string;
let dir: string;
let files: { aliases: string; mailboxes: string };
/** What native `postmap -q KEY ldap:FILE.cf` answered while slapd was up, by "map key". */
const native = new Map<string, Answer>();
const daemons: RunningDaemon[] = [];

async function ask(table: string, key: string): Promise<Answer> {
  const r = await postmapQuery(confDir, table, key);
  const kind = classify(r);
  return { kind, value: kind === 'found' ? valueOf(r) : '' };
}

async function askNative(map: string, key: string): Promise<Answer> {
  return ask(`ldap:${files[map as keyof typeof files]}`, key);
}

function snapshotFile(name: string): string {
  const d = join(dir, `state-${name}`);
  mkdirSync(d, { recursive: true });
  return join(d, 'cache.snapshot');
}

async function daemon(file: string, interval = '5m'): Promise<RunningDaemon> {
  const d = await startDaemon([
    '--socketmap', 'inet:127.0.0.1:0', '--metrics', '127.0.0.1:0',
    '--map', `aliases=${files.aliases}`, '--map', `mailboxes=${files.mailboxes}`,
    '--set', 'cache_ttl=1h', '--set', 'cache_negative_ttl=1h', '--set', 'stale_if_error=1h',
    '--set', 'change_poll_interval=1',
    '--set', `cache_snapshot_file=${file}`, '--set', `cache_snapshot_interval=${interval}`,
  ]);
  daemons.push(d);
  // Answers cached before the watcher's first detection are expired by it (they may predate a
  // change it cannot see): wait for it, so what the tests cache is cached fresh.
  if (slapd.running()) await d.waitForLog(/change watcher .*: contextCSN/);
  return d;
}

async function scrape(d: RunningDaemon): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${d.metricsPort}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(ldap_socketmap_\S+?)(\{.*\})? (\S+)$/.exec(line);
    if (m) out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}

async function askAll(d: RunningDaemon, keys: [string, string][]): Promise<Answer[]> {
  return Promise.all(keys.map(([map, key]) => ask(d.table(map), key)));
}

async function ensureSlapd(up: boolean): Promise<void> {
  if (up && !slapd.running()) await slapd.start();
  if (!up && slapd.running()) await slapd.stop();
}

beforeAll(async () => {
  slapd = await startSlapd({ ldif: directoryLdif(), syncprov: true });
  confDir = await makePostfixConfigDir();
  dir = makeTmpDir('cache-snapshot-');
  files = {
    aliases: writeFixtureCf(dir, 'aliases', { LDAP_URL: slapd.url }),
    mailboxes: writeFixtureCf(dir, 'mailboxes', { LDAP_URL: slapd.url }),
  };
  for (const [map, key] of [...CACHED, ...UNCACHED]) native.set(`${map} ${key}`, await askNative(map, key));
  // The reference is not vacuous: found values and a not-found among them.
  expect(native.get('aliases sales@example.org')!.kind).toBe('found');
  expect(native.get('aliases ghost')!.kind).toBe('found');
  expect(native.get('mailboxes alice@example.org')).toEqual({ kind: 'found', value: 'alice' });
  expect(native.get('aliases nope@example.org')!.kind).toBe('notfound');
}, 60_000);

afterAll(async () => {
  for (const d of daemons) await d.stop('SIGKILL');
  await slapd?.destroy();
});

describe('cache snapshot across restarts', () => {
  it('SIGTERM writes the snapshot; with slapd down the restarted daemon answers its cached keys like native postmap did, TEMP for the rest', async () => {
    await ensureSlapd(true);
    const file = snapshotFile('sigterm');
    const first = await daemon(file);
    expect(await askAll(first, CACHED)).toEqual(CACHED.map(([m, k]) => native.get(`${m} ${k}`)));
    expect(existsSync(file)).toBe(false);
    expect(await first.stop('SIGTERM')).toBe(0);
    expect(first.log.some((l) => l.includes(`cache snapshot written to ${file}`))).toBe(true);
    expect(statSync(file).size).toBeGreaterThan(100);
    expect(readFileSync(file).subarray(0, 8).toString('latin1')).toBe('LSMCSNAP');
    // No temporary file is left next to it.
    expect(readdirSync(dirname(file))).toEqual(['cache.snapshot']);

    await ensureSlapd(false);
    const second = await daemon(file);
    await second.waitForLog(/cache snapshot .*: restored \d+ answers/);
    const restored = Number(/restored (\d+) answers/.exec(second.log.find((l) => /restored \d+ answers/.test(l))!)![1]);
    expect(restored).toBe(CACHED.length);
    expect(await askAll(second, CACHED)).toEqual(CACHED.map(([m, k]) => native.get(`${m} ${k}`)));
    for (const a of await askAll(second, UNCACHED)) expect(a.kind).toBe('temp');
    const m = await scrape(second);
    expect(m.get('ldap_socketmap_cache_snapshot_loads_total{result="ok"}')).toBe(1);
    expect(m.get('ldap_socketmap_cache_snapshot_entries{op="loaded"}')).toBe(CACHED.length);
    expect(m.get('ldap_socketmap_cache_hits_total{map="aliases",kind="fresh"}')).toBe(3);
    expect(m.get('ldap_socketmap_cache_hits_total{map="mailboxes",kind="negative"}')).toBe(1);
    // Stopped again while slapd is down: the answers are written once more, still usable.
    expect(await second.stop('SIGTERM')).toBe(0);
    const third = await daemon(file);
    expect(await askAll(third, CACHED)).toEqual(CACHED.map(([m, k]) => native.get(`${m} ${k}`)));
    await third.stop('SIGTERM');
  }, 90_000);

  it('SIGKILL after an interval write (1 s): the restart answers from the last snapshot', async () => {
    await ensureSlapd(true);
    const file = snapshotFile('sigkill');
    const first = await daemon(file, '1s');
    expect(await askAll(first, CACHED)).toEqual(CACHED.map(([m, k]) => native.get(`${m} ${k}`)));
    // Wait for a write that started after the lookups.
    const before = (await scrape(first)).get('ldap_socketmap_cache_snapshot_writes_total{result="ok"}') ?? 0;
    const deadline = Date.now() + 10_000;
    let m = await scrape(first);
    while ((m.get('ldap_socketmap_cache_snapshot_writes_total{result="ok"}') ?? 0) < before + 2) {
      if (Date.now() > deadline) throw new Error('no interval write within 10 s');
      await new Promise((r) => setTimeout(r, 200));
      m = await scrape(first);
    }
    expect(m.get('ldap_socketmap_cache_snapshot_entries{op="written"}')).toBe(CACHED.length);
    expect(m.get('ldap_socketmap_cache_snapshot_last_write_duration_seconds')).toBeGreaterThan(0);
    first.proc.kill('SIGKILL');
    await first.stop();
    expect(first.log.some((l) => l.includes('cache snapshot written to'))).toBe(false);

    await ensureSlapd(false);
    const second = await daemon(file, '1s');
    expect(await askAll(second, CACHED)).toEqual(CACHED.map(([m, k]) => native.get(`${m} ${k}`)));
    for (const a of await askAll(second, UNCACHED)) expect(a.kind).toBe('temp');
    await second.stop('SIGTERM');
  }, 90_000);

  it("a map whose .cf changed loses its answers; one whose .cf only got a comment keeps them", async () => {
    await ensureSlapd(true);
    const file = snapshotFile('cf-change');
    const first = await daemon(file);
    await askAll(first, CACHED);
    await first.stop('SIGTERM');
    const saved = { aliases: readFileSync(files.aliases, 'utf8'), mailboxes: readFileSync(files.mailboxes, 'utf8') };
    try {
      appendFileSync(files.aliases, '# a comment changes no answer\n');
      // Equivalent for this directory, but another query: the map's answers cannot be vouched for.
      writeFileSync(files.mailboxes, saved.mailboxes.replace('(&(objectClass=*)(mail=%s))', '(&(objectClass=inetOrgPerson)(mail=%s))'));
      expect(readFileSync(files.mailboxes, 'utf8')).not.toBe(saved.mailboxes);
      await ensureSlapd(false);
      const second = await daemon(file);
      const line = await second.waitForLog(/cache snapshot .*: restored/);
      expect(line).toMatch(/mailboxes: 2 dropped, its configuration changed/);
      for (const [map, key] of CACHED) {
        const a = await ask(second.table(map), key);
        if (map === 'aliases') expect(a).toEqual(native.get(`${map} ${key}`));
        else expect(a.kind).toBe('temp');
      }
      await second.stop('SIGTERM');
    } finally {
      writeFileSync(files.aliases, saved.aliases);
      writeFileSync(files.mailboxes, saved.mailboxes);
    }
  }, 90_000);

  it('a damaged or truncated file: one warning with the reason, the daemon starts and answers from LDAP', async () => {
    await ensureSlapd(true);
    const file = snapshotFile('damaged');
    const first = await daemon(file);
    await askAll(first, CACHED);
    await first.stop('SIGTERM');
    const good = readFileSync(file);

    const cases: [string, () => void, RegExp][] = [
      ['truncated', () => { writeFileSync(file, good); truncateSync(file, Math.floor(good.length / 2)); }, /truncated: \d+ of \d+ bytes/],
      ['one byte flipped', () => { const b = Buffer.from(good); b.writeUInt8(b.readUInt8(b.length - 40) ^ 0xff, b.length - 40); writeFileSync(file, b); }, /checksum mismatch/],
      ['not a snapshot', () => writeFileSync(file, `${'hello, this is not a snapshot at all, just text\n'.repeat(3)}`), /wrong magic/],
    ];
    for (const [what, damage, reason] of cases) {
      damage();
      const d = await daemon(file);
      const warnings = d.log.filter((l) => l.includes('is not usable'));
      expect(warnings, what).toHaveLength(1);
      expect(warnings[0], what).toMatch(reason);
      expect(warnings[0], what).toContain('ignored, caches start empty');
      expect(await askAll(d, [...CACHED, ...UNCACHED]), what).toEqual([...CACHED, ...UNCACHED].map(([m, k]) => native.get(`${m} ${k}`)));
      expect((await scrape(d)).get('ldap_socketmap_cache_snapshot_loads_total{result="error"}'), what).toBe(1);
      // Its own snapshot replaces the damaged file on stop.
      await d.stop('SIGTERM');
      expect(readFileSync(file).subarray(0, 8).toString('latin1')).toBe('LSMCSNAP');
    }
  }, 120_000);

  it('the directory changed while the daemon was down: the changed key answers fresh at once, an untouched one from the restored cache', async () => {
    await ensureSlapd(true);
    const file = snapshotFile('moved');
    const first = await daemon(file);
    await askAll(first, CACHED);
    await first.stop('SIGTERM');

    await slapd.modify(ADD_ERIN_TO_SALES);
    const changed = await askNative('aliases', 'sales@example.org');
    expect(changed.kind).toBe('found');
    expect(changed.value).not.toBe(native.get('aliases sales@example.org')!.value);
    expect(changed.value).toContain('erin@example.org');
    try {
      const second = await daemon(file);
      await second.waitForLog(/resuming from the cache snapshot/);
      // The very first answer after "ready" is the new one: the watcher compared before serving.
      expect(await ask(second.table('aliases'), 'sales@example.org')).toEqual(changed);
      // eng contains the sales list: it changed too, and the watcher saw that it depends on it.
      expect(await ask(second.table('aliases'), 'eng@example.org')).toEqual(await askNative('aliases', 'eng@example.org'));
      expect(await ask(second.table('aliases'), 'deep1')).toEqual(native.get('aliases deep1'));
      expect(await ask(second.table('mailboxes'), 'alice@example.org')).toEqual(native.get('mailboxes alice@example.org'));
      const m = await scrape(second);
      // sales and eng were asked of LDAP; deep1 and alice came from the restored cache.
      expect(m.get('ldap_socketmap_cache_misses_total{map="aliases"}')).toBe(2);
      expect(m.get('ldap_socketmap_cache_hits_total{map="aliases",kind="fresh"}')).toBe(1);
      expect(m.get('ldap_socketmap_cache_hits_total{map="mailboxes",kind="fresh"}')).toBe(1);
      expect(m.get('ldap_socketmap_cache_invalidations_total{map="aliases"}')).toBeGreaterThanOrEqual(1);
      await second.stop('SIGTERM');
    } finally {
      await slapd.modify(ADD_ERIN_TO_SALES.replace('add: contact', 'delete: contact'));
    }
  }, 90_000);
});
