/**
 * Daemon-wide limits on the wire, each with its clear error and its metric: max_request_size,
 * max_connections, idle_timeout and request_read_timeout (the slowloris guard). Small limits
 * here so the file runs in seconds; the defaults are checked through the config loader.
 */
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDaemonConfig } from '../../src/config/daemon-config.js';
import { defaultDaemonLimits } from '../../src/config/limits.js';
import { ConfigError } from '../../src/config/errors.js';
import { type DaemonWithMetrics, startDaemonWithMetrics } from '../support/daemon.js';
import { classify, makePostfixConfigDir, postmapQuery, writeFixtureCf } from '../support/postfix.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { frame, SocketmapClient } from '../support/socketmap-client.js';
import { sleep, waitFor } from '../support/wait.js';
import { makeTmpDir } from '../support/tmp.js';

let slapd: Slapd;
let daemon: DaemonWithMetrics;
let confDir: string;
let dir: string;
const MAX_CONN = 30;

beforeAll(async () => {
  slapd = await startSlapd({ ldif: directoryLdif() });
  confDir = await makePostfixConfigDir();
  dir = makeTmpDir('limits-');
  const aliases = writeFixtureCf(dir, 'aliases', { LDAP_URL: slapd.url });
  const conf = join(dir, 'daemon.cf');
  // max_request_size stays at its default (16384): that default is what is tested.
  writeFileSync(conf, [
    `max_connections = ${MAX_CONN}`,
    'idle_timeout = 2s',
    'request_read_timeout = 2',
    `map.aliases = ${aliases}`,
  ].join('\n') + '\n');
  daemon = await startDaemonWithMetrics(['--config', conf, '--socketmap', 'inet:127.0.0.1:0', '--tcp-table', 'aliases=inet:127.0.0.1:0']);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await slapd?.destroy?.();
});

describe('limit settings', () => {
  it('have sane defaults and are daemon-wide top-level keys', () => {
    expect(defaultDaemonLimits()).toEqual({ maxRequestSize: 16384, maxConnections: 2000, idleTimeout: 60, requestReadTimeout: 10, socketmapMaxReplySize: 100000 });
    const f = join(dir, 'limits.cf');
    writeFileSync(f, 'max_request_size = 4096\nmax_connections = 10\nidle_timeout = 2m\nrequest_read_timeout = 5s\nsocketmap_max_reply_size = 50000\n');
    expect(loadDaemonConfig(f).limits).toEqual({ maxRequestSize: 4096, maxConnections: 10, idleTimeout: 120, requestReadTimeout: 5, socketmapMaxReplySize: 50000 });
    expect(loadDaemonConfig(undefined, { settings: ['max_connections=7'] }).limits?.maxConnections).toBe(7);
    writeFileSync(f, 'map.a = /x.cf\nmap.a.max_connections = 10\n');
    expect(() => loadDaemonConfig(f)).toThrow(/max_connections is daemon-wide/);
    writeFileSync(f, 'max_request_size = 10\n');
    expect(() => loadDaemonConfig(f)).toThrow(ConfigError);
    writeFileSync(f, 'idle_timeout = 0\n');
    expect(() => loadDaemonConfig(f)).toThrow(/idle_timeout|< 1/);
    writeFileSync(f, 'map.a = /x.cf\nmap.a.ldap_max_in_flight = 8\n');
    expect(loadDaemonConfig(f).maps[0]!.settings.ldapMaxInFlight).toBe(8);
  });
});

describe('max_request_size (default 16384)', () => {
  it('a request of exactly the limit is answered; one byte more closes the connection before any payload is read', async () => {
    const before = await daemon.metric('ldap_socketmap_protocol_errors_total', { protocol: 'socketmap', reason: 'too_long' });
    const ok = new SocketmapClient(daemon.ports[0]!);
    const key = 'k'.repeat(16384 - 'aliases '.length);
    expect(await ok.ask('aliases', key)).toBe('NOTFOUND ');
    ok.end();
    const big = new SocketmapClient(daemon.ports[0]!);
    big.send('16385:'); // only the length: the daemon refuses to wait for the payload
    expect(await big.waitClosed(3_000)).toBe(true);
    await daemon.waitForLog(/malformed request \(too_long\): .*16384 \(max_request_size = 16384\); closing connection/);
    expect(await daemon.metric('ldap_socketmap_protocol_errors_total', { protocol: 'socketmap', reason: 'too_long' })).toBe(before + 1);
  });

  it('tcp_table: a key of 6000 non-ASCII bytes (18000 on the %XX-encoded line) is answered; a line over three times the limit closes that connection', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect(daemon.tcpPorts[0]!, '127.0.0.1');
      let buf = '';
      s.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        if (buf.includes('\n')) { s.end(); resolve(buf); }
      });
      s.on('error', reject);
      s.write(`get ${'%C3%A9'.repeat(3000)}\n`);
    });
    expect(answer).toMatch(/^500 /);
    const closed = await new Promise<boolean>((resolve) => {
      const s = net.connect(daemon.tcpPorts[0]!, '127.0.0.1');
      s.on('close', () => resolve(true));
      s.on('error', () => undefined);
      s.write('get ' + 'x'.repeat(3 * 16384 + 2));
    });
    expect(closed).toBe(true);
    expect(await daemon.metric('ldap_socketmap_protocol_errors_total', { protocol: 'tcp_table', reason: 'line_too_long' })).toBe(1);
  });
});

describe(`max_connections (${MAX_CONN} here)`, () => {
  it('connections beyond the limit get a TEMP answer and are closed; those open are undisturbed', async () => {
    expect(await daemon.metric('ldap_socketmap_client_connections_max')).toBe(MAX_CONN);
    const held = Array.from({ length: MAX_CONN }, () => new SocketmapClient(daemon.ports[0]!));
    // Each held connection has been accepted and counted once it answered.
    for (const c of held) expect(await c.ask('aliases', 'sales@example.org')).toMatch(/^OK /);
    const extra = Array.from({ length: 5 }, () => new SocketmapClient(daemon.ports[0]!));
    for (const c of extra) {
      c.send(frame('aliases sales@example.org'));
      expect(await c.reply()).toBe('TEMP too many connections to ldap-socketmap (max_connections = 30)');
      expect(await c.waitClosed()).toBe(true);
    }
    // The real Postfix client sees a temporary error with the reason.
    const pm = await postmapQuery(confDir, daemon.table('aliases'), 'sales@example.org');
    expect(classify(pm)).toBe('temp');
    expect(pm.stderr).toContain('max_connections');
    // tcp_table listener shares the limit.
    const t = await new Promise<string>((resolve) => {
      const s = net.connect(daemon.tcpPorts[0]!, '127.0.0.1');
      let got = '';
      s.on('data', (d) => { got += d.toString(); });
      s.on('close', () => resolve(got));
      s.on('error', () => undefined);
      s.write('get sales@example.org\n');
    });
    expect(t).toMatch(/^400 too%20many%20connections/);
    // The held ones are untouched.
    for (const c of held) expect(await c.ask('aliases', 'eng@example.org')).toMatch(/^OK /);
    expect(held.every((c) => !c.closed)).toBe(true);
    expect(await daemon.metric('ldap_socketmap_client_connections_rejected_total', { protocol: 'socketmap' })).toBe(6);
    expect(await daemon.metric('ldap_socketmap_client_connections_rejected_total', { protocol: 'tcp_table' })).toBe(1);
    expect(daemon.log.filter((l) => /max_connections\); refusing new ones/.test(l)).length).toBe(1);
    // Room again once some close.
    for (const c of held.slice(0, 5)) c.end();
    await waitFor('room again', () => daemon.metric('ldap_socketmap_client_connections', { protocol: 'socketmap' }), (n) => n <= MAX_CONN - 5, 20_000, 100);
    const again = new SocketmapClient(daemon.ports[0]!);
    expect(await again.ask('aliases', 'sales@example.org')).toMatch(/^OK /);
    again.end();
    for (const c of held) c.end();
    await waitFor('all closed', () => daemon.metric('ldap_socketmap_client_connections', { protocol: 'socketmap' }), (n) => n === 0, 20_000, 100);
  }, 30_000);
});

describe('idle_timeout (2 s here)', () => {
  it('closes a connection silent for idle_timeout, not one that keeps asking', async () => {
    const before = await daemon.metric('ldap_socketmap_client_timeouts_total', { protocol: 'socketmap', kind: 'idle' });
    const idle = new SocketmapClient(daemon.ports[0]!);
    const busy = new SocketmapClient(daemon.ports[0]!);
    expect(await idle.ask('aliases', 'sales@example.org')).toMatch(/^OK /);
    const t0 = Date.now();
    for (let i = 0; i < 4; i++) {
      expect(await busy.ask('aliases', 'sales@example.org')).toMatch(/^OK /);
      await sleep(900);
    }
    expect(idle.closed).toBe(true);
    expect(idle.closedAt - t0).toBeGreaterThan(1_500);
    expect(idle.closedAt - t0).toBeLessThan(3_500);
    expect(busy.closed).toBe(false);
    busy.end();
    expect(await daemon.metric('ldap_socketmap_client_timeouts_total', { protocol: 'socketmap', kind: 'idle' })).toBe(before + 1);
  });
});

describe('request_read_timeout (2 s here): slowloris', () => {
  it('a request trickled byte by byte is cut off; a request split in two quick parts is fine', async () => {
    const before = await daemon.metric('ldap_socketmap_client_timeouts_total', { protocol: 'socketmap', kind: 'read' });
    const slow = new SocketmapClient(daemon.ports[0]!);
    await slow.ready();
    const payload = frame('aliases sales@example.org');
    const t0 = Date.now();
    let sent = 0;
    // One byte per 300 ms keeps the idle timer (2 s) from ever firing.
    while (!slow.closed && sent < payload.length && Date.now() - t0 < 8_000) {
      slow.send(payload.subarray(sent, sent + 1));
      sent++;
      await sleep(300);
    }
    expect(slow.closed).toBe(true);
    expect(sent).toBeLessThan(payload.length);
    expect(slow.closedAt - t0).toBeGreaterThan(1_500);
    expect(slow.closedAt - t0).toBeLessThan(3_500);
    await daemon.waitForLog(/request still incomplete after 2 s \(request_read_timeout\); closing connection/);
    expect(await daemon.metric('ldap_socketmap_client_timeouts_total', { protocol: 'socketmap', kind: 'read' })).toBe(before + 1);

    const split = new SocketmapClient(daemon.ports[0]!);
    split.send(payload.subarray(0, 10));
    await sleep(500);
    split.send(payload.subarray(10));
    expect(await split.reply()).toMatch(/^OK /);
    split.end();
  });
});
