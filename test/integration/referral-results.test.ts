/**
 * Referral RESULTS (LDAP result code 10) with chase_referrals = yes and no, refereed by
 * Postfix's own ldap: table. A referral result comes back when the search base lies at or
 * under a referral object, or outside every naming context of a server with a default
 * referral (slapd's global `referral` directive). referrals.test.ts measures search
 * references; this file measures what a referral result leads to: one hop, a search on the
 * referred server that itself returns search references (back home, to the same server, to a
 * third one, to a dead port, to a DN nobody has), result after result, loops, dead and odd
 * URLs (no DN, scope and filter in the URL, alternatives, not LDAP), which connection a way
 * back home takes (the map's bound one, or an anonymous one for another host spelling),
 * member DNs of special_result_attribute under referral objects, and default referrals.
 *
 * Three real slapd servers: "remote" (dc=example,dc=org), "third" (dc=other,dc=net, default
 * referral to remote) and "home" (dc=example,dc=org, default referral to third), the
 * server_host of every map. Every key is asked through `postmap -q` over ldap: and over our
 * socketmap; both the class (found / notfound / temp) and the found bytes must agree.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../support/daemon.js';
import { backdate, classify, makePostfixConfigDir, postmapQuery } from '../support/postfix.js';
import { list, ou, person, referral, SUFFIX as S, top } from '../support/referral-ldif.js';
import { deadPort, startSlapd, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';

const OTHER = 'dc=other,dc=net';
const READER = `cn=reader,${S}`;
const READER_PW = 'reader-secret';

let home: Slapd;
let remote: Slapd;
let third: Slapd;
let daemon: RunningDaemon;
let confDir: string;

interface MapCase {
  name: string;
  base: string;
  scope: 'sub' | 'one' | 'base';
  /** Person maps look up uid, the list map listName. */
  lists?: boolean;
  /** Bind as cn=reader, who alone may read ou=Secret on home. */
  bound?: boolean;
  keys: string[];
}

const PERSON_KEYS = ['x', 'y'];
const LIST_KEYS = ['m-a1', 'm-a1-sub', 'm-a6', 'm-b1', 'm-c2', 'm-gone', 'm-default', 'm-default-missing'];

const CASES: MapCase[] = [
  // 1. One hop to remote, where the base exists; and a base below the referral object.
  { name: 'a1', base: `ou=A1,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'a1-sub', base: `ou=Sub,ou=A1,${S}`, scope: 'sub', keys: PERSON_KEYS },
  // 2. The referred search itself returns search references.
  { name: 'a2-home', base: `ou=A2,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'a2-home-one', base: `ou=A2,${S}`, scope: 'one', keys: PERSON_KEYS },
  { name: 'a3-same', base: `ou=A3,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'a4-dead', base: `ou=A4,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'a5-third', base: `ou=A5,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'a6-only-ref', base: `ou=A6,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'a7-missing', base: `ou=A7,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'a8-loop-to-base', base: `ou=A8,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'a9-ref-chain', base: `ou=A9,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'a10-many-refs', base: `ou=A10,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'a11-ref-to-result', base: `ou=A11,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'a12-ref-hops', base: `ou=A12,${S}`, scope: 'sub', keys: PERSON_KEYS },
  // Which connection a reference back home goes over: the map's bound one only for the same
  // scheme, host and port (localhost is another host than 127.0.0.1).
  { name: 'a13-home', base: `ou=A13,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'a13-home-bound', base: `ou=A13,${S}`, scope: 'sub', bound: true, keys: PERSON_KEYS },
  { name: 'a14-localhost-bound', base: `ou=A14,${S}`, scope: 'sub', bound: true, keys: PERSON_KEYS },
  // 3. Result after result, and a loop of results.
  { name: 'b1-back-home', base: `ou=B1,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'b2-loop', base: `ou=B2,${S}`, scope: 'sub', keys: PERSON_KEYS },
  // 4. Dead and odd URLs.
  { name: 'c1-dead', base: `ou=C1,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'c2-no-dn', base: `ou=C2,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'c3-no-slash', base: `ou=C3,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'c4-url-base', base: `ou=C4,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'c5-url-one', base: `ou=C5,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'c6-url-filter', base: `ou=C6,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'c7-alternatives', base: `ou=C7,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'c8-to-home', base: `ou=C8,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'c9-gone', base: `ou=C9,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'c10-not-ldap', base: `ou=C10,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'c11-base-scope', base: `ou=A1,${S}`, scope: 'base', keys: PERSON_KEYS },
  { name: 'c12-secret', base: `ou=C12,${S}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'c12-secret-bound', base: `ou=C12,${S}`, scope: 'sub', bound: true, keys: PERSON_KEYS },
  // 5. Member DNs under referral objects.
  { name: 'lists', base: `ou=Lists,${S}`, scope: 'sub', lists: true, keys: LIST_KEYS },
  // 6. Default referrals: home -> third, and third -> remote.
  { name: 'd-other', base: OTHER, scope: 'sub', keys: PERSON_KEYS },
  { name: 'd-people', base: `ou=People,${OTHER}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'd-missing', base: `ou=Missing,${OTHER}`, scope: 'sub', keys: PERSON_KEYS },
  { name: 'd-nowhere', base: 'dc=nowhere,dc=com', scope: 'sub', keys: PERSON_KEYS },
];

/**
 * Six references to the same server behind a referral result: libldap appends each followed
 * reference's entries as they arrive (see referrals.test.ts): values compared, not order.
 */
const UNORDERED = new Set(['a10-many-refs-yes x']);
const sortedValues = (stdout: string) => stdout.trim().split(',').sort().join(',');

const maps = new Map<string, { file: string; keys: string[] }>();

beforeAll(async () => {
  const dead = `ldap://127.0.0.1:${deadPort()}`;
  remote = await startSlapd({
    ldif: [
      top,
      ou('R1'), person(`uid=x,ou=R1,${S}`, 'x', 'r1@remote.example'),
      ou('Sub', `ou=R1,${S}`), person(`uid=x,ou=Sub,ou=R1,${S}`, 'x', 'r1-sub@remote.example'),
      ou('R2'), person(`uid=x,ou=R2,${S}`, 'x', 'r2@remote.example'),
      ou('R3'), person(`uid=x,ou=R3,${S}`, 'x', 'r3@remote.example'),
      ou('RT'), person(`uid=x,ou=RT,${S}`, 'x', 'rt@remote.example'),
      ou('R4'), person(`uid=x,ou=R4,${S}`, 'x', 'r4@remote.example'),
      referral(`cn=dead,ou=R4,${S}`, 'cn', [`${dead}/ou=RT,${S}`]),
      ou('R5'), person(`uid=x,ou=R5,${S}`, 'x', 'r5@remote.example'),
      ou('R6'),
      ou('R7'), person(`uid=x,ou=R7,${S}`, 'x', 'r7@remote.example'),
      ou('R8'), person(`uid=x,ou=R8,${S}`, 'x', 'r8@remote.example'),
      ou('R9'), person(`uid=x,ou=R9,${S}`, 'x', 'r9@remote.example'),
      ou('R9b'), person(`uid=x,ou=R9b,${S}`, 'x', 'r9b@remote.example'),
      ou('R10'), ...[0, 1, 2, 3, 4, 5].map((i) => `${ou(`T${i}`)}${person(`uid=x,ou=T${i},${S}`, 'x', `t${i}@remote.example`)}`),
      ou('R11'), person(`uid=x,ou=R11,${S}`, 'x', 'r11@remote.example'),
      ou('R13'), person(`uid=x,ou=R13,${S}`, 'x', 'r13@remote.example'),
      ou('R14'), person(`uid=x,ou=R14,${S}`, 'x', 'r14@remote.example'),
      ...[0, 1, 2, 3, 4, 5].map((i) => `${ou(i === 0 ? 'R12' : `R12-${i}`)}${person(`uid=x,ou=${i === 0 ? 'R12' : `R12-${i}`},${S}`, 'x', `q${i}@remote.example`)}`),
      ou('C2'), person(`uid=x,ou=C2,${S}`, 'x', 'c2@remote.example'),
      ou('C3'), person(`uid=x,ou=C3,${S}`, 'x', 'c3@remote.example'),
    ].join(''),
  });
  const R = `ldap://127.0.0.1:${remote.port}`;
  third = await startSlapd({
    suffix: OTHER,
    globalConfig: `referral ${R}/`,
    ldif: [
      `dn: ${OTHER}\nobjectClass: dcObject\nobjectClass: organization\no: Other\ndc: other\n\n`,
      person(`uid=x,${OTHER}`, 'x', 'top@third.example'),
      ou('People', OTHER), person(`uid=x,ou=People,${OTHER}`, 'x', 'people@third.example'),
    ].join(''),
  });
  const T = `ldap://127.0.0.1:${third.port}`;
  home = await startSlapd({
    globalConfig: `referral ${T}/`,
    extraConfig: [
      'access to attrs=userPassword by anonymous auth by * none',
      `access to dn.subtree="ou=Secret,${S}" by dn.exact="${READER}" read by * none`,
      'access to * by * read',
    ].join('\n'),
    ldif: [
      top,
      `dn: ${READER}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: ${READER_PW}\n\n`,
      ou('Secret'), person(`uid=x,ou=Secret,${S}`, 'x', 'secret@home.example'),
      ...[13, 14].map((i) => referral(`ou=A${i},${S}`, 'ou', [`${R}/ou=R${i},${S}`])),
      ou('HT'), person(`uid=x,ou=HT,${S}`, 'x', 'ht@home.example'),
      referral(`ou=A1,${S}`, 'ou', [`${R}/ou=R1,${S}`]),
      referral(`ou=A2,${S}`, 'ou', [`${R}/ou=R2,${S}`]),
      referral(`ou=A3,${S}`, 'ou', [`${R}/ou=R3,${S}`]),
      referral(`ou=A4,${S}`, 'ou', [`${R}/ou=R4,${S}`]),
      referral(`ou=A5,${S}`, 'ou', [`${R}/ou=R5,${S}`]),
      referral(`ou=A6,${S}`, 'ou', [`${R}/ou=R6,${S}`]),
      referral(`ou=A7,${S}`, 'ou', [`${R}/ou=R7,${S}`]),
      ...[8, 9, 10, 11, 12].map((i) => referral(`ou=A${i},${S}`, 'ou', [`${R}/ou=R${i},${S}`])),
      referral(`ou=B1,${S}`, 'ou', [`${R}/ou=RB1,${S}`]),
      referral(`ou=B2,${S}`, 'ou', [`${R}/ou=RB2,${S}`]),
      referral(`ou=C1,${S}`, 'ou', [`${dead}/ou=R1,${S}`]),
      referral(`ou=C2,${S}`, 'ou', [`${R}/`]),
      referral(`ou=C3,${S}`, 'ou', [R]),
      referral(`ou=C4,${S}`, 'ou', [`${R}/ou=R1,${S}??base`]),
      referral(`ou=C5,${S}`, 'ou', [`${R}/ou=R1,${S}??one`]),
      referral(`ou=C6,${S}`, 'ou', [`${R}/ou=R1,${S}??sub?(objectClass=*)`]),
      referral(`ou=C7,${S}`, 'ou', [`${dead}/ou=R1,${S}`, `${R}/ou=R3,${S}`]),
      referral(`ou=C9,${S}`, 'ou', [`${R}/ou=Gone,${S}`]),
      referral(`ou=C10,${S}`, 'ou', ['http://127.0.0.1/ou=R1']),
      ou('Lists'),
      list(`cn=m-a1,ou=Lists,${S}`, ['m-a1'], ['m-a1@home.example'], [`uid=x,ou=A1,${S}`]),
      list(`cn=m-a1-sub,ou=Lists,${S}`, ['m-a1-sub'], ['m-a1-sub@home.example'], [`uid=x,ou=Sub,ou=A1,${S}`]),
      list(`cn=m-a6,ou=Lists,${S}`, ['m-a6'], ['m-a6@home.example'], [`cn=self,ou=A6,${S}`]),
      list(`cn=m-b1,ou=Lists,${S}`, ['m-b1'], ['m-b1@home.example'], [`uid=x,ou=B1,${S}`]),
      list(`cn=m-c2,ou=Lists,${S}`, ['m-c2'], ['m-c2@home.example'], [`uid=x,ou=C2,${S}`]),
      list(`cn=m-gone,ou=Lists,${S}`, ['m-gone'], ['m-gone@home.example'], [`uid=gone,ou=A1,${S}`]),
      list(`cn=m-default,ou=Lists,${S}`, ['m-default'], ['m-default@home.example'], [`uid=x,ou=People,${OTHER}`]),
      list(`cn=m-default-missing,ou=Lists,${S}`, ['m-default-missing'], ['m-dm@home.example'], [`uid=x,ou=Missing,${OTHER}`]),
    ].join(''),
  });
  const H = `ldap://127.0.0.1:${home.port}`;
  // Referral objects naming home, added once its port is known.
  await home.add(referral(`ou=C8,${S}`, 'ou', [`${H}/ou=HT,${S}`]) + referral(`ou=C12,${S}`, 'ou', [`${H}/ou=Secret,${S}`]));
  await remote.add([
    referral(`cn=back,ou=R2,${S}`, 'cn', [`${H}/ou=HT,${S}`]),
    referral(`cn=self,ou=R3,${S}`, 'cn', [`${R}/ou=RT,${S}`]),
    referral(`cn=third,ou=R5,${S}`, 'cn', [`${T}/ou=People,${OTHER}`]),
    referral(`cn=self,ou=R6,${S}`, 'cn', [`${R}/ou=RT,${S}`]),
    referral(`cn=nope,ou=R7,${S}`, 'cn', [`${H}/ou=Nope,${S}`]),
    referral(`cn=back,ou=R8,${S}`, 'cn', [`${H}/ou=A8,${S}`]),
    referral(`cn=next,ou=R9,${S}`, 'cn', [`${R}/ou=R9b,${S}`]),
    referral(`cn=home,ou=R9b,${S}`, 'cn', [`${H}/ou=HT,${S}`]),
    ...[0, 1, 2, 3, 4, 5].map((i) => referral(`cn=s${i},ou=R10,${S}`, 'cn', [`${R}/ou=T${i},${S}`])),
    referral(`cn=result,ou=R11,${S}`, 'cn', [`${R}/ou=RB1,${S}`]),
    ...[0, 1, 2, 3, 4].map((i) => referral(`cn=next,ou=${i === 0 ? 'R12' : `R12-${i}`},${S}`, 'cn', [`${R}/ou=R12-${i + 1},${S}`])),
    referral(`cn=home,ou=R13,${S}`, 'cn', [`${H}/ou=Secret,${S}`]),
    referral(`cn=home,ou=R14,${S}`, 'cn', [`ldap://localhost:${home.port}/ou=Secret,${S}`]),
    referral(`ou=RB1,${S}`, 'ou', [`${H}/ou=HT,${S}`]),
    referral(`ou=RB2,${S}`, 'ou', [`${H}/ou=B2,${S}`]),
  ].join(''));

  const dir = makeTmpDir('referral-results-');
  for (const chase of ['yes', 'no']) {
    for (const c of CASES) {
      const name = `${c.name}-${chase}`;
      const file = join(dir, `${name}.cf`);
      writeFileSync(file, [
        `server_host = ${home.url}`, `search_base = ${c.base}`, `scope = ${c.scope}`,
        // Where libldap hangs on a referral, it waits this long.
        'timeout = 3',
        c.lists ? 'query_filter = (listName=%s)' : 'query_filter = (uid=%s)',
        'result_attribute = mail', 'special_result_attribute = contact', `chase_referrals = ${chase}`,
        ...(c.bound ? ['bind = yes', `bind_dn = ${READER}`, `bind_pw = ${READER_PW}`] : []), '',
      ].join('\n'), { mode: 0o600 });
      backdate(file);
      maps.set(name, { file, keys: c.keys });
    }
  }
  daemon = await startDaemon(['--socketmap', 'inet:127.0.0.1:0', ...[...maps].flatMap(([name, m]) => ['--map', `${name}=${m.file}`])]);
  confDir = await makePostfixConfigDir();
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  await home?.destroy();
  await third?.destroy();
  await remote?.destroy();
});

describe('referral results', () => {
  for (const chase of ['yes', 'no']) {
    it(`chase_referrals = ${chase}: the same answers as the native table, key by key`, async () => {
      const rows: string[] = [];
      const mismatches: string[] = [];
      const tasks = [...maps].filter(([n]) => n.endsWith(`-${chase}`)).flatMap(([name, m]) => m.keys.map((key) => ({ name, file: m.file, key })));
      // postmap waits for the timeout where libldap hangs, and sleeps a second after a
      // temporary error: many at once, but not all (two cores).
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < tasks.length) {
          const { name, file, key } = tasks[next++]!;
          const [n, o] = await Promise.all([postmapQuery(confDir, `ldap:${file}`, key), postmapQuery(confDir, daemon.table(name), key)]);
          const line = `${name} ${key}: native ${classify(n)} ${JSON.stringify(n.stdout)} / ours ${classify(o)} ${JSON.stringify(o.stdout)}`;
          rows.push(line);
          const same = UNORDERED.has(`${name} ${key}`) ? sortedValues(n.stdout) === sortedValues(o.stdout) : n.stdout === o.stdout;
          if (classify(n) !== classify(o) || !same) mismatches.push(line);
        }
      };
      await Promise.all(Array.from({ length: 12 }, worker));
      rows.sort();
      expect(mismatches.sort(), rows.join('\n')).toEqual([]);
      // The fixture must exercise something: with yes, entries of other servers are found
      // behind referral results, also through the references the referred searches return.
      if (chase === 'yes') {
        expect(rows.filter((r) => /native found "[^"]*(remote|third)\.example/.test(r)).length).toBeGreaterThan(15);
        expect(rows.filter((r) => /^a\d+-[a-z-]+-yes x: native found "[^"]*(ht@home|rt@remote|people@third)/.test(r)).length).toBeGreaterThanOrEqual(4);
        // ou=Secret is readable by the bind DN only: a reference back to the map's own URL is
        // followed over the bound connection, one naming localhost instead is anonymous.
        expect(rows.find((r) => r.startsWith('a13-home-bound-yes x:'))).toMatch(/native found "r13@remote\.example,secret@home\.example\\n"/);
        expect(rows.find((r) => r.startsWith('a14-localhost-bound-yes x:'))).toMatch(/native temp /);
      } else {
        expect(rows.every((r) => / native temp /.test(r))).toBe(true);
      }
    }, 300_000);
  }
});
