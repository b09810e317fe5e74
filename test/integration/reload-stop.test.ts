/**
 * The daemon as a service: SIGHUP reloads every file all-or-nothing without dropping open
 * connections, SIGTERM lets an in-flight answer finish and exits 0, and Unix sockets are
 * created, protected from a second daemon, replaced when stale and removed on stop.
 */
import { existsSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon } from '../support/daemon.js';
import { classify, makePostfixConfigDir, postmapQuery } from '../support/postfix.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { sleep } from '../support/wait.js';
import { SocketmapClient } from '../support/socketmap-client.js';
import { makeTmpDir } from '../support/tmp.js';

let slapd: Slapd;
let confDir: string;
let dir: string;

const ALIASES = (url: string, attr: string) => `server_host = ${url}
search_base = ou=Groups,dc=example,dc=org
query_filter = (&(objectClass=*)(listName=%u))
result_attribute = ${attr}
special_result_attribute = contact
`;

beforeAll(async () => {
  slapd = await startSlapd({ ldif: directoryLdif() });
  confDir = await makePostfixConfigDir();
  dir = makeTmpDir('reload-');
  chmodSync(dir, 0o755);
}, 60_000);

afterAll(async () => {
  await slapd?.destroy?.();
});

describe('reload (SIGHUP)', () => {
  it('re-reads the config and .cf files; open connections stay; a bad file keeps the old config', async () => {
    const cf = join(dir, 'aliases.cf');
    const conf = join(dir, 'daemon.conf');
    writeFileSync(cf, ALIASES(slapd.url, 'mail'));
    writeFileSync(conf, `socketmap_listen = inet:127.0.0.1:0\nmap.aliases = ${cf}\ncache_ttl = 0\ncache_negative_ttl = 0\n`);
    const d = await startDaemon(['--config', conf]);
    try {
      const sock = await SocketmapClient.connect(d.ports[0]!);
      expect(await sock.ask('aliases', 'eng@example.org')).toMatch(/^OK .*@/);

      // result_attribute = uid now: members' uids instead of addresses.
      writeFileSync(cf, ALIASES(slapd.url, 'uid'));
      d.proc.kill('SIGHUP');
      await d.waitForLog(/reloaded: maps aliases/);
      const after = await sock.ask('aliases', 'sales@example.org');
      expect(after).toMatch(/^OK /);
      expect(after).not.toContain('@');

      // A broken file: logged, old config stays in force, connection still served.
      writeFileSync(cf, ALIASES(slapd.url, 'uid') + 'bind = sasl\n');
      d.proc.kill('SIGHUP');
      await d.waitForLog(/reload failed, old configuration stays in force: .*aliases\.cf:6: bind/);
      expect(await sock.ask('aliases', 'sales@example.org')).toBe(after);
      sock.end();
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });
});

describe('stop (SIGTERM)', () => {
  it('finishes the answer in flight, then exits 0', async () => {
    const cf = join(dir, 'stop.cf');
    writeFileSync(cf, ALIASES(slapd.url, 'mail'));
    const d = await startDaemon(['--socketmap', 'inet:127.0.0.1:0', '--map', `aliases=${cf}`, '--set', 'cache_ttl=0']);
    const sock = await SocketmapClient.connect(d.ports[0]!);
    expect(await sock.ask('aliases', 'eng@example.org')).toMatch(/^OK /);
    slapd.pause();
    let reply: Promise<string>;
    try {
      reply = sock.ask('aliases', 'sales@example.org', Infinity);
      await sleep(300);
      d.proc.kill('SIGTERM');
      await sleep(500);
      // New connections are no longer accepted while draining.
      await expect(SocketmapClient.connect(d.ports[0]!).then((c) => { c.end(); return 'accepted'; })).rejects.toThrow();
    } finally {
      slapd.resume();
    }
    expect(await reply).toBe('OK alice@example.org,robert@example.org,Bob.Builder@Example.ORG,bob@example.org,sales-archive@elsewhere.net');
    expect(await d.stop()).toBe(0);
  });
});

describe('unix sockets', () => {
  it('serves postmap over unix:, refuses to steal a live socket, replaces a stale one, removes it on stop', async () => {
    const cf = join(dir, 'unix.cf');
    writeFileSync(cf, ALIASES(slapd.url, 'mail'));
    const path = join(dir, 'socketmap.sock');
    const d = await startDaemon(['--socketmap', `unix:${path}`, '--map', `aliases=${cf}`]);
    try {
      const r = await postmapQuery(confDir, `socketmap:unix:${path}:aliases`, 'eng@example.org');
      expect(classify(r)).toBe('found');
      // A second daemon on the same path must fail loudly, not take the socket over.
      await expect(startDaemon(['--socketmap', `unix:${path}`, '--map', `aliases=${cf}`], { timeoutMs: 10_000 })).rejects.toThrow(/in use/);
      expect(classify(await postmapQuery(confDir, `socketmap:unix:${path}:aliases`, 'eng@example.org'))).toBe('found');
    } finally {
      expect(await d.stop()).toBe(0);
    }
    expect(existsSync(path)).toBe(false);

    // A socket file left behind by a crash (SIGKILL leaves it) is replaced.
    const crashed = await startDaemon(['--socketmap', `unix:${path}`, '--map', `aliases=${cf}`]);
    await crashed.stop('SIGKILL');
    expect(existsSync(path)).toBe(true);
    const again = await startDaemon(['--socketmap', `unix:${path}`, '--map', `aliases=${cf}`]);
    try {
      expect(classify(await postmapQuery(confDir, `socketmap:unix:${path}:aliases`, 'eng@example.org'))).toBe('found');
    } finally {
      expect(await again.stop()).toBe(0);
    }
  });
});
