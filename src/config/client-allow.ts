/**
 * The `client_allow` setting: which peer addresses may use the inet listeners.
 *
 *   client_allow = 127.0.0.0/8, ::1/128, 192.0.2.0/24, 198.51.100.7
 *
 * Items are IPv4 or IPv6 networks in CIDR notation, separated by commas or white space; a bare
 * address is a single host (/32 or /128); an IPv6 item may be written in brackets as in Postfix's
 * mynetworks (`[::1]/128`). Like Postfix's cidr tables, a network with host bits set
 * (`192.0.2.1/24`) is an error rather than a silent widening: it names the network meant.
 *
 * Matching uses node:net's BlockList rather than our own arithmetic: it is native, takes both
 * families in one list, and already treats an IPv4-mapped peer (`::ffff:127.0.0.1`, which is
 * what a dual-stack `[::]` listener reports for an IPv4 client) as the IPv4 address it carries,
 * and an IPv4 peer as inside an IPv6 rule covering `::ffff:0:0/96`. It does not parse CIDR
 * text, and its errors name no file or line, so parsing (and the host-bits check) is done here.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { splitList } from './cf-file.js';
import { ConfigError, type ConfigWhere } from './errors.js';

export interface AllowRule {
  family: 'ipv4' | 'ipv6';
  /** The network address, as written (brackets removed). */
  network: string;
  prefix: number;
}

/** Bytes of an address `isIPv4`/`isIPv6` accepted (4 or 16). */
function addressBytes(address: string, family: 'ipv4' | 'ipv6'): number[] {
  if (family === 'ipv4') return address.split('.').map(Number);
  let text = address;
  const tail: number[] = [];
  // An IPv6 address may end in dotted IPv4 (`::ffff:192.0.2.1`).
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail.push(...text.slice(lastColon + 1).split('.').map(Number));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head = '', rest] = text.split('::') as [string, string | undefined];
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const h = groups(head);
  const r = rest === undefined ? [] : groups(rest);
  const words = [...h, ...new Array<number>(8 - h.length - r.length).fill(0), ...r];
  const bytes = words.flatMap((w) => [w >> 8, w & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** `address` with every bit past `prefix` cleared, in the family's usual text form. */
function networkOf(address: string, family: 'ipv4' | 'ipv6', prefix: number): { text: string; hostBits: boolean } {
  const bytes = addressBytes(address, family);
  let hostBits = false;
  const masked = bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    const m = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    if ((b & ~m & 0xff) !== 0) hostBits = true;
    return b & m;
  });
  if (family === 'ipv4') return { text: masked.join('.'), hostBits };
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((masked[i]! << 8) | masked[i + 1]!).toString(16));
  // Not the shortest form, but one every reader (and BlockList) takes.
  return { text: words.join(':'), hostBits };
}

/** Parses one item: `ADDRESS`, `ADDRESS/PREFIX`, `[IPV6]` or `[IPV6]/PREFIX`. */
export function parseAllowItem(item: string, where: ConfigWhere): AllowRule {
  const fail = (why: string): never => {
    throw new ConfigError(`bad network '${item}': ${why}`, where);
  };
  const slash = item.indexOf('/');
  let address = slash < 0 ? item : item.slice(0, slash);
  const prefixText = slash < 0 ? undefined : item.slice(slash + 1);
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1);
  if (address.includes('%')) fail('a zone index (%...) is not allowed');
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (family === undefined) {
    return fail('expected an IPv4 or IPv6 address, optionally with /PREFIX (e.g. 192.0.2.0/24, 2001:db8::/32)');
  }
  const max = family === 'ipv4' ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    if (!/^[0-9]{1,3}$/.test(prefixText)) fail(`bad prefix length '${prefixText}'`);
    prefix = Number(prefixText);
    if (prefix > max) fail(`prefix length ${prefix} is more than ${max}`);
  }
  const net = networkOf(address, family, prefix);
  if (net.hostBits) {
    const shown = family === 'ipv6' && item.startsWith('[') ? `[${net.text}]` : net.text;
    fail(`host bits are set; the network is ${shown}/${prefix}`);
  }
  return { family, network: address, prefix };
}

/** Parses the whole value; an empty value is an empty list (the caller decides what that means). */
export function parseClientAllow(value: string, where: ConfigWhere): AllowRule[] {
  return splitList(value).map((item) => parseAllowItem(item, where));
}

export function formatAllowRule(r: AllowRule): string {
  const max = r.family === 'ipv4' ? 32 : 128;
  return r.prefix === max ? r.network : `${r.network}/${r.prefix}`;
}

/** A matcher over parsed rules. */
export class ClientAllowList {
  private readonly list = new BlockList();

  constructor(readonly rules: readonly AllowRule[]) {
    for (const r of rules) this.list.addSubnet(r.network, r.prefix, r.family);
  }

  /**
   * Is a peer with this address (as net.Socket#remoteAddress gives it) allowed? An address that
   * is not an IP address at all is not.
   */
  allows(address: string | undefined): boolean {
    if (address === undefined) return false;
    const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
    if (family === undefined) return false;
    return this.list.check(address, family);
  }

  toString(): string {
    return this.rules.map(formatAllowRule).join(', ');
  }
}

const LOOPBACK = new ClientAllowList([
  { family: 'ipv4', network: '127.0.0.0', prefix: 8 },
  { family: 'ipv6', network: '::1', prefix: 128 },
]);

/**
 * Only the local machine can reach a listener bound to this address. The unspecified addresses
 * (0.0.0.0, ::) are every interface, so they are not loopback; neither is a host name other
 * than `localhost` (the caller passes the address actually bound when it has it).
 */
export function isLoopbackAddress(address: string): boolean {
  if (address.toLowerCase() === 'localhost') return true;
  return LOOPBACK.allows(address);
}

/** What the startup warning tells an operator to add. */
export const SUGGESTED_CLIENT_ALLOW = 'client_allow = 127.0.0.0/8, ::1/128';
