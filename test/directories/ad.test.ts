/**
 * Active Directory, refereed by Postfix's own ldap: table. One Samba AD DC (provisioned once
 * for this file, in a network namespace of its own) serves every map an AD site writes:
 * proxyAddresses, mail-or-proxyAddresses, groups by `member` (nested, looped, empty, escaped
 * DNs, 1600 members), leaf_result_attribute, UPN and DN binds, a wrong password, ldaps with and
 * without a certificate check, searches from the domain root that come back with references
 * (CN=Configuration, and behind it CN=Schema) with chase_referrals = no and yes, by the DC's
 * DNS name (references name the same host) and by IP (they name another one), anonymous
 * operations refused (the default) and then allowed (dSHeuristics). Every key goes through
 * `postmap -q KEY ldap:FILE` and `postmap -q KEY socketmap:…` inside the namespace: the same
 * bytes and the same end (found / not found / temporary error), or the test fails.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../support/daemon.js';
import { backdate, classify, makePostfixConfigDir } from '../support/postfix.js';
import { DS_SETTINGS_DN, postmapAllIn, startSambaAd, type SambaAd } from '../support/samba-ad.js';
import { makeTmpDir } from '../support/tmp.js';
import { adKeys, adLdif } from './ad-fixture.js';
import { adMaps } from './ad-maps.js';

let ad: SambaAd;
let daemon: RunningDaemon;
let confDir: string;
const files = new Map<string, string>();
const keys = adKeys();

beforeAll(async () => {
  const t0 = Date.now();
  ad = await startSambaAd({ ldif: adLdif() });
  console.log(`samba AD: provision ${ad.timings.provisionMs} ms, load ${ad.timings.loadMs} ms, start ${ad.timings.startMs} ms (total ${Date.now() - t0} ms)`);
  const dir = makeTmpDir('ad-maps-');
  for (const m of adMaps(ad.caFile)) {
    const file = join(dir, `${m.name}.cf`);
    writeFileSync(file, m.body);
    backdate(file);
    files.set(m.name, file);
  }
  confDir = await makePostfixConfigDir();
  daemon = await startDaemon(
    ['--socketmap', 'inet:127.0.0.1:0', '--set', 'cache_ttl=0', '--set', 'cache_negative_ttl=0', ...[...files].flatMap(([n, f]) => ['--map', `${n}=${f}`])],
    { prefix: ad.prefix(), timeoutMs: 30_000 },
  );
}, 300_000);

afterAll(async () => {
  await daemon?.stop();
  await ad?.destroy();
});

interface Tally { compared: number; found: number; temp: number; mismatches: string[]; rows: string[] }

async function differential(label: string): Promise<Tally> {
  const t: Tally = { compared: 0, found: 0, temp: 0, mismatches: [], rows: [] };
  const started = Date.now();
  for (const [name, file] of files) {
    const [native, ours] = await Promise.all([
      postmapAllIn(ad, confDir, `ldap:${file}`, keys, 6),
      postmapAllIn(ad, confDir, daemon.table(name), keys, 6),
    ]);
    for (const key of keys) {
      const n = native.get(key)!;
      const o = ours.get(key)!;
      const cn = classify(n);
      const co = classify(o);
      t.compared++;
      if (cn === 'found') t.found++;
      if (cn === 'temp') t.temp++;
      const row = `${label} ${name} ${JSON.stringify(key)}: native ${cn} ${JSON.stringify(n.stdout)} / ours ${co} ${JSON.stringify(o.stdout)}`;
      t.rows.push(row);
      if (cn === 'other' || co === 'other' || cn !== co || n.stdout !== o.stdout) t.mismatches.push(`${row}\n    native stderr: ${n.stderr.trim()}\n    ours stderr: ${o.stderr.trim()}`);
    }
  }
  console.log(`${label}: ${t.compared} lookups compared over ${files.size} maps, native found ${t.found}, temp ${t.temp}, mismatches ${t.mismatches.length}, ${Date.now() - started} ms`);
  return t;
}

describe('Active Directory (Samba DC) against native postmap', () => {
  it('anonymous operations refused (the default): every map, every key, byte for byte', async () => {
    const t = await differential('anonymous refused');
    expect(t.mismatches, t.mismatches.join('\n')).toEqual([]);
    // The fixture must exercise something: finds through every bound map, refusals for anonymous.
    expect(t.rows.filter((r) => /^anonymous refused groups-no "big@ad\.example\.org": native found/.test(r))).toHaveLength(1);
    expect(t.rows.filter((r) => /^anonymous refused proxy-no .*native found/.test(r)).length).toBeGreaterThan(20);
    expect(t.rows.filter((r) => /^anonymous refused anon-no .*native temp/.test(r)).length).toBe(keys.length);
  }, 900_000);

  it('anonymous operations allowed (dSHeuristics): every map, every key, byte for byte', async () => {
    await ad.modify(`dn: ${DS_SETTINGS_DN}\nchangetype: modify\nreplace: dSHeuristics\ndSHeuristics: 0000002\n-\n`);
    const t = await differential('anonymous allowed');
    expect(t.mismatches, t.mismatches.join('\n')).toEqual([]);
    expect(t.rows.filter((r) => /^anonymous allowed anon-no .*native temp/.test(r)).length).toBeLessThan(keys.length);
  }, 900_000);
});
