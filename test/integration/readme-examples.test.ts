/**
 * The README's examples, run as written against the demo (scripts/demo-setup.mjs, what
 * `bash scripts/demo.sh` starts): a private slapd with examples/directory.ldif, a directory
 * laid out like /etc/postfix with native ldap: tables, and the daemon serving them from its
 * config file. Every ```sh demo block is run in README order with the real postmap, the built
 * CLI as `ldap-socketmap` on PATH, and MAIL_CONFIG pointing at the demo's main.cf; the README's
 * ports and paths stand for the demo's (the demo runs on free ports here, so a demo a reader
 * has running is not disturbed). Each command must exit 0 and print what the README shows.
 * Also: the README's settings tables name every setting of ldap-socketmap.conf(5), with the
 * man page's defaults (the man page is generated from the code).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, README_PORTS, freePort, startDemo } from '../../scripts/demo-setup.mjs';
import { REPO } from '../support/daemon.js';
import { demoExamples, mismatch, type Example } from '../support/readme-blocks.js';
import { makeTmpDir } from '../support/tmp.js';

const README = readFileSync(join(REPO, 'README.md'), 'utf8');
const examples = demoExamples(README);

let work: string;
let bin: string;
let children: ChildProcess[] = [];
let forward: [string, string][] = [];
let backward: [string, string][] = [];

beforeAll(async () => {
  const dir = makeTmpDir('readme-demo-');
  work = makeTmpDir('readme-work-');
  bin = makeTmpDir('readme-bin-');
  // `ldap-socketmap` as the package installs it: a wrapper running the built CLI.
  writeFileSync(join(bin, 'ldap-socketmap'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`);
  chmodSync(join(bin, 'ldap-socketmap'), 0o755);
  const ports = { ldap: await freePort(), socketmap: await freePort(), metrics: await freePort() };
  const demo = await startDemo({ dir, ports, children, daemonStdio: ['ignore', 'ignore', 'ignore'] });
  // README text -> demo; the most specific first. Output is mapped back the other way.
  forward = [
    ['/etc/postfix/ldap-aliases.cf', demo.cf.aliases],
    ['/etc/postfix/ldap-mailboxes.cf', demo.cf.mailboxes],
    ['/etc/ldap-socketmap/ldap-socketmap.conf', demo.conf],
    ['/etc/postfix', dir],
    [`127.0.0.1:${README_PORTS.socketmap}`, `127.0.0.1:${ports.socketmap}`],
    [`127.0.0.1:${README_PORTS.metrics}`, `127.0.0.1:${ports.metrics}`],
    [`127.0.0.1:${README_PORTS.ldap}`, `127.0.0.1:${ports.ldap}`],
  ];
  backward = [
    [demo.conf, '/etc/ldap-socketmap/ldap-socketmap.conf'],
    [dir, '/etc/postfix'],
    [`127.0.0.1:${ports.socketmap}`, `127.0.0.1:${README_PORTS.socketmap}`],
    [`127.0.0.1:${ports.metrics}`, `127.0.0.1:${README_PORTS.metrics}`],
    [`127.0.0.1:${ports.ldap}`, `127.0.0.1:${README_PORTS.ldap}`],
  ];
  mkdirSync(work, { recursive: true });
}, 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
  children = [];
});

const substitute = (text: string, pairs: [string, string][]) => pairs.reduce((t, [from, to]) => t.split(from).join(to), text);

function runShell(command: string): Promise<{ code: number; output: string }> {
  return new Promise((res) => {
    execFile('/bin/bash', ['-c', `exec 2>&1; ${command}`], {
      cwd: work,
      timeout: 60_000,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}:/usr/sbin`, MAIL_CONFIG: forward.find(([f]) => f === '/etc/postfix')![1], JOURNAL_STREAM: '', LC_ALL: 'C.UTF-8' },
    }, (err, stdout) => {
      res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, output: String(stdout) });
    });
  });
}

describe('README examples against the demo', () => {
  it('has runnable examples for every step a reader follows', () => {
    const commands = examples.map((e) => e.command).join('\n');
    for (const step of [/^postmap -q .* socketmap:/m, /^postmap -q .* ldap:/m, /^ldap-socketmap migrate /m, /^ldap-socketmap verify /m,
      /^ldap-socketmap check --strict /m, /^ldap-socketmap explain /m, /^ldap-socketmap cache flush /m, /^curl .*\/metrics/m]) {
      expect(commands, String(step)).toMatch(step);
    }
  });

  // One test per command, in README order: later examples use what earlier ones made (migration/).
  for (const ex of examples as Example[]) {
    it(`README line ${ex.line}: ${ex.command}`, async () => {
      const r = await runShell(substitute(ex.command, forward));
      const output = substitute(r.output, backward);
      expect(r.code, `exit status of ${ex.command}\n${output}`).toBe(0);
      const why = mismatch(ex.expected, output);
      expect(why, `${ex.command}\n${why}\n--- whole output ---\n${output}`).toBeUndefined();
    }, 120_000);
  }
});

describe('README settings tables', () => {
  /** `name = default` of every .TP entry of the man page's generated settings lists. */
  function manDefaults(): Map<string, string> {
    const page = readFileSync(join(REPO, 'man/ldap-socketmap.conf.5'), 'utf8');
    const out = new Map<string, string>();
    // .BI name " = VALUE" (hand-written daemon settings) or .BR name " = default" (generated lists).
    for (const m of page.matchAll(/^\.TP\n\.B[IR] ([a-z_]+) " = ([^"]*)"$/gm)) out.set(m[1]!, m[2]!.trim());
    return out;
  }

  /** First two cells of every settings row: | `name` | default | meaning |. */
  function readmeRows(): Map<string, string> {
    const section = README.slice(README.indexOf('### Settings'), README.indexOf('## Migrate'));
    const out = new Map<string, string>();
    for (const m of section.matchAll(/^\| `([a-z_]+)` \| ([^|]*) \|/gm)) out.set(m[1]!, m[2]!.trim());
    return out;
  }

  it('names every setting of ldap-socketmap.conf(5), and only those', () => {
    const man = manDefaults();
    expect(man.size).toBeGreaterThan(25);
    const readme = readmeRows();
    const manNames = [...man.keys()].sort();
    expect([...readme.keys()].sort()).toEqual(manNames);
  });

  it('gives the defaults the man page gives', () => {
    const man = manDefaults();
    for (const [name, def] of readmeRows()) {
      const m = man.get(name)!;
      // The man page writes placeholders (USER, LISTEN ..., (empty)) where there is no default value.
      if (/^[A-Z]|^\(empty\)$/.test(m)) continue;
      expect(def.replace(/`/g, '').split(' ')[0], name).toBe(m.split(' ')[0]);
    }
  });
});
