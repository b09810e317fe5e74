/**
 * The server-certificate name check of libldap's GnuTLS backend (tls_g.c, the Debian build
 * that Postfix's ldap table links), not Node's `tls.checkServerIdentity`. Measured against
 * `postmap -q` (test/integration/tls.test.ts); where the two disagree, libldap wins:
 *
 * - The name checked is the URL's host, except that `localhost` (any case) or an empty host is
 *   replaced by the machine's canonical host name (see local-hostname.ts).
 * - subjectAltName first: dNSName entries match a DNS name exactly (case-insensitive) or as
 *   `*.rest` where `rest` equals everything after the name's first dot; iPAddress entries match
 *   an IP address byte for byte. Other entries are ignored.
 * - No SAN matched (libldap's default TLS_REQSAN allow: not an error by itself): the LAST
 *   commonName of the subject decides, compared as a string, even for an IP address (CN
 *   "127.0.0.1" passes for `ldaps://127.0.0.1/`), with the same one-label wildcard rule for
 *   DNS names. Node would ignore the CN whenever a SAN exists, and for IP addresses always.
 */
import net from 'node:net';

export interface CertNames {
  /** subjectAltName dNSName entries. */
  dns: string[];
  /** subjectAltName iPAddress entries, as text (Node's "IP Address:" form). */
  ips: string[];
  /** Subject commonName values in certificate order. */
  cns: string[];
}

type NameType = 'dns' | 'ip4' | 'ip6';

/** 16 or 4 bytes of an IP address in text form, or undefined. */
export function ipBytes(text: string): Buffer | undefined {
  if (net.isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  if (!net.isIPv6(text)) return undefined;
  let t = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  let tail: number[] = [];
  if (v4) {
    tail = v4[1]!.split('.').map(Number);
    t = t.slice(0, -v4[1]!.length) + '0:0';
  }
  const [head, rest] = t.includes('::') ? t.split('::') as [string, string] : [t, undefined];
  const part = (s: string | undefined) => (s === undefined || s === '' ? [] : s.split(':').map((h) => parseInt(h, 16)));
  const h = part(head);
  const r = part(rest);
  const groups = rest === undefined ? h : [...h, ...Array<number>(8 - h.length - r.length).fill(0), ...r];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  if (v4) Buffer.from(tail).copy(out, 12);
  return out;
}

function nameType(name: string): NameType {
  if (net.isIPv6(name)) return 'ip6';
  // libldap: inet_aton only when the text after the last dot starts with a digit.
  const dot = name.lastIndexOf('.');
  if (dot >= 0 && /[0-9]/.test(name[dot + 1] ?? '') && net.isIPv4(name)) return 'ip4';
  return 'dns';
}

const sameText = (a: string, b: string): boolean => a.length === b.length && a.toLowerCase() === b.toLowerCase();

/** `*.rest` against a DNS name whose part from the first dot is `.rest`. */
function wildcardMatches(name: string, pattern: string): boolean {
  const dot = name.indexOf('.');
  if (dot < 0 || !pattern.startsWith('*.')) return false;
  return sameText(name.slice(dot), pattern.slice(1));
}

/** True when libldap would accept a certificate with these names for `name`. */
export function libldapNameMatches(name: string, cert: CertNames): boolean {
  const type = nameType(name);
  if (type === 'dns') {
    if (cert.dns.some((d) => d !== '' && (sameText(name, d) || wildcardMatches(name, d)))) return true;
  } else {
    const want = ipBytes(name);
    if (want && cert.ips.some((ip) => { const b = ipBytes(ip); return b !== undefined && b.equals(want); })) return true;
  }
  const cn = cert.cns[cert.cns.length - 1];
  if (cn === undefined) return false;
  if (sameText(name, cn)) return true;
  return type === 'dns' && wildcardMatches(name, cn);
}

/** The names in a peer certificate as Node reports them (`subjectaltname`, `subject.CN`). */
export function certNames(peer: { subjectaltname?: string; subject?: Record<string, string | string[] | undefined> }): CertNames {
  const dns: string[] = [];
  const ips: string[] = [];
  for (const entry of splitAltNames(peer.subjectaltname ?? '')) {
    if (entry.startsWith('DNS:')) dns.push(unquote(entry.slice(4)));
    else if (entry.startsWith('IP Address:')) ips.push(entry.slice(11));
  }
  const cn = peer.subject?.CN;
  const cns = cn === undefined ? [] : Array.isArray(cn) ? cn : [cn];
  return { dns, ips, cns };
}

/** Node lists SAN entries as `A, B`; entries with unusual characters are JSON-quoted. */
function splitAltNames(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' && text[i - 1] !== '\\') quoted = !quoted;
    if (!quoted && c === ',' && text[i + 1] === ' ') {
      out.push(cur);
      cur = '';
      i++;
      continue;
    }
    cur += c;
  }
  if (cur !== '') out.push(cur);
  return out;
}

function unquote(v: string): string {
  if (!v.startsWith('"')) return v;
  try {
    return JSON.parse(v) as string;
  } catch {
    return v;
  }
}
