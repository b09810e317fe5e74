#!/usr/bin/env node
// npm run bench — ldap-socketmap against Postfix's own ldap: table and against the runtime's
// ceiling, in one run on one machine (see bench/README.md).
//
//   node bench/run.mjs [--phases 1,2,3,4,5] [--pool-size N] [--quick] [--keep]
//   node bench/run.mjs --profile [--profile-dir DIR]    CPU profiles of the daemon instead
//   --repo DIR   measure the daemon of another checkout (its dist/ is built if stale)
//   --no-batch   the daemon without batch_member_fetch (one base search per list member)
//   --node-options STR   NODE_OPTIONS of every daemon (default: what systemd/ldap-socketmap.service
//                        of the measured checkout sets, e.g. the V8 heap limit; '' for none)
//   --wait-quiet S   before measuring, wait up to S seconds (default 120) for other work on a
//                    shared machine to calm down (less than a third of the CPUs busy)
import { parseArgs } from 'node:util';
import { cpus, totalmem, release, availableParallelism } from 'node:os';
import { writeFileSync, statSync, readdirSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupAll, cpuMs, installCleanupHooks, loadAvg, machineBusy, median, run, runSync, scratchDir, sleep, spawnTracked, stopChild } from './lib/proc.mjs';
import {
  aliasMixKeys, BIG_LISTS, coldSweepKeys, DOMAIN, mailboxMixKeys, memoryFillRequests, writeDirectoryLdif,
} from './lib/directory.mjs';
import { requireTools, startSlapd } from './lib/slapd.mjs';
import { makeConfDir, postfixVersion, postmapBatch, postmapOne, writeCf } from './lib/postfix.mjs';
import { daemonNodeOptionsFor, setDaemonNodeOptions, startDaemon } from './lib/daemon.mjs';
import { connectClient } from './lib/socketmap.mjs';
import { formatSummary, summarizeProfile } from './lib/profile-summary.mjs';

const here = dirname(fileURLToPath(import.meta.url));

function parseArgsOrExit(config) {
  try {
    return parseArgs(config);
  } catch (err) {
    process.stderr.write(`bench: ${err.message}\nusage: node bench/run.mjs [--phases 1,2,3,4,5] [--pool-size N] [--quick] [--keep] [--repo DIR] [--no-batch] [--node-options STR] [--wait-quiet S] [--time-limit S] | --profile [--profile-dir DIR]\n`);
    process.exit(2);
  }
}
const FIXTURES = join(here, '..', 'test/fixtures/ldap');

const { values: opt } = parseArgsOrExit({
  options: {
    phases: { type: 'string', default: '1,2,3,4,5' },
    'pool-size': { type: 'string', default: '2' },
    quick: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'profile-dir': { type: 'string' },
    'time-limit': { type: 'string', default: '900' },
    repo: { type: 'string' },
    'wait-quiet': { type: 'string', default: '120' },
    'no-batch': { type: 'boolean', default: false },
    'node-options': { type: 'string' },
  },
});
/** The checkout whose daemon is measured (default: this one); e.g. a branch built elsewhere. */
const REPO = resolve(opt.repo ?? join(here, '..'));
const PHASES = new Set(opt.phases.split(',').map((s) => Number(s.trim())));
const POOL = Number(opt['pool-size']);
const usage = (msg) => { process.stderr.write(`bench: ${msg}\n`); process.exit(2); };
if (![...PHASES].every((p) => Number.isInteger(p) && p >= 1 && p <= 5)) usage('--phases: give numbers 1-5, e.g. 1,3');
if (!Number.isInteger(POOL) || POOL < 1) usage(`--pool-size: a positive integer, not ${opt['pool-size']}`);
for (const o of ['time-limit', 'wait-quiet']) if (!(Number(opt[o]) >= 0)) usage(`--${o}: a number of seconds, not ${opt[o]}`);
const Q = opt.quick;
const REPS = Q ? 2 : 5;
const BIG_REPS = Q ? 3 : 7;
const LOAD_MS = Q ? 1000 : 1500;
const LOAD_ROUNDS = Q ? 2 : 5;
const LEVELS = [1, 8, 64];
const SWEEP = [1, 2, 4, 8];
const SWEEP_CONNS = 32;
const MEM_ENTRIES = 100_000;
// batch_member_fetch (off by default in the daemon; see README): a list's members are fetched
// with entryDN searches of up to 100 DNs. --no-batch measures one base search per member (and
// is needed for a --repo checkout older than the setting).
const BATCH_SETTINGS = opt['no-batch'] ? {} : { batch_member_fetch: 'yes' };
// The daemon runs with the NODE_OPTIONS its systemd unit sets (the V8 heap limit), unless given.
if (opt['node-options'] !== undefined) setDaemonNodeOptions(opt['node-options']);
const NODE_OPTIONS = daemonNodeOptionsFor(REPO);
const CACHE_SETTINGS = { cache_ttl: '1h', cache_negative_ttl: '1h', ...BATCH_SETTINGS };

const TARGETS = {
  warmRealClient: 5,
  bigList1500Cold: 5,
  ceiling64: 0.7,
  p99Ms64: 2,
  rssMB: 200,
};

installCleanupHooks();
const hardLimit = setTimeout(() => {
  process.stderr.write(`bench: time limit of ${opt['time-limit']} s reached, stopping everything\n`);
  cleanupAll();
  process.exit(3);
}, Number(opt['time-limit']) * 1000);
hardLimit.unref();

const t0 = Date.now();
const say = (msg) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '-');

// ---------------------------------------------------------------------------------------------

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when it is missing or older than src/ (the bench measures the current source). */
async function ensureBuilt() {
  const cli = join(REPO, 'dist/cli/main.js');
  const src = join(REPO, 'src');
  if (existsSync(cli) && (!existsSync(src) || statSync(cli).mtimeMs >= newestMtime(src))) return 'up to date';
  say('building dist/ (tsc -p .)');
  const r = await run(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', REPO], { timeoutMs: 180_000, name: 'tsc' });
  if (r.code !== 0) throw new Error(`tsc failed:\n${r.stdout}${r.stderr}`);
  return 'rebuilt';
}

/** Which daemon source was measured: HEAD of the measured checkout and uncommitted src/ files. */
function gitState() {
  const head = runSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']);
  const dirty = runSync('git', ['-C', REPO, 'status', '--porcelain', '--', 'src']).split('\n').filter((l) => l.trim() !== '').length;
  return /^[0-9a-f]+$/.test(head) ? `${head}${dirty ? ` + ${dirty} uncommitted src/ files` : ''}` : `${REPO} (not a git checkout)`;
}

function machine() {
  const slapdV = /slapd ([0-9.]+\S*)/.exec(runSync('/usr/sbin/slapd', ['-VV']))?.[1] ?? '?';
  return {
    date: new Date().toISOString(),
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? '?',
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    postfix: postfixVersion(),
    slapd: slapdV,
    loadAvgAtStart: loadAvg(),
    daemonSource: gitState(),
    daemonNodeOptions: NODE_OPTIONS,
    command: `${process.env.npm_lifecycle_event === 'bench' ? 'npm run bench → ' : ''}node bench/run.mjs${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`,
  };
}

function writeKeys(dir, name, pairs) {
  const file = join(dir, `${name}.keys`);
  writeFileSync(file, pairs.map(([m, k]) => `${m}\t${k}\n`).join(''));
  return file;
}

/** Runs bench/loadgen.mjs in its own process and returns its JSON report. */
async function loadgen(cfg) {
  const r = await run(process.execPath, [join(here, 'loadgen.mjs'), JSON.stringify(cfg)], { timeoutMs: (cfg.timeoutMs ?? 120_000) + 30_000, name: 'loadgen' });
  if (r.code !== 0) throw new Error(`loadgen failed (${r.code}): ${r.stderr}`);
  const rep = JSON.parse(r.stdout.toString('utf8'));
  if (rep.errors > 0 || rep.unfinished > 0) throw new Error(`loadgen: ${rep.errors} connection errors, ${rep.unfinished} unanswered (${rep.firstError})`);
  return rep;
}

async function startCeiling() {
  const child = spawnTracked('ceiling', process.execPath, [join(here, 'ceiling-server.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('ceiling server did not start')), 10_000);
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /listening (\d+)/.exec(buf);
      if (m) { clearTimeout(t); res(Number(m[1])); }
    });
    child.once('exit', (c) => { clearTimeout(t); rej(new Error(`ceiling server exited ${c}`)); });
  });
  return { port, pid: child.pid, stop: () => stopChild(child) };
}

// ---------------------------------------------------------------------------------------------

async function setup() {
  requireTools();
  const build = await ensureBuilt();
  const dir = scratchDir(opt.keep);
  const ldif = join(dir, 'directory.ldif');
  let t = Date.now();
  const dirInfo = writeDirectoryLdif(ldif);
  const genMs = Date.now() - t;
  t = Date.now();
  const slapd = await startSlapd(join(dir, 'slapd'), { schemaFile: join(FIXTURES, 'socketmap-test.schema'), ldifFile: ldif });
  const loadMs = Date.now() - t;
  say(`directory: LDIF ${genMs} ms, slapadd + start ${loadMs} ms, slapd pid ${slapd.pid} on ${slapd.url}`);
  await slapd.warm();
  const pf = makeConfDir(join(dir, 'postfix'));
  const vars = { LDAP_URL: slapd.url };
  const cf = {
    aliases: writeCf(pf, 'aliases', join(FIXTURES, 'aliases.cf.in'), vars),
    mailboxes: writeCf(pf, 'mailboxes', join(FIXTURES, 'mailboxes.cf.in'), vars),
  };
  return { dir, slapd, pf, cf, build, dirInfo: { ...dirInfo, ldifMs: genMs, slapaddAndStartMs: loadMs } };
}

// 1. Real client ---------------------------------------------------------------------------------

async function phaseRealClient(env, daemon) {
  const out = [];
  const sets = [
    { map: 'aliases', keys: aliasMixKeys() },
    { map: 'mailboxes', keys: mailboxMixKeys() },
  ];
  for (const { map, keys } of sets) {
    say(`1. real client, ${map}: ${keys.length} keys, postmap -q - (native ldap: vs socketmap), ${REPS} rounds`);
    const native = [];
    const cold = [];
    const warm = [];
    let coldCpu = 0;
    let warmCpu = 0;
    let nativeSearches;
    let daemonSearches;
    let daemonRequests;
    let nativeFound;
    let mismatch = [];
    let daemonFound;
    for (let r = 0; r < REPS; r++) {
      const cNative = await env.slapd.counter();
      const n = await postmapBatch(env.pf, `ldap:${env.cf[map]}`, keys);
      const ns = await cNative();
      native.push(n.ms);
      if (r === 0) { nativeSearches = ns; nativeFound = n.found; }

      // cold: flushed through the user-facing command on the first round, the same admin endpoint after
      const flushed = r === 0 ? await daemon.flushCli() : `flushed ${await daemon.flush()}`;
      const m0 = await daemon.metrics();
      const cDaemon = await env.slapd.counter();
      const cpu0 = cpuMs(daemon.pid);
      const c = await postmapBatch(env.pf, daemon.table(map), keys);
      coldCpu += cpuMs(daemon.pid) - cpu0;
      const ds = await cDaemon();
      const m1 = await daemon.metrics();
      cold.push(c.ms);
      if (r === 0) {
        daemonSearches = ds;
        daemonRequests = m1.sum('ldap_socketmap_ldap_requests_total') - m0.sum('ldap_socketmap_ldap_requests_total');
        daemonFound = c.found.size;
        for (const [k, v] of nativeFound) if (c.found.get(k) !== v) mismatch.push(k);
        for (const k of c.found.keys()) if (!nativeFound.has(k)) mismatch.push(k);
        say(`   ${flushed}; cold: ${c.found.size} found (native ${nativeFound.size}), ${mismatch.length} answers differ`);
      }
      const cpu1 = cpuMs(daemon.pid);
      const w = await postmapBatch(env.pf, daemon.table(map), keys);
      warmCpu += cpuMs(daemon.pid) - cpu1;
      warm.push(w.ms);
      say(`   round ${r + 1}: native ${fmt(n.ms)} ms, daemon cold ${fmt(c.ms)} ms, warm ${fmt(w.ms)} ms`);
    }
    const nMs = median(native);
    const cMs = median(cold);
    const wMs = median(warm);
    out.push({
      map,
      keys: keys.length,
      found: daemonFound,
      nativeFound: nativeFound.size,
      answersDiffer: mismatch.length,
      answersDifferSample: mismatch.slice(0, 5),
      nativeMs: native,
      coldMs: cold,
      warmMs: warm,
      nativeLps: keys.length / (nMs / 1000),
      coldLps: keys.length / (cMs / 1000),
      warmLps: keys.length / (wMs / 1000),
      ratioCold: nMs / cMs,
      ratioWarm: nMs / wMs,
      nativeSearchesPerLookup: nativeSearches / keys.length,
      daemonSearchesPerLookup: daemonSearches / keys.length,
      daemonLdapRequestsPerLookup: daemonRequests / keys.length,
      daemonCpuUsPerLookupCold: (1000 * coldCpu) / (REPS * keys.length),
      daemonCpuUsPerLookupWarm: (1000 * warmCpu) / (REPS * keys.length),
    });
  }
  return out;
}

// 2. Big lists -------------------------------------------------------------------------------------

async function phaseBigLists(env, daemon) {
  const out = [];
  const client = await connectClient('127.0.0.1', daemon.port);
  const trivial = `list0001@${DOMAIN}`;
  const nothing = `nolist-baseline@${DOMAIN}`;
  try {
    await postmapOne(env.pf, daemon.table('aliases'), trivial); // cached from here on
    for (const big of BIG_LISTS) {
      const key = `${big.name}@${DOMAIN}`;
      say(`2. big list ${big.name}: ${BIG_REPS} cold expansions each way`);
      const raw = [];
      const viaPostmap = [];
      const pmBase = [];
      const native = [];
      const nativeBase = [];
      let daemonReq;
      let nativeSearches;
      let same;
      let bytes;
      let warmRaw;
      let cpu = 0;
      // untimed warm-up of slapd's pages for this list (both clients then meet the same directory)
      await postmapOne(env.pf, `ldap:${env.cf.aliases}`, key);
      for (let r = 0; r < BIG_REPS; r++) {
        await daemon.flush();
        const m0 = await daemon.metrics();
        const cpu0 = cpuMs(daemon.pid);
        const x = await client.request('aliases', key);
        cpu += cpuMs(daemon.pid) - cpu0;
        const m1 = await daemon.metrics();
        if (x.status !== 'OK') throw new Error(`${key}: daemon answered ${x.status} ${x.value.slice(0, 200)}`);
        raw.push(x.ms);
        if (r === 0) {
          daemonReq = m1.sum('ldap_socketmap_ldap_requests_total') - m0.sum('ldap_socketmap_ldap_requests_total');
          bytes = x.bytes;
          warmRaw = (await client.request('aliases', key)).ms;
        }

        await daemon.flush();
        viaPostmap.push((await postmapOne(env.pf, daemon.table('aliases'), key)).ms);
        pmBase.push((await postmapOne(env.pf, daemon.table('aliases'), trivial)).ms);

        const c = await env.slapd.counter();
        const n = await postmapOne(env.pf, `ldap:${env.cf.aliases}`, key);
        if (r === 0) { nativeSearches = await c(); same = n.value === x.value; }
        native.push(n.ms);
        nativeBase.push((await postmapOne(env.pf, `ldap:${env.cf.aliases}`, nothing)).ms);
      }
      const rawMs = median(raw);
      const pmNet = median(viaPostmap) - median(pmBase);
      const nativeNet = median(native) - median(nativeBase);
      const rec = {
        list: big.name,
        members: big.members,
        replyBytes: bytes,
        sameAnswerAsNative: same,
        daemonRawMs: raw,
        daemonWarmRawMs: warmRaw,
        daemonPostmapMs: viaPostmap,
        postmapSocketmapBaselineMs: pmBase,
        nativeMs: native,
        nativeBaselineMs: nativeBase,
        daemonColdMs: rawMs,
        daemonCpuMsPerExpansion: cpu / BIG_REPS,
        daemonPostmapNetMs: pmNet,
        nativeNetMs: nativeNet,
        ratio: nativeNet / rawMs,
        ratioViaPostmap: nativeNet / pmNet,
        ratioWallClock: median(native) / median(viaPostmap),
        daemonLdapRequests: daemonReq,
        nativeSearches,
      };
      say(`   daemon ${fmt(rawMs, 1)} ms (raw client), ${fmt(pmNet, 1)} ms (postmap net); native ${fmt(nativeNet, 1)} ms net → ${ratio(rec.ratio)}; same answer: ${same}`);
      out.push(rec);
    }
  } finally {
    client.close();
  }
  return out;
}

// 3. Warm throughput vs ceiling -------------------------------------------------------------------

async function phaseThroughput(env, daemon) {
  const keys = aliasMixKeys();
  const keysFile = writeKeys(env.dir, 'warm', keys.map((k) => ['aliases', k]));
  // (re)fill the cache: phase 2 flushed it
  const fill = await loadgen({ port: daemon.port, conns: 8, keysFile, mode: 'list', timeoutMs: 120_000 });
  say(`3. warm throughput: cache filled (${fill.requests} lookups, ${fill.status.OK} OK, ${fill.status.NOTFOUND} NOTFOUND)`);
  const ceiling = await startCeiling();
  const m0 = await daemon.metrics();
  const out = [];
  try {
    for (const conns of LEVELS) {
      const runs = { ceiling: [], daemon: [] };
      const cpu = { ceiling: 0, daemon: 0 };
      const paired = [];
      for (let r = 0; r < LOAD_ROUNDS; r++) {
        // alternate which goes first, so a change in the machine's background load hits both
        const order = r % 2 ? [['daemon', daemon], ['ceiling', ceiling]] : [['ceiling', ceiling], ['daemon', daemon]];
        for (const [who, srv] of order) {
          const c0 = cpuMs(srv.pid);
          const rep = await loadgen({ port: srv.port, conns, keysFile, mode: 'duration', warmupMs: 300, durationMs: LOAD_MS, timeoutMs: 60_000 });
          rep.cpuMs = cpuMs(srv.pid) - c0;
          cpu[who] += rep.cpuMs;
          runs[who].push(rep);
        }
        paired.push(runs.daemon[r].rps / runs.ceiling[r].rps);
      }
      const agg = (rs) => ({
        rps: median(rs.map((x) => x.rps)),
        p50: median(rs.map((x) => x.p50)),
        p99: median(rs.map((x) => x.p99)),
        p999: median(rs.map((x) => x.p999)),
        requests: rs.reduce((a, x) => a + x.requests, 0),
        // CPU time covers each round's 300 ms warm-up too: requests scaled to match
        cpuUsPerRequest: (1000 * rs.reduce((a, x) => a + x.cpuMs, 0)) / rs.reduce((a, x) => a + x.requests * ((LOAD_MS + 300) / LOAD_MS), 0),
        status: rs[0].status,
      });
      const c = agg(runs.ceiling);
      const d = agg(runs.daemon);
      const rec = {
        conns,
        ceiling: c,
        daemon: d,
        ratio: median(paired),
        pairedRatios: paired,
        ratioOfMedians: d.rps / c.rps,
        // a single-threaded server at saturation: throughput ∝ 1 / CPU per request
        cpuRatio: c.cpuUsPerRequest / d.cpuUsPerRequest,
      };
      out.push(rec);
      say(`   ${String(conns).padStart(2)} conns: daemon ${fmt(d.rps)} req/s p50 ${fmt(d.p50, 3)} p99 ${fmt(d.p99, 3)} ms; ceiling ${fmt(c.rps)} req/s → ${fmt(100 * rec.ratio, 1)}% (paired rounds: ${paired.map((x) => fmt(100 * x)).join(' ')})`);
    }
  } finally {
    await ceiling.stop();
  }
  const m1 = await daemon.metrics();
  const misses = m1.sum('ldap_socketmap_cache_misses_total') - m0.sum('ldap_socketmap_cache_misses_total');
  return { levels: out, cacheMissesDuringLoad: misses };
}

// 4. Cold throughput, pool size sweep --------------------------------------------------------------

async function phaseColdSweep(env) {
  const keys = coldSweepKeys();
  const keysFile = writeKeys(env.dir, 'cold', keys.map((k) => ['aliases', k]));
  const out = [];
  for (const size of SWEEP) {
    const daemon = await startDaemon(REPO, { maps: { aliases: env.cf.aliases }, settings: { pool_size: size, ...BATCH_SETTINGS } });
    try {
      const client = await connectClient('127.0.0.1', daemon.port);
      await client.request('aliases', `warmup@${DOMAIN}`); // opens the first LDAP connection
      const m0 = await daemon.metrics();
      const cpu0 = cpuMs(daemon.pid);
      const rep = await loadgen({ port: daemon.port, conns: SWEEP_CONNS, keysFile, mode: 'list', timeoutMs: 180_000 });
      const cpu = cpuMs(daemon.pid) - cpu0;
      const m1 = await daemon.metrics();
      const d = (name, f) => m1.sum(name, f) - m0.sum(name, f);
      const lookups = d('ldap_socketmap_lookups_total', { map: 'aliases' });
      const requests = d('ldap_socketmap_ldap_requests_total');
      const misses = d('ldap_socketmap_cache_misses_total');
      const big = [];
      for (let r = 0; r < 3; r++) {
        await daemon.flush();
        big.push((await client.request('aliases', `big1500@${DOMAIN}`)).ms);
      }
      client.close();
      const rec = {
        poolSize: size,
        conns: SWEEP_CONNS,
        lookups,
        cacheMisses: misses,
        ldapRequests: requests,
        ldapRequestsPerLookup: requests / lookups,
        lookupsPerSec: rep.rps,
        daemonCpuUsPerLookup: (1000 * cpu) / lookups,
        daemonCpuUsPerLdapRequest: (1000 * cpu) / requests,
        p50: rep.p50,
        p99: rep.p99,
        status: rep.status,
        big1500ColdMs: median(big),
      };
      out.push(rec);
      say(`4. cold sweep pool_size=${size}: ${fmt(rep.rps)} lookups/s, ${fmt(rec.ldapRequestsPerLookup, 2)} LDAP requests/lookup, p99 ${fmt(rep.p99, 1)} ms, big1500 cold ${fmt(rec.big1500ColdMs, 1)} ms`);
    } finally {
      await daemon.stop();
    }
  }
  return out;
}

// 5. Memory ------------------------------------------------------------------------------------------

async function phaseMemory(env) {
  const reqs = memoryFillRequests(MEM_ENTRIES);
  const keysFile = writeKeys(env.dir, 'memory', reqs);
  const daemon = await startDaemon(REPO, {
    maps: { aliases: env.cf.aliases, mailboxes: env.cf.mailboxes },
    settings: { pool_size: POOL, ...CACHE_SETTINGS, cache_max_entries: 200_000, cache_max_bytes: 256 * 2 ** 20 },
  });
  try {
    await sleep(500);
    const idle = daemon.rss();
    const rep = await loadgen({ port: daemon.port, conns: 32, keysFile, mode: 'list', timeoutMs: 240_000 });
    await sleep(1000);
    const full = daemon.rss();
    const m = await daemon.metrics();
    const entries = m.sum('ldap_socketmap_cache_entries');
    const bytes = m.sum('ldap_socketmap_cache_bytes');
    const heapUsed = m.sum('nodejs_heap_size_used_bytes');
    const heapTotal = m.sum('nodejs_heap_size_total_bytes');
    const external = m.sum('nodejs_external_memory_bytes');
    const rec = {
      requested: reqs.length,
      cachedEntries: entries,
      cachedBytesAccounted: bytes,
      found: rep.status.OK,
      notFound: rep.status.NOTFOUND,
      fillLookupsPerSec: rep.rps,
      idleRssMB: (idle.rssMiB * 2 ** 20) / 1e6,
      rssMB: (full.rssMiB * 2 ** 20) / 1e6,
      hwmMB: (full.hwmMiB * 2 ** 20) / 1e6,
      rssPerEntryBytes: ((full.rssMiB - idle.rssMiB) * 2 ** 20) / entries,
      heapUsedMB: heapUsed / 1e6,
      heapTotalMB: heapTotal / 1e6,
      externalMB: external / 1e6,
    };
    say(`5. memory: ${entries} cached entries, RSS ${fmt(rec.rssMB, 1)} MB (idle ${fmt(rec.idleRssMB, 1)} MB, peak ${fmt(rec.hwmMB, 1)} MB), V8 heap used ${fmt(rec.heapUsedMB, 1)} of ${fmt(rec.heapTotalMB, 1)} MB`);
    return rec;
  } finally {
    await daemon.stop();
  }
}

// Report -----------------------------------------------------------------------------------------

function table(headers, rows) {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ');
  return [line(headers), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

function verdicts(res) {
  const v = [];
  const rc = res.realClient?.find((x) => x.map === 'aliases');
  if (rc) v.push({ target: `warm cache through postmap ≥ ${TARGETS.warmRealClient}× native ldap: table (aliases)`, measured: ratio(rc.ratioWarm), pass: rc.ratioWarm >= TARGETS.warmRealClient });
  const b = res.bigLists?.find((x) => x.members === 1500);
  if (b) v.push({ target: `1 500-member list cold ≥ ${TARGETS.bigList1500Cold}× native ldap: table`, measured: `${ratio(b.ratio)} (${fmt(b.daemonColdMs, 1)} vs ${fmt(b.nativeNetMs, 1)} ms)`, pass: b.ratio >= TARGETS.bigList1500Cold });
  const t = res.throughput?.levels.find((x) => x.conns === 64);
  if (t) {
    v.push({ target: `64 connections warm ≥ ${TARGETS.ceiling64 * 100}% of ceiling`, measured: `${fmt(100 * t.ratio, 1)}% (${fmt(t.daemon.rps)} vs ${fmt(t.ceiling.rps)} req/s; by CPU per request ${fmt(100 * t.cpuRatio, 1)}%)`, pass: t.ratio >= TARGETS.ceiling64 });
    v.push({ target: `64 connections warm p99 < ${TARGETS.p99Ms64} ms`, measured: `${fmt(t.daemon.p99, 3)} ms`, pass: t.daemon.p99 < TARGETS.p99Ms64 });
  }
  const m = res.memory;
  if (m) v.push({ target: `RSS < ${TARGETS.rssMB} MB with 100 000 cached entries`, measured: `${fmt(m.rssMB, 1)} MB at ${m.cachedEntries} entries`, pass: m.rssMB < TARGETS.rssMB && m.cachedEntries >= MEM_ENTRIES });
  return v;
}

function report(res) {
  const m = res.machine;
  const L = [];
  L.push('');
  L.push(`ldap-socketmap benchmark — ${m.date}`);
  L.push(`machine: ${m.nproc} × ${m.cpu}, ${m.memGiB} GiB, Linux ${m.kernel}; node ${m.node}; Postfix ${m.postfix}; slapd ${m.slapd}; load average ${m.loadAvgAtStart} at start, ${m.loadAvgAtEnd} at end`);
  L.push(`daemon source: ${m.daemonSource}`);
  L.push(`command: ${m.command}   (all on loopback; daemon: pool_size=${POOL}, cache_ttl=1h, cache_negative_ttl=1h${opt['no-batch'] ? '' : ', batch_member_fetch=yes'} unless noted; NODE_OPTIONS=${m.daemonNodeOptions ? `'${m.daemonNodeOptions}'` : '(none)'}${opt['node-options'] === undefined ? ' as in the systemd unit' : ''})`);
  const d = res.directory;
  if (res.quiet) L.push(`shared machine: ${res.quiet.busyPctBeforeStart}% of all CPUs busy with other work before the start (waited ${res.quiet.waitedS} s); load average per phase: ${Object.entries(res.loadAvgByPhase ?? {}).map(([k, v]) => `${k} ${v[0]}→${v[1]}`).join(', ')}`);
  L.push(`directory: ${d.people} people, ${d.lists} lists (${d.nestingLists} nesting, ${d.avgSmallListMembers} members on average; ${d.bigLists}); LDIF ${d.ldifMs} ms, slapadd+start ${d.slapaddAndStartMs} ms`);
  if (res.realClient) {
    L.push('');
    L.push(`1. Real client: postmap -q - over ${res.realClient[0].keys} keys (one process, sequential), median of ${REPS}; lookups/s`);
    L.push(table(
      ['map', 'native ldap:', 'daemon cold', 'ratio', 'daemon warm', 'ratio', 'searches/lookup native', 'daemon', 'daemon CPU µs/lookup cold', 'warm', 'answers differ'],
      res.realClient.map((r) => [r.map, fmt(r.nativeLps), fmt(r.coldLps), ratio(r.ratioCold), fmt(r.warmLps), ratio(r.ratioWarm), fmt(r.nativeSearchesPerLookup, 2), fmt(r.daemonLdapRequestsPerLookup, 2), fmt(r.daemonCpuUsPerLookupCold), fmt(r.daemonCpuUsPerLookupWarm), r.answersDiffer]),
    ));
  }
  if (res.bigLists) {
    L.push('');
    L.push(`2. Big lists, cold, median of ${BIG_REPS}; ms (native and "via postmap" net of postmap's start: a not-found / cached key subtracted)`);
    L.push(table(
      ['list', 'daemon (raw client)', 'daemon via postmap', 'native ldap:', 'ratio', 'ratio via postmap', 'daemon CPU ms', 'searches daemon / native', 'reply bytes', 'same answer'],
      res.bigLists.map((r) => [r.list, fmt(r.daemonColdMs, 1), fmt(r.daemonPostmapNetMs, 1), fmt(r.nativeNetMs, 1), ratio(r.ratio), ratio(r.ratioViaPostmap), fmt(r.daemonCpuMsPerExpansion), `${r.daemonLdapRequests} / ${r.nativeSearches}`, r.replyBytes, r.sameAnswerAsNative ? 'yes' : 'NO']),
    ));
  }
  if (res.throughput) {
    L.push('');
    L.push(`3. Warm throughput, ${LOAD_MS} ms × ${LOAD_ROUNDS} alternating rounds per point (medians; % of ceiling = median of the paired rounds), own Node load generator, 1 request in flight per connection`);
    L.push(table(
      ['conns', 'daemon req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'ceiling req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', '% of ceiling', 'by CPU/req'],
      res.throughput.levels.map((r) => [r.conns, fmt(r.daemon.rps), fmt(r.daemon.p50, 3), fmt(r.daemon.p99, 3), fmt(r.daemon.cpuUsPerRequest, 1), fmt(r.ceiling.rps), fmt(r.ceiling.p50, 3), fmt(r.ceiling.p99, 3), fmt(r.ceiling.cpuUsPerRequest, 1), `${fmt(100 * r.ratio, 1)}%`, `${fmt(100 * r.cpuRatio, 1)}%`]),
    ));
    L.push(`   cache misses during the load: ${res.throughput.cacheMissesDuringLoad}`);
  }
  if (res.coldSweep) {
    L.push('');
    L.push(`4. Cold throughput, ${res.coldSweep[0].lookups} distinct alias keys, ${SWEEP_CONNS} connections, fresh daemon per pool size`);
    L.push(table(
      ['pool_size', 'lookups/s', 'LDAP requests/lookup', 'p50 ms', 'p99 ms', 'daemon CPU µs/lookup', 'µs/LDAP request', 'big1500 cold ms'],
      res.coldSweep.map((r) => [r.poolSize, fmt(r.lookupsPerSec), fmt(r.ldapRequestsPerLookup, 2), fmt(r.p50, 2), fmt(r.p99, 2), fmt(r.daemonCpuUsPerLookup), fmt(r.daemonCpuUsPerLdapRequest), fmt(r.big1500ColdMs, 1)]),
    ));
  }
  if (res.memory) {
    const x = res.memory;
    L.push('');
    L.push('5. Memory (VmRSS of the daemon)');
    L.push(table(
      ['cached entries', 'found / notfound', 'RSS MB', 'idle RSS MB', 'peak RSS MB', 'RSS bytes/entry', 'V8 heap used / total MB', 'fill lookups/s'],
      [[x.cachedEntries, `${x.found} / ${x.notFound}`, fmt(x.rssMB, 1), fmt(x.idleRssMB, 1), fmt(x.hwmMB, 1), fmt(x.rssPerEntryBytes), `${fmt(x.heapUsedMB, 1)} / ${fmt(x.heapTotalMB, 1)}`, fmt(x.fillLookupsPerSec)]],
    ));
  }
  L.push('');
  L.push('Targets');
  for (const v of res.verdicts) L.push(`  ${v.pass ? 'PASS' : 'MISS'}  ${v.target}: ${v.measured}`);
  // the bench itself keeps up to three processes busy (load generator, daemon, slapd)
  const busy = Object.entries(res.loadAvgByPhase ?? {}).filter(([, v]) => Math.max(...v) > m.nproc + 3).map(([k]) => k);
  if (busy.length > 0) L.push(`  note: the load average exceeded ${m.nproc + 3} (${m.nproc} CPUs + this bench's own processes) during ${busy.join(', ')}: other work shared the CPUs, so those numbers are noisy; compare runs, not single numbers`);
  L.push('');
  L.push(`total ${fmt((Date.now() - t0) / 1000, 0)} s; results in bench/results.json`);
  return L.join('\n');
}

// Profiling mode -----------------------------------------------------------------------------------

async function profileMode(env) {
  const dir = resolve(opt['profile-dir'] ?? join(env.dir, 'profiles'));
  mkdirSync(dir, { recursive: true });
  const keys = aliasMixKeys();
  const keysFile = writeKeys(env.dir, 'warm', keys.map((k) => ['aliases', k]));
  const coldFile = writeKeys(env.dir, 'cold', coldSweepKeys().map((k) => ['aliases', k]));
  const scenarios = [
    {
      name: 'warm',
      what: 'warm cache, 64 connections, 5 s',
      go: async (daemon, mark) => {
        await loadgen({ port: daemon.port, conns: 8, keysFile, mode: 'list' });
        mark();
        return loadgen({ port: daemon.port, conns: 64, keysFile, mode: 'duration', warmupMs: 0, durationMs: 5000, timeoutMs: 60_000 });
      },
    },
    {
      name: 'biglist',
      what: 'cold big lists: 10 × big1500 + 3 × big5000, cache flushed before each',
      go: async (daemon) => {
        const c = await connectClient('127.0.0.1', daemon.port);
        const ms = [];
        for (const [key, n] of [[`big1500@${DOMAIN}`, 10], [`big5000@${DOMAIN}`, 3]]) {
          for (let i = 0; i < n; i++) { await daemon.flush(); ms.push((await c.request('aliases', key)).ms); }
        }
        c.close();
        return { ms };
      },
    },
    {
      name: 'cold',
      what: 'cold distinct keys, 32 connections',
      go: (daemon) => loadgen({ port: daemon.port, conns: 32, keysFile: coldFile, mode: 'list', timeoutMs: 180_000 }),
    },
  ];
  const summaries = {};
  for (const s of scenarios) {
    const pdir = join(dir, s.name);
    mkdirSync(pdir, { recursive: true });
    const daemon = await startDaemon(REPO, {
      maps: { aliases: env.cf.aliases },
      settings: { pool_size: POOL, ...CACHE_SETTINGS },
      nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${pdir}`],
    });
    let rep;
    let from = Date.now();
    let to;
    try {
      rep = await s.go(daemon, () => { from = Date.now(); });
      to = Date.now();
    } finally {
      await daemon.stop();
    }
    const stopped = Date.now();
    const files = readdirSync(pdir).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length === 0) throw new Error(`no profile written in ${pdir}`);
    // only the scenario's own window: no startup, no cache fill, no shutdown
    const sum = summarizeProfile(join(pdir, files[0]), { lastMs: to - from, skipEndMs: stopped - to });
    summaries[s.name] = { file: join(pdir, files[0]), run: rep, summary: { busyMs: sum.busyMs, byFile: sum.byFile.slice(0, 20), byFunction: sum.byFunction.slice(0, 40) } };
    console.log(`\nprofile ${s.name}: ${s.what} (window of ${to - from} ms)\n  ${join(pdir, files[0])}`);
    if (rep?.rps) console.log(`  ${fmt(rep.rps)} req/s, p99 ${fmt(rep.p99, 3)} ms`);
    if (rep?.ms) console.log(`  expansions (ms): ${rep.ms.map((x) => fmt(x, 1)).join(' ')}`);
    console.log(formatSummary(sum, 30));
  }
  return summaries;
}

// Main -------------------------------------------------------------------------------------------

/** Waits (bounded) until the machine is mostly idle; returns what was seen. */
async function waitQuiet(maxS) {
  const started = Date.now();
  let busy = await machineBusy(2000);
  while (busy > 1 / 3 && Date.now() - started < maxS * 1000) {
    say(`machine busy (${fmt(100 * busy)}% of all CPUs, load average ${loadAvg()}): waiting for it to calm down (at most ${maxS} s)`);
    await sleep(3000);
    busy = await machineBusy(2000);
  }
  return { busyPctBeforeStart: Math.round(100 * busy), waitedS: Math.round((Date.now() - started) / 1000) };
}

/** Runs one phase and records the load average around it (other work on a shared machine). */
async function phase(res, name, fn) {
  const before = loadAvg();
  const out = await fn();
  (res.loadAvgByPhase ??= {})[name] = [before, loadAvg()];
  return out;
}

async function main() {
  const res = { machine: machine() };
  say(`machine: ${res.machine.nproc} × ${res.machine.cpu}, node ${res.machine.node}, Postfix ${res.machine.postfix}, slapd ${res.machine.slapd}`);
  const env = await setup();
  res.directory = env.dirInfo;
  res.daemonBuild = env.build;
  if (!opt.profile) res.quiet = await waitQuiet(Number(opt['wait-quiet']));
  res.settings = { poolSize: POOL, ...CACHE_SETTINGS, quick: Q };
  try {
    if (opt.profile) {
      res.profiles = await profileMode(env);
      if (!opt['profile-dir'] && !opt.keep) console.log('\n(profiles are removed at exit: give --profile-dir DIR or --keep to keep them)');
      return;
    }
    if (PHASES.has(1) || PHASES.has(2) || PHASES.has(3)) {
      const daemon = await startDaemon(REPO, { maps: { aliases: env.cf.aliases, mailboxes: env.cf.mailboxes }, settings: { pool_size: POOL, ...CACHE_SETTINGS } });
      say(`daemon pid ${daemon.pid}: socketmap on 127.0.0.1:${daemon.port}, admin on ${daemon.admin}`);
      try {
        if (PHASES.has(1)) res.realClient = await phase(res, 'realClient', () => phaseRealClient(env, daemon));
        if (PHASES.has(2)) res.bigLists = await phase(res, 'bigLists', () => phaseBigLists(env, daemon));
        if (PHASES.has(3)) res.throughput = await phase(res, 'throughput', () => phaseThroughput(env, daemon));
      } finally {
        await daemon.stop();
      }
    }
    if (PHASES.has(4)) res.coldSweep = await phase(res, 'coldSweep', () => phaseColdSweep(env));
    if (PHASES.has(5)) res.memory = await phase(res, 'memory', () => phaseMemory(env));
    res.machine.loadAvgAtEnd = loadAvg();
    res.verdicts = verdicts(res);
    res.totalSeconds = (Date.now() - t0) / 1000;
    writeFileSync(join(here, 'results.json'), JSON.stringify(res, null, 2) + '\n');
    console.log(report(res));
  } finally {
    await env.slapd.stop();
  }
}

main().then(
  () => { clearTimeout(hardLimit); cleanupAll(); },
  (err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    cleanupAll();
    process.exitCode = 1;
  },
);
