/**
 * tcp_table(5) through the real Postfix client: `postmap -q KEY tcp:HOST:PORT` against a
 * `--tcp-table NAME=LISTEN` listener must answer like the native ldap: table, including keys
 * that need %XX quoting, not-found and temporary errors.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../support/daemon.js';
import { classify, makePostfixConfigDir, postmapQuery, postmapQueryAll, writeFixtureCf } from '../support/postfix.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';

let slapd: Slapd;
let daemon: RunningDaemon;
let confDir: string;
let aliases: string;

beforeAll(async () => {
  slapd = await startSlapd({ ldif: directoryLdif() });
  confDir = await makePostfixConfigDir();
  const dir = makeTmpDir('tcp-');
  aliases = writeFixtureCf(dir, 'aliases', { LDAP_URL: slapd.url });
  daemon = await startDaemon(['--map', `aliases=${aliases}`, '--tcp-table', 'aliases=inet:127.0.0.1:0']);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await slapd?.destroy?.();
});

describe('tcp_table listener', () => {
  it('answers like the native ldap: table through postmap -q tcp:', async () => {
    const table = `tcp:127.0.0.1:${daemon.tcpPorts[0]}`;
    const keys = ['sales@example.org', 'SALES@Example.ORG', 'team lead@example.org', 'star*list@example.org', 'paren(list)@example.org',
      '100%@example.org', 'jürgen-liste@example.org', 'special-mails@example.org', 'nobody@example.org', 'loop-a@example.org', 'ghost@example.org'];
    const [native, ours] = await Promise.all([postmapQueryAll(confDir, `ldap:${aliases}`, keys, 8), postmapQueryAll(confDir, table, keys, 8)]);
    const outcomes = new Set<string>();
    for (const k of keys) {
      const n = native.get(k)!;
      const o = ours.get(k)!;
      outcomes.add(classify(n));
      expect(`${classify(o)} ${o.stdout}`, k).toBe(`${classify(n)} ${n.stdout}`);
    }
    expect([...outcomes].sort()).toEqual(['found', 'notfound', 'temp']);
  });

  it('speaks the wire format: %XX-decoded keys, quoted values, 500 for not found', async () => {
    const replies = await new Promise<string>((resolve, reject) => {
      const s = net.connect(daemon.tcpPorts[0]!, '127.0.0.1');
      let buf = '';
      s.on('data', (d) => { buf += d.toString('latin1'); if (buf.split('\n').length > 2) { s.destroy(); resolve(buf); } });
      s.on('error', reject);
      s.write('get team%20lead@example.org\nget nobody@example.org\n');
    });
    const [first, second] = replies.split('\n');
    expect(first).toMatch(/^200 \S+$/);
    expect(second).toBe('500 not%20found');
  });

  it('a malformed request closes that connection only', async () => {
    const closed = await new Promise<boolean>((resolve) => {
      const s = net.connect(daemon.tcpPorts[0]!, '127.0.0.1');
      s.on('close', () => resolve(true));
      s.on('error', () => undefined);
      s.write('put x y\n');
    });
    expect(closed).toBe(true);
    expect(classify(await postmapQuery(confDir, `tcp:127.0.0.1:${daemon.tcpPorts[0]}`, 'sales@example.org'))).toBe('found');
  });
});
