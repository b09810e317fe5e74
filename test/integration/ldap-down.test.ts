/**
 * LDAP trouble must never look like "no such address": down at start, stopped mid-run and
 * restarted, hung — the daemon answers TEMP/TIMEOUT (Postfix defers the mail) and recovers by
 * itself. Seen through the real Postfix client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../support/daemon.js';
import { classify, makePostfixConfigDir, postmapQuery, writeFixtureCf } from '../support/postfix.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { waitFor } from '../support/wait.js';
import { makeTmpDir } from '../support/tmp.js';

let slapd: Slapd;
let daemon: RunningDaemon;
let confDir: string;


beforeAll(async () => {
  slapd = await startSlapd({ ldif: directoryLdif() });
  await slapd.stop();
  confDir = await makePostfixConfigDir();
  const dir = makeTmpDir('down-');
  const vars = { LDAP_URL: slapd.url, LDAP_HOST: slapd.host, LDAP_PORT: String(slapd.port), DEAD_PORT: '1' };
  const aliases = writeFixtureCf(dir, 'aliases', vars);
  const timeout1 = writeFixtureCf(dir, 'timeout-1', vars);
  // The daemon starts while slapd is down: it must start anyway.
  // No cache here: this file is about what LDAP trouble looks like without one to hide it.
  daemon = await startDaemon([
    '--socketmap', 'inet:127.0.0.1:0', '--map', `aliases=${aliases}`, '--map', `slow=${timeout1}`,
    '--set', 'cache_ttl=0', '--set', 'cache_negative_ttl=0', '--set', 'stale_if_error=0',
  ]);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await slapd?.destroy?.();
});

describe('LDAP down, back, hung', () => {
  it('starts with LDAP down and answers TEMP, never NOTFOUND', async () => {
    const r = await postmapQuery(confDir, daemon.table('aliases'), 'sales@example.org');
    expect(classify(r)).toBe('temp');
    // Even a key whose search would be suppressed: dict_ldap connects before expanding.
    const s = await postmapQuery(confDir, daemon.table('aliases'), '@example.org');
    expect(classify(s)).toBe('temp');
  });

  it('recovers by itself once LDAP is up', async () => {
    await slapd.start();
    const r = await waitFor('lookup after slapd start', () => postmapQuery(confDir, daemon.table('aliases'), 'sales@example.org'), (x) => classify(x) === 'found');
    expect(r.stdout).toBe('alice@example.org,robert@example.org,Bob.Builder@Example.ORG,bob@example.org,sales-archive@elsewhere.net\n');
  });

  it('stopped mid-run: TEMP; restarted: answers again without restarting the daemon', async () => {
    await slapd.stop();
    const r = await postmapQuery(confDir, daemon.table('aliases'), 'sales@example.org');
    expect(classify(r)).toBe('temp');
    await slapd.start();
    const back = await waitFor('lookup after restart', () => postmapQuery(confDir, daemon.table('aliases'), 'eng@example.org'), (x) => classify(x) === 'found');
    expect(back.stdout).toContain('@');
    expect(daemon.log.some((l) => /^warning: .*LDAP/.test(l))).toBe(true);
  });

  it('hung LDAP (SIGSTOP): an answer within the map timeout, as a temporary error; SIGCONT: normal service', async () => {
    // Warm the slow map's connection first so the timeout hits a search, not a connect.
    expect(classify(await postmapQuery(confDir, daemon.table('slow'), 'sales@example.org'))).toBe('found');
    slapd.pause();
    try {
      const t0 = Date.now();
      const r = await postmapQuery(confDir, daemon.table('slow'), 'eng@example.org');
      const took = Date.now() - t0;
      expect(classify(r)).toBe('temp');
      expect(r.stderr).toMatch(/TIMEOUT|timed out|temporary/i);
      // timeout = 1 s per operation, plus postmap's own 1 s pause on a fatal exit.
      expect(took).toBeLessThan(8_000);
    } finally {
      slapd.resume();
    }
    const back = await waitFor('lookup after SIGCONT', () => postmapQuery(confDir, daemon.table('slow'), 'eng@example.org'), (x) => classify(x) === 'found');
    expect(back.stdout).toContain('@');
  });
});
