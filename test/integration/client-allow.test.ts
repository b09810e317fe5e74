/**
 * client_allow on the wire, with the built daemon, a real slapd and real `postmap -q`:
 * - a daemon on 127.0.0.1 allowing only 127.0.0.1/32 closes a client from 127.0.0.2 without a
 *   single byte, on its socketmap and its tcp_table listener, counts it in
 *   ldap_socketmap_client_connections_denied_total and logs it (rate-limited) with the address;
 *   clients from 127.0.0.1, Postfix's own socketmap client included, get their answers;
 * - a reload (SIGHUP) changes the list for new connections; open ones are kept;
 * - sockets handed over by systemd (the real systemd-socket-activate) are filtered when inet,
 *   not when unix;
 * - a dual-stack [::] listener matches IPv4-mapped peers (::ffff:127.0.0.1) against IPv4 rules;
 * - a listener on 0.0.0.0 without client_allow draws one startup warning naming the setting,
 *   and none once the setting is given; a bad network is a config error (exit 2).
 * Only loopback traffic: the 0.0.0.0 and [::] listeners are reached through 127.0.0.x and ::1.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, startDaemon, startDaemonWithMetrics, type RunningDaemon } from '../support/daemon.js';
import { metricsText, metricValue } from '../support/metrics.js';
import { classify, makePostfixConfigDir, postmapQuery, valueOf, writeFixtureCf } from '../support/postfix.js';
import { directoryLdif, freePort, startSlapd, type Slapd } from '../support/slapd.js';
import { frame } from '../support/socketmap-client.js';
import { makeTmpDir } from '../support/tmp.js';
import { waitFor } from '../support/wait.js';

const KEY = 'sales@example.org';
const DENIED = 'ldap_socketmap_client_connections_denied_total';

let slapd: Slapd;
let confDir: string;
let dir: string;
let aliasesCf: string;
/** What Postfix's own ldap: table answers for KEY: the daemon must answer the same. */
let expected: string;
let daemon: RunningDaemon;
let conf: string;
const extra: RunningDaemon[] = [];

interface Exchange {
  /** Every byte the server sent before the connection ended. */
  bytes: Buffer;
  /** The server ended the connection (FIN or reset) rather than our timeout. */
  closedByServer: boolean;
}

/**
 * Connects from `localAddress`, sends `request`, and collects what comes back until the server
 * closes or `untilBytes` says the answer is complete (then we close).
 */
function exchange(
  port: number,
  request: Buffer | string,
  opts: { host?: string; localAddress?: string; untilBytes?: (b: Buffer) => boolean; ms?: number } = {},
): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const host = opts.host ?? '127.0.0.1';
    const s = net.connect({ host, port, ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}) });
    let bytes = Buffer.alloc(0);
    let done = false;
    const finish = (closedByServer: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ bytes, closedByServer });
    };
    const timer = setTimeout(() => finish(false), opts.ms ?? 5_000);
    s.on('connect', () => s.write(request));
    s.on('data', (d: Buffer) => {
      bytes = Buffer.concat([bytes, d]);
      if (opts.untilBytes?.(bytes)) finish(false);
    });
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', (err: NodeJS.ErrnoException) => {
      // A reset is the server closing on us with our request unread: that is a close.
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') finish(true);
      else if (!done) { done = true; clearTimeout(timer); reject(err); }
    });
  });
}

const wholeFrame = (b: Buffer): boolean => {
  const colon = b.indexOf(0x3a);
  return colon > 0 && b.length >= colon + 2 + Number(b.subarray(0, colon).toString());
};
const wholeLine = (b: Buffer): boolean => b.includes(0x0a);

const socketmapAsk = (port: number, opts: { host?: string; localAddress?: string } = {}): Promise<Exchange> =>
  exchange(port, frame(`aliases ${KEY}`), { ...opts, untilBytes: wholeFrame });
const tcpAsk = (port: number, opts: { localAddress?: string } = {}): Promise<Exchange> =>
  exchange(port, `get ${KEY}\n`, { ...opts, untilBytes: wholeLine });

async function denied(d: RunningDaemon, protocol: string): Promise<number> {
  return metricValue(await metricsText(d.metricsPort!), DENIED, { protocol });
}

/** The CLI as a shell would start it (no journal on stderr). */
const run = (args: string[]) => runCli(args, { env: { JOURNAL_STREAM: '' } });

const linesMatching = (d: RunningDaemon, re: RegExp): string[] => d.log.filter((l) => re.test(l));

async function reloadWith(d: RunningDaemon, text: string): Promise<void> {
  const before = linesMatching(d, /reloaded: |reload failed/).length;
  writeFileSync(conf, text);
  d.proc.kill('SIGHUP');
  await waitFor('reload', () => linesMatching(d, /reloaded: |reload failed/).length, (n) => n > before, 20_000, 50);
}

const confText = (allow: string | undefined): string =>
  [
    'socketmap_listen = inet:127.0.0.1:0',
    'tcp_table_listen = aliases=inet:127.0.0.1:0',
    `map.aliases = ${aliasesCf}`,
    ...(allow !== undefined ? [`client_allow = ${allow}`] : []),
  ].join('\n') + '\n';

beforeAll(async () => {
  slapd = await startSlapd({ ldif: directoryLdif() });
  confDir = await makePostfixConfigDir();
  dir = makeTmpDir('client-allow-');
  aliasesCf = writeFixtureCf(dir, 'aliases', { LDAP_URL: slapd.url });
  const native = await postmapQuery(confDir, `ldap:${aliasesCf}`, KEY);
  expect(classify(native)).toBe('found');
  expected = valueOf(native);
  conf = join(dir, 'daemon.conf');
  writeFileSync(conf, confText('127.0.0.1/32'));
  daemon = await startDaemonWithMetrics(['--config', conf]);
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  for (const d of extra) await d.stop();
  await slapd?.destroy();
});

describe('a daemon on 127.0.0.1 allowing only 127.0.0.1/32', () => {
  it('answers 127.0.0.1, Postfix socketmap client included', async () => {
    const r = await socketmapAsk(daemon.ports[0]!, { localAddress: '127.0.0.1' });
    expect(r.bytes.toString('utf8')).toBe(frame(`OK ${expected}`).toString('utf8'));
    const pm = await postmapQuery(confDir, `socketmap:inet:127.0.0.1:${daemon.ports[0]}:aliases`, KEY);
    expect(classify(pm)).toBe('found');
    expect(valueOf(pm)).toBe(expected);
    expect(await denied(daemon, 'socketmap')).toBe(0);
    // Nothing to warn about: the listeners are on loopback, and the list is set anyway.
    expect(linesMatching(daemon, /client_allow is not set/)).toEqual([]);
  });

  it('closes a client from 127.0.0.2 without a byte, counts it, and logs its address', async () => {
    const r = await socketmapAsk(daemon.ports[0]!, { localAddress: '127.0.0.2' });
    expect(r.closedByServer).toBe(true);
    expect(r.bytes.length).toBe(0);
    expect(await denied(daemon, 'socketmap')).toBe(1);
    expect(await denied(daemon, 'tcp_table')).toBe(0);
    await daemon.waitForLog(/socketmap inet:127\.0\.0\.1:\d+: connection from 127\.0\.0\.2 refused: not in client_allow/);
  });

  it('a flood from 127.0.0.2 is all refused, all counted, and logged once per 10 s', async () => {
    const before = await denied(daemon, 'socketmap');
    const logBefore = daemon.log.length;
    const rs = await Promise.all(Array.from({ length: 30 }, () => socketmapAsk(daemon.ports[0]!, { localAddress: '127.0.0.2' })));
    expect(rs.every((r) => r.closedByServer && r.bytes.length === 0)).toBe(true);
    expect(await denied(daemon, 'socketmap')).toBe(before + 30);
    // One line was logged by the refusal before, a moment ago: within its 10 s, none more.
    expect(daemon.log.slice(logBefore).filter((l) => /refused: not in client_allow/.test(l))).toEqual([]);
    // The daemon still answers the allowed client.
    expect((await socketmapAsk(daemon.ports[0]!)).bytes.toString()).toBe(frame(`OK ${expected}`).toString());
  });

  it('the tcp_table listener refuses the same way and answers 127.0.0.1', async () => {
    const refused = await tcpAsk(daemon.tcpPorts[0]!, { localAddress: '127.0.0.2' });
    expect(refused).toEqual({ bytes: Buffer.alloc(0), closedByServer: true });
    expect(await denied(daemon, 'tcp_table')).toBe(1);
    await daemon.waitForLog(/tcp_table inet:127\.0\.0\.1:\d+: connection from 127\.0\.0\.2 refused: not in client_allow/);
    const ok = await tcpAsk(daemon.tcpPorts[0]!, { localAddress: '127.0.0.1' });
    expect(ok.bytes.toString()).toMatch(/^200 \S+\n$/);
    const pm = await postmapQuery(confDir, `tcp:127.0.0.1:${daemon.tcpPorts[0]}`, KEY);
    expect(classify(pm)).toBe('found');
    expect(valueOf(pm)).toBe(expected);
  });

  it('a reload changes the list for new connections and keeps the open ones', async () => {
    // Open (and used) from 127.0.0.1 before the reload.
    const held = net.connect({ host: '127.0.0.1', port: daemon.ports[0]!, localAddress: '127.0.0.1' });
    const heldReplies: Buffer[] = [];
    held.on('data', (d: Buffer) => heldReplies.push(d));
    held.on('error', () => undefined);
    await new Promise<void>((r) => held.once('connect', () => r()));

    await reloadWith(daemon, confText('127.0.0.2'));
    expect(linesMatching(daemon, /reload failed/)).toEqual([]);
    const deniedBefore = await denied(daemon, 'socketmap');
    const now2 = await socketmapAsk(daemon.ports[0]!, { localAddress: '127.0.0.2' });
    expect(now2.bytes.toString()).toBe(frame(`OK ${expected}`).toString());
    const now1 = await socketmapAsk(daemon.ports[0]!, { localAddress: '127.0.0.1' });
    expect(now1).toEqual({ bytes: Buffer.alloc(0), closedByServer: true });
    expect(await denied(daemon, 'socketmap')).toBe(deniedBefore + 1);
    const tcp1 = await tcpAsk(daemon.tcpPorts[0]!, { localAddress: '127.0.0.1' });
    expect(tcp1).toEqual({ bytes: Buffer.alloc(0), closedByServer: true });

    held.write(frame(`aliases ${KEY}`));
    await waitFor('held connection answer', () => Buffer.concat(heldReplies), wholeFrame, 10_000, 20);
    expect(Buffer.concat(heldReplies).toString()).toBe(frame(`OK ${expected}`).toString());
    held.destroy();

    // An invalid list on reload: logged with file, line and key; the list in force stays.
    await reloadWith(daemon, confText('127.0.0.1/32, 192.0.2.1/24'));
    const failed = linesMatching(daemon, /reload failed/).at(-1)!;
    expect(failed).toContain(`${conf}:4: client_allow: bad network '192.0.2.1/24': host bits are set; the network is 192.0.2.0/24`);
    expect((await socketmapAsk(daemon.ports[0]!, { localAddress: '127.0.0.2' })).bytes.length).toBeGreaterThan(0);
    expect((await socketmapAsk(daemon.ports[0]!, { localAddress: '127.0.0.1' })).bytes.length).toBe(0);

    // Removed: everyone is answered again; on loopback that needs no warning.
    await reloadWith(daemon, confText(undefined));
    expect((await socketmapAsk(daemon.ports[0]!, { localAddress: '127.0.0.1' })).bytes.toString()).toBe(frame(`OK ${expected}`).toString());
    expect((await socketmapAsk(daemon.ports[0]!, { localAddress: '127.0.0.2' })).bytes.length).toBeGreaterThan(0);
    expect(linesMatching(daemon, /client_allow is not set/)).toEqual([]);
  });
});

describe('listeners other hosts could reach', () => {
  it('0.0.0.0 without client_allow: one startup warning naming the setting; everyone is answered', async () => {
    const d = await startDaemon(['--map', `aliases=${aliasesCf}`, '--socketmap', 'inet:0.0.0.0:0', '--tcp-table', 'aliases=inet:0.0.0.0:0']);
    extra.push(d);
    const warnings = linesMatching(d, /client_allow is not set/);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^warning: socketmap inet:0\.0\.0\.0:\d+, tcp_table inet:0\.0\.0\.0:\d+: not on loopback and client_allow is not set/);
    expect(warnings[0]).toContain('"client_allow = 127.0.0.0/8, ::1/128"');
    // Said before the daemon says it is ready, so it is next to the listen addresses in the log.
    expect(d.log.findIndex((l) => /client_allow is not set/.test(l))).toBeLessThan(d.log.findIndex((l) => /ready: /.test(l)));
    expect((await socketmapAsk(d.ports[0]!, { localAddress: '127.0.0.2' })).bytes.toString()).toBe(frame(`OK ${expected}`).toString());
  });

  it('with client_allow set there is no warning; a dual-stack [::] listener matches IPv4-mapped peers against IPv4 rules', async () => {
    const d = await startDaemonWithMetrics([
      '--map', `aliases=${aliasesCf}`,
      '--socketmap', 'inet:[::]:0',
      '--set', 'client_allow=127.0.0.1/32, ::1/128',
    ]);
    extra.push(d);
    expect(linesMatching(d, /client_allow is not set/)).toEqual([]);
    const port = Number(/socketmap inet:\[::\]:(\d+)/.exec(d.log.find((l) => /ready: /.test(l))!)![1]);
    // From 127.0.0.1 the daemon sees ::ffff:127.0.0.1.
    expect((await socketmapAsk(port, { localAddress: '127.0.0.1' })).bytes.toString()).toBe(frame(`OK ${expected}`).toString());
    expect((await socketmapAsk(port, { host: '::1', localAddress: '::1' })).bytes.toString()).toBe(frame(`OK ${expected}`).toString());
    const refused = await socketmapAsk(port, { localAddress: '127.0.0.2' });
    expect(refused).toEqual({ bytes: Buffer.alloc(0), closedByServer: true });
    await d.waitForLog(/connection from ::ffff:127\.0\.0\.2 refused: not in client_allow/);
    expect(await denied(d, 'socketmap')).toBe(1);
  });

  it('systemd sockets: an inet one is filtered, a unix one is left to its file permissions', async () => {
    const port = await freePort();
    const path = join(dir, 'sd.sock');
    const proc = spawn('systemd-socket-activate', [
      '-l', `127.0.0.1:${port}`, '-l', path, '--fdname=socketmap:socketmap',
      '-E', 'JOURNAL_STREAM=',
      process.execPath, CLI, 'serve', '--map', `aliases=${aliasesCf}`, '--set', 'client_allow=127.0.0.1/32',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    proc.stderr.on('data', (d: Buffer) => { log += d.toString(); });
    proc.stdout.on('data', (d: Buffer) => { log += d.toString(); });
    const exited = new Promise((r) => proc.once('exit', r));
    try {
      // The first connection starts the daemon (it waits in the backlog meanwhile): refused.
      await waitFor('systemd-socket-activate listening', () => log, (l) => /Listening on .* as 4\./.test(l), 10_000, 50);
      const first = await socketmapAsk(port, { localAddress: '127.0.0.2' });
      expect(first, log).toEqual({ bytes: Buffer.alloc(0), closedByServer: true });
      await waitFor('daemon ready', () => log, (l) => /ready: /.test(l), 10_000, 50);
      // The inherited unix socket has no path Node can report: it shows as its fd.
      expect(log).toMatch(new RegExp(`listening on socketmap inet:127\\.0\\.0\\.1:${port}, socketmap fd:4\\(socketmap\\)`));
      expect((await socketmapAsk(port, { localAddress: '127.0.0.1' })).bytes.toString()).toBe(frame(`OK ${expected}`).toString());
      const unix = await new Promise<string>((resolve, reject) => {
        const c = net.connect({ path });
        let got = '';
        c.on('connect', () => c.write(frame(`aliases ${KEY}`)));
        c.on('data', (d: Buffer) => { got += d.toString(); if (wholeFrame(Buffer.from(got))) { c.destroy(); resolve(got); } });
        c.on('error', reject);
      });
      expect(unix).toBe(frame(`OK ${expected}`).toString());
      await waitFor('refusal logged', () => log, (l) => /connection from 127\.0\.0\.2 refused: not in client_allow/.test(l), 5_000, 50);
      expect(log).not.toMatch(/client_allow is not set/);
    } finally {
      proc.kill('SIGTERM');
      await exited;
    }
  });

  it('a bad network stops the daemon before it listens: exit 2 naming file, line and key (or the flag)', async () => {
    const bad = join(dir, 'bad.conf');
    writeFileSync(bad, `socketmap_listen = inet:0.0.0.0:0\nmap.aliases = ${aliasesCf}\nclient_allow = 127.0.0.0/8,\n  10.0.0.0/33\n`);
    const r = await run(['serve', '--config', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: ${bad}:3: client_allow: bad network '10.0.0.0/33': prefix length 33 is more than 32`);
    expect(r.stderr).not.toMatch(/ready:/);
    const flag = await run(['serve', '--map', `aliases=${aliasesCf}`, '--socketmap', 'inet:0.0.0.0:0', '--set', 'client_allow=example.org']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("error: command line: --set client_allow: bad network 'example.org'");
  });
});
