/**
 * Fixture helpers and the catalogue of fixture keys.
 *
 * FIXTURE_CASES lists, per ldap_table template in test/fixtures/ldap/<name>.cf.in, the keys
 * worth asking and what Postfix's NATIVE `ldap:` table (Postfix 3.7.11 / slapd 2.5 on this
 * machine) answers for them against test/fixtures/ldap/directory.ldif. The harness test
 * re-checks every entry against `postmap -q`, so these expectations are the oracle's, not
 * guesses; differential tests can iterate over them.
 */
import type { Slapd } from './slapd.js';
import { deadPort } from './slapd.js';

export type Expect = 'found' | 'notfound' | 'temp';

export interface FixtureCase {
  key: string;
  expect: Expect;
  /** Exact value for `found` (Postfix's joined result). */
  value?: string;
  /** What this key is meant to break in a reimplementation. */
  why: string;
  /** Exact number of LDAP searches the native table makes for this key, where it is part of the point. */
  searches?: number;
}

const SALES = 'alice@example.org,robert@example.org,Bob.Builder@Example.ORG,bob@example.org,sales-archive@elsewhere.net';
const ENG = `eng-announce@example.org,carol@example.org,carol@elsewhere.net,${SALES}`;

/** Placeholder values for the .cf.in templates, for a running slapd. */
export function cfVars(slapd: Slapd, url: string = slapd.url): Record<string, string> {
  return {
    LDAP_URL: url,
    LDAP_HOST: slapd.host,
    LDAP_PORT: String(slapd.port),
    DEAD_PORT: String(deadPort()),
    ...(slapd.ldapiUrl ? { LDAPI_URL: slapd.ldapiUrl } : {}),
  };
}

export const FIXTURE_CASES: Record<string, FixtureCase[]> = {
  aliases: [
    { key: 'sales@example.org', expect: 'found', value: SALES, searches: 3, why: 'core: members inlined at the contact position (contact before mail), multi-valued mail in stored order, mixed case verbatim' },
    { key: 'Sales@Example.ORG', expect: 'found', value: SALES, why: 'key must be lowercased by the table (ASCII)' },
    { key: 'sales', expect: 'found', value: SALES, why: '%u of a key without @ is the whole key' },
    { key: 'eng@example.org', expect: 'found', value: ENG, why: 'list in a list; RDN (cn=Engineering Team) differs from listName; own mail before contacts' },
    { key: 'nope@example.org', expect: 'notfound', searches: 1, why: 'unknown key' },
    { key: 'deep1', expect: 'found', value: 'deep2-owner@example.org,alice@example.org,deep4@elsewhere.net', searches: 5, why: 'nesting 4 lists deep' },
    { key: 'loop-a', expect: 'temp', searches: 1000, why: 'A contains B contains A: recursion until recursion_limit (1000) then temporary error, no partial result' },
    { key: 'self-loop', expect: 'temp', searches: 1000, why: 'list containing itself' },
    { key: 'ghost', expect: 'found', value: 'alice@example.org', why: 'member DNs that do not exist (noSuchObject) are skipped, not errors' },
    { key: 'all-ghosts', expect: 'notfound', why: 'all members missing: entries found but nothing collected -> not found' },
    { key: 'outside', expect: 'found', value: 'outside@example.org', why: 'member DN outside every naming context: slapd says noSuchObject -> skipped' },
    { key: 'odd-dn', expect: 'found', value: `john.smith@example.org,john.smith@example.org,alice@example.org,${SALES},robert@example.org,Bob.Builder@Example.ORG,bob@example.org`, why: 'contact DNs with odd but valid syntax: case, spaces, \\, vs \\2C, spaces around =; must be sent to the server as stored' },
    { key: '*', expect: 'notfound', why: 'filter escaping: * must become \\2A (unescaped it matches every list)' },
    { key: 'star*list', expect: 'found', value: 'star-list@example.org', why: 'escaped * (decoy starfishlist matches an unescaped filter)' },
    { key: 'paren(list)', expect: 'found', value: 'paren-list@example.org', why: 'escaped parentheses (unescaped: filter syntax error -> temp)' },
    { key: 'back\\slash', expect: 'found', value: 'backslash-list@example.org', why: 'escaped backslash' },
    { key: 'at@sign@example.org', expect: 'found', value: 'at-sign-list@example.org', why: '%u is everything before the LAST @' },
    { key: 'at@sign', expect: 'notfound', why: '%u of at@sign is "at"' },
    { key: 'team lead', expect: 'found', value: 'team-lead@example.org', why: 'space in the key is not escaped in filters' },
    { key: '100%@example.org', expect: 'found', value: 'percent-list@example.org', why: '% in the key is data, not a template code' },
    { key: 'special-mails', expect: 'found', value: 'we*ird(x)\\y@example.org,"doe, jane"@example.org,plain@example.org', why: 'result values are never escaped; a comma inside a value stays' },
    { key: 'JÜRGEN-LISTE@example.org', expect: 'found', value: 'juergen@example.org,juergen-liste@example.org', why: 'non-ASCII key folded (ICU) before the search; UTF-8 DN as contact' },
    { key: 'straße@example.org', expect: 'found', value: 'strasse-ascii@example.org', why: 'full case folding: straße -> strasse finds listName=strasse, not listName=straße (JS toLowerCase keeps ß)' },
    { key: 'ΣΊΣΥΦΟΣ@example.org', expect: 'found', value: 'sisyphus@example.org,sisyphus-list@example.org', why: 'Greek capitals with final sigma' },
    { key: 'σίσυφος', expect: 'found', value: 'sisyphus@example.org,sisyphus-list@example.org', why: 'final sigma folds to sigma' },
    { key: 'UPPERLIST@EXAMPLE.ORG', expect: 'found', value: 'Upper.List@Example.ORG,UPPER.CASE@EXAMPLE.ORG', why: 'stored uppercase returned verbatim' },
    { key: 'dupes', expect: 'found', value: 'alice@example.org,alice@example.org,carol@example.org,carol@elsewhere.net', why: 'same member via two sublists: duplicates kept' },
    { key: 'blank-list', expect: 'found', value: ' ,blank-list@example.org,blank@example.org, ', why: 'whitespace-only values are not empty: returned, not trimmed' },
    { key: 'no-at', expect: 'found', value: 'postmaster,@example.org,multi@at@Example.NET,no-at@', why: 'values without @ / with several @ under %s' },
    { key: 'nothing', expect: 'notfound', why: 'entry matches but has no result attribute' },
    { key: 'with-frank', expect: 'found', value: 'carol@example.org,carol@elsewhere.net', why: 'member without mail contributes nothing' },
    { key: 'twin-term', expect: 'found', value: 'twin-term-b@example.org,alice@example.org', why: 'two entries for one key (no terminal attribute configured)' },
    { key: 'twin-rev', expect: 'found', value: 'twin-rev-a@example.org,carol@example.org,carol@elsewhere.net,twin-rev-b@example.org', why: 'two entries for one key, entry order = server order' },
    { key: 'triple', expect: 'found', value: 'triple-1@example.org,triple-2@example.org,triple-3@example.org', why: 'three entries for one key' },
    { key: 'url-list', expect: 'found', value: 'url-list@example.org', why: 'memberURL is not a special attribute here: ignored' },
    { key: 'bad-url', expect: 'found', value: 'bad-url@example.org', why: 'malformed URL ignored when memberURL is not special' },
  ],
  mailboxes: [
    { key: 'alice@example.org', expect: 'found', value: 'alice', searches: 1, why: 'core mailbox lookup' },
    { key: 'Bob.Builder@example.org', expect: 'found', value: 'bob', why: 'key folded; server matches case-insensitively' },
    { key: 'shared@example.org', expect: 'found', value: 'twin1,twin2', why: 'two entries match: values of both, in server order' },
    { key: 'star*man@example.org', expect: 'found', value: 'starman', why: 'escaped * (unescaped also matches star-decoy-man@example.org)' },
    { key: '*@example.org', expect: 'notfound', why: 'unescaped this matches every example.org mailbox' },
    { key: '*', expect: 'notfound', why: 'unescaped this matches every person with a mail' },
    { key: 'back\\slash@example.org', expect: 'found', value: 'backslash', why: 'backslash escaped as \\5C (raw \\sl is an invalid filter escape)' },
    { key: '(paren)@example.org', expect: 'found', value: 'paren', why: 'parentheses escaped' },
    { key: 'upper.case@example.org', expect: 'found', value: 'Upper.Case', why: 'result returned verbatim (uid stored in mixed case)' },
    { key: 'stan@example.org', expect: 'found', value: 'stan', why: 'scope sub reaches ou=Staff,ou=People' },
    { key: 'nobody@example.org', expect: 'notfound', why: 'unknown' },
    { key: 'blank@example.org', expect: 'found', value: 'blank', why: 'person with a whitespace-only mail value too' },
    { key: ' ', expect: 'found', value: 'blank', why: 'a single-space key matches the single-space mail value (do not trim or reject keys)' },
  ],
  'fmt-localpart': [
    { key: 'sales@example.org', expect: 'found', value: 'alice,robert,Bob.Builder,bob,sales-archive', why: 'result_format %u' },
    { key: 'no-at', expect: 'found', value: 'postmaster,multi@at,no-at', why: '%u: no @ -> whole value; "@example.org" skipped; split at LAST @; "no-at@" -> "no-at"' },
  ],
  'fmt-domain': [
    { key: 'sales@example.org', expect: 'found', value: 'example.org,example.org,Example.ORG,example.org,elsewhere.net', why: 'result_format %d keeps value case' },
    { key: 'no-at', expect: 'found', value: 'example.org,Example.NET', why: '%d: values without @ or with nothing after it are skipped' },
  ],
  'fmt-smtp-domain': [
    { key: 'sales', expect: 'found', value: 'smtp:[example.org],smtp:[example.org],smtp:[Example.ORG],smtp:[example.org],smtp:[elsewhere.net]', why: 'result_format smtp:[%d]' },
    { key: 'no-at', expect: 'found', value: 'smtp:[example.org],smtp:[Example.NET]', why: 'skipped values leave no empty slot' },
  ],
  'fmt-ok-suffix': [
    { key: 'sales', expect: 'found', value: 'alice@example.org OK,robert@example.org OK,Bob.Builder@Example.ORG OK,bob@example.org OK,sales-archive@elsewhere.net OK', why: 'result_format "%s OK" (literal text with a space)' },
    { key: 'blank-list', expect: 'found', value: '  OK,blank-list@example.org OK,blank@example.org OK,  OK', why: 'whitespace values formatted too' },
  ],
  'fmt-key-relay': [
    { key: 'sales@example.org', expect: 'found', value: 'sales@relay.example.org,sales@relay.example.org,sales@relay.example.org,sales@relay.example.org,sales@relay.example.org', why: '%U/%D come from the (folded) key, once per value' },
    { key: 'no-at@Example.COM', expect: 'found', value: 'no-at@relay.example.com,no-at@relay.example.com,no-at@relay.example.com,no-at@relay.example.com', why: 'key-only format: no value is skipped; key is folded' },
    { key: 'sales', expect: 'notfound', searches: 0, why: '%D in result_format: keys without a domain are never searched' },
    { key: '@example.org', expect: 'notfound', searches: 0, why: '%U in result_format: empty local part is never searched' },
  ],
  'domain-list': [
    { key: 'sales@example.org', expect: 'found', value: SALES, why: 'domain in the list' },
    { key: 'sales@EXAMPLE.NET', expect: 'found', value: SALES, why: 'domain match is case-insensitive' },
    { key: 'sales@other.org', expect: 'notfound', searches: 0, why: 'domain not in the list: no search' },
    { key: 'sales', expect: 'notfound', searches: 0, why: 'bare name never searched with domain=' },
    { key: '@example.org', expect: 'notfound', searches: 0, why: 'empty local part never searched with domain=' },
  ],
  terminal: [
    { key: 'term-list', expect: 'found', value: 'term-list@forward.example.net', why: 'terminal entry: mail ignored, contacts not followed' },
    { key: 'term-members', expect: 'found', value: 'dave@mailhost.example.org,erin@forward.example.net,erin@mailhost.example.org,alice@example.org,term-members@example.org', why: 'terminal members in nested searches; both terminal attributes in server order' },
    { key: 'twin-term', expect: 'found', value: 'twin-term-a@forward.example.net', why: 'sticky terminal flag: the second entry of the same result is treated as terminal too' },
    { key: 'twin-rev', expect: 'found', value: 'twin-rev-a@example.org,carol@example.org,carol@elsewhere.net,twin-rev-b@forward.example.net', why: 'terminal entry second: the first contributes normally' },
    { key: 'sales', expect: 'found', value: SALES, why: 'no terminal attributes anywhere' },
  ],
  leaf: [
    { key: 'leaf-list', expect: 'found', value: 'leaf-list@example.org,dave@example.org,dave@mailhost.example.org', why: 'leaf attribute dropped on a list with members, kept on the member' },
    { key: 'twin-leaf', expect: 'found', value: 'alice@example.org,twin-leaf-b@example.org', why: 'sticky non-leaf flag drops the second entry\'s maildrop' },
    { key: 'term-members', expect: 'found', value: 'dave@example.org,dave@mailhost.example.org,erin@example.org,erin@mailhost.example.org,alice@example.org,term-members@example.org', why: 'leaf values in nested searches (fresh flags per search)' },
  ],
  'aliases-urls': [
    { key: 'url-list', expect: 'found', value: 'url-list@example.org,robert@example.org,Bob.Builder@Example.ORG,bob@example.org,dave@example.org,alice@example.org,carol@example.org,carol@elsewhere.net,erin@example.org,john.smith@example.org,alice@example.org,carol@example.org,carol@elsewhere.net', why: 'URL members: scope/filter/attribute list/percent-decoding/ignored host; irrelevant attribute list skipped; plain DN in memberURL. NB one-level results come in slapd dn2id order (bob, dave, alice), not entry order' },
    { key: 'bad-url', expect: 'temp', why: 'malformed URL (bad scope) -> temporary error, no partial result' },
    { key: 'bad-filter-url', expect: 'temp', why: 'URL with an unbalanced filter -> search error -7 -> temporary error' },
    { key: 'sales', expect: 'found', value: SALES, why: 'plain DN members still work' },
  ],
  'scope-one': [
    { key: 'alice@example.org', expect: 'found', value: 'alice', why: 'scope one sees direct children' },
    { key: 'stan@example.org', expect: 'notfound', why: 'scope one does not see ou=Staff,ou=People' },
  ],
  'scope-base': [
    { key: 'alice@example.org', expect: 'found', value: 'alice', why: 'base scope on uid=%u' },
    { key: 'frank@example.org', expect: 'notfound', why: 'base entry exists, filter does not match' },
    { key: 'nobody@example.org', expect: 'notfound', why: 'dynamic base missing (noSuchObject) -> not found' },
    { key: 'john.smith@example.org', expect: 'notfound', why: 'that person\'s RDN is cn, not uid' },
  ],
  'dynamic-base': [
    { key: 'nina@example.net', expect: 'found', value: 'nina', why: 'search_base ou=%d,...' },
    { key: 'NICK.ALIAS@example.net', expect: 'found', value: 'nick', why: 'folded key, second mail value' },
    { key: 'unknown@example.net', expect: 'notfound', why: 'base exists, no match' },
    { key: 'nina@nodomain.test', expect: 'notfound', searches: 1, why: 'dynamic base does not exist: noSuchObject -> not found (not temp)' },
    { key: 'nina', expect: 'notfound', searches: 0, why: '%d needs a domain: never searched' },
    { key: 'odd@odd,domain', expect: 'found', value: 'odd', why: '%d DN-escaped: ou=odd\\2Cdomain' },
  ],
  'static-base-missing': [
    { key: 'sales', expect: 'temp', searches: 1, why: 'static search_base noSuchObject -> temporary error' },
  ],
  'domain-labels': [
    { key: 'alice@people.example.org', expect: 'found', value: 'alice@example.org', why: '%3,%2,%1 from the right' },
    { key: 'alice@a..people.example.org', expect: 'found', value: 'alice@example.org', why: 'empty labels are dropped before counting' },
    { key: 'alice@groups.example.org', expect: 'notfound', why: 'base exists, no uid=alice under ou=Groups' },
    { key: 'alice@example.org', expect: 'notfound', searches: 0, why: 'only 2 labels: %3 suppresses the search' },
    { key: 'alice@nowhere.example.org', expect: 'notfound', searches: 1, why: 'dynamic base missing -> not found' },
    { key: 'alice@people.example.com', expect: 'notfound', searches: 1, why: 'base outside the naming context -> noSuchObject -> not found' },
  ],
  'expansion-limit-3': [
    { key: 'sales', expect: 'temp', why: '5 values > 3 -> temporary error' },
    { key: 'deep1', expect: 'found', value: 'deep2-owner@example.org,alice@example.org,deep4@elsewhere.net', why: 'exactly 3 values across nesting levels is fine' },
    { key: 'dupes', expect: 'temp', why: 'duplicates count too' },
    { key: 'triple', expect: 'found', value: 'triple-1@example.org,triple-2@example.org,triple-3@example.org', why: 'size_limit defaults to expansion_limit: exactly 3 entries is fine' },
    { key: 'loop-a', expect: 'temp', why: 'loop stopped by the expansion limit long before the recursion limit' },
  ],
  'size-limit-2': [
    { key: 'triple', expect: 'temp', why: 'top-level search with 3 entries > size_limit 2' },
    { key: 'twin-term', expect: 'found', value: 'twin-term-b@example.org,alice@example.org', why: 'exactly 2 entries is fine' },
    { key: 'url-list', expect: 'temp', why: 'nested URL search with 3 entries > size_limit 2' },
    { key: 'sales', expect: 'found', value: SALES, why: 'base searches return 1 entry each' },
  ],
  'recursion-limit-3': [
    { key: 'deep1', expect: 'temp', why: 'deep3 at depth 3 has special values' },
    { key: 'deep2', expect: 'temp', why: 'deep4 at depth 3 has special values' },
    { key: 'deep3', expect: 'found', value: 'alice@example.org,deep4@elsewhere.net', why: 'alice at depth 3 has no special values: fine' },
    { key: 'eng', expect: 'found', value: ENG, why: 'sales at depth 2' },
  ],
  'server-list-first-dead': [
    { key: 'sales', expect: 'found', value: SALES, why: 'first server refuses connections, the second answers' },
  ],
  'server-host-port': [
    { key: 'sales', expect: 'found', value: SALES, why: 'host name plus server_port' },
  ],
  'timeout-1': [
    { key: 'sales', expect: 'found', value: SALES, why: 'with slapd running; pause() it to get a temporary error after ~1 s' },
  ],
  'utf8-mailalias': [
    { key: 'jürgen@example.org', expect: 'found', value: 'jürgen@straße.example', why: 'UTF-8 key and UTF-8 value' },
    { key: 'JÜRGEN@EXAMPLE.ORG', expect: 'found', value: 'jürgen@straße.example', why: 'non-ASCII upper case folded' },
    { key: 'ΣΊΣΥΦΟΣ@example.org', expect: 'found', value: 'Σίσυφος@example.gr', why: 'Greek; value returned in its stored case' },
    { key: 'σίσυφος@example.org', expect: 'found', value: 'Σίσυφος@example.gr', why: 'final sigma' },
    { key: 'groß@example.org', expect: 'found', value: 'gross-ascii@mailhost.example.org', why: 'ß folds to ss: finds gross@, NOT groß@ (a toLowerCase daemon finds gross-sharp)' },
    { key: 'gross@example.org', expect: 'found', value: 'gross-ascii@mailhost.example.org', why: 'ASCII twin' },
  ],
};

// ---------------------------------------------------------------------------------------

function pad(i: number, width: number): string {
  return String(i).padStart(width, '0');
}

/** DN, uid and mail of the i-th (1-based) member of a bigListLdif list. */
export function bigListMember(name: string, i: number, members: number): { uid: string; dn: string; mail: string } {
  const uid = `${name}-m${pad(i, Math.max(4, String(members).length))}`;
  return { uid, dn: `uid=${uid},ou=People,dc=example,dc=org`, mail: `${uid}@example.org` };
}

/**
 * LDIF for a list `cn=<name>,ou=Groups,dc=example,dc=org` (listName <name>) with `members`
 * member people (uid=<name>-mNNNN,ou=People,dc=example,dc=org, one mail each), people
 * first. Load together with directory.ldif (it needs ou=People and ou=Groups).
 */
export function bigListLdif(name: string, members: number): string {
  const parts: string[] = [];
  for (let i = 1; i <= members; i++) {
    const m = bigListMember(name, i, members);
    parts.push(`dn: ${m.dn}\nobjectClass: inetOrgPerson\nuid: ${m.uid}\ncn: Member ${i} of ${name}\nsn: Member${i}\nmail: ${m.mail}\n`);
  }
  const contacts: string[] = [];
  for (let i = 1; i <= members; i++) contacts.push(`contact: ${bigListMember(name, i, members).dn}`);
  parts.push(`dn: cn=${name},ou=Groups,dc=example,dc=org\nobjectClass: mailList\ncn: ${name}\nlistName: ${name}\n${contacts.join('\n')}\n`);
  return parts.join('\n');
}

/** Postfix's expected value for a bigListLdif list: the members' mails in order. */
export function bigListExpected(name: string, members: number): string {
  const out: string[] = [];
  for (let i = 1; i <= members; i++) out.push(bigListMember(name, i, members).mail);
  return out.join(',');
}

/** Entries the freshness suites add, change and delete while the daemon holds them cached. */
export const FRESHNESS_LDIF = `
dn: uid=fresh-gone,ou=People,dc=example,dc=org
objectClass: inetOrgPerson
uid: fresh-gone
cn: Fresh Gone
sn: Gone
mail: fresh-gone@example.org

dn: cn=fresh-team,ou=Groups,dc=example,dc=org
objectClass: mailList
cn: fresh-team
listName: fresh-team
contact: uid=alice,ou=People,dc=example,dc=org
contact: uid=fresh-gone,ou=People,dc=example,dc=org

dn: cn=fresh-other,ou=Groups,dc=example,dc=org
objectClass: mailList
cn: fresh-other
listName: fresh-other
contact: uid=dave,ou=People,dc=example,dc=org
`;

/** A list and three people for the restart tests (snapshot-restart.ts), added over LDAP so the change markers count them. */
export const RESTART_LDIF = ['snap-a', 'snap-b', 'snap-c']
  .map((uid) => `dn: uid=${uid},ou=People,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nmail: ${uid}@example.org\n`)
  .concat('dn: cn=snap-list,ou=Groups,dc=example,dc=org\nobjectClass: mailList\ncn: snap-list\nlistName: snap-list\ncontact: uid=snap-a,ou=People,dc=example,dc=org\ncontact: uid=snap-b,ou=People,dc=example,dc=org\n')
  .join('\n');
