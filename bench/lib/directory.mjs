// The generated directory and the key sets, deterministic (seeded PRNG) so runs compare.
//
//   ou=People  20 000 inetOrgPerson  uid=pNNNNN, mail pNNNNN@example.org (every 10th person
//              also pNNNNN.alt@example.org)
//   ou=Groups   2 000 mailList      cn=listNNNN, listName listNNNN, mail listNNNN@example.org,
//                                   contact = member DNs:
//     - list0001..list1998: 3..30 people each; every 10th list also nests two plain lists, every
//       100th also one nesting list (depth 3, never a loop);
//     - big1500 / big5000: 1 500 / 5 000 people (single-mail people only, so the 5 000-member
//       answer, ~95 000 bytes, stays under Postfix's socketmap_max_reply_size of 100 000).
import { writeFileSync } from 'node:fs';

export const SUFFIX = 'dc=example,dc=org';
export const PEOPLE = 20_000;
export const SMALL_LISTS = 1_998;
export const BIG_LISTS = [
  { name: 'big1500', members: 1_500 },
  { name: 'big5000', members: 5_000 },
];
export const DOMAIN = 'example.org';

export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle(arr, rand) {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [arr[i], arr[j]] = [arr[j], arr[i]];
  }
  return arr;
}

const pad = (n, w) => String(n).padStart(w, '0');
export const personUid = (i) => `p${pad(i, 5)}`;
export const personDn = (i) => `uid=${personUid(i)},ou=People,${SUFFIX}`;
export const hasAltMail = (i) => i % 10 === 0;
export const listName = (i) => `list${pad(i, 4)}`;
export const listDn = (name) => `cn=${name},ou=Groups,${SUFFIX}`;

/** Writes the LDIF to `file`; returns a summary (counts, nested lists). */
export function writeDirectoryLdif(file) {
  const rand = rng(0x5eed);
  const out = [];
  out.push(`dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example Org\n`);
  out.push(`dn: ou=People,${SUFFIX}\nobjectClass: organizationalUnit\nou: People\n`);
  out.push(`dn: ou=Groups,${SUFFIX}\nobjectClass: organizationalUnit\nou: Groups\n`);
  for (let i = 1; i <= PEOPLE; i++) {
    const uid = personUid(i);
    let e = `dn: ${personDn(i)}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: Person ${i}\nsn: ${i}\nmail: ${uid}@${DOMAIN}\n`;
    if (hasAltMail(i)) e += `mail: ${uid}.alt@${DOMAIN}\n`;
    out.push(e);
  }
  let nested = 0;
  let members = 0;
  for (let i = 1; i <= SMALL_LISTS; i++) {
    const name = listName(i);
    const n = 3 + Math.floor(rand() * 28);
    const contacts = new Set();
    while (contacts.size < n) contacts.add(personDn(1 + Math.floor(rand() * PEOPLE)));
    members += n;
    if (i % 10 === 0) {
      // two plain (non-nesting) lists with a higher index, plus for every 100th one nesting list
      let added = 0;
      for (let j = i + 1; j <= SMALL_LISTS && added < 2; j += 3) {
        if (j % 10 !== 0) { contacts.add(listDn(listName(j))); added++; }
      }
      if (i % 100 === 0 && i + 10 <= SMALL_LISTS) contacts.add(listDn(listName(i + 10)));
      if (added > 0) nested++;
    }
    let e = `dn: ${listDn(name)}\nobjectClass: mailList\ncn: ${name}\nlistName: ${name}\nmail: ${name}@${DOMAIN}\n`;
    for (const c of contacts) e += `contact: ${c}\n`;
    out.push(e);
  }
  for (const big of BIG_LISTS) {
    let e = `dn: ${listDn(big.name)}\nobjectClass: mailList\ncn: ${big.name}\nlistName: ${big.name}\nmail: ${big.name}@${DOMAIN}\n`;
    let added = 0;
    for (let i = 1; i <= PEOPLE && added < big.members; i++) {
      if (hasAltMail(i)) continue;
      e += `contact: ${personDn(i)}\n`;
      added++;
    }
    out.push(e);
  }
  writeFileSync(file, out.join('\n'));
  return {
    people: PEOPLE,
    lists: SMALL_LISTS + BIG_LISTS.length,
    nestingLists: nested,
    avgSmallListMembers: Math.round((members / SMALL_LISTS) * 10) / 10,
    bigLists: BIG_LISTS.map((b) => `${b.name} (${b.members})`).join(', '),
  };
}

const listKey = (i) => `${listName(i)}@${DOMAIN}`;
const personKey = (i) => `${personUid(i)}@${DOMAIN}`;

/**
 * Phase 1, alias map: 2 000 keys = 1 400 distinct small lists (nesting ones included) + 300
 * persons' addresses (no such list) + 300 names that exist nowhere; shuffled.
 */
export function aliasMixKeys() {
  const rand = rng(101);
  const lists = shuffle(Array.from({ length: SMALL_LISTS }, (_, k) => k + 1), rand).slice(0, 1400);
  const keys = new Set(lists.map(listKey));
  while (keys.size < 1700) keys.add(personKey(1 + Math.floor(rand() * PEOPLE)));
  for (let k = 0; k < 300; k++) keys.add(`nolist${pad(k, 4)}@${DOMAIN}`);
  return shuffle([...keys], rand);
}

/** Phase 1, mailbox map: 1 600 persons' addresses (some .alt) + 400 unknown; shuffled. */
export function mailboxMixKeys() {
  const rand = rng(202);
  const keys = new Set();
  while (keys.size < 1600) {
    const i = 1 + Math.floor(rand() * PEOPLE);
    keys.add(hasAltMail(i) && rand() < 0.5 ? `${personUid(i)}.alt@${DOMAIN}` : personKey(i));
  }
  for (let k = 0; k < 400; k++) keys.add(`nobody${pad(k, 5)}@${DOMAIN}`);
  return shuffle([...keys], rand);
}

/** Phase 4: every small list once + 1 000 unknown names (alias map), shuffled. */
export function coldSweepKeys() {
  const rand = rng(303);
  const keys = Array.from({ length: SMALL_LISTS }, (_, k) => listKey(k + 1));
  for (let k = 0; k < 1000; k++) keys.push(`cold${pad(k, 5)}@${DOMAIN}`);
  return shuffle(keys, rand);
}

/**
 * Phase 5: `total` distinct keys that all resolve (found or not found), as [map, key] pairs:
 * every person's address through the mailbox map, every small list through the alias map,
 * the rest unknown addresses split over both maps.
 */
export function memoryFillRequests(total) {
  const rand = rng(404);
  const reqs = [];
  for (let i = 1; i <= PEOPLE; i++) reqs.push(['mailboxes', personKey(i)]);
  for (let i = 1; i <= SMALL_LISTS; i++) reqs.push(['aliases', listKey(i)]);
  for (let k = 0; reqs.length < total; k++) reqs.push([k % 2 ? 'aliases' : 'mailboxes', `unknown${pad(k, 6)}@${DOMAIN}`]);
  return shuffle(reqs.slice(0, total), rand);
}
