/**
 * The .cf files a Postfix admin writes for Active Directory, each asked through native
 * `postmap -q KEY ldap:FILE` and through the daemon over the same DC.
 */
import { BASE_DN, BIND_DN, BIND_PW, BIND_UPN, DNS_DOMAIN } from '../support/samba-ad.js';

export interface AdMap {
  name: string;
  body: string;
}

const RECIPIENT = '(|(mail=%s)(proxyAddresses=smtp:%s))';
const GROUP = '(&(objectClass=group)(|(mail=%s)(proxyAddresses=smtp:%s)))';

function cf(lines: Record<string, string>): string {
  return Object.entries(lines).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n';
}

/**
 * `named` is the URL of the DC by name: its own, or a proxy in front of it (the Windows-style
 * references pass gives `ldap://ad.example.org:1390/`).
 */
export function adMaps(caFile: string, named = `ldap://${DNS_DOMAIN}/`): AdMap[] {
  const byIp = 'ldap://127.0.0.1/';
  const upn = { bind_dn: BIND_UPN, bind_pw: BIND_PW };
  const common = { search_base: BASE_DN, scope: 'sub', timeout: '3' };
  const maps: AdMap[] = [];
  const add = (name: string, lines: Record<string, string>): void => { maps.push({ name, body: cf(lines) }); };

  for (const chase of ['no', 'yes']) {
    const ch = { chase_referrals: chase };
    // The DC by its DNS name (as its references name it) and by IP (references then name another host).
    add(`proxy-${chase}`, { server_host: named, ...common, ...upn, ...ch, query_filter: '(proxyAddresses=smtp:%s)', result_attribute: 'mail' });
    add(`proxy-ip-${chase}`, { server_host: byIp, ...common, ...upn, ...ch, query_filter: '(proxyAddresses=smtp:%s)', result_attribute: 'mail' });
    add(`recipient-${chase}`, { server_host: named, ...common, ...upn, ...ch, query_filter: RECIPIENT, result_attribute: 'mail' });
    add(`groups-${chase}`, {
      server_host: named, ...common, ...upn, ...ch, query_filter: GROUP, special_result_attribute: 'member', result_attribute: 'mail',
    });
    add(`groups-ip-${chase}`, {
      server_host: byIp, ...common, ...upn, ...ch, query_filter: GROUP, special_result_attribute: 'member', result_attribute: 'mail',
    });
    add(`groups-leaf-${chase}`, {
      server_host: named, ...common, ...upn, ...ch, query_filter: GROUP, special_result_attribute: 'member', leaf_result_attribute: 'mail',
    });
    add(`dnbind-${chase}`, { server_host: named, ...common, bind_dn: BIND_DN, bind_pw: BIND_PW, ...ch, query_filter: RECIPIENT, result_attribute: 'mail' });
    add(`anon-${chase}`, { server_host: named, ...common, bind: 'no', ...ch, query_filter: RECIPIENT, result_attribute: 'mail' });
    add(`anon-ip-${chase}`, { server_host: byIp, ...common, bind: 'no', ...ch, query_filter: RECIPIENT, result_attribute: 'mail' });
    // ldaps: no certificate check, and the DC's own CA (its certificate names vm.ad.example.org).
    add(`ldaps-nocheck-${chase}`, {
      server_host: `ldaps://${DNS_DOMAIN}/`, ...common, ...upn, ...ch, query_filter: RECIPIENT, result_attribute: 'mail', tls_require_cert: 'no',
    });
    add(`ldaps-ca-${chase}`, {
      server_host: `ldaps://vm.${DNS_DOMAIN}/`, ...common, ...upn, ...ch, query_filter: RECIPIENT, result_attribute: 'mail',
      tls_require_cert: 'yes', tls_ca_cert_file: caFile,
    });
  }
  // Only at the domain root's default (no chase): the rest of the bind matrix.
  add('badpw', { server_host: named, ...common, bind_dn: BIND_UPN, bind_pw: 'wrong', query_filter: RECIPIENT, result_attribute: 'mail' });
  add('ldaps-ca-wrongname', {
    server_host: `ldaps://${DNS_DOMAIN}/`, ...common, ...upn, query_filter: RECIPIENT, result_attribute: 'mail',
    tls_require_cert: 'yes', tls_ca_cert_file: caFile,
  });
  add('ou-base', {
    server_host: named, search_base: `OU=Mail,${BASE_DN}`, scope: 'one', timeout: '3', ...upn, query_filter: RECIPIENT, result_attribute: 'mail,proxyAddresses',
  });
  return maps;
}

/** Group maps through the MaxValRange proxy (`proxy-*`) and straight to the DC (`direct-*`). */
export function rangeMaps(proxyUrl: string, directUrl: string): AdMap[] {
  const out: AdMap[] = [];
  for (const [prefix, url] of [['proxy', proxyUrl], ['direct', directUrl]] as const) {
    const base = { server_host: url, search_base: BASE_DN, scope: 'sub', timeout: '10', bind_dn: BIND_UPN, bind_pw: BIND_PW, query_filter: GROUP };
    out.push({ name: `${prefix}-groups`, body: cf({ ...base, special_result_attribute: 'member', result_attribute: 'mail' }) });
    out.push({ name: `${prefix}-leaf`, body: cf({ ...base, special_result_attribute: 'member', leaf_result_attribute: 'mail' }) });
  }
  return out;
}
