/**
 * The machine's canonical host name, which libldap checks a server certificate against when
 * the URL says `localhost` (ldap_int_hostname, set by ldap_pvt_get_fqdn: gethostname() and then
 * the resolver's canonical name for it, falling back to the short name). Looked up once, through
 * the C library's resolver (getent), so /etc/hosts and nsswitch give the answer they give libldap.
 */
import { execFile } from 'node:child_process';
import { hostname } from 'node:os';

let cached: Promise<string> | undefined;

/** First line of `getent ahostsv4 NAME` is `ADDR  STREAM  CANONICAL`. */
export function parseGetentCanonical(output: string): string | undefined {
  const first = output.split('\n')[0] ?? '';
  const fields = first.trim().split(/\s+/);
  return fields.length >= 3 && fields[2] !== '' ? fields[2] : undefined;
}

export function canonicalHostName(): Promise<string> {
  cached ??= new Promise((resolve) => {
    const short = hostname();
    execFile('getent', ['ahostsv4', short], { timeout: 5000 }, (err, stdout) => {
      resolve((err ? undefined : parseGetentCanonical(String(stdout))) ?? short);
    });
  });
  return cached;
}

/** The name libldap checks the certificate against for a URL host. */
export async function certificateNameFor(urlHost: string | undefined): Promise<string> {
  if (urlHost === undefined || urlHost === '' || urlHost.toLowerCase() === 'localhost') return canonicalHostName();
  return urlHost;
}
