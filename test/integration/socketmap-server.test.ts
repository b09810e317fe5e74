/**
 * The daemon on the wire, the way Postfix and a hostile client see it: many requests per
 * connection, many connections, an unknown map, an answer over the socketmap size limit, and
 * malformed input that closes only the offending connection. Plus startup errors: a bad .cf
 * file exits 2 naming file, line and key.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, startDaemon, type RunningDaemon } from '../support/daemon.js';
import { bigListLdif } from '../support/fixtures.js';
import { classify, makePostfixConfigDir, postmapQuery, writeFixtureCf } from '../support/postfix.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { sleep } from '../support/wait.js';
import { frame, SocketmapClient } from '../support/socketmap-client.js';
import { makeTmpDir } from '../support/tmp.js';

let slapd: Slapd;
let daemon: RunningDaemon;
let confDir: string;
let dir: string;

beforeAll(async () => {
  // 5000 members x ~26 bytes: well over the 100000-byte socketmap reply limit.
  slapd = await startSlapd({ ldif: [directoryLdif(), bigListLdif('huge', 5000)] });
  confDir = await makePostfixConfigDir();
  dir = makeTmpDir('wire-');
  const aliases = writeFixtureCf(dir, 'aliases', { LDAP_URL: slapd.url });
  daemon = await startDaemon(['--socketmap', 'inet:127.0.0.1:0', '--map', `aliases=${aliases}`]);
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  await slapd?.destroy?.();
});

describe('socketmap server', () => {
  it('answers many requests in sequence on one connection, exactly like socketmap_table(5) says', async () => {
    const c = new SocketmapClient(daemon.ports[0]!);
    c.send(frame('aliases sales@example.org'));
    expect(await c.reply()).toBe('OK alice@example.org,robert@example.org,Bob.Builder@example.org,bob@example.org,sales-archive@elsewhere.net'.replace('Bob.Builder@example.org', 'Bob.Builder@Example.ORG'));
    c.send(frame('aliases nobody@example.org'));
    expect(await c.reply()).toBe('NOTFOUND ');
    c.send(frame('aliases loop-a@example.org'));
    expect(await c.reply()).toMatch(/^TEMP expansion loop: /);
    c.end();
  });

  it('an unknown map name is a configuration error (PERM) naming the known maps', async () => {
    const c = new SocketmapClient(daemon.ports[0]!);
    c.send(frame('alias sales@example.org'));
    expect(await c.reply()).toBe('PERM unknown map name "alias"; known maps: aliases');
    c.end();
  });

  it('an answer over the 100000-byte limit is TEMP (never truncated) and logged with map, key and size', async () => {
    const c = new SocketmapClient(daemon.ports[0]!);
    c.send(frame('aliases huge@example.org'));
    const r = await c.reply(30_000);
    expect(r).toMatch(/^TEMP .*too large/);
    await daemon.waitForLog(/map aliases: answer for "huge@example.org" is \d+ bytes/);
    // The real client agrees: a temporary error, not a value.
    expect(classify(await postmapQuery(confDir, daemon.table('aliases'), 'huge@example.org'))).toBe('temp');
    c.end();
  }, 60_000);

  it('malformed netstrings close that connection only; others keep being answered', async () => {
    const good = new SocketmapClient(daemon.ports[0]!);
    const bads = ['abc:xyz,', '5:aliasesX', '-1:x,', `999999999:`, '3:abc;', 'x'.repeat(10)].map((junk) => {
      const b = new SocketmapClient(daemon.ports[0]!);
      b.send(junk);
      return b;
    });
    // '5:aliasesX' has a bad terminator ('s' instead of ','); 'x' x10 is not a length at all.
    for (const b of bads.filter((_, i) => i !== 5)) expect(await b.waitClosed()).toBe(true);
    good.send(frame('aliases eng@example.org'));
    expect(await good.reply()).toMatch(/^OK /);
    // A request without the space between name and key is malformed too.
    const nospace = new SocketmapClient(daemon.ports[0]!);
    nospace.send(frame('aliases'));
    expect(await nospace.waitClosed()).toBe(true);
    good.send(frame('aliases sales@example.org'));
    expect(await good.reply()).toMatch(/^OK /);
    good.end();
    for (const b of bads) b.end();
  });

  it('serves 200 connections at once, each with several requests', async () => {
    const clients = Array.from({ length: 200 }, () => new SocketmapClient(daemon.ports[0]!));
    const results = await Promise.all(clients.map(async (c, i) => {
      const key = ['sales@example.org', 'eng@example.org', 'nobody@example.org', 'deep1@example.org'][i % 4]!;
      const out: string[] = [];
      for (let n = 0; n < 3; n++) {
        c.send(frame(`aliases ${key}`));
        out.push(await c.reply(20_000));
      }
      c.end();
      return out;
    }));
    const flat = results.flat();
    expect(flat).toHaveLength(600);
    expect(flat.filter((r) => r === 'NOTFOUND ')).toHaveLength(150);
    expect(flat.filter((r) => r.startsWith('OK '))).toHaveLength(450);
  }, 60_000);

  it('a clean EOF between requests is normal, not an error in the log', async () => {
    const before = daemon.log.filter((l) => /^(warning|error):/.test(l)).length;
    for (let i = 0; i < 20; i++) {
      const c = new SocketmapClient(daemon.ports[0]!);
      c.send(frame('aliases sales@example.org'));
      await c.reply();
      c.end();
    }
    await sleep(200);
    expect(daemon.log.filter((l) => /^(warning|error):/.test(l)).length).toBe(before);
  });
});

describe('startup errors', () => {
  it('a bad .cf file exits 2 with file, line and key; nothing is started', () => {
    const bad = join(dir, 'bad.cf');
    writeFileSync(bad, 'server_host = ldap://127.0.0.1:1/\nsearch_base = dc=x\n# a comment\nscope = sub\nbind = sasl\n');
    const r = spawnSync(process.execPath, [CLI, 'serve', '--socketmap', 'inet:127.0.0.1:0', '--map', `x=${bad}`], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${bad}:5: bind:`);
  });

  it('a bad query_filter template is refused at startup naming the parameter', () => {
    const bad = join(dir, 'bad2.cf');
    writeFileSync(bad, 'server_host = ldap://127.0.0.1:1/\nquery_filter = (mail=%x)\n');
    const r = spawnSync(process.execPath, [CLI, 'check', '--map', `x=${bad}`], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${bad}:2: query_filter:`);
  });

  it('LDAP down at start does not stop the daemon from starting', async () => {
    const cf = join(dir, 'dead.cf');
    writeFileSync(cf, 'server_host = ldap://127.0.0.1:1/\nsearch_base = dc=example,dc=org\nquery_filter = (mail=%s)\n');
    const d = await startDaemon(['--socketmap', 'inet:127.0.0.1:0', '--map', `dead=${cf}`]);
    try {
      expect(classify(await postmapQuery(confDir, d.table('dead'), 'a@example.org'))).toBe('temp');
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });
});
