/**
 * Mistakes a user would otherwise only notice when mail is deferred: a daemon with nothing to
 * listen on, a `check` that checks nothing, and a .cf typo (serach_base) that Postfix only warns
 * about. The built CLI is run as users run it, against a real slapd.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, runCli } from '../support/daemon.js';
import { directoryLdif, startSlapd, type Slapd } from '../support/slapd.js';
import { makeTmpDir } from '../support/tmp.js';

/** The CLI as a shell would start it (no journal on stderr). */
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(args, { env: { JOURNAL_STREAM: '', ...env } });

let slapd: Slapd;
let dir: string;
let goodCf: string;
let typoCf: string;

beforeAll(async () => {
  slapd = await startSlapd({ ldif: directoryLdif() });
  dir = makeTmpDir('fail-loudly-');
  const snippet = readFileSync(join(REPO, 'postfix-snippets', 'ldap-aliases.cf'), 'utf8').replace(/^server_host = .*$/m, `server_host = ${slapd.url}`);
  goodCf = join(dir, 'good.cf');
  writeFileSync(goodCf, snippet);
  typoCf = join(dir, 'typo.cf');
  writeFileSync(typoCf, snippet.replace(/^search_base = /m, 'serach_base = '));
});

afterAll(async () => {
  await slapd?.destroy();
});

describe('serve with nothing to listen on', () => {
  it('is a usage error (exit 2) naming what to set, with maps from the command line', async () => {
    const r = await cli(['serve', '--map', `aliases=${goodCf}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: command line: socketmap_listen: nothing to listen on: set socketmap_listen or tcp_table_listen/m);
    expect(r.stderr).not.toMatch(/ready:/);
  });

  it('is a usage error naming the config file when the file declares no listener', async () => {
    const conf = join(dir, 'no-listener.conf');
    writeFileSync(conf, `map.aliases = ${goodCf}\nmetrics_listen = 127.0.0.1:0\n`);
    const r = await cli(['serve', '--config', conf]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: ${conf}: socketmap_listen: nothing to listen on`);
  });

  it('LISTEN_FDS meant for another process does not count as a listener', async () => {
    const r = await cli(['serve', '--map', `aliases=${goodCf}`], { LISTEN_PID: '1', LISTEN_FDS: '1', LISTEN_FDNAMES: 'socketmap' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nothing to listen on/);
  });
});

describe('check', () => {
  it('with no maps is a usage error (exit 2)', async () => {
    const conf = join(dir, 'no-maps.conf');
    writeFileSync(conf, 'socketmap_listen = inet:127.0.0.1:0\n');
    const r = await cli(['check', '--config', conf]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: ${conf}: no maps to check`);
    const bare = await cli(['check']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/error: command line: no maps to check/);
  });

  it('--strict passes a clean configuration (exit 0)', async () => {
    const r = await cli(['check', '--strict', '--map', `aliases=${goodCf}`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/LDAP: connected/);
    expect(r.stdout).not.toMatch(/strict:/);
  });

  it('a .cf typo is only a warning without --strict (as in Postfix), exit 2 with it', async () => {
    const lax = await cli(['check', '--map', `aliases=${typoCf}`]);
    expect(lax.code).toBe(0);
    expect(lax.stdout).toContain(`${typoCf}:27: serach_base: unknown parameter, ignored (as Postfix does); did you mean 'search_base'?`);
    const strict = await cli(['check', '--strict', '--map', `aliases=${typoCf}`]);
    expect(strict.code).toBe(2);
    expect(strict.stdout).toContain('serach_base: unknown parameter');
    expect(strict.stdout).toMatch(/^strict: 1 warning, treated as errors$/m);
  });

  it('--strict also fails on a warning in the daemon config file (a duplicate key)', async () => {
    const conf = join(dir, 'dup.conf');
    writeFileSync(conf, `map.aliases = ${goodCf}\ncache_ttl = 60\ncache_ttl = 120\n`);
    const lax = await cli(['check', '--config', conf]);
    expect(lax.code).toBe(0);
    expect(lax.stdout).toContain(`${conf}:3: cache_ttl: overriding earlier entry at line 2`);
    const strict = await cli(['check', '--strict', '--config', conf]);
    expect(strict.code).toBe(2);
    expect(strict.stdout).toMatch(/^strict: 1 warning, treated as errors$/m);
  });
});
