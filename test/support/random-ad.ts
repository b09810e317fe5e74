/**
 * Seeded generators for the Active Directory random differential
 * (test/directories/ad-random.test.ts): a random population for a Samba AD DC, random
 * ldap_table(5) .cf files of the kinds AD admins write, and keys drawn from what the
 * population holds. One PRNG (Rng of random-directory.ts) per seed, drawn in a fixed order:
 * population, then maps, then keys, so a seed reproduces all three.
 *
 * Several seeds share one DC (provisioning is slow), so a seed's population is self-contained
 * and cannot answer another seed's keys: every object lives under `OU=sN` (or is a `CN=Users`
 * account whose name carries `sN`), every sAMAccountName, UPN, cn and address carries the seed's
 * tag, and every mail domain but the DC's own is the seed's (`sN.example.com`, ...). Maps
 * searching from the domain root see other seeds' objects, which their keys never match.
 *
 * Steering (what is deliberately NOT generated, and why):
 * - Maps whose references would be chased anonymously (chase_referrals = yes with a server_host
 *   other than the DC's own `ldap://ad.example.org/`: by IP, host:port, ldaps, StartTLS) are
 *   compared only once the DC allows anonymous searches (phase `allowed`): while it refuses them
 *   libldap loses the refusal behind a reference at random (docs/differences.md 6, "An error
 *   behind a reference"), the daemon always answers TEMP.
 * - With chase_referrals = yes, only filters on mail-ish attributes (mail, proxyAddresses,
 *   otherMailbox, userPrincipalName, sAMAccountName): filters on cn / displayName / anr /
 *   objectClass alone also match objects in CN=Configuration and CN=Schema, and entries from
 *   several references come back from libldap in arrival order (docs/differences.md 6,
 *   "Order with several references"). The zone contacts have addresses of their own, so a key
 *   finds entries behind one reference at most.
 * - No group over 1500 members (ranged values: test/directories/ad.test.ts covers them), no
 *   answers near 100000 bytes (docs/differences.md 4), and every map with
 *   special_result_attribute has recursion_limit 1-9: group loops exist, and Postfix walks a
 *   loop to recursion_limit exponentially (docs/differences.md 3; both answer TEMP).
 * - Keys with control characters, empty keys and `-` (postmap's `-q -` reads lines).
 */
import { BASE_DN, BIND_DN, BIND_PW, BIND_UPN, DNS_DOMAIN } from './samba-ad.js';
import { escDnValue, ldifLine, Rng } from './random-directory.js';

/**
 * Steered-away features put back for hunting (AD_DIFF_INCLUDE, comma separated; never in CI):
 * `refused-anon-refs` compares the `allowed`-phase maps also while anonymous searches are
 * refused; `chase-any-filter` lets chase_referrals = yes maps use every filter (cn, anr, ...).
 * Both meet the documented differences named in the header; the draws for a seed are the same.
 */
export const AD_INCLUDE = new Set((process.env.AD_DIFF_INCLUDE ?? '').split(',').map((x) => x.trim()).filter(Boolean));

export { Rng };

export type AdKind = 'user' | 'contact' | 'group';

export interface AdObject {
  dn: string;
  kind: AdKind;
  cn: string;
  sam?: string;
  upn?: string;
  mail?: string;
  proxy: string[];
  other: string[];
  members: string[];
  /** A member of a large list: its addresses are not drawn as keys (they would crowd out the rest), but a few. */
  filler?: boolean;
  /** Account made by samba-tool's newuser (CN=sam,CN=Users) with this password: enabled, can bind. */
  password?: string;
}

export interface AdPopulation {
  seed: number;
  tag: string;
  /** LDIF for the offline loader: adds, then modifications (attributes of password users, loop closers). */
  ldif: string;
  /** [sAMAccountName, password] accounts created first (in CN=Users). */
  users: [string, string][];
  objects: AdObject[];
  /** OUs of the seed (DNs), the first is the seed's root OU. */
  ous: string[];
  /** Mail domains of the seed (lower case), the DC's own last. */
  domains: string[];
  /** Strings worth turning into keys. */
  tokens: string[];
  /** Addresses of the contacts placed in the DNS application partitions (found only by chasing references). */
  zoneAddrs: string[];
  /**
   * Whether the seed's OU lets anonymous readers see its objects (an ACE for ANONYMOUS LOGON, as
   * sites that run Postfix with `bind = no` against AD add): without it, anonymous searches that
   * the DC allows still find nothing there.
   */
  anonymousRead: boolean;
}

const D = DNS_DOMAIN;
const FIRST = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'oscar', 'peggy', 'svc-mail', 'info', 'sales', 'helpdesk'];
/** Display names that need DN escaping or are not ASCII (the cn is one of these plus the seed tag and a number). */
const ODD_CN = [
  'Doe, Jane', 'Smith, John', 'A+B Team', '"Quoted" Person', ' Leading Space', '#Hash Start', 'Jürgen Groß', 'Zoë Ωmega',
  'semi;colon', 'less<more>', 'back\\slash', 'eq=ual', 'Ærøskøbing', 'Łukasz Żółw', 'Straße', 'ΣΊΣΥΦΟΣ', 'trailing space ',
];
/** groupType: global / universal / domain local, security or distribution. */
const GROUP_TYPES = ['-2147483646', '-2147483640', '-2147483644', '2', '8', '4'];

/** Without values equal but for case: AD refuses an attribute holding both. */
function distinct(xs: string[]): string[] {
  return xs.filter((x, k) => xs.findIndex((y) => y.toLowerCase() === x.toLowerCase()) === k);
}

function caseVariant(rng: Rng, s: string): string {
  switch (rng.int(0, 4)) {
    case 0: return s.toUpperCase();
    case 1: return s.toLowerCase();
    case 2: return [...s].map((c) => (rng.chance(0.5) ? c.toUpperCase() : c.toLowerCase())).join('');
    case 3: return s.length > 0 ? s[0]!.toUpperCase() + s.slice(1) : s;
    default: return s;
  }
}

/**
 * The population of one seed: users (some made with a password in CN=Users, some disabled, some
 * without mail), contacts with external mail, groups of every type with nested members, loops
 * and empty groups, DNs with escaped characters, OUs (one with an escaped name, one not ASCII),
 * one contact in each DNS application partition.
 */
export function adPopulation(rng: Rng, seed: number): AdPopulation {
  const tag = `s${seed}`;
  const root = `OU=${tag},${BASE_DN}`;
  const ous = [root, `OU=Staff,${root}`, `OU=Sales \\+ Marketing,${root}`, `OU=Büro,${root}`, `OU=Contacts,${root}`, `OU=Groups,${root}`];
  const domains = [`${tag}.example.com`, `mail.${tag}.example.net`, `bücher-${tag}.example`, D];
  const partner = `partner-${tag}.example`;
  const objects: AdObject[] = [];
  const users: [string, string][] = [];
  const adds: string[] = ous.map((dn) => `${ldifLine('dn', dn)}\nobjectClass: organizationalUnit\n`);
  const mods: string[] = [];
  const usedAddrs: string[] = [];
  let n = 0;

  const localPart = (first: string, i: number): string => rng.weighted([
    [4, `${first}.${tag}x${i}`],
    [2, `${caseVariant(rng, first)}${i}.${tag}`],
    [1, `${rng.pick(['jürgen', 'zoë', 'groß', 'ωmega'])}${i}.${tag}`],
    [1, `${first}+x${i}.${tag}`],
  ]);
  const address = (first: string, i: number): string => {
    if (usedAddrs.length && rng.chance(0.06)) return rng.pick(usedAddrs); // shared address: several entries
    const a = `${localPart(first, i)}@${rng.chance(0.2) ? caseVariant(rng, rng.pick(domains)) : rng.pick(domains)}`;
    usedAddrs.push(a);
    return a;
  };
  const proxies = (mail: string | undefined, first: string, i: number): string[] => {
    const out: string[] = [];
    if (mail !== undefined && rng.chance(0.85)) out.push(`${rng.pick(['SMTP:', 'SMTP:', 'SMTP:', 'Smtp:'])}${mail}`);
    for (let k = rng.int(0, 3); k > 0; k--) out.push(`${rng.pick(['smtp:', 'smtp:', 'SMTP:'])}${address(first, i)}`);
    if (rng.chance(0.3)) out.push(`X500:/o=ExchangeLabs/ou=Exchange Administrative Group/cn=Recipients/cn=${first}${i}${tag}`);
    if (rng.chance(0.25)) out.push(`sip:${first}.${i}@${domains[0]}`);
    if (rng.chance(0.1)) out.push(`x400:c=US;a= ;p=Example;o=Exchange;s=${first}${i}${tag};`);
    return distinct(out);
  };
  const record = (o: AdObject, extra: [string, string][] = []): void => {
    objects.push(o);
    const body: [string, string][] = [];
    if (o.mail !== undefined) body.push(['mail', o.mail]);
    for (const p of o.proxy) body.push(['proxyAddresses', p]);
    for (const v of o.other) body.push(['otherMailbox', v]);
    body.push(...extra);
    if (o.password !== undefined) {
      // Made by newuser before the LDIF is read: its attributes come as a modification.
      if (body.length) mods.push(`${ldifLine('dn', o.dn)}\nchangetype: modify\n${body.map(([a, v]) => `add: ${a}\n${ldifLine(a, v)}\n-\n`).join('')}`);
      return;
    }
    const lines = [ldifLine('dn', o.dn), `objectClass: ${o.kind}`, ldifLine('cn', o.cn)];
    if (o.sam !== undefined) lines.push(ldifLine('sAMAccountName', o.sam));
    if (o.upn !== undefined && o.password === undefined) lines.push(ldifLine('userPrincipalName', o.upn));
    for (const [a, v] of body) lines.push(ldifLine(a, v));
    for (const m of o.members) lines.push(ldifLine('member', m));
    adds.push(lines.join('\n') + '\n');
  };

  // Users.
  const nUsers = rng.int(10, 16);
  for (let i = 0; i < nUsers; i++) {
    const first = rng.pick(FIRST);
    const sam = `${first.replace(/[^a-z]/g, '').slice(0, 8)}${seed}x${i}`;
    const withPw = rng.chance(0.3);
    const cn = withPw ? sam : `${rng.chance(0.45) ? rng.pick(ODD_CN) : caseVariant(rng, first)} ${tag}-${i}`;
    const parent = rng.weighted([[5, root], [3, ous[1]!], [1, ous[2]!], [1, ous[3]!]]);
    const dn = withPw ? `CN=${sam},CN=Users,${BASE_DN}` : `CN=${escDnValue(cn)},${parent}`;
    const mail = rng.chance(0.8) ? address(first, i) : undefined;
    // newuser gives its accounts the UPN sam@<DNS domain> itself.
    const upn = withPw ? `${sam}@${D}` : rng.chance(0.85) ? `${sam}@${rng.chance(0.8) ? D : domains[0]}` : undefined;
    const o: AdObject = {
      dn, kind: 'user', cn, sam, ...(upn !== undefined ? { upn } : {}), ...(mail !== undefined ? { mail } : {}),
      proxy: proxies(mail, first, i), other: rng.chance(0.25) ? distinct(Array.from({ length: rng.int(1, 3) }, () => address(first, i))) : [], members: [],
      ...(withPw ? { password: `Pw-${tag}-${i}-Aa1!` } : {}),
    };
    if (withPw) users.push([sam, o.password!]);
    const extra: [string, string][] = [];
    extra.push(['displayName', cn.trim()]);
    // Disabled accounts (ACCOUNTDISABLE | NORMAL_ACCOUNT); newuser accounts are enabled.
    if (!withPw) extra.push(['userAccountControl', rng.chance(0.3) ? '514' : '512']);
    record(o, extra.filter(([a]) => !(withPw && a === 'userAccountControl')));
  }

  // Contacts (external mail; some with an address in our domains too; some without mail).
  const nContacts = rng.int(3, 6);
  for (let i = 0; i < nContacts; i++) {
    const first = rng.pick(FIRST);
    const cn = `${rng.chance(0.3) ? rng.pick(ODD_CN) : `Ext ${caseVariant(rng, first)}`} ${tag}-c${i}`;
    const ext = rng.chance(0.85) ? `${first}${i}@${rng.chance(0.8) ? partner : caseVariant(rng, partner)}` : undefined;
    const proxy = ext !== undefined ? [`SMTP:${ext}`, ...(rng.chance(0.5) ? [`smtp:${address(first, 100 + i)}`] : [])] : [];
    record({ dn: `CN=${escDnValue(cn)},${rng.chance(0.7) ? ous[4]! : root}`, kind: 'contact', cn, ...(ext !== undefined ? { mail: ext } : {}), proxy, other: [], members: [] },
      [['displayName', cn.trim()]]);
  }

  // Groups: members from what exists already (users, contacts, earlier groups), loops closed afterwards.
  const nGroups = rng.int(4, 7);
  const groups: AdObject[] = [];
  for (let i = 0; i < nGroups; i++) {
    const name = rng.pick(['eng', 'sales', 'all', 'team', 'ops', 'Vertrieb', 'Grüppe', 'list']);
    const cn = `${rng.chance(0.2) ? rng.pick(['A+B', 'Doe, Team', '#lead']) + ' ' : ''}${name} ${tag}-g${i}`;
    const sam = `${name.replace(/[^A-Za-z]/g, '').slice(0, 8)}${seed}g${i}`;
    const mail = rng.chance(0.75) ? address(name.toLowerCase(), 200 + i) : undefined;
    const pool = objects.filter((o) => o.kind !== 'group' || groups.includes(o));
    const members = rng.chance(0.15) ? [] : rng.some(pool, rng.int(1, 5)).map((o) => o.dn);
    const g: AdObject = { dn: `CN=${escDnValue(cn)},${rng.chance(0.7) ? ous[5]! : root}`, kind: 'group', cn, sam, ...(mail !== undefined ? { mail } : {}), proxy: proxies(mail, name, 200 + i), other: [], members };
    record(g, [['groupType', rng.pick(GROUP_TYPES)], ...(rng.chance(0.5) ? [['displayName', cn] as [string, string]] : [])]);
    groups.push(g);
  }
  // A loop: an earlier group gets a later one that (transitively) contains it.
  for (let k = 0; k < 2 && groups.length >= 2 && rng.chance(0.7); k++) {
    const later = groups[rng.int(1, groups.length - 1)]!;
    const earlier = groups[rng.int(0, groups.indexOf(later) - 1)]!;
    if (!later.members.includes(earlier.dn)) {
      later.members.push(earlier.dn);
      mods.push(`${ldifLine('dn', later.dn)}\nchangetype: modify\nadd: member\n${ldifLine('member', earlier.dn)}\n-\n`);
    }
    if (!earlier.members.includes(later.dn)) {
      earlier.members.push(later.dn);
      mods.push(`${ldifLine('dn', earlier.dn)}\nchangetype: modify\nadd: member\n${ldifLine('member', later.dn)}\n-\n`);
    }
  }

  // Larger lists (dozens to a few hundred members, some nested, some members without mail):
  // the daemon expands them with many searches in flight and must keep Postfix's order.
  if (rng.chance(0.6)) {
    const size = rng.int(30, 220);
    const members: string[] = [];
    for (let i = 0; i < size; i++) {
      const cn = `${rng.chance(0.1) ? rng.pick(ODD_CN) : 'Member'} ${tag}-b${i}`;
      const dn = `CN=${escDnValue(cn)},${ous[4]!}`;
      const mail = rng.chance(0.9) ? `m${i}.${tag}@${rng.pick([partner, domains[0]!])}` : undefined;
      record({ dn, kind: 'contact', cn, ...(mail !== undefined ? { mail } : {}), proxy: mail !== undefined && rng.chance(0.3) ? [`SMTP:${mail}`] : [], other: [], members: [], filler: true });
      members.push(dn);
    }
    for (const g of rng.some(groups, rng.int(0, 2))) members.splice(rng.int(0, members.length), 0, g.dn);
    const mail = `biglist.${tag}@${domains[0]!}`;
    const big: AdObject = { dn: `CN=Big List ${tag},${ous[5]!}`, kind: 'group', cn: `Big List ${tag}`, sam: `biglist${seed}`, mail, proxy: [`SMTP:${mail}`, `smtp:everyone.${tag}@${D}`], other: [], members };
    record(big, [['groupType', rng.pick(GROUP_TYPES)]]);
    groups.push(big);
    if (rng.chance(0.5)) {
      const outer = `outer.${tag}@${domains[0]!}`;
      record({ dn: `CN=Outer List ${tag},${ous[5]!}`, kind: 'group', cn: `Outer List ${tag}`, sam: `outer${seed}`, mail: outer, proxy: [`SMTP:${outer}`], other: [], members: [big.dn, ...rng.some(groups, 2).map((g) => g.dn)].filter((x, k, a) => a.indexOf(x) === k) }, [['groupType', '8']]);
    }
  }

  // One contact in each DNS application partition, reachable only through the root's references.
  const zoneAddrs: string[] = [];
  for (const part of ['DomainDnsZones', 'ForestDnsZones']) {
    const mail = `${part.slice(0, 4).toLowerCase()}-${tag}@${D}`;
    zoneAddrs.push(mail);
    record({ dn: `CN=Zone ${tag} ${part},CN=MicrosoftDNS,DC=${part},${BASE_DN}`, kind: 'contact', cn: `Zone ${tag} ${part}`, mail, proxy: [`SMTP:${mail}`], other: [], members: [] });
  }

  // Read access for ANONYMOUS LOGON on the seed's OU, inherited by everything below it. Samba
  // reads an SDDL string for nTSecurityDescriptor and adds the inherited ACEs itself.
  const anonymousRead = rng.chance(0.5);
  if (anonymousRead) mods.push(`dn: ${root}\nchangetype: modify\nreplace: nTSecurityDescriptor\nnTSecurityDescriptor: O:DAG:DAD:(A;CI;RPLCLORC;;;AN)(A;CI;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)\n-\n`);

  const tokens = new Set<string>();
  const fillers = objects.filter((o) => o.filler);
  const sampled = new Set(rng.some(fillers, 3));
  for (const o of objects) {
    if (o.filler && !sampled.has(o)) continue;
    for (const v of [o.mail, o.upn, o.sam, o.cn, ...o.other]) if (v !== undefined) tokens.add(v);
    for (const p of o.proxy) {
      tokens.add(p);
      const c = p.indexOf(':');
      tokens.add(p.slice(c + 1));
    }
  }
  return { seed, tag, ldif: [...adds, ...mods].join('\n'), users, objects, ous, domains, tokens: [...tokens], zoneAddrs, anonymousRead };
}

// ---------------------------------------------------------------------------------------
// maps

export interface AdCfEnv {
  caFile: string;
  /** A port nothing listens on inside the namespace (first of a failover list). */
  deadPort: number;
}

export interface AdCf {
  text: string;
  summary: string;
  /** `both`: compared with anonymous searches refused and allowed; `allowed`: only once allowed (see the steering notes). */
  phase: 'both' | 'allowed';
  /** search_base and query_filter templates (for keys aimed at this map). */
  base: string;
  filter: string;
}

const MAILISH = [
  '(mail=%s)', 'mail=%s', '(proxyAddresses=smtp:%s)', '(proxyAddresses=SMTP:%s)', '(|(mail=%s)(proxyAddresses=smtp:%s))',
  '(&(objectClass=user)(|(mail=%s)(proxyAddresses=smtp:%s)))', '(&(objectCategory=person)(objectClass=user)(mail=%s))',
  '(&(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2))(|(mail=%s)(proxyAddresses=smtp:%s)))',
  '(|(mail=%s)(otherMailbox=%s))', '(otherMailbox=%s)', '(userPrincipalName=%s)', '(sAMAccountName=%u)', '(userPrincipalName=%u@ad.example.org)',
  '(|(sAMAccountName=%u)(userPrincipalName=%s))', '(&(objectClass=group)(|(mail=%s)(proxyAddresses=smtp:%s)))',
  '(&(objectClass=contact)(mail=%s))', '(mail=%u@%d)', '(proxyAddresses=smtp:%u@%d)', '(proxyAddresses=*:%s)', '(mail=%u@*)',
  '(|(proxyAddresses=smtp:%s)(proxyAddresses=smtp:%u@ad.example.org))', '(proxyAddresses=sip:%s)', '(mail=%U@%D)',
  '(&(|(objectClass=user)(objectClass=contact)(objectClass=group))(proxyAddresses=smtp:%s))',
];
/** Filters that could match objects in CN=Configuration / CN=Schema too: never with chase_referrals = yes (see the header). */
const OTHER_FILTERS = [
  '(cn=%u)', '(displayName=%u*)', '(anr=%u)', '(|(cn=%u)(mail=%s))', '(&(objectClass=group)(cn=%u*))', '(name=%u)',
];
const GROUP_FILTERS = [
  '(&(objectClass=group)(|(mail=%s)(proxyAddresses=smtp:%s)))', '(&(objectClass=group)(mail=%s))', '(proxyAddresses=smtp:%s)',
  '(&(objectCategory=group)(proxyAddresses=smtp:%s))', '(|(mail=%s)(proxyAddresses=smtp:%s))',
];
const RESULT_ATTRS = [
  'mail', 'sAMAccountName', 'userPrincipalName', 'proxyAddresses', 'distinguishedName', 'cn', 'displayName', 'objectClass', 'otherMailbox', 'name',
  'memberOf', 'member', 'userAccountControl', 'groupType',
  // Binary (raw bytes, NULs included) and an Exchange attribute this schema lacks (AD returns nothing for it).
  'objectGUID', 'mailNickname',
];
const RESULT_FORMATS = ['%s', '%u@ad.example.org', '%d', 'smtp:[%d]', '%U@relay.%D', '%s OK', '%u', 'relay:[%s]', 'OK', '%S', '%1'];

function list(rng: Rng, xs: string[]): string {
  return xs.join(rng.pick([', ', ',', ' ']));
}

/** A random .cf over the DC, of the kinds AD admins write. */
export function adCf(rng: Rng, pop: AdPopulation, env: AdCfEnv): AdCf {
  const p: [string, string][] = [];
  const notes: string[] = [];
  const server = rng.weighted([
    [7, 'named'], [3, 'ip'], [1, 'host'], [1, 'hostport'], [1, 'failover'], [1, 'ldaps-nocheck'], [1, 'ldaps-ca'], [1, 'starttls'],
    [2, 'gc'], [1, 'gc-port'],
  ] as const);
  notes.push(server);
  switch (server) {
    case 'named': p.push(['server_host', `ldap://${D}/`]); break;
    case 'ip': p.push(['server_host', 'ldap://127.0.0.1/']); break;
    case 'host': p.push(['server_host', D]); break;
    case 'hostport': p.push(['server_host', '127.0.0.1:389']); break;
    case 'failover': p.push(['server_host', `ldap://127.0.0.1:${env.deadPort}/ ldap://${D}/`]); break;
    case 'ldaps-nocheck': p.push(['server_host', `ldaps://${D}/`], ['tls_require_cert', 'no']); break;
    case 'ldaps-ca': p.push(['server_host', `ldaps://vm.${D}/`], ['tls_require_cert', 'yes'], ['tls_ca_cert_file', env.caFile]); break;
    // The global catalog (port 3268): what AD how-tos recommend for Postfix, to search the whole
    // forest from the root without references (a partial attribute set, though).
    case 'gc': p.push(['server_host', `ldap://${D}:3268/`]); break;
    case 'gc-port': p.push(['server_host', rng.pick([D, '127.0.0.1'])], ['server_port', '3268']); break;
    case 'starttls': p.push(['server_host', `ldap://vm.${D}/`], ['start_tls', 'yes'], ['tls_require_cert', 'yes'], ['tls_ca_cert_file', env.caFile]); break;
  }

  const pwUser = pop.objects.find((o) => o.password !== undefined);
  const bind = rng.weighted([[6, 'upn'], [2, 'dn'], [1, 'netbios'], [1, 'user'], [2, 'anon'], [0.3, 'badpw']] as const);
  notes.push(`bind=${bind}`);
  switch (bind) {
    case 'upn': p.push(['bind_dn', BIND_UPN], ['bind_pw', BIND_PW]); break;
    case 'dn': p.push(['bind', 'yes'], ['bind_dn', rng.pick([BIND_DN, BIND_DN.toLowerCase(), BIND_DN.replace(/,/g, ', ')])], ['bind_pw', BIND_PW]); break;
    case 'netbios': p.push(['bind_dn', `ADEX\\mailbind`], ['bind_pw', BIND_PW]); break;
    case 'user':
      if (pwUser) p.push(['bind_dn', `${pwUser.sam!}@${D}`], ['bind_pw', pwUser.password!]);
      else p.push(['bind_dn', BIND_UPN], ['bind_pw', BIND_PW]);
      break;
    case 'anon': p.push(['bind', rng.pick(['no', 'none'])]); break;
    case 'badpw': p.push(['bind_dn', BIND_UPN], ['bind_pw', 'Wrong-Pw-1!']); break;
  }

  // Sites that search anonymously point the map where anonymous readers may look.
  const base = bind === 'anon' && rng.chance(0.6) ? pop.ous[0]! : rng.weighted([
    [5, BASE_DN], [3, pop.ous[0]!], [2, `CN=Users,${BASE_DN}`], [1, pop.ous[1]!], [1, pop.ous[5]!], [1, pop.ous[2]!],
    [0.5, pop.ous[3]!], [0.5, pop.ous[4]!], [0.5, `OU=Missing,${BASE_DN}`], [0.3, `CN=Configuration,${BASE_DN}`], [server.startsWith('gc') ? 3 : 0.3, ''], [0.5, `cn=users,dc=AD,dc=example,dc=ORG`], [0.5, `CN=%u,CN=Users,${BASE_DN}`],
  ]);
  const scope = base.includes('%u') ? rng.pick(['base', 'sub']) : rng.weighted([[6, undefined], [2, 'one'], [1, 'base'], [1, 'sub']]);
  const chase = base.toLowerCase().endsWith(BASE_DN.toLowerCase()) && rng.chance(0.35) ? 'yes' : rng.chance(0.1) ? 'no' : undefined;
  const family = rng.weighted([[5, 'recipient'], [3, 'group'], [chase === 'yes' && !AD_INCLUDE.has('chase-any-filter') ? 0 : 2, 'other']] as const);
  notes.push(family);
  let filter: string;
  let results: string[];
  let special: string[] = [];
  let leaf: string[] = [];
  let terminal: string[] = [];
  if (family === 'group') {
    filter = rng.pick(GROUP_FILTERS);
    special = ['member'];
    if (rng.chance(0.3)) leaf = [rng.pick(['mail', 'proxyAddresses', 'otherMailbox'])];
    results = leaf.length && rng.chance(0.5) ? [] : rng.chance(0.7) ? ['mail'] : rng.some(RESULT_ATTRS, rng.int(1, 2));
    if (rng.chance(0.2)) terminal = [rng.pick(['otherMailbox', 'userPrincipalName', 'displayName'])];
  } else {
    filter = family === 'recipient' ? rng.pick(MAILISH) : rng.pick(OTHER_FILTERS);
    results = rng.chance(0.5) ? ['mail'] : rng.some(RESULT_ATTRS, rng.int(1, 3));
    if (rng.chance(0.15)) special = ['member'];
    if (special.length && rng.chance(0.3)) leaf = ['mail'];
  }
  p.push(['search_base', base]);
  if (scope !== undefined) p.push(['scope', scope]);
  p.push(['query_filter', filter]);
  if (results.length) p.push(['result_attribute', list(rng, results)]);
  else if (!leaf.length) p.push(['result_attribute', 'mail']);
  if (special.length) p.push(['special_result_attribute', list(rng, special)]);
  if (leaf.length) p.push(['leaf_result_attribute', list(rng, leaf)]);
  if (terminal.length) p.push(['terminal_result_attribute', list(rng, terminal)]);
  if (rng.chance(0.3)) p.push(['result_format', rng.pick(RESULT_FORMATS)]);
  if (chase !== undefined) p.push(['chase_referrals', chase]);
  if (rng.chance(0.2)) {
    const items = rng.some(pop.domains, rng.int(1, 3)).map((d) => (rng.chance(0.3) ? caseVariant(rng, d) : d)).map((d) => (rng.chance(0.2) ? `!${d}` : d));
    p.push(['domain', list(rng, items)]);
  }
  if (special.length) {
    // Loops: Postfix recurses to recursion_limit (docs/differences.md 3), so keep it small.
    p.push(['recursion_limit', String(rng.weighted([[3, rng.int(1, 4)], [1, rng.int(5, 9)]]))]);
  } else if (rng.chance(0.1)) p.push(['recursion_limit', String(rng.int(1, 3))]);
  if (rng.chance(0.2)) p.push(['expansion_limit', String(rng.int(0, 6))]);
  if (rng.chance(0.2)) p.push(['size_limit', String(rng.int(0, 3))]);
  if (rng.chance(0.2)) p.push(['dereference', String(rng.int(0, 3))]);
  p.push(['timeout', '5']);

  for (const [k, v] of p) if (['search_base', 'scope', 'query_filter', 'result_attribute', 'special_result_attribute', 'leaf_result_attribute', 'terminal_result_attribute', 'result_format', 'chase_referrals', 'domain', 'recursion_limit', 'expansion_limit', 'size_limit', 'dereference'].includes(k)) notes.push(`${k}=${v}`);
  const sameHost = server === 'named';
  const phase = chase === 'yes' && !sameHost ? 'allowed' : 'both';
  return { text: p.map(([k, v]) => `${k} = ${v}`).join('\n') + '\n', summary: notes.join(' '), phase, base, filter };
}

// ---------------------------------------------------------------------------------------
// keys

const FIXED_KEYS = ['*', '@', `@${D}`, 'a*@ad.example.org', '(', ')(mail=*', '\\', 'postmaster', `nobody@${D}`, `Administrator@${D}`, 'administrator', 'mailbind', `MAILBIND@${D.toUpperCase()}`, 'krbtgt', 'user', 'users@ad.example.org'];

/** A key made from one thing the population holds, mutated the ways mail keys vary. */
function mutate(rng: Rng, pop: AdPopulation, token: string): string {
  const at = token.lastIndexOf('@');
  const local = at >= 0 ? token.slice(0, at) : token;
  const domain = at >= 0 ? token.slice(at + 1) : '';
  switch (rng.weighted([[8, 'as-is'], [5, 'case'], [3, 'ext'], [2, 'unknown-domain'], [2, 'other-domain'], [1, 'at-only'], [2, 'local'], [1, 'non-ascii'], [1, 'prefix']] as const)) {
    case 'as-is': return token;
    case 'case': return caseVariant(rng, token);
    case 'ext': return at >= 0 ? `${local}+${rng.pick(['tag', 'x', 'a+b', ''])}@${domain}` : `${token}+tag`;
    case 'unknown-domain': return `${local}@${rng.pick(['unknown.example', 'example.com', 'ad.example.org.', 'AD.EXAMPLE.ORG'])}`;
    case 'other-domain': return `${local}@${rng.pick(pop.domains)}`;
    case 'at-only': return `@${domain || rng.pick(pop.domains)}`;
    case 'local': return local;
    case 'non-ascii': return `${local.replace(/[a-z]/, (c) => ({ a: 'ä', o: 'ö', u: 'ü', s: 'ß', e: 'é' })[c as 'a'] ?? 'ø')}${at >= 0 ? '@' + domain : ''}`;
    case 'prefix': return `${rng.pick(['smtp:', 'SMTP:', 'sip:'])}${token}`;
  }
}

export function usableKey(k: string): boolean {
  return k.length > 0 && k !== '-' && !/[\x00-\x1f\x7f]/.test(k) && Buffer.byteLength(k) < 900;
}

/** n distinct keys for one seed (all maps of the seed get them): tokens mutated, zone addresses, fixed odd keys. */
export function adKeys(rng: Rng, pop: AdPopulation, n: number): string[] {
  const out = new Set<string>();
  for (const k of rng.some(FIXED_KEYS, 4)) out.add(k);
  for (const z of pop.zoneAddrs) out.add(z);
  // Every list's address, so that group maps expand something in every seed.
  for (const g of pop.objects) if (g.kind === 'group' && g.mail !== undefined) out.add(rng.chance(0.7) ? g.mail : caseVariant(rng, g.mail));
  // Mostly addresses (what mail keys are), the rest names, UPNs, whole proxyAddresses values.
  const addrs = pop.tokens.filter((t) => /^[^:]+@[^@]+$/.test(t));
  let guard = 0;
  while (out.size < n && guard++ < n * 20) {
    const k = mutate(rng, pop, rng.pick(rng.chance(0.7) && addrs.length ? addrs : pop.tokens));
    if (usableKey(k)) out.add(k);
  }
  return rng.shuffle([...out]);
}

/**
 * Keys aimed at one map: values of the objects below its search base, from the attribute its
 * filter asks for (so that most maps find something), lightly mutated.
 */
export function targetedKeys(rng: Rng, pop: AdPopulation, cf: AdCf, n: number): string[] {
  const base = cf.base.toLowerCase();
  const below = base === '' || base.includes('%') ? pop.objects : pop.objects.filter((o) => o.dn.toLowerCase().endsWith(base));
  const f = cf.filter.toLowerCase();
  const pick = (o: AdObject): string | undefined => {
    const smtp = o.proxy.filter((x) => /^smtp:/i.test(x)).map((x) => x.slice(5));
    const options: (string | undefined)[] = [];
    if (f.includes('samaccountname') || base.includes('cn=%u')) options.push(o.sam !== undefined ? `${o.sam}@${rng.pick(pop.domains)}` : undefined);
    if (f.includes('userprincipalname')) options.push(o.upn);
    if (f.includes('othermailbox')) options.push(o.other.length ? rng.pick(o.other) : undefined);
    if (f.includes('proxyaddresses')) options.push(smtp.length ? rng.pick(smtp) : undefined, o.proxy.length ? rng.pick(o.proxy).replace(/^[^:]*:/, '') : undefined);
    if (/cn=|anr=|displayname=|name=/.test(f)) options.push(`${o.cn.split(' ')[0]!}@${rng.pick(pop.domains)}`, o.cn.split(' ')[0]);
    options.push(o.mail);
    const ok = options.filter((x): x is string => x !== undefined && x !== '');
    return ok.length ? rng.pick(ok) : undefined;
  };
  const out = new Set<string>();
  let guard = 0;
  while (below.length && out.size < n && guard++ < n * 10) {
    let k = pick(rng.pick(below));
    if (k === undefined) continue;
    if (rng.chance(0.3)) k = caseVariant(rng, k);
    if (rng.chance(0.1)) k = k.replace('@', '+ext@');
    if (usableKey(k)) out.add(k);
  }
  return [...out];
}
