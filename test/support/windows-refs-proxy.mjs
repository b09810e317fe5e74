#!/usr/bin/env node
/**
 * A plain TCP LDAP proxy that makes a Samba DC's search references look like a Windows DC's.
 * Samba names every partition in a reference by the DNS domain
 * (`ldap://ad.example.org/DC=DomainDnsZones,DC=ad,…`: partition.c builds it from
 * lpcfg_dnsdomain, no setting changes it); Windows names an application partition by its own
 * DNS name (`ldap://DomainDnsZones.ad.example.org/DC=DomainDnsZones,DC=ad,…`), a host that
 * often does not resolve from a mail host, or resolves to the DCs. This proxy rewrites the
 * DomainDnsZones/ForestDnsZones references so, and points the other references (CN=Configuration)
 * at itself, DOMAIN:LISTEN_PORT, so that they still name the server the client asked, as they do
 * on Windows for a client that asked the domain's name. Everything else passes byte for byte.
 *
 * Usage (inside the DC's namespace): node windows-refs-proxy.mjs LISTEN_PORT UPSTREAM_PORT DOMAIN
 * Prints "listening" once it accepts connections; every rewritten URL goes to stderr once.
 */
import { children, octets, relay, tlv } from './ldap-relay.mjs';

const [listenArg, upstreamArg, domain] = process.argv.slice(2);
const listenPort = Number(listenArg);
const upstreamPort = Number(upstreamArg);
const prefix = `ldap://${domain.toLowerCase()}/`;
const ZONES = /^DC=(DomainDnsZones|ForestDnsZones),/i;
const SEARCH_RESULT_REFERENCE = 0x73;
const seen = new Set();

function rewriteUrl(url) {
  if (!url.toLowerCase().startsWith(prefix)) return url;
  const rest = url.slice(prefix.length);
  const zone = ZONES.exec(rest);
  const out = zone ? `ldap://${zone[1]}.${domain}/${rest}` : `ldap://${domain}:${listenPort}/${rest}`;
  if (!seen.has(out)) { seen.add(out); process.stderr.write(`reference ${url} -> ${out}\n`); }
  return out;
}

function response(msg) {
  const parts = children(msg.content);
  const op = parts[1];
  if (!op || op.tag !== SEARCH_RESULT_REFERENCE) return msg.raw;
  const urls = children(op.content).map((u) => octets(rewriteUrl(u.content.toString('utf8'))));
  return tlv(0x30, Buffer.concat([parts[0].raw, tlv(SEARCH_RESULT_REFERENCE, Buffer.concat(urls)), ...parts.slice(2).map((p) => p.raw)]));
}

relay(listenPort, upstreamPort, () => ({ request: (msg) => msg.raw, response }));
