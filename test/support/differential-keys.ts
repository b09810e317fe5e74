/**
 * The keys the differential tests ask every fixture map (test/fixtures/ldap/*.cf.in over
 * directory.ldif), shared by the OpenLDAP differential and the directory-server suites.
 */

/** Keys every map is asked: shapes that trip template expansion, escaping and folding. */
export const COMMON_KEYS = [
  'sales@example.org', 'SALES@Example.ORG', 'Sales@example.org', 'nobody@example.org', 'sales', 'sales@',
  '@example.org', 'a@b@example.org', 'sales+tag@example.org', 'x@sub.mail.example.org', 'x@a..b.example.org',
  'star*list@example.org', '*@example.org', 'paren(list)@example.org', '(@example.org', 'back\\slash@example.org',
  '100%@example.org', 'team lead@example.org', 'ΣΊΣΥΦΟΣ@example.org', 'σίσυφος@example.org', 'Straße@example.org',
  'STRASSE@example.org', 'jürgen-liste@example.org', 'JÜRGEN-LISTE@EXAMPLE.ORG', 'alice@example.org',
  'Bob.Builder@Example.ORG', 'nina@example.net', 'x@odd,domain', 'postmaster', 'eng@example.org',
  // %1..%3 labels and dynamic bases: ou=people,dc=example,dc=org exists, ou=staff,... does not.
  'alice@people.example.org', 'ALICE@People.Example.ORG', 'stan@staff.example.org', 'alice@example', 'nick@Example.NET',
  'odd@odd,domain', 'x@missing.example', 'stan@example.org',
];

export function listKeys(): string[] {
  const names = [
    '100%', 'UpperList', 'upperlist', 'all-ghosts', 'at@sign', 'back\\slash', 'bad-filter-url', 'bad-url', 'blank-list',
    'deep1', 'deep2', 'deep3', 'deep4', 'dup-sub1', 'dup-sub2', 'dupes', 'eng', 'ghost', 'jürgen-liste', 'leaf-list',
    'loop-a', 'loop-b', 'no-at', 'nothing', 'odd-dn', 'outside', 'paren(list)', 'sales', 'self-loop', 'special-mails',
    'star*list', 'starfishlist', 'strasse', 'straße', 'team lead', 'term-list', 'term-members', 'triple', 'twin-leaf',
    'twin-rev', 'twin-term', 'url-list', 'with-frank', 'ΣΊΣΥΦΟΣ', 'big1500',
  ];
  return names.flatMap((n) => [`${n}@example.org`, `${n.toUpperCase()}@EXAMPLE.ORG`]);
}

export function mailKeys(): string[] {
  const mails = [
    '"doe, jane"@example.org', '(paren)@example.org', 'Bob.Builder@Example.ORG', 'bob.builder@example.org',
    'Nick.Alias@Example.NET', 'UPPER.CASE@EXAMPLE.ORG', 'alice@example.org', 'back\\slash@example.org', 'carol@elsewhere.net',
    'carol@example.org', 'john.smith@example.org', 'juergen@example.org', 'jürgen@example.org', 'JÜRGEN@example.org',
    'multi@at@Example.NET', 'nick@example.net', 'no-at@', 'odd@odd,domain', 'postmaster', 'robert@example.org',
    'shared@example.org', 'star*man@example.org', 'star-decoy-man@example.org', 'we*ird(x)\\y@example.org',
    'gross@example.org', 'groß@example.org', 'GROSS@example.org', 'ΣΊΣΥΦΟΣ@example.org', 'σίσυφος@example.org',
    'twin2@example.org', 'stan@example.org', 'alice+tag@example.org', 'member17@example.org', 'nobody@example.org',
  ];
  return mails;
}

export const MAP_KEYS: Record<string, string[]> = {
  aliases: [...COMMON_KEYS, ...listKeys()],
  mailboxes: [...COMMON_KEYS, ...mailKeys()],
};
