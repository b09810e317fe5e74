/**
 * What Postfix does with a lookup parameter, as far as a switch to socketmap is concerned:
 * which keys it asks (spec §0: fixed tables get fallback keys a socketmap never sees), and
 * which programs refuse a socketmap there (spec §11).
 */

export type KeyKind =
  /** mail_addr_find(): full address, then without extension, then @domain (emulated by fallback = address). */
  | 'address'
  /** Domain names (domain lists such as virtual_mailbox_domains): one key, no fallback. */
  | 'domain'
  /** check_*_access: address, domain and parent domains, localpart@, IP prefixes: not emulable. */
  | 'access'
  /** transport-like maps: address, then domain and parent domains: not emulable. */
  | 'transport'
  /** local(8) aliases and local recipients: bare localpart keys: not emulable. */
  | 'local'
  /** Anything else: asked the key as given. */
  | 'other';

export interface ParameterRole {
  keys: KeyKind;
  /** propagate_unmatched_extensions class ("canonical", "virtual") for address maps that propagate. */
  propagateClass?: 'canonical' | 'virtual';
  /** The delivery agent that opens this table as security-sensitive and refuses socketmap. */
  refusedBy?: 'virtual' | 'local';
  /** Only that delivery agent reads the parameter: switching it would gain nothing and break delivery. */
  onlyReader?: boolean;
}

const ROLES: Record<string, ParameterRole> = {
  virtual_alias_maps: { keys: 'address', propagateClass: 'virtual' },
  canonical_maps: { keys: 'address', propagateClass: 'canonical' },
  sender_canonical_maps: { keys: 'address', propagateClass: 'canonical' },
  recipient_canonical_maps: { keys: 'address', propagateClass: 'canonical' },
  virtual_mailbox_maps: { keys: 'address', refusedBy: 'virtual' },
  virtual_uid_maps: { keys: 'address', refusedBy: 'virtual', onlyReader: true },
  virtual_gid_maps: { keys: 'address', refusedBy: 'virtual', onlyReader: true },
  relocated_maps: { keys: 'address' },
  smtpd_sender_login_maps: { keys: 'address' },
  relay_recipient_maps: { keys: 'address' },
  sender_bcc_maps: { keys: 'address' },
  recipient_bcc_maps: { keys: 'address' },
  sender_dependent_relayhost_maps: { keys: 'address' },
  sender_dependent_default_transport_maps: { keys: 'address' },
  alias_maps: { keys: 'local', refusedBy: 'local' },
  local_recipient_maps: { keys: 'local' },
  transport_maps: { keys: 'transport' },
  virtual_alias_domains: { keys: 'domain' },
  virtual_mailbox_domains: { keys: 'domain' },
  relay_domains: { keys: 'domain' },
  mydestination: { keys: 'domain' },
};

/** The role of a main.cf parameter, or of one used as a master.cf -o override. */
export function roleOf(param: string): ParameterRole {
  const known = ROLES[param];
  if (known !== undefined) return known;
  // Restriction lists carry check_*_access tables.
  if (/_restrictions$/.test(param)) return { keys: 'access' };
  return { keys: 'other' };
}

/**
 * Order in which parameters name the maps they share: the best-known parameter first (a file
 * used by virtual_mailbox_maps and relay_recipient_maps is the map "virtual_mailbox_maps"),
 * then the rest in postconf's (alphabetical) order.
 */
export function namingRank(param: string): number {
  const i = Object.keys(ROLES).indexOf(param);
  return i < 0 ? Number.MAX_SAFE_INTEGER : i;
}

/** Parameters that name tables without looking anything up in them. */
export const NOT_LOOKUPS: ReadonlySet<string> = new Set(['proxy_read_maps', 'proxy_write_maps', 'config_directory']);

/** Why a key kind loses lookups as a socketmap, for the summary and the generated comments. */
export function lostLookups(kind: KeyKind): string | undefined {
  switch (kind) {
    case 'access':
      return 'check_*_access also asks a fixed (ldap:) table for parent domains, localpart@ and address without extension; a socketmap is asked only the full address and the domain itself';
    case 'transport':
      return 'transport(5) lookups of parent domains (.example.org) and of the address without extension go only to fixed (ldap:) tables';
    case 'local':
      return 'lookups of the bare localpart for $mydestination domains go only to fixed (ldap:) tables';
    default:
      return undefined;
  }
}
