/**
 * LDAP URLs as special_result_attribute values (spec §4.4): OpenLDAP's ldap_is_ldap_url decides
 * whether a value is a URL at all; ldap_url_parse extracts base DN, attributes, scope and filter,
 * percent-decoded. Host, port and extensions are ignored by dict_ldap (the same connection is
 * used), so they are only checked for syntax.
 */
export interface LdapUrl {
  dn: string;
  attributes: string[];
  scope: 'base' | 'one' | 'sub';
  filter: string;
}

const URL_SCHEME = /^(?:url:)?<?(ldap|ldaps|ldapi|cldap):\/\//i;

export function isLdapUrl(value: string): boolean {
  return URL_SCHEME.test(value.trimStart());
}

export class LdapUrlError extends Error {}

function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new LdapUrlError(`bad percent escape in ${JSON.stringify(s)}`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      for (const b of Buffer.from(s[i]!, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

export function parseLdapUrl(value: string): LdapUrl {
  let s = value.trim();
  if (/^url:/i.test(s)) s = s.slice(4);
  if (s.startsWith('<')) {
    if (!s.endsWith('>')) throw new LdapUrlError('unbalanced <> around URL');
    s = s.slice(1, -1);
  }
  const m = /^(ldap|ldaps|ldapi|cldap):\/\/([^/?]*)(.*)$/i.exec(s);
  if (!m) throw new LdapUrlError('not an LDAP URL');
  let rest = m[3] ?? '';
  if (rest === '') return { dn: '', attributes: [], scope: 'base', filter: '(objectclass=*)' };
  if (!rest.startsWith('/')) throw new LdapUrlError('missing / after host');
  rest = rest.slice(1);
  const parts = rest.split('?');
  if (parts.length > 5) throw new LdapUrlError('too many ? separated fields');
  const [dn = '', attrs = '', scope = '', filter = ''] = parts;
  const scopeWord = percentDecode(scope).toLowerCase();
  let parsedScope: LdapUrl['scope'];
  if (scopeWord === '' || scopeWord === 'base') parsedScope = 'base';
  else if (scopeWord === 'one' || scopeWord === 'onelevel') parsedScope = 'one';
  else if (scopeWord === 'sub' || scopeWord === 'subtree') parsedScope = 'sub';
  else throw new LdapUrlError(`bad scope ${JSON.stringify(scopeWord)}`);
  const f = percentDecode(filter);
  return {
    dn: percentDecode(dn),
    attributes: attrs === '' ? [] : attrs.split(',').map(percentDecode).filter((a) => a !== ''),
    scope: parsedScope,
    // OpenLDAP sends a missing filter as (objectclass=*).
    filter: f === '' ? '(objectclass=*)' : f,
  };
}
