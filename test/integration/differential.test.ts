/**
 * The referee: for every fixture map and a key set written to break us, the real
 * `postmap -q KEY ldap:FILE.cf` and `postmap -q KEY socketmap:inet:...:NAME` (through the
 * daemon, started as users start it) must print the same bytes and end the same way
 * (found / not found / temporary error).
 */
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../support/daemon.js';
import { bigListLdif } from '../support/fixtures.js';
import { classify, makePostfixConfigDir, postmapBatch, postmapQueryAll, type PostmapResult } from '../support/postfix.js';
import { deadPort, directoryLdif, FIXTURES_DIR, startSlapd, type Slapd } from '../support/slapd.js';
import { writeFixtureCf } from '../support/postfix.js';
import { makeTmpDir } from '../support/tmp.js';
import { COMMON_KEYS, listKeys, MAP_KEYS, mailKeys } from '../support/differential-keys.js';

let slapd: Slapd;
let daemon: RunningDaemon;
let confDir: string;
const cf = new Map<string, string>();

beforeAll(async () => {
  slapd = await startSlapd({ ldif: [directoryLdif(), bigListLdif('big1500', 1500)] });
  confDir = await makePostfixConfigDir();
  const dir = makeTmpDir('diff-');
  const vars = { LDAP_URL: slapd.url, LDAP_HOST: slapd.host, LDAP_PORT: String(slapd.port), DEAD_PORT: String(deadPort()) };
  for (const f of readdirSync(FIXTURES_DIR).filter((n) => n.endsWith('.cf.in'))) {
    const name = f.replace(/\.cf\.in$/, '');
    cf.set(name, writeFixtureCf(dir, name, vars));
  }
  daemon = await startDaemon([
    '--socketmap', 'inet:127.0.0.1:0',
    ...[...cf].flatMap(([name, file]) => ['--map', `${name}=${file}`]),
  ]);
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  await slapd?.stop();
});

function show(r: PostmapResult): string {
  return `${classify(r)} ${JSON.stringify(r.stdout)}`;
}

function brief(s: string): string {
  return s.length > 300 ? `${s.slice(0, 300)}...(${s.length} chars)` : s;
}

async function compare(name: string, keys: string[]): Promise<void> {
  const file = cf.get(name);
  if (!file) throw new Error(`no fixture ${name}`);
  const [native, ours] = await Promise.all([
    postmapQueryAll(confDir, `ldap:${file}`, keys, 16),
    postmapQueryAll(confDir, daemon.table(name), keys, 16),
  ]);
  const diffs: string[] = [];
  const outcomes = new Set<string>();
  for (const k of keys) {
    const n = native.get(k)!;
    const o = ours.get(k)!;
    outcomes.add(classify(n));
    expect(classify(n), `native postmap failed oddly for ${k}: ${n.stderr}`).not.toBe('other');
    if (show(n) !== show(o)) diffs.push(`${JSON.stringify(k)}: native ${brief(show(n))} | socketmap ${brief(show(o))} ${brief(o.stderr.trim())}`);
  }
  expect(diffs, `map ${name}`).toEqual([]);
  // A fixture that only ever answers one way tests little: each map must see at least two outcomes.
  expect(outcomes.size, `map ${name} outcomes ${[...outcomes].join(',')}`).toBeGreaterThanOrEqual(2);
}

describe('socketmap answers equal native ldap: answers', () => {
  it('core alias map (lists, nesting, loops, URLs, escaping, folding, big list)', async () => {
    await compare('aliases', MAP_KEYS.aliases!);
  });

  it('core mailbox map', async () => {
    await compare('mailboxes', MAP_KEYS.mailboxes!);
  });

  it('every feature fixture map', async () => {
    const names = [...cf.keys()].filter((n) => n !== 'aliases' && n !== 'mailboxes');
    expect(names.length).toBeGreaterThan(10);
    const keys = [...new Set([...COMMON_KEYS, ...listKeys(), ...mailKeys()])];
    for (const name of names) await compare(name, keys);
  }, 600_000);

  it('postmap -q - batches print the same lines and stop at the same key', async () => {
    // Found and not-found keys first, so the batch gets far before the first temporary error
    // (postmap -q - stops there, which both sides must also do at the same key).
    const all = MAP_KEYS.aliases!;
    const native = await postmapQueryAll(confDir, `ldap:${cf.get('aliases')}`, all, 16);
    const temps = all.filter((k) => classify(native.get(k)!) === 'temp');
    expect(temps.length).toBeGreaterThan(0);
    const keys = [...all.filter((k) => !temps.includes(k)), ...temps];
    const [n, o] = await Promise.all([
      postmapBatch(confDir, `ldap:${cf.get('aliases')}`, keys),
      postmapBatch(confDir, daemon.table('aliases'), keys),
    ]);
    // Compare line by line so a difference reads as the key it concerns.
    expect(o.stdout.split('\n').map(brief)).toEqual(n.stdout.split('\n').map(brief));
    expect(o.stdout === n.stdout).toBe(true);
    expect(o.code).toBe(n.code);
    expect(n.stdout.split('\n').length).toBeGreaterThan(3);
  });
});
