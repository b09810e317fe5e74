/**
 * systemd socket activation and Unix socket permissions: the daemon serves listening sockets
 * handed over with LISTEN_FDS/LISTEN_FDNAMES (here by the real systemd-socket-activate, which
 * starts it on the first connection, as a .socket unit does), and sets the mode and group of
 * Unix sockets it creates so that Postfix's user can connect.
 */
import { spawn } from 'node:child_process';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, startDaemon } from '../support/daemon.js';
import { classify, makePostfixConfigDir, postmapQuery, writeFixtureCf } from '../support/postfix.js';
import { directoryLdif, freePort, startSlapd, type Slapd } from '../support/slapd.js';
import { sleep } from '../support/wait.js';
import { makeTmpDir } from '../support/tmp.js';

let slapd: Slapd;
let confDir: string;
let dir: string;
let aliases: string;

beforeAll(async () => {
  slapd = await startSlapd({ ldif: directoryLdif() });
  confDir = await makePostfixConfigDir();
  dir = makeTmpDir('sd-');
  chmodSync(dir, 0o755);
  aliases = writeFixtureCf(dir, 'aliases', { LDAP_URL: slapd.url });
}, 60_000);

afterAll(async () => {
  await slapd?.destroy?.();
});

describe('socket activation', () => {
  it('serves the socket systemd hands over, started by the first connection', async () => {
    const port = await freePort();
    const tcpPort = await freePort();
    const proc = spawn('systemd-socket-activate', [
      '-l', `127.0.0.1:${port}`, '-l', `127.0.0.1:${tcpPort}`, '--fdname=socketmap:tcp_table.aliases',
      process.execPath, CLI, 'serve', '--map', `aliases=${aliases}`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const log: string[] = [];
    proc.stderr.on('data', (d: Buffer) => log.push(d.toString()));
    try {
      // Nothing runs yet; this connection waits in the backlog while the daemon starts.
      await sleep(500);
      const r = await postmapQuery(confDir, `socketmap:inet:127.0.0.1:${port}:aliases`, 'eng@example.org');
      expect(classify(r), log.join('')).toBe('found');
      expect(log.join('')).toMatch(new RegExp(`listening on socketmap inet:127\\.0\\.0\\.1:${port}, tcp_table inet:127\\.0\\.0\\.1:${tcpPort}`));
      expect(classify(await postmapQuery(confDir, `tcp:127.0.0.1:${tcpPort}`, 'eng@example.org'))).toBe('found');
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
  });

  it('refuses a socket with a name it does not know, saying which names it takes', async () => {
    const port = await freePort();
    const proc = spawn('systemd-socket-activate', ['-l', `127.0.0.1:${port}`, '--fdname=bogus', process.execPath, CLI, 'serve', '--map', `aliases=${aliases}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    await sleep(300);
    const answer = await postmapQuery(confDir, `socketmap:inet:127.0.0.1:${port}:aliases`, 'eng@example.org');
    expect(classify(answer)).toBe('temp');
    const code = await exited;
    expect(code).not.toBe(0);
    expect(err).toMatch(/named "bogus"; expected "socketmap" or "tcp_table.MAP"/);
  });
});

describe('unix socket permissions', () => {
  it('applies unix_socket_mode and unix_socket_group so Postfix can connect', async () => {
    const path = join(dir, 'perm.sock');
    const gid = Number(readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('nogroup:'))!.split(':')[2]);
    const d = await startDaemon(['--socketmap', `unix:${path}`, '--map', `aliases=${aliases}`, '--set', 'unix_socket_mode=0640', '--set', 'unix_socket_group=nogroup']);
    try {
      const st = statSync(path);
      expect(st.mode & 0o777).toBe(0o640);
      expect(st.gid).toBe(gid);
      expect(classify(await postmapQuery(confDir, `socketmap:unix:${path}:aliases`, 'eng@example.org'))).toBe('found');
    } finally {
      await d.stop();
    }
  });

  it('defaults to 0660, never world-accessible', async () => {
    const path = join(dir, 'default.sock');
    const d = await startDaemon(['--socketmap', `unix:${path}`, '--map', `aliases=${aliases}`]);
    try {
      expect(statSync(path).mode & 0o777).toBe(0o660);
    } finally {
      await d.stop();
    }
  });
});
