/**
 * Active Directory, refereed by Postfix's own ldap: table. One Samba AD DC (provisioned once
 * for this file, in a network namespace of its own) serves every map an AD site writes:
 * proxyAddresses, mail-or-proxyAddresses, groups by `member` (nested, looped, empty, escaped
 * DNs, 1600 members), leaf_result_attribute, UPN and DN binds, a wrong password, ldaps with and
 * without a certificate check, searches from the domain root that come back with references
 * (CN=Configuration, and behind it CN=Schema; the DNS application partitions DomainDnsZones and
 * ForestDnsZones, each holding one contact) with chase_referrals = no and yes, by the DC's
 * DNS name (references name the same host) and by IP (they name another one), anonymous
 * operations refused (the default) and then allowed (dSHeuristics). The same maps once more
 * through a proxy that makes the references look like a Windows DC's
 * (`ldap://DomainDnsZones.ad.example.org/…`), with those host names unresolvable (the usual
 * case on a mail host) and resolving to the DC. Every key goes through
 * `postmap -q KEY ldap:FILE` and `postmap -q KEY socketmap:…` inside the namespace: the same
 * bytes and the same end (found / not found / temporary error), or the test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../support/daemon.js';
import { restartAcrossChange } from '../support/snapshot-restart.js';
import { socketmapFrame } from '../support/socketmap-client.js';
import { backdate, classify, makePostfixConfigDir } from '../support/postfix.js';
import { BASE_DN, DNS_DOMAIN, DS_SETTINGS_DN, postmapAllIn, startSambaAd, type SambaAd } from '../support/samba-ad.js';
import { makeTmpDir } from '../support/tmp.js';
import { adKeys, adLdif, FOREST_KEY, ZONE_KEY } from './ad-fixture.js';
import { adMaps, rangeMaps } from './ad-maps.js';

const RANGE_PROXY = join(dirname(fileURLToPath(import.meta.url)), '../support/range-proxy.mjs');
const PROXY_PORT = 1389;
const WINDOWS_PROXY = join(dirname(fileURLToPath(import.meta.url)), '../support/windows-refs-proxy.mjs');
const WINDOWS_PORT = 1390;
/** What Samba's domain root search refers to: every partition by the DNS domain's name. */
const SAMBA_REFERENCES = ['CN=Configuration', 'DC=DomainDnsZones', 'DC=ForestDnsZones'].map((p) => `ldap://${DNS_DOMAIN}/${p},${BASE_DN}`);
/** The same through the proxy, as a Windows DC names them (application partitions by their own DNS names). */
const ZONE_HOSTS = [`DomainDnsZones.${DNS_DOMAIN}`, `ForestDnsZones.${DNS_DOMAIN}`];
const WINDOWS_REFERENCES = [
  `ldap://${DNS_DOMAIN}:${WINDOWS_PORT}/CN=Configuration,${BASE_DN}`,
  ...ZONE_HOSTS.map((h) => `ldap://${h}/DC=${h.split('.')[0]},${BASE_DN}`),
];
/** The maps of the Windows-style pass: by name through the proxy, references chased or not. */
const WINDOWS_MAPS = /^(proxy|recipient|groups|anon)-(yes|no)$/;

let ad: SambaAd;
let daemon: RunningDaemon;
let confDir: string;
let mapDir: string;
let socket: string;
const files = new Map<string, string>();
const keys = adKeys();
/** The Windows-style pass: its map files, the proxy, what the proxy printed. */
const windowsFiles = new Map<string, string>();
let windowsProxy: ChildProcess | undefined;
let windowsProxyLog = '';
/** One case of every address and the misses: the pass is about references, not key variety. */
const windowsKeys = keys.filter((k) => k === k.toLowerCase());
/** Native answers of the anonymous-allowed pass: map -> key -> stdout (found only). */
const nativeFound = new Map<string, Map<string, string>>();

/**
 * The daemon inside the namespace, listening on a unix socket (the file system is shared, so
 * this process can also talk to it directly). Cache off: every request is a lookup.
 */
async function startOurs(): Promise<RunningDaemon> {
  return startDaemon(
    ['--socketmap', `unix:${socket}`, '--set', 'cache_ttl=0', '--set', 'cache_negative_ttl=0', ...[...files].flatMap(([n, f]) => ['--map', `${n}=${f}`])],
    { prefix: ad.prefix(), timeoutMs: 30_000 },
  );
}
const table = (name: string): string => `socketmap:unix:${socket}:${name}`;

beforeAll(async () => {
  const t0 = Date.now();
  ad = await startSambaAd({ ldif: adLdif() });
  console.log(`samba AD: provision ${ad.timings.provisionMs} ms, load ${ad.timings.loadMs} ms, start ${ad.timings.startMs} ms (total ${Date.now() - t0} ms)`);
  const dir = makeTmpDir('ad-maps-');
  mapDir = dir;
  // AD_MAPS=regex narrows the maps while hunting one difference (never set in CI).
  const only = process.env.AD_MAPS ? new RegExp(process.env.AD_MAPS) : undefined;
  for (const m of adMaps(ad.caFile).filter((x) => only === undefined || only.test(x.name))) {
    const file = join(dir, `${m.name}.cf`);
    writeFileSync(file, m.body);
    backdate(file);
    files.set(m.name, file);
  }
  for (const m of adMaps(ad.caFile, `ldap://${DNS_DOMAIN}:${WINDOWS_PORT}/`).filter((x) => WINDOWS_MAPS.test(x.name))) {
    const file = join(dir, `win-${m.name}.cf`);
    writeFileSync(file, m.body);
    backdate(file);
    windowsFiles.set(`win-${m.name}`, file);
  }
  confDir = await makePostfixConfigDir();
  socket = join(dir, 'socketmap.sock');
  daemon = await startOurs();
}, 300_000);

afterAll(async () => {
  await daemon?.stop();
  windowsProxy?.kill('SIGTERM');
  await ad?.destroy();
});

interface Tally { compared: number; found: number; temp: number; racy: number; mismatches: string[]; rows: string[] }

/** Maps whose references name another host:port, reached anonymously (AD refuses by default). */
const RACY_ERROR_BEHIND_REFERENCE = /^(proxy|groups|recipient|dnbind)-ip-yes$/;

interface Pass {
  files: Map<string, string>;
  /** The daemon's socketmap socket for these maps. */
  socket: string;
  keys: string[];
  /** Maps where libldap may lose an error behind a reference (see below). */
  racy: RegExp;
  /** Keep native finds for the race test. */
  record: boolean;
}

const mainPass = (): Pass => ({ files, socket, keys, racy: RACY_ERROR_BEHIND_REFERENCE, record: true });

async function differential(label: string, pass: Pass = mainPass()): Promise<Tally> {
  const t: Tally = { compared: 0, found: 0, temp: 0, racy: 0, mismatches: [], rows: [] };
  const started = Date.now();
  const keys = pass.keys;
  for (const [name, file] of pass.files) {
    const [native, ours] = await Promise.all([
      postmapAllIn(ad, confDir, `ldap:${file}`, keys, 12),
      postmapAllIn(ad, confDir, `socketmap:unix:${pass.socket}:${name}`, keys, 12),
    ]);
    for (const key of keys) {
      const n = native.get(key)!;
      const o = ours.get(key)!;
      const cn = classify(n);
      const co = classify(o);
      t.compared++;
      if (cn === 'found' && pass.record) {
        if (!nativeFound.has(name)) nativeFound.set(name, new Map());
        nativeFound.get(name)!.set(key, n.stdout.replace(/\n$/, ''));
      }
      if (cn === 'found') t.found++;
      if (cn === 'temp') t.temp++;
      const row = `${label} ${name} ${JSON.stringify(key)}: native ${cn} ${JSON.stringify(n.stdout)} / ours ${co} ${JSON.stringify(o.stdout)}`;
      t.rows.push(row);
      // README, Differences 6: an error behind a reference (here AD refusing the anonymous
      // connection a reference to another host:port gets) is lost by libldap when it arrives
      // before the search's own final result; Postfix then answers from the local entries.
      // The daemon always answers TEMP. Seen 3 times in 140 such lookups under load; counted.
      if (co === 'temp' && cn !== 'temp' && cn !== 'other' && pass.racy.test(name) && /00002020/.test(o.stderr)) {
        t.racy++;
        continue;
      }
      if (cn === 'other' || co === 'other' || cn !== co || n.stdout !== o.stdout) t.mismatches.push(`${row}\n    native stderr: ${n.stderr.trim()}\n    ours stderr: ${o.stderr.trim()}`);
    }
  }
  console.log(`${label}: ${t.compared} lookups compared over ${pass.files.size} maps, native found ${t.found}, temp ${t.temp}, libldap's lost error behind a reference ${t.racy}, mismatches ${t.mismatches.length}, ${Date.now() - started} ms`);
  return t;
}

const row = (t: Tally, map: string, key: string): string => t.rows.find((r) => r.includes(` ${map} ${JSON.stringify(key)}: `)) ?? `(no row for ${map} ${key})`;

/**
 * The Windows-style maps against native postmap, twice: the application partitions' host names
 * unresolvable (the hosts file lacks them and the namespace has no DNS server to ask), then
 * resolving to the DC. The daemon is started afresh for each, as postmap is: it keeps a
 * referral connection open across lookups, so it would not see the names change.
 */
type Variant = 'unresolvable' | 'resolving' | 'dropping';

async function windowsPass<V extends Variant>(label: string, variants: readonly V[]): Promise<Record<V, Tally>> {
  if (windowsProxy === undefined) {
    const p = spawn(ad.prefix()[0]!, [...ad.prefix().slice(1), process.execPath, WINDOWS_PROXY, String(WINDOWS_PORT), '389', DNS_DOMAIN], { stdio: ['ignore', 'pipe', 'pipe'] });
    windowsProxy = p;
    p.stderr!.on('data', (d: Buffer) => { windowsProxyLog += d.toString(); });
    await new Promise<void>((resolve, reject) => {
      p.stdout!.once('data', () => resolve());
      p.once('exit', (code) => reject(new Error(`windows-refs proxy exited ${code}: ${windowsProxyLog}`)));
    });
  }
  const winSocket = join(mapDir, 'windows.sock');
  const out: Partial<Record<V, Tally>> = {};
  for (const variant of variants) {
    ad.resolveAlso(variant === 'unresolvable' ? [] : ZONE_HOSTS, variant === 'dropping' ? await ad.dropAddress() : undefined);
    const ours = await startDaemon(
      ['--socketmap', `unix:${winSocket}`, '--set', 'cache_ttl=0', '--set', 'cache_negative_ttl=0', ...[...windowsFiles].flatMap(([n, f]) => ['--map', `${n}=${f}`])],
      { prefix: ad.prefix(), timeoutMs: 30_000 },
    );
    try {
      // Resolving, the partitions are asked anonymously (another host name): the error a DC
      // refusing that gives may be lost by libldap, as for the -ip- maps of the main pass.
      out[variant] = await differential(`${label}, partition hosts ${variant}`, {
        files: windowsFiles,
        socket: winSocket,
        // Every lookup through a -yes map waits out `timeout` (3 s) there: a few keys say it.
        keys: variant === 'dropping' ? ['alice@ad.example.org', ZONE_KEY, 'nobody@ad.example.org'] : windowsKeys,
        racy: variant === 'resolving' ? /-yes$/ : /^$/,
        record: false,
      });
    } finally {
      await ours.stop();
      ad.resolveAlso([]);
    }
  }
  return out as Record<V, Tally>;
}

describe('Active Directory (Samba DC) against native postmap', () => {
  it('a search from the domain root refers to CN=Configuration and both DNS application partitions, as on a real DC', async () => {
    const ldif = await ad.search(BASE_DN, 'sub', '(cn=Administrator)', ['1.1']);
    const refs = [...ldif.matchAll(/^ref: (.*)$/gm)].map((r) => r[1]);
    console.log(`domain root references: ${refs.join(' ')}`);
    expect(refs.sort()).toEqual([...SAMBA_REFERENCES].sort());
  });

  it('anonymous operations refused (the default): every map, every key, byte for byte', async () => {
    const t = await differential('anonymous refused');
    expect(t.mismatches, t.mismatches.join('\n')).toEqual([]);
    // The partitions' references are really followed: their contacts are found only by chasing.
    for (const key of [ZONE_KEY, FOREST_KEY]) {
      expect(row(t, 'recipient-yes', key)).toMatch(/: native found "(zone|forest)@ad\.example\.org\\n"/);
      expect(row(t, 'recipient-no', key)).toMatch(/: native notfound /);
    }

    const w = await windowsPass('windows references, anonymous refused', ['unresolvable', 'resolving', 'dropping']);
    for (const v of [w.unresolvable, w.resolving, w.dropping]) expect(v.mismatches, v.mismatches.join('\n')).toEqual([]);
    for (const url of WINDOWS_REFERENCES) expect(windowsProxyLog).toContain(` -> ${url}\n`);
    // Unresolvable: libldap skips those references, silently, and answers from the rest.
    expect(row(w.unresolvable, 'win-recipient-yes', 'alice@ad.example.org')).toMatch(/: native found /);
    expect(row(w.unresolvable, 'win-recipient-yes', ZONE_KEY)).toMatch(/: native notfound /);
    // Resolving to the DC: asked anonymously, refused: a temporary error for every key, ours
    // always, libldap's unless it lost the error (counted as racy).
    const yes = (t: Tally, who: 'native' | 'ours'): number => t.rows.filter((r) => new RegExp(` win-recipient-yes .*${who} temp `).test(r)).length;
    expect(yes(w.resolving, 'ours')).toBe(windowsKeys.length);
    expect(yes(w.resolving, 'native')).toBeGreaterThan(0);
    expect(yes(w.unresolvable, 'ours')).toBe(0);
    // Resolving to an address that drops packets (a firewalled DC): libldap's connect outlives
    // the search's `timeout`, and the lookup is a temporary error ("Search error -5: Timed out").
    expect(yes(w.dropping, 'native')).toBe(3);
    expect(yes(w.dropping, 'ours')).toBe(3);
    expect(row(w.dropping, 'win-recipient-no', 'alice@ad.example.org')).toMatch(/: native found /);
    // The fixture must exercise something: finds through every bound map, refusals for anonymous.
    expect(t.rows.filter((r) => /^anonymous refused groups-no "big@ad\.example\.org": native found/.test(r))).toHaveLength(1);
    expect(t.rows.filter((r) => /^anonymous refused proxy-no .*native found/.test(r)).length).toBeGreaterThan(20);
    expect(t.rows.filter((r) => /^anonymous refused anon-no .*native temp/.test(r)).length).toBe(keys.length);
  }, 900_000);

  it('anonymous operations allowed (dSHeuristics): every map, every key, byte for byte', async () => {
    await ad.modify(`dn: ${DS_SETTINGS_DN}\nchangetype: modify\nreplace: dSHeuristics\ndSHeuristics: 0000002\n-\n`);
    // Samba applies dSHeuristics to connections opened after the change (a connection opened
    // before keeps refusing anonymous searches); native postmap opens new ones: so do we.
    await daemon.stop();
    daemon = await startOurs();
    nativeFound.clear();
    const t = await differential('anonymous allowed');
    expect(t.mismatches, t.mismatches.join('\n')).toEqual([]);
    expect(t.rows.filter((r) => /^anonymous allowed anon-no .*native temp/.test(r)).length).toBeLessThan(keys.length);

    const w = await windowsPass('windows references, anonymous allowed', ['unresolvable', 'resolving']);
    for (const v of [w.unresolvable, w.resolving]) expect(v.mismatches, v.mismatches.join('\n')).toEqual([]);
    // Resolving, the partitions are now asked anonymously and answer (Samba's ACLs there hide
    // the contacts from anonymous readers, so nothing more is found): no temporary error added.
    expect(row(w.unresolvable, 'win-recipient-yes', 'alice@ad.example.org')).toMatch(/: native found /);
    expect(row(w.resolving, 'win-recipient-yes', 'alice@ad.example.org')).toMatch(/: native found /);
    expect(w.resolving.temp).toBe(w.unresolvable.temp);
  }, 900_000);

  it('chase_referrals = yes, 50 rounds of every key at once: never NOTFOUND where native found', async () => {
    // The race: a wrong NOTFOUND once in about twelve runs with references around the
    // final result. Every chasing map, every key native found, all at once, 50 times.
    const work: [string, string, string][] = [];
    for (const [name, found] of nativeFound) if (name.endsWith('-yes')) for (const [key, value] of found) work.push([name, key, value]);
    expect(work.length).toBeGreaterThan(100);
    const tally = { found: 0, same: 0, notfound: 0, temp: 0, other: 0 };
    const wrong: string[] = [];
    const started = Date.now();
    for (let round = 0; round < 50; round++) {
      const replies = await Promise.all(work.map(([name, key]) => socketmapFrame(socket, name, key)));
      replies.forEach((frame, i) => {
        const [name, key, value] = work[i]!;
        const body = frame.toString('utf8').replace(/^\d+:/, '').replace(/,$/, '');
        if (body.startsWith('OK ')) {
          tally.found++;
          if (body.slice(3) === value) tally.same++;
          else wrong.push(`round ${round} ${name} ${key}: native ${JSON.stringify(value)}, ours ${JSON.stringify(body)}`);
        } else if (body.startsWith('NOTFOUND')) {
          tally.notfound++;
          wrong.push(`round ${round} ${name} ${key}: native ${JSON.stringify(value)}, ours NOTFOUND`);
        } else if (body.startsWith('TEMP')) tally.temp++;
        else tally.other++;
      });
    }
    console.log(`race: 50 rounds x ${work.length} lookups (${new Set(work.map((w) => w[0])).size} chasing maps) in ${Date.now() - started} ms: ${JSON.stringify(tally)}`);
    expect(wrong.slice(0, 20), wrong.slice(0, 20).join('\n')).toEqual([]);
    expect(tally.notfound).toBe(0);
    // Ordered replies may differ (several references); answered ones must be the native bytes.
    expect(tally.same).toBe(tally.found);
  }, 900_000);

  it("groups over 1500 members through Windows' MaxValRange (a proxy): Postfix's answer by default, logged and counted; range_retrieval = yes fetches the rest", async () => {
    const proxy: ChildProcess = spawn(ad.prefix()[0]!, [...ad.prefix().slice(1), process.execPath, RANGE_PROXY, String(PROXY_PORT), '389', '1500'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let ranged: RunningDaemon | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        proxy.stdout!.once('data', () => resolve());
        proxy.once('exit', (code) => reject(new Error(`range proxy exited ${code}`)));
      });
      const rdir = makeTmpDir('ad-range-');
      const rfiles = new Map<string, string>();
      for (const m of rangeMaps(`ldap://127.0.0.1:${PROXY_PORT}/`, 'ldap://127.0.0.1/')) {
        const file = join(rdir, `${m.name}.cf`);
        writeFileSync(file, m.body);
        backdate(file);
        rfiles.set(m.name, file);
      }
      // The same .cf file, once more under a map name with range_retrieval = yes.
      const rsock = join(rdir, 'sm.sock');
      ranged = await startDaemon([
        '--socketmap', `unix:${rsock}`, '--metrics', '127.0.0.1:0', '--set', 'cache_ttl=0', '--set', 'cache_negative_ttl=0',
        ...[...rfiles].flatMap(([n, f]) => ['--map', `${n}=${f}`, '--map', `${n}-retrieve=${f}`, '--set', `map.${n}-retrieve.range_retrieval=yes`]),
      ], { prefix: ad.prefix(), timeoutMs: 30_000 });
      const groupKeys = keys.filter((k) => /^(big|sales|all|eng|empty|loop-a|vertrieb)@/i.test(k));
      let compared = 0;
      const mismatches: string[] = [];
      for (const [name, file] of rfiles) {
        const [native, ours, retrieved] = await Promise.all([
          postmapAllIn(ad, confDir, `ldap:${file}`, groupKeys, 6),
          postmapAllIn(ad, confDir, `socketmap:unix:${rsock}:${name}`, groupKeys, 6),
          postmapAllIn(ad, confDir, `socketmap:unix:${rsock}:${name}-retrieve`, groupKeys, 6),
        ]);
        const direct = name.startsWith('direct') ? native : undefined;
        for (const key of groupKeys) {
          compared++;
          const n = native.get(key)!;
          const o = ours.get(key)!;
          if (classify(n) !== classify(o) || n.stdout !== o.stdout) mismatches.push(`${name} ${key}: native ${classify(n)} ${n.stdout.length} bytes / ours ${classify(o)} ${o.stdout.length} bytes`);
          if (direct) expect(retrieved.get(key)!.stdout).toBe(n.stdout); // nothing ranged without the proxy
        }
        if (name.startsWith('proxy')) {
          // The proxy really truncates: natively 1500 members plus the group's own mail.
          const big = native.get(`big@ad.example.org`)!.stdout.trim().split(',');
          expect(big.filter((v) => v.endsWith('@big.example'))).toHaveLength(1500);
          expect(big).toContain('big@ad.example.org');
          // range_retrieval = yes through the proxy = native without it (all 1600 members).
          const full = await ad.postmap(confDir, `ldap:${rfiles.get(name.replace(/^proxy/, 'direct'))!}`, 'big@ad.example.org');
          expect(retrieved.get('big@ad.example.org')!.stdout).toBe(full.stdout);
          expect(full.stdout.trim().split(',').filter((v) => v.endsWith('@big.example'))).toHaveLength(1600);
        }
      }
      console.log(`ranged values: ${compared} lookups compared, mismatches ${mismatches.length}`);
      expect(mismatches).toEqual([]);
      expect(ranged.log.some((l) => /came back with only part of its values \(member;range=0-1499/.test(l))).toBe(true);
      const metrics = await ad.exec(process.execPath, ['-e', `fetch('http://127.0.0.1:${ranged.metricsPort}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`]);
      const counted = /^ldap_socketmap_ldap_ranged_entries_total\{servers="ldap:\/\/127\.0\.0\.1:1389\/"\} (\d+)/m.exec(metrics.stdout);
      expect(Number(counted?.[1] ?? 0)).toBeGreaterThan(0);
    } finally {
      await ranged?.stop();
      proxy.kill('SIGTERM');
    }
  }, 600_000);

  it('the change watcher on AD (highestCommittedUSN, uSNChanged): adds, modifications and deletions show within a few polls', async () => {
    const names = ['recipient-yes', 'groups-yes', 'proxy-ip-no'].filter((n) => files.has(n));
    expect(names.length).toBe(3);
    const wsock = join(mapDir, 'watch.sock');
    const watched = await startDaemon([
      '--socketmap', `unix:${wsock}`, '--set', 'cache_ttl=1h', '--set', 'cache_negative_ttl=1h', '--set', 'change_poll_interval=1', '--log-level', 'debug',
      ...names.flatMap((n) => ['--map', `${n}=${files.get(n)!}`]),
    ], { prefix: ad.prefix(), timeoutMs: 30_000 });
    try {
      await watched.waitForLog(/change watcher .*highestCommittedUSN, then \(uSNChanged>=LAST\)/, 30_000);
      const probes: [string, string][] = [
        ['recipient-yes', 'new1@ad.example.org'], ['recipient-yes', 'alice@ad.example.org'], ['recipient-yes', 'ext1@partner.example'],
        ['groups-yes', 'sales@ad.example.org'], ['groups-yes', 'eng@ad.example.org'], ['proxy-ip-no', 'frank@ad.example.org'],
      ];
      const ours = async (): Promise<string[]> => Promise.all(probes.map(async ([m, k]) => (await socketmapFrame(wsock, m, k)).toString('utf8')));
      const native = async (): Promise<string[]> => Promise.all(probes.map(async ([m, k]) => {
        const r = await ad.postmap(confDir, `ldap:${files.get(m)!}`, k);
        const c = classify(r);
        return c === 'found' ? `OK ${r.stdout.replace(/\n$/, '')}` : c === 'notfound' ? 'NOTFOUND ' : 'TEMP';
      }));
      const body = (f: string): string => f.replace(/^\d+:/, '').replace(/,$/, '');
      const before = (await ours()).map(body);
      expect(before).toEqual(await native());
      // Warm: the cache now holds every answer, the not-found one included.
      expect((await ours()).map(body)).toEqual(before);
      await ad.modify([
        `dn: CN=New One,OU=Mail,DC=ad,DC=example,DC=org\nchangetype: add\nobjectClass: contact\nmail: new1@ad.example.org\nproxyAddresses: SMTP:new1@ad.example.org\n`,
        `dn: CN=Alice Smith,OU=Mail,DC=ad,DC=example,DC=org\nchangetype: modify\nreplace: mail\nmail: Alice.Renamed@ad.example.org\n-\n`,
        `dn: CN=Ext One,OU=Mail,DC=ad,DC=example,DC=org\nchangetype: delete\n`,
        `dn: CN=eng,OU=Mail,DC=ad,DC=example,DC=org\nchangetype: modify\nadd: member\nmember: CN=Eve Shared,OU=Mail,DC=ad,DC=example,DC=org\n-\n`,
        `dn: CN=Frank Shared,OU=Mail,DC=ad,DC=example,DC=org\nchangetype: delete\n`,
      ].join('\n'));
      const expected = await native();
      expect(expected).not.toEqual(before);
      const t0 = Date.now();
      let now = (await ours()).map(body);
      while (JSON.stringify(now) !== JSON.stringify(expected) && Date.now() - t0 < 20_000) {
        await new Promise((r) => setTimeout(r, 250));
        now = (await ours()).map(body);
      }
      console.log(`change watcher on AD: answers followed ${probes.length} changed keys in ${Date.now() - t0} ms (poll every 1 s)`);
      expect(now).toEqual(expected);
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      await watched.stop();
    }
  }, 300_000);

  it('a restart resumes from the cache snapshot at the same DC\'s USN: what changed while down answers like native at once, the rest from the restored cache', async () => {
    const contact = (cn: string, mail: string): string =>
      `dn: CN=${cn},OU=Mail,${BASE_DN}\nchangetype: add\nobjectClass: contact\nmail: ${mail}\nproxyAddresses: SMTP:${mail}\n`;
    await ad.modify([
      contact('Snap A', 'snap-a@ad.example.org'), contact('Snap B', 'snap-b@ad.example.org'), contact('Snap C', 'snap-c@ad.example.org'),
      `dn: CN=snap-list,OU=Mail,${BASE_DN}\nchangetype: add\nobjectClass: group\nsAMAccountName: snap-list\nmail: snap-list@ad.example.org\n` +
        `member: CN=Snap A,OU=Mail,${BASE_DN}\nmember: CN=Snap B,OU=Mail,${BASE_DN}\n`,
    ].join('\n'));
    const r = await restartAcrossChange({
      confDir,
      files: { 'recipient-yes': files.get('recipient-yes')!, 'groups-yes': files.get('groups-yes')! },
      marker: /change watcher .*highestCommittedUSN, then \(uSNChanged>=LAST\)/,
      keys: [['groups-yes', 'snap-list@ad.example.org'], ['groups-yes', 'sales@ad.example.org'], ['recipient-yes', 'snap-b@ad.example.org'], ['recipient-yes', 'snap-c@ad.example.org']],
      whileDown: () => ad.modify(`dn: CN=Snap B,OU=Mail,${BASE_DN}\nchangetype: delete\n`),
      netns: { prefix: ad.prefix(), postmap: (c, t, k) => ad.postmap(c, t, k) },
    });
    expect(r.before[0]!.kind).toBe('found');
    // The group's own mail, then its members'.
    expect(r.before[0]!.value.split(',').sort()).toEqual(['snap-a@ad.example.org', 'snap-b@ad.example.org', 'snap-list@ad.example.org']);
    expect(r.native[0]!.value.split(',').sort()).toEqual(['snap-a@ad.example.org', 'snap-list@ad.example.org']);
    expect(r.native[2]).toEqual({ kind: 'notfound', value: '' });
    expect(r.after).toEqual(r.native);
    expect(r.log.join('\n')).toMatch(/change watcher .*\(Active Directory\).*resuming from the cache snapshot/);
    expect(r.misses).toEqual({ 'recipient-yes': 1, 'groups-yes': 1 });
    expect(r.hits).toEqual({ 'recipient-yes': 1, 'groups-yes': 1 });
  }, 300_000);
});
