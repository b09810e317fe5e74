/**
 * The "many MTAs" set-up as postfix-snippets/fleet/ documents it, made runnable: the consumer's
 * slapd.conf lines, the ldapi + SASL EXTERNAL .cf file and the daemon config, with only the
 * host-specific values (provider URL, replicator credentials, uid numbers, paths, listeners)
 * replaced. The tests run what admins copy, so a snippet that stops working fails a test.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './daemon.js';
import { runCommand } from './run.js';
import type { Slapd } from './slapd.js';

export const FLEET_SNIPPETS = join(REPO, 'postfix-snippets', 'fleet');

const DATABASE_MARKER = /^# --- database section.*$/m;

export function fleetSnippet(name: string): string {
  return readFileSync(join(FLEET_SNIPPETS, name), 'utf8');
}

/** Replaces `re` in `text`, insisting that it matched (a snippet edit must not silently drop a substitution). */
function must(text: string, re: RegExp, by: string, what: string): string {
  if (!re.test(text)) throw new Error(`postfix-snippets/fleet: ${what} not found (${re})`);
  return text.replace(re, by);
}

export interface ConsumerConfig {
  /** Lines for slapd.conf's global section (startSlapd's `globalConfig`). */
  globalConfig: string;
  /** Lines for the database section (startSlapd's `extraConfig`). */
  extraConfig: string;
}

/**
 * slapd-consumer.conf for a consumer of `provider`, its authz-regexp rules mapping `uid` (the
 * uid the daemon and postmap run as), syncrepl retrying every second.
 */
export function consumerConfig(provider: Pick<Slapd, 'url' | 'rootDn' | 'rootPw'>, uid: number): ConsumerConfig {
  let text = fleetSnippet('slapd-consumer.conf');
  text = must(text, /uidNumber=\d+,/g, `uidNumber=${uid},`, 'authz-regexp uidNumber');
  text = must(text, /ldap:\/\/ldap1\.example\.org\//g, provider.url, 'provider URL');
  text = must(text, /^(\s+)binddn="[^"]*"/m, `$1binddn="${provider.rootDn}"`, 'syncrepl binddn');
  text = must(text, /^(\s+)credentials=\S+/m, `$1credentials=${provider.rootPw}`, 'syncrepl credentials');
  text = must(text, /^(\s+)retry="[^"]*"/m, '$1retry="1 +"', 'syncrepl retry');
  const m = DATABASE_MARKER.exec(text);
  if (!m) throw new Error('postfix-snippets/fleet/slapd-consumer.conf: no "# --- database section" line');
  return { globalConfig: text.slice(0, m.index), extraConfig: text.slice(m.index) };
}

/** postfix-snippets/fleet/ldap-aliases.cf reading the consumer's socket. */
export function fleetAliasesCf(consumer: Pick<Slapd, 'ldapiUrl'>): string {
  if (!consumer.ldapiUrl) throw new Error('fleetAliasesCf: the consumer must listen on ldapi://');
  return must(fleetSnippet('ldap-aliases.cf'), /^server_host = .*$/m, `server_host = ${consumer.ldapiUrl}`, 'server_host');
}

/**
 * postfix-snippets/fleet/ldap-socketmap.conf with /etc/postfix/ replaced by `dir`, listeners on
 * port 0, and the given settings changed (each must be in the snippet).
 */
export function fleetDaemonConf(dir: string, settings: Record<string, string> = {}): string {
  let text = fleetSnippet('ldap-socketmap.conf').replaceAll('/etc/postfix/', `${dir}/`);
  text = must(text, /^socketmap_listen = .*$/m, 'socketmap_listen = inet:127.0.0.1:0', 'socketmap_listen');
  text = must(text, /^metrics_listen = .*$/m, 'metrics_listen = 127.0.0.1:0', 'metrics_listen');
  for (const [k, v] of Object.entries(settings)) text = must(text, new RegExp(`^${k.replace(/\./g, '\\.')} = .*$`, 'm'), `${k} = ${v}`, k);
  return text;
}

/** The contextCSN values of a slapd's suffix, read as its root DN (sorted; empty when none yet). */
export async function contextCsn(slapd: Slapd): Promise<string[]> {
  const r = await runCommand('/usr/bin/ldapsearch', ['-x', '-LLL', '-o', 'ldif-wrap=no', '-H', slapd.url, '-D', slapd.rootDn, '-w', slapd.rootPw, '-b', slapd.suffix, '-s', 'base', '(objectClass=*)', 'contextCSN'], { timeoutMs: 5000 });
  if (r.code !== 0 && r.code !== 32) throw new Error(`ldapsearch contextCSN on ${slapd.url} failed (exit ${r.code}): ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.startsWith('contextCSN: ')).map((l) => l.slice('contextCSN: '.length)).sort();
}

/** Whether an entry exists on a slapd (read as its root DN). */
export async function entryExists(slapd: Slapd, dn: string): Promise<boolean> {
  const r = await runCommand('/usr/bin/ldapsearch', ['-x', '-LLL', '-H', slapd.url, '-D', slapd.rootDn, '-w', slapd.rootPw, '-b', dn, '-s', 'base', '(objectClass=*)', '1.1'], { timeoutMs: 5000 });
  if (r.code === 0) return true;
  if (r.code === 32) return false;
  throw new Error(`ldapsearch ${dn} on ${slapd.url} failed (exit ${r.code}): ${r.stderr}`);
}

/** The values of one attribute of an entry on a slapd (read as its root DN). */
export async function attributeValues(slapd: Slapd, dn: string, attr: string): Promise<string[]> {
  const r = await runCommand('/usr/bin/ldapsearch', ['-x', '-LLL', '-o', 'ldif-wrap=no', '-H', slapd.url, '-D', slapd.rootDn, '-w', slapd.rootPw, '-b', dn, '-s', 'base', '(objectClass=*)', attr], { timeoutMs: 5000 });
  if (r.code === 32) return [];
  if (r.code !== 0) throw new Error(`ldapsearch ${dn} on ${slapd.url} failed (exit ${r.code}): ${r.stderr}`);
  const prefix = `${attr.toLowerCase()}: `;
  return r.stdout.split('\n').filter((l) => l.toLowerCase().startsWith(prefix)).map((l) => l.slice(prefix.length));
}
