/**
 * Proves the real-component harness itself: a private slapd with the fixture directory,
 * search counting from its stats log, and Postfix's NATIVE `ldap:` table queried with
 * `postmap -q` as the oracle the differential tests compare against.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { statSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startSlapd, directoryLdif, deadPort, deadLdapUrl, freePort, isRefused, type Slapd } from '../support/slapd.js';
import {
  makePostfixConfigDir,
  postmapQuery,
  postmapQueryAll,
  postmapBatch,
  parseBatch,
  classify,
  valueOf,
  writeCf,
  writeFixtureCf,
  cfTemplate,
} from '../support/postfix.js';
import { FIXTURE_CASES, bigListLdif, bigListExpected, cfVars } from '../support/fixtures.js';

const SALES = 'alice@example.org,robert@example.org,Bob.Builder@Example.ORG,bob@example.org,sales-archive@elsewhere.net';
const BIG = 200;

let slapd: Slapd;
let conf: string;

beforeAll(async () => {
  slapd = await startSlapd({ ldif: [directoryLdif(), bigListLdif('biglist', BIG)], ldapi: true });
  conf = await makePostfixConfigDir();
});

afterAll(async () => {
  await slapd?.destroy();
});

describe('slapd harness', () => {
  it('starts a private slapd on a loopback port in 20000-32000 with the fixture directory', () => {
    expect(slapd.url).toBe(`ldap://127.0.0.1:${slapd.port}/`);
    expect(slapd.port).toBeGreaterThanOrEqual(20000);
    expect(slapd.port).toBeLessThanOrEqual(32000);
    expect(slapd.running()).toBe(true);
    expect(() => process.kill(slapd.pid, 0)).not.toThrow();
    const out = execFileSync('ldapsearch', ['-x', '-LLL', '-H', slapd.url, '-b', 'ou=People,dc=example,dc=org', '(uid=alice)', 'mail'], { encoding: 'utf8' });
    expect(out).toContain('mail: alice@example.org');
    // Attribute order is the stored order (the fixtures depend on it).
    const bob = execFileSync('ldapsearch', ['-x', '-LLL', '-H', slapd.url, '-b', 'uid=bob,ou=People,dc=example,dc=org', '-s', 'base', 'mail'], { encoding: 'utf8' });
    expect(bob.split('\n').filter((l) => l.startsWith('mail:'))).toEqual(['mail: robert@example.org', 'mail: Bob.Builder@Example.ORG', 'mail: bob@example.org']);
  });

  it('counts and records the searches from the stats log', async () => {
    slapd.resetSearchCount();
    expect(slapd.searchCount()).toBe(0);
    execFileSync('ldapsearch', ['-x', '-H', slapd.url, '-b', 'ou=Groups,dc=example,dc=org', '-s', 'one', '(listName=sales)', '1.1']);
    execFileSync('ldapsearch', ['-x', '-H', slapd.url, '-b', 'uid=alice,ou=People,dc=example,dc=org', '-s', 'base', '(objectClass=*)', 'mail']);
    await slapd.logSettled();
    expect(slapd.searchCount()).toBe(2);
    expect(slapd.searches().map(({ base, scope, filter }) => ({ base, scope, filter }))).toEqual([
      { base: 'ou=Groups,dc=example,dc=org', scope: 1, filter: '(listName=sales)' },
      { base: 'uid=alice,ou=People,dc=example,dc=org', scope: 0, filter: '(objectClass=*)' },
    ]);
    slapd.resetSearchCount();
    expect(slapd.searchCount()).toBe(0);
  });

  it('listens on ldapi:// too', async () => {
    expect(slapd.ldapiUrl).toBe(`ldapi://${encodeURIComponent(join(slapd.dir, 'ldapi'))}`);
    const cf = writeCf(conf, 'aliases-ldapi.cf', cfTemplate('aliases'), { LDAP_URL: slapd.ldapiUrl as string });
    const r = await postmapQuery(conf, `ldap:${cf}`, 'sales@example.org');
    expect(classify(r)).toBe('found');
    expect(r.stdout).toBe(SALES + '\n');
  });

  it('modify() and add() change the data as the root DN', async () => {
    await slapd.add('dn: cn=added,ou=Groups,dc=example,dc=org\nobjectClass: mailList\ncn: added\nlistName: added\nmail: added@example.org\n');
    const cf = writeFixtureCf(conf, 'aliases', cfVars(slapd));
    expect(valueOf(await postmapQuery(conf, `ldap:${cf}`, 'added'))).toBe('added@example.org');
    await slapd.modify('dn: cn=added,ou=Groups,dc=example,dc=org\nchangetype: modify\nadd: mail\nmail: second@example.org\n');
    expect(valueOf(await postmapQuery(conf, `ldap:${cf}`, 'added'))).toBe('added@example.org,second@example.org');
    await slapd.modify('dn: cn=added,ou=Groups,dc=example,dc=org\nchangetype: delete\n');
    expect(classify(await postmapQuery(conf, `ldap:${cf}`, 'added'))).toBe('notfound');
  });

  it('pause()/resume() freeze slapd: timeout = 1 gives a temporary error', async () => {
    const cf = writeFixtureCf(conf, 'timeout-1', cfVars(slapd));
    slapd.pause();
    try {
      const t0 = Date.now();
      const r = await postmapQuery(conf, `ldap:${cf}`, 'sales');
      expect(classify(r)).toBe('temp');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    } finally {
      slapd.resume();
    }
    expect(valueOf(await postmapQuery(conf, `ldap:${cf}`, 'sales'))).toBe(SALES);
  });

  it('stop()/start() restart on the same port with the same data', async () => {
    const cf = writeFixtureCf(conf, 'aliases', cfVars(slapd));
    const port = slapd.port;
    const pid = slapd.pid;
    await slapd.stop();
    expect(slapd.running()).toBe(false);
    expect(await isRefused(port)).toBe(true);
    expect(classify(await postmapQuery(conf, `ldap:${cf}`, 'sales'))).toBe('temp');
    await slapd.start();
    expect(slapd.port).toBe(port);
    expect(slapd.pid).not.toBe(pid);
    expect(slapd.searchCount()).toBe(0);
    expect(valueOf(await postmapQuery(conf, `ldap:${cf}`, 'sales'))).toBe(SALES);
    await slapd.logSettled();
    expect(slapd.searchCount()).toBe(3);
  });

  it('options: syncprov overlay, server-side sizelimit, custom suffix', async () => {
    const s2 = await startSlapd({ ldif: directoryLdif(), syncprov: true, sizelimit: 2 });
    try {
      expect(s2.port).not.toBe(slapd.port);
      // syncprov answers a refreshOnly sync request
      const sync = execFileSync('ldapsearch', ['-x', '-LLL', '-H', s2.url, '-b', 'ou=Groups,dc=example,dc=org', '-E', 'sync=ro', '(listName=sales)', 'listName'], { encoding: 'utf8' });
      expect(sync).toContain('listName: sales');
      // server sizelimit 2: three matching entries -> sizeLimitExceeded -> temporary error
      const cf = writeCf(conf, 'aliases-s2.cf', cfTemplate('aliases'), cfVars(s2));
      expect(classify(await postmapQuery(conf, `ldap:${cf}`, 'triple'))).toBe('temp');
      expect(classify(await postmapQuery(conf, `ldap:${cf}`, 'twin-term'))).toBe('found');
    } finally {
      await s2.destroy();
    }
    const s3 = await startSlapd({ suffix: 'o=test' });
    try {
      const out = execFileSync('ldapsearch', ['-x', '-LLL', '-H', s3.url, '-b', 'o=test', '-s', 'base', '(objectClass=*)', 'o'], { encoding: 'utf8' });
      expect(out).toBe('dn: o=test\no: test\n\n');
      expect(s3.rootDn).toBe('cn=admin,o=test');
    } finally {
      await s3.destroy();
    }
    expect(existsSync(s3.dir)).toBe(false);
  });

  it('freePort() and deadPort() give ports nothing listens on', async () => {
    const p = await freePort();
    expect(p).toBeGreaterThanOrEqual(20000);
    expect(p).toBeLessThanOrEqual(32000);
    expect(await isRefused(p)).toBe(true);
    expect(await isRefused(deadPort())).toBe(true);
  });
});

describe('postfix harness', () => {
  it('writes a backdated main.cf with overridable defaults', async () => {
    const d = await makePostfixConfigDir('smtputf8_enable = no\nfoo_bar = 1\n');
    const main = readFileSync(join(d, 'main.cf'), 'utf8');
    expect(main).toBe('compatibility_level = 3.6\nsmtputf8_enable = no\nfoo_bar = 1\n');
    expect(Date.now() - statSync(join(d, 'main.cf')).mtimeMs).toBeGreaterThan(9000);
    const cf = writeCf(d, 'x.cf', 'server_host = @LDAP_URL@\n', { LDAP_URL: 'ldap://h/' });
    expect(readFileSync(cf, 'utf8')).toBe('server_host = ldap://h/\n');
    expect(Date.now() - statSync(cf).mtimeMs).toBeGreaterThan(9000);
    expect(() => writeCf(d, 'y.cf', 'server_host = @NOPE@\n', {})).toThrow(/@NOPE@/);
  });
});

describe('native postmap oracle (ldap: table)', () => {
  it('core alias map: exact expansions, not found, search count', async () => {
    const cf = writeFixtureCf(conf, 'aliases', cfVars(slapd));
    slapd.resetSearchCount();
    const sales = await postmapQuery(conf, `ldap:${cf}`, 'sales@example.org');
    expect(sales).toEqual({ code: 0, stdout: SALES + '\n', stderr: '' });
    expect(classify(sales)).toBe('found');
    expect(slapd.searches().map(({ base, scope, filter }) => ({ base, scope, filter }))).toEqual([
      { base: 'ou=Groups,dc=example,dc=org', scope: 2, filter: '(&(objectClass=*)(listName=sales))' },
      { base: 'uid=alice,ou=People,dc=example,dc=org', scope: 0, filter: '(objectClass=*)' },
      { base: 'uid=bob,ou=People,dc=example,dc=org', scope: 0, filter: '(objectClass=*)' },
    ]);

    const eng = await postmapQuery(conf, `ldap:${cf}`, 'Eng@Example.ORG');
    expect(eng.stdout).toBe(`eng-announce@example.org,carol@example.org,carol@elsewhere.net,${SALES}\n`);

    const none = await postmapQuery(conf, `ldap:${cf}`, 'nope@example.org');
    expect(none).toEqual({ code: 1, stdout: '', stderr: '' });
    expect(classify(none)).toBe('notfound');

    const ghost = await postmapQuery(conf, `ldap:${cf}`, 'ghost');
    expect(classify(ghost)).toBe('found');
    expect(ghost.stdout).toBe('alice@example.org\n');
    expect(ghost.stderr).toContain('postmap: warning: dict_ldap_get_values[1]: DN uid=nobody,ou=People,dc=example,dc=org not found, skipping');
  });

  it('core mailbox map', async () => {
    const cf = writeFixtureCf(conf, 'mailboxes', cfVars(slapd));
    expect(await postmapQuery(conf, `ldap:${cf}`, 'alice@example.org')).toEqual({ code: 0, stdout: 'alice\n', stderr: '' });
    expect(valueOf(await postmapQuery(conf, `ldap:${cf}`, 'shared@example.org'))).toBe('twin1,twin2');
    expect(classify(await postmapQuery(conf, `ldap:${cf}`, 'nobody@example.org'))).toBe('notfound');
  });

  it('temporary error when server_host refuses connections', async () => {
    const cf = writeCf(conf, 'aliases-dead.cf', cfTemplate('aliases'), { LDAP_URL: deadLdapUrl() });
    const r = await postmapQuery(conf, `ldap:${cf}`, 'sales@example.org');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `postmap: warning: dict_ldap_connect: Unable to bind to server ldap://127.0.0.1:${deadPort()}/ with dn empty or implicit: -1 (Can't contact LDAP server)\n` +
        `postmap: fatal: table ldap:${cf}: query error: Transport endpoint is not connected\n`,
    );
    expect(classify(r)).toBe('temp');
  });

  it('temporary error for a static search_base that does not exist', async () => {
    const cf = writeFixtureCf(conf, 'static-base-missing', cfVars(slapd));
    const r = await postmapQuery(conf, `ldap:${cf}`, 'sales');
    expect(classify(r)).toBe('temp');
    expect(r.stderr).toMatch(/Search base 'ou=Missing,dc=example,dc=org' not found: 32: No such object\n.*fatal: table ldap:.*: query error: /);
  });

  it('batch mode prints KEY<TAB>VALUE for found keys and skips not-found ones', async () => {
    const cf = writeFixtureCf(conf, 'aliases', cfVars(slapd));
    const r = await postmapBatch(conf, `ldap:${cf}`, ['sales', 'nope', 'dupes']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`sales\t${SALES}\ndupes\talice@example.org,alice@example.org,carol@example.org,carol@elsewhere.net\n`);
    expect(parseBatch(r.stdout).get('dupes')).toBe('alice@example.org,alice@example.org,carol@example.org,carol@elsewhere.net');
  });

  it(`expands a ${BIG}-member list in member order`, async () => {
    const cf = writeFixtureCf(conf, 'aliases', cfVars(slapd));
    slapd.resetSearchCount();
    const r = await postmapQuery(conf, `ldap:${cf}`, 'biglist');
    expect(valueOf(r)).toBe(bigListExpected('biglist', BIG));
    await slapd.logSettled();
    expect(slapd.searchCount()).toBe(BIG + 1);
  });

  // Every catalogued fixture key answers as catalogued, so the expectations in
  // test/support/fixtures.ts are the native table's, not guesses.
  describe.each(Object.keys(FIXTURE_CASES))('fixture catalogue: %s.cf.in', (name) => {
    const cases = FIXTURE_CASES[name] ?? [];
    it('outcomes and values match native postmap', async () => {
      const cf = writeFixtureCf(conf, name, cfVars(slapd));
      const results = await postmapQueryAll(conf, `ldap:${cf}`, cases.map((c) => c.key), 8);
      const got = cases.map((c) => {
        const r = results.get(c.key)!;
        return { key: c.key, outcome: classify(r), value: classify(r) === 'found' ? valueOf(r) : undefined, stderr: classify(r) === 'other' ? r.stderr : undefined };
      });
      const want = cases.map((c) => ({ key: c.key, outcome: c.expect, value: c.expect === 'found' ? c.value : undefined, stderr: undefined }));
      expect(got).toEqual(want);
    });
    const counted = cases.filter((c) => c.searches !== undefined);
    if (counted.length > 0) {
      it('search counts match', async () => {
        const cf = writeFixtureCf(conf, name, cfVars(slapd));
        const got: Record<string, number> = {};
        const want: Record<string, number> = {};
        for (const c of counted) {
          await slapd.logSettled();
          slapd.resetSearchCount();
          await postmapQuery(conf, `ldap:${cf}`, c.key);
          await slapd.logSettled();
          got[c.key] = slapd.searchCount();
          want[c.key] = c.searches as number;
        }
        expect(got).toEqual(want);
      });
    }
  });
});
