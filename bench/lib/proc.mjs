// Child processes of the benchmark: every one is registered, killed by pid on exit, error or
// signal, and a detached watchdog kills whatever is left (and removes the scratch directory) if
// the benchmark itself is killed without running its exit hooks.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** @type {Map<number, {name: string, child: import('node:child_process').ChildProcess}>} */
const live = new Map();
let scratch;
let pidFile;
let watchdog;
let keepScratch = false;
let cleaned = false;

function writePidFile() {
  if (pidFile) writeFileSync(pidFile, [...live.keys()].join('\n') + '\n');
}

/** The run's scratch directory (created once) and the watchdog that guards it. */
export function scratchDir(keep = false) {
  if (scratch) return scratch;
  keepScratch = keep;
  scratch = mkdtempSync(join(tmpdir(), 'lsm-bench-'));
  pidFile = join(scratch, 'children.pid');
  writePidFile();
  const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = `
    while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done
    for p in $(cat ${q(pidFile)} 2>/dev/null); do kill -CONT $p 2>/dev/null; kill -KILL $p 2>/dev/null; done
    ${keep ? '' : `rm -rf ${q(scratch)}`}`;
  watchdog = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' });
  watchdog.unref();
  return scratch;
}

/** Spawns and registers a child; it is unregistered when it exits. */
export function spawnTracked(name, cmd, args, opts = {}) {
  const child = spawn(cmd, args, opts);
  if (child.pid === undefined) {
    // spawn failure is reported through 'error'; keep the object usable.
    return child;
  }
  const pid = child.pid;
  live.set(pid, { name, child });
  writePidFile();
  child.once('exit', () => { live.delete(pid); writePidFile(); });
  return child;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
export function stopChild(child, graceMs = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, graceMs);
    child.once('exit', () => { clearTimeout(t); resolve(); });
    try { process.kill(child.pid, 'SIGCONT'); } catch { /* gone */ }
    try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
  });
}

/** Kills every registered child (synchronously, by pid) and removes the scratch directory. */
export function cleanupAll() {
  if (cleaned) return;
  cleaned = true;
  for (const [pid] of live) {
    try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  live.clear();
  if (scratch && !keepScratch) {
    try { rmSync(scratch, { recursive: true, force: true }); } catch { /* ignore */ }
  }
  if (watchdog?.pid !== undefined) {
    try { process.kill(watchdog.pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

export function installCleanupHooks() {
  process.on('exit', cleanupAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping every process it started\n`);
      cleanupAll();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

/**
 * Runs a command to completion with a timeout; resolves {code, stdout, stderr, ms} (ms = wall
 * time from spawn to exit). stdout is kept as a Buffer unless `encoding` is given.
 */
export function run(cmd, args, { input, timeoutMs = 120_000, env, name } = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawnTracked(name ?? cmd, cmd, args, {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: env ?? process.env,
    });
    const out = [];
    const err = [];
    let errBytes = 0;
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => { if (errBytes < 1 << 20) { err.push(b); errBytes += b.length; } });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    child.once('error', (e) => { clearTimeout(timer); reject(new Error(`${cmd}: ${e.message}`)); });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const stderr = Buffer.concat(err).toString('utf8');
      if (timedOut || signal) {
        reject(new Error(`${cmd} ${args.join(' ').slice(0, 200)}: ${timedOut ? `timed out after ${timeoutMs} ms` : `killed by ${signal}`}; stderr: ${stderr.slice(0, 2000)}`));
        return;
      }
      resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr, ms });
    });
    if (input !== undefined) {
      child.stdin.on('error', () => { /* postmap stops reading at a fatal error */ });
      child.stdin.end(input);
    }
  });
}

export function runSync(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return ((r.stdout ?? '') + (r.stderr ?? '')).trim();
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** CPU time (user + system) a process has used so far, in ms (from /proc/PID/stat, 10 ms steps). */
export function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * (1000 / CLK_TCK);
}
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** 1-minute load average (how busy the shared machine was). */
export function loadAvg() {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

function cpuTimes() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0);
  return { idle, total: f.reduce((a, b) => a + b, 0) };
}

/** Share of all CPUs busy (0..1) over the next `ms`, whoever used them. */
export async function machineBusy(ms = 2000) {
  const a = cpuTimes();
  await sleep(ms);
  const b = cpuTimes();
  const total = b.total - a.total;
  return total > 0 ? 1 - (b.idle - a.idle) / total : 0;
}
