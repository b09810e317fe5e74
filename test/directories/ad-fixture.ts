/**
 * What the AD suite puts in its Samba domain: what Postfix admins meet in real ADs. Users with
 * `mail` and `proxyAddresses` (`SMTP:` primary, `smtp:` secondary, plus x500:/sip: values that
 * must not match), contacts, nested groups by `member`, a group loop, an empty group, DNs with
 * escaped characters (comma, plus, quotes, non-ASCII), a group of more than 1500 members, and
 * one contact in each DNS application partition (DomainDnsZones, ForestDnsZones).
 */
import { BASE_DN, DNS_DOMAIN } from '../support/samba-ad.js';

const D = DNS_DOMAIN;
export const OU_MAIL = `OU=Mail,${BASE_DN}`;
export const OU_BIG = `OU=Big,${BASE_DN}`;
export const BIG_MEMBERS = 1600;

interface Obj {
  dn: string;
  cls: 'user' | 'contact' | 'group';
  sam?: string;
  mail?: string;
  proxy?: string[];
  members?: string[];
}

const u = (cn: string, sam: string, mail: string | undefined, proxy: string[] = []): Obj =>
  ({ dn: `CN=${cn},${OU_MAIL}`, cls: 'user', sam, mail, proxy });
const c = (cn: string, mail: string | undefined, proxy: string[] = []): Obj => ({ dn: `CN=${cn},${OU_MAIL}`, cls: 'contact', mail, proxy });
const g = (cn: string, mail: string | undefined, proxy: string[], members: string[]): Obj =>
  ({ dn: `CN=${cn},${OU_MAIL}`, cls: 'group', sam: cn.replace(/[^A-Za-z0-9-]/g, '').slice(0, 20), mail, proxy, members });
const m = (cn: string): string => `CN=${cn},${OU_MAIL}`;
/** A contact in a DNS application partition: found only by following the domain root's reference to it. */
const z = (partition: 'DomainDnsZones' | 'ForestDnsZones', cn: string, mail: string): Obj =>
  ({ dn: `CN=${cn},CN=MicrosoftDNS,DC=${partition},${BASE_DN}`, cls: 'contact', mail, proxy: [`SMTP:${mail}`] });
export const ZONE_KEY = `zone@${D}`;
export const FOREST_KEY = `forest@${D}`;

export const OBJECTS: Obj[] = [
  u('Alice Smith', 'alice', `Alice.Smith@${D}`, [`SMTP:Alice.Smith@${D}`, `smtp:alice@${D}`, 'smtp:asmith@example.com']),
  u('Bob Builder', 'bob', `bob@${D}`, [`SMTP:bob@${D}`, 'smtp:Bob.Builder@Example.COM', `X500:/o=ExchangeLabs/ou=Exchange/cn=Recipients/cn=bob`]),
  u('Carol', 'carol', `carol@${D}`),
  u('Dave NoMail', 'dave', undefined, [`sip:dave@${D}`, `SMTP:dave@${D}`]),
  u('Doe\\, Jane', 'jdoe', `jane.doe@${D}`, [`SMTP:jane.doe@${D}`, `smtp:doe,jane@${D}`]),
  u('Jürgen Groß', 'jgross', `juergen@${D}`, [`SMTP:juergen@${D}`, `smtp:jürgen@${D}`, `smtp:groß@${D}`]),
  u('\\"Quoted\\" Person', 'quoted', `quoted@${D}`, [`SMTP:quoted@${D}`]),
  u('Eve Shared', 'eve', `shared@${D}`, [`SMTP:shared@${D}`]),
  u('Frank Shared', 'frank', `frank@${D}`, [`SMTP:frank@${D}`, `smtp:shared@${D}`]),
  c('Ext One', 'ext1@partner.example', ['SMTP:ext1@partner.example', `smtp:ext1@${D}`]),
  c('A\\+B Team', `ab-team@${D}`, [`SMTP:ab-team@${D}`]),
  c('No Mail Contact', undefined, []),
  g('eng', `eng@${D}`, [`SMTP:eng@${D}`], [m('Carol'), m('Jürgen Groß'), m('A\\+B Team'), m('No Mail Contact')]),
  g('sales', `sales@${D}`, [`SMTP:sales@${D}`, `smtp:vertrieb@${D}`],
    [m('Alice Smith'), m('Bob Builder'), m('Doe\\, Jane'), m('Ext One'), m('eng'), m('\\"Quoted\\" Person'), m('Dave NoMail')]),
  g('all', `all@${D}`, [`SMTP:all@${D}`], [m('sales'), m('eng'), m('Eve Shared')]),
  g('empty', `empty@${D}`, [`SMTP:empty@${D}`], []),
  g('no-mail-group', undefined, [`SMTP:nomailgroup@${D}`], [m('Alice Smith')]),
  g('loop-a', `loop-a@${D}`, [`SMTP:loop-a@${D}`], []),
  g('loop-b', `loop-b@${D}`, [`SMTP:loop-b@${D}`], [m('loop-a')]),
  z('DomainDnsZones', 'Zone Contact', ZONE_KEY),
  z('ForestDnsZones', 'Forest Contact', FOREST_KEY),
];

/** The loop is closed after both groups exist. */
const LOOP_CLOSE = `dn: ${m('loop-a')}\nchangetype: modify\nadd: member\nmember: ${m('loop-b')}\n-\n`;

function line(attr: string, value: string): string {
  // Non-ASCII values (and DNs) go base64, as LDIF requires.
  return /^[\x20-\x7e]*$/.test(value) && !value.startsWith(' ') && !value.startsWith(':') && !value.startsWith('<')
    ? `${attr}: ${value}`
    : `${attr}:: ${Buffer.from(value, 'utf8').toString('base64')}`;
}

function record(o: Obj): string {
  const out = [line('dn', o.dn), `objectClass: ${o.cls}`];
  if (o.sam) out.push(`sAMAccountName: ${o.sam}`);
  if (o.cls === 'user' && o.sam) out.push(`userPrincipalName: ${o.sam}@${D}`);
  if (o.mail) out.push(line('mail', o.mail));
  for (const p of o.proxy ?? []) out.push(line('proxyAddresses', p));
  for (const mem of o.members ?? []) out.push(line('member', mem));
  return out.join('\n') + '\n';
}

export function adLdif(): string {
  const parts = [`dn: ${OU_MAIL}\nobjectClass: organizationalUnit\n`, ...OBJECTS.map(record), LOOP_CLOSE];
  parts.push(`dn: ${OU_BIG}\nobjectClass: organizationalUnit\n`);
  const big: string[] = [];
  for (let i = 0; i < BIG_MEMBERS; i++) {
    const cn = `big${String(i).padStart(4, '0')}`;
    parts.push(`dn: CN=${cn},${OU_BIG}\nobjectClass: contact\nmail: ${cn}@big.example\n`);
    big.push(`member: CN=${cn},${OU_BIG}`);
  }
  parts.push([`dn: CN=big,${OU_BIG}`, 'objectClass: group', 'sAMAccountName: big', `mail: big@${D}`, `proxyAddresses: SMTP:big@${D}`, ...big].join('\n') + '\n');
  return parts.join('\n');
}

/** Every address in the fixture (mail values and smtp: proxyAddresses), case variants, misses. */
export function adKeys(): string[] {
  const addrs = new Set<string>();
  for (const o of OBJECTS) {
    if (o.mail) addrs.add(o.mail);
    for (const p of o.proxy ?? []) if (/^smtp:/i.test(p)) addrs.add(p.slice(5));
  }
  addrs.add(`big@${D}`);
  addrs.add('big0007@big.example');
  const keys = new Set<string>();
  for (const a of addrs) {
    keys.add(a);
    keys.add(a.toUpperCase());
    keys.add(a.toLowerCase());
  }
  for (const miss of [
    `nobody@${D}`, `dave`, `sip:dave@${D}`, `smtp:alice@${D}`, `x500:/o=ExchangeLabs/ou=Exchange/cn=Recipients/cn=bob`,
    `a*@${D}`, `*`, `alice@example.com`, `loop-c@${D}`, `(alice@${D})`, `back\\slash@${D}`, `alice@${D.toUpperCase()}.`,
  ]) keys.add(miss);
  return [...keys];
}
