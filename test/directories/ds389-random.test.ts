/**
 * Random differential test on a real 389 Directory Server (Debian's 389-ds-base): the seeded
 * random directories, .cf maps and keys of the OpenLDAP random differential
 * (test/integration/differential-random.test.ts; generators in test/support/random-directory.ts,
 * drawn by test/support/random-seed.ts in the same order with the same counts, so seed N here is
 * seed N there), loaded into 389-ds instead of slapd. For every (map, key) the real
 * `postmap -q KEY ldap:FILE.cf` and the daemon's `socketmap:inet:127.0.0.1:PORT:NAME` must end
 * the same way (found / not found / temporary error) and print the same bytes; maps with special
 * result attributes are also served a second time with batch_member_fetch = yes (389-ds answers
 * the entrydn equality filters the batches use) and compared too.
 *
 * The custom schema (test/fixtures/ldap/socketmap-test.schema) reaches 389-ds in its own form
 * (cn=schema LDIF in the instance's schema folder, translated by test/support/ds389.ts). 389-ds
 * already has `memberURL` (IA5 string) and `mailRecipient` (another class): its memberURL is used
 * and the test's mailRecipient gets another name. Schema syntax checking is off on these
 * instances, as the generated directory holds non-ASCII text in attributes 389-ds types as IA5
 * (memberURL, mailRoutingAddress), which OpenLDAP's schema types as Directory String.
 *
 * What 389-ds adds to the seed (drawn from a PRNG stream of its own, so the classic and wide maps
 * are unchanged):
 * - identities: anonymous (most generated maps) may read everything but mailRoutingAddress
 *   (an ACI); the generator's `bind = yes` maps bind as the Directory Manager (no ACIs, no
 *   limits); "twist" maps re-run a classic map bound as an ordinary entry with full read rights
 *   (`reader`), or as an entry with per-bind limits (`limited`: nsSizeLimit and
 *   nsLookThroughLimit small, so searches fail mid-expansion with sizeLimitExceeded or
 *   adminLimitExceeded);
 * - referrals: besides the generator's referral objects to ldap.invalid, a smart referral
 *   `cn=self-ref,ou=Groups` back to ou=Sub,ou=Groups on the same server; twist maps with
 *   `chase_referrals = yes` follow it (entries found twice) and the unresolvable ones;
 * - aliases: the generator's alias entries and `dereference` values; 389-ds does not dereference.
 *
 * Found here (seeds 28 and 30, fixed, 28 pinned): when the requested attribute list names both a
 * type and its subtype (`result_attribute = forwardTo` with `terminal_result_attribute =
 * forwardTo;lang-en`, or `MAIL, mail;lang-en`), 389-ds sends the subtyped attribute TWICE in one
 * SearchResultEntry, once per request item it matches (ldapsearch `… forwardTo
 * 'forwardTo;lang-en'` prints `forwardTo;lang-en: P@x` twice). libldap walks the entry as sent,
 * so Postfix answers the value twice (`v,v`); the daemon now walks every copy in wire order
 * (src/ldap/ldapts-fixes.ts, attributesInOrder). OpenLDAP sends each attribute once, so the slapd
 * differential cannot see it. DIFF_SEED=30 DIFF_TWISTS=6 reproduces the twist-map case.
 *
 * Seeds: DIFF_SEED=N, N,M,... or FROM-TO replace the pinned seeds (the seed of every run is
 * printed). DIFF_MAPS / DIFF_KEYS / DIFF_WIDE_MAPS / DIFF_WIDE_KEYS as in the OpenLDAP test;
 * DIFF_TWISTS: twist maps per seed; DIFF_TWIST_KEYS: keys per twist map.
 * A mismatch writes a reproduction (LDIF as imported, .cf, keys, outputs) to
 * $TMPDIR/ldap-socketmap-ds389-random/seed-N/ (DIFF_DUMP=1: for every map).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../support/daemon.js';
import { startDs389, type Ds389 } from '../support/ds389.js';
import { backdate } from '../support/postfix.js';
import { compareMap, type DaemonTable, describeMismatch, type MapCtx, type Mismatch, newStats } from '../support/random-compare.js';
import { Rng, SUFFIX } from '../support/random-directory.js';
import { reproDir, seedSizesFromEnv, seedsFromEnv, setUpSeed, type SeedServerStarter } from '../support/random-seed.js';
import { runCommand } from '../support/run.js';
import { makeTmpDir } from '../support/tmp.js';

/**
 * Seeds run by `npm run test:directories` (about 20 s each here): 1-24 were hunted with no
 * mismatch; these cover 389-ds's own errors on the generated filters (protocol error for `(&)`,
 * unavailable critical extension for unknown matching rules, bad filters, noSuchObject search
 * bases), the per-bind limits tripping (sizeLimitExceeded, adminLimitExceeded mid-expansion),
 * referrals chased to the server itself with entries found, and the wide maps. Seed 5 is left
 * out for time only: one of its chase maps takes ~100 s on both sides (it passes). 28 found the
 * repeated-attribute difference.
 */
const PINNED_SEEDS = [1, 3, 7, 10, 12, 13, 15, 16, 17, 19, 21, 28];
const SEEDS = seedsFromEnv('DIFF_SEED', PINNED_SEEDS);
const SIZES = seedSizesFromEnv();
const TWISTS = Number(process.env.DIFF_TWISTS ?? 4);
const TWIST_KEYS = Number(process.env.DIFF_TWIST_KEYS ?? 80);

const LIMITED_DN = `uid=postfix-limited,${SUFFIX}`;
const LIMITED_PW = 'limited-secret';
/** Per-bind limits of the `limited` identity: small enough to trip on lists and wildcards. */
const LIMITED_SIZE = 2;
/** Below the ~20-60 entries of a seed's directory: unindexed subtree searches and member URLs trip it. */
const LIMITED_LOOKTHROUGH = 12;
const SELF_REF_DN = `cn=self-ref,ou=Groups,${SUFFIX}`;

/**
 * The seed's LDIF as 389-ds gets it: an ACI on the suffix letting anyone (anonymous binds
 * included) read all but mailRoutingAddress, and the `limited` identity with its per-bind limits.
 */
function for389(ldif: string): string {
  const lines = ldif.split('\n');
  const i = lines.findIndex((l) => l === `dn: ${SUFFIX}`);
  if (i < 0) throw new Error(`the generated LDIF has no suffix entry ${SUFFIX}`);
  lines.splice(i + 1, 0, 'aci: (targetattr!="mailRoutingAddress")(version 3.0; acl "anyone reads"; allow (read, search, compare) userdn="ldap:///anyone";)');
  return `${lines.join('\n').trimEnd()}\n\ndn: ${LIMITED_DN}\nobjectClass: account\nobjectClass: simpleSecurityObject\nuid: postfix-limited\nuserPassword: ${LIMITED_PW}\nnsSizeLimit: ${LIMITED_SIZE}\nnsLookThroughLimit: ${LIMITED_LOOKTHROUGH}\n`;
}

type Twist = 'reader' | 'limited' | 'chase' | 'chase-reader';

function twistLines(t: Twist, ds: Ds389): string {
  const reader = `bind = yes\nbind_dn = ${ds.bindDn}\nbind_pw = ${ds.bindPw}\n`;
  switch (t) {
    case 'reader': return reader;
    case 'limited': return `bind = yes\nbind_dn = ${LIMITED_DN}\nbind_pw = ${LIMITED_PW}\n`;
    case 'chase': return 'chase_referrals = yes\n';
    case 'chase-reader': return `chase_referrals = yes\n${reader}`;
  }
}

/**
 * What the twists rely on, checked on the seed's classic server with ldapsearch (so a twist can
 * never silently become a no-op): the limited identity's lookthrough limit refuses an unindexed
 * subtree search (adminLimitExceeded, 11) that the reader passes; anonymous binds do not see
 * mailRoutingAddress where the reader does; the self referral comes back as a search reference.
 */
async function twistFacts(ds: Ds389): Promise<string[]> {
  const search = (who: 'anon' | 'reader' | 'limited', filter: string, attrs: string[]) => runCommand('/usr/bin/ldapsearch', [
    '-x', '-H', ds.url, '-o', 'ldif-wrap=no',
    ...(who === 'reader' ? ['-D', ds.bindDn, '-w', ds.bindPw] : who === 'limited' ? ['-D', LIMITED_DN, '-w', LIMITED_PW] : []),
    '-b', SUFFIX, '-s', 'sub', filter, ...attrs,
  ], { timeoutMs: 30_000 });
  const facts: string[] = [];
  const limited = await search('limited', '(description=*)', ['1.1']);
  facts.push(`limited identity, unindexed subtree search: exit ${limited.code}`);
  const reader = await search('reader', '(description=*)', ['1.1']);
  facts.push(`reader, same search: exit ${reader.code}`);
  const count = (out: string, re: RegExp) => out.split('\n').filter((l) => re.test(l)).length;
  const anonMra = await search('anon', '(objectClass=*)', ['mailRoutingAddress']);
  const readerMra = await search('reader', '(objectClass=*)', ['mailRoutingAddress']);
  facts.push(`mailRoutingAddress values seen: anonymous ${count(anonMra.stdout, /^mailRoutingAddress:/i)}, reader ${count(readerMra.stdout, /^mailRoutingAddress:/i)}`);
  facts.push(`search references to the server itself: ${count(anonMra.stdout, new RegExp(`^ref: ldap://127\\.0\\.0\\.1:${ds.port}/`))}`);
  return facts;
}

interface CompareMap { name: string; file: string; text: string; summary: string; keys: string[]; batched: boolean; ldif: string }

async function runSeed(seed: number): Promise<{ mismatches: Mismatch[]; report: string[]; compared: number }> {
  const servers = new Map<'classic' | 'wide', { ds: Ds389; ldif: string }>();
  const start: SeedServerStarter = async (ldif, which) => {
    const data = for389(ldif);
    const ds = await startDs389({ ldif: data, usn: false, config: { 'nsslapd-syntaxcheck': 'off' } });
    servers.set(which, { ds, ldif: data });
    if (which === 'classic') {
      await ds.add(`dn: ${SELF_REF_DN}\nobjectClass: referral\nobjectClass: extensibleObject\ncn: self-ref\nref: ldap://127.0.0.1:${ds.port}/ou=Sub,ou=Groups,${SUFFIX}\n`);
    }
    return { url: ds.url, host: ds.host, port: ds.port, rootDn: ds.rootDn, rootPw: ds.rootPw, destroy: () => ds.destroy() };
  };
  const t0 = Date.now();
  const setup = await setUpSeed(seed, SIZES, 'ds389-random-cf-', start);
  const report: string[] = [`seed ${seed}: two 389-ds instances ready and maps written in ${Date.now() - t0} ms`];
  let daemon: RunningDaemon | undefined;
  try {
    const classic = servers.get('classic')!;
    const facts = await twistFacts(classic.ds);
    report.push(`seed ${seed} 389-ds: ${facts.join('; ')}`);
    const mras = /anonymous (\d+), reader (\d+)/.exec(facts[2]!)!;
    expect(facts.slice(0, 2).concat(Number(mras[1]) === 0 ? 'anonymous sees none' : 'anonymous sees some', facts[3]!), 'the 389-ds twists hold').toEqual([
      'limited identity, unindexed subtree search: exit 11', 'reader, same search: exit 0', 'anonymous sees none', 'search references to the server itself: 1',
    ]);
    const maps: CompareMap[] = [];
    for (const [name, m] of setup.maps) {
      maps.push({ name, file: m.file, text: m.text, summary: m.summary, keys: m.keys, batched: /^\s*special_result_attribute\s*=/m.test(m.text), ldif: servers.get(m.wide ? 'wide' : 'classic')!.ldif });
    }
    // Twists: classic maps again, under another identity or chasing referrals.
    const trng = new Rng((seed * 0x389 + 0xd5) >>> 0);
    const classics = maps.filter((m) => m.name.startsWith('r'));
    const cfDir = makeTmpDir('ds389-random-twist-');
    for (let i = 0; i < TWISTS && classics.length > 0; i++) {
      // Maps that expand members are where identities and limits bite mid-expansion.
      const from = trng.weighted(classics.map((m) => [m.batched ? 3 : 1, m] as const));
      const twist = trng.pick(['reader', 'limited', 'limited', 'chase', 'chase-reader'] as const);
      // Half the keys from those aimed at the map's own base and filter (the last third), so some are found.
      const aimed = from.keys.slice(-Math.ceil(SIZES.keys / 3));
      const keys = [...new Set([...trng.some(aimed, Math.ceil(TWIST_KEYS / 2)), ...trng.some(from.keys, TWIST_KEYS)])].slice(0, TWIST_KEYS);
      const text = `${from.text}# ds389-random twist: ${twist}\n${twistLines(twist, classic.ds)}`;
      const file = join(cfDir, `t${i}.cf`);
      writeFileSync(file, text);
      backdate(file);
      maps.push({ name: `t${i}`, file, text, summary: `${twist} of ${from.name} [${from.summary}]`, keys, batched: from.batched, ldif: from.ldif });
    }

    daemon = await startDaemon([
      '--socketmap', 'inet:127.0.0.1:0',
      '--set', 'cache_ttl=0', '--set', 'cache_negative_ttl=0',
      ...maps.flatMap((m) => ['--map', `${m.name}=${m.file}`]),
      ...maps.filter((m) => m.batched).flatMap((m) => ['--map', `${m.name}-batch=${m.file}`, '--set', `map.${m.name}-batch.batch_member_fetch=yes`]),
    ]);

    const mismatches: Mismatch[] = [];
    let compared = 0;
    for (const m of maps) {
      const tables: DaemonTable[] = [{ label: 'plain', table: daemon.table(m.name) }];
      if (m.batched) tables.push({ label: 'batched', table: daemon.table(`${m.name}-batch`) });
      const ctx: MapCtx = { seed, name: m.name, cfFile: m.file, cfText: m.text, confDir: setup.confDir, tables, stats: newStats(), crashes: [], tempReasons: new Set(), ms: { native: 0, tables: [] } };
      const t1 = Date.now();
      const found = await compareMap(ctx, m.keys);
      compared += m.keys.length * tables.length;
      report.push(`seed ${seed} ${m.name}${m.batched ? '(+batched)' : ''} [${m.summary}] keys=${m.keys.length} found=${ctx.stats.found} temp=${ctx.stats.temp} perkey-notfound=${ctx.stats.notfound} mismatches=${found.length} ${Date.now() - t1}ms (postmap time native ${Math.round(ctx.ms!.native)} ms, daemon ${ctx.ms!.tables.map(Math.round).join('/')} ms)${ctx.tempReasons!.size ? ` temp-reasons=${JSON.stringify([...ctx.tempReasons!])}` : ''}${ctx.crashes.length ? ` native-crashes=${JSON.stringify(ctx.crashes)}` : ''}`);
      mismatches.push(...found);
      if (found.length > 0 || process.env.DIFF_DUMP) {
        const d = reproDir('ds389-random', seed);
        writeFileSync(join(d, `${m.name}-directory.ldif`), m.ldif);
        writeFileSync(join(d, `${m.name}.cf`), m.text);
        writeFileSync(join(d, `${m.name}-keys.txt`), m.keys.join('\n') + '\n');
        if (found.length > 0) writeFileSync(join(d, `${m.name}-mismatches.json`), JSON.stringify(found, null, 2));
        for (const f of found) report.push(describeMismatch(f, m.text));
        report.push(`  reproduction files: ${d}`);
      }
    }
    return { mismatches, report, compared };
  } finally {
    await daemon?.stop();
    await setup.destroy();
  }
}

describe('389-ds random differential: socketmap answers equal native ldap: answers', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed} (${SIZES.maps} maps x ${SIZES.keys} keys, ${SIZES.wideMaps} wide x ${SIZES.wideKeys}, ${TWISTS} twists x ${TWIST_KEYS})`, async () => {
      console.log(`ds389-random: seed ${seed} (reproduce with DIFF_SEED=${seed})`);
      const t0 = Date.now();
      const { mismatches, report, compared } = await runSeed(seed);
      console.log(`${report.join('\n')}\nseed ${seed}: ${compared} (map, key, table) comparisons in ${Date.now() - t0} ms`);
      expect(compared).toBeGreaterThan(0);
      expect(mismatches.map((m) => `${m.map} (${m.table}) ${JSON.stringify(m.key)}: native ${m.native} | ours ${m.ours}`)).toEqual([]);
    }, 600_000);
  }
});
