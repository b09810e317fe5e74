// The daemon as users run it: `node dist/cli/main.js serve ...`, ports chosen by the OS and
// read back from its "ready:" and "metrics on" lines. Its admin listener serves /metrics and
// POST /cache/flush (what `ldap-socketmap cache flush` calls).
import { readFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import { resolve } from 'node:path';
import { run, spawnTracked, stopChild } from './proc.mjs';

export function cliPath(repo) {
  return resolve(repo, 'dist/cli/main.js');
}

/**
 * NODE_OPTIONS as the checkout's systemd unit sets them (`Environment=NODE_OPTIONS=...` in
 * systemd/ldap-socketmap.service; the last assignment wins, as in systemd), '' when it sets none.
 * The bench runs the daemon with them, like the unit does (the V8 heap limit changes RSS).
 */
export function unitNodeOptions(repo) {
  const unit = resolve(repo, 'systemd/ldap-socketmap.service');
  if (!existsSync(unit)) return '';
  let value = '';
  for (const line of readFileSync(unit, 'utf8').split('\n')) {
    const m = /^\s*Environment\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    // Environment="A=b c" D=e: quoted or bare assignments.
    for (const a of m[1].matchAll(/"([^"]*)"|(\S+)/g)) {
      const kv = a[1] ?? a[2];
      if (kv.startsWith('NODE_OPTIONS=')) value = kv.slice('NODE_OPTIONS='.length);
    }
  }
  return value;
}

/** NODE_OPTIONS for every daemon the bench starts: the unit's unless overridden (--node-options). */
let daemonNodeOptions;
export function setDaemonNodeOptions(value) {
  daemonNodeOptions = value;
}
export function daemonNodeOptionsFor(repo) {
  return daemonNodeOptions ?? unitNodeOptions(repo);
}

/**
 * Starts the daemon. `maps` is {name: cfFile}; `settings` are `--set` values; `nodeArgs` go
 * before the script (e.g. --cpu-prof). Resolves once it is listening.
 */
export async function startDaemon(repo, { maps, settings = {}, nodeArgs = [], timeoutMs = 20_000 }) {
  const cli = cliPath(repo);
  if (!existsSync(cli)) throw new Error(`${cli} missing: build first (npx tsc -p .)`);
  const args = [...nodeArgs, cli, 'serve', '--socketmap', 'inet:127.0.0.1:0', '--metrics', '127.0.0.1:0'];
  for (const [name, file] of Object.entries(maps)) args.push('--map', `${name}=${file}`);
  for (const [k, v] of Object.entries(settings)) args.push('--set', `${k}=${v}`);
  const nodeOptions = daemonNodeOptionsFor(repo);
  const env = { ...process.env, JOURNAL_STREAM: '' };
  if (nodeOptions) env.NODE_OPTIONS = nodeOptions;
  else delete env.NODE_OPTIONS;
  const child = spawnTracked('daemon', process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
    cwd: repo,
  });
  const log = [];
  let buf = '';
  let socketmapPort;
  let metricsPort;
  let onLine = () => {};
  const onData = (d) => {
    buf += d.toString('utf8');
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (log.length < 2000) log.push(line);
      const r = /listening on .*socketmap inet:[^ ,]*:(\d+)/.exec(line);
      if (r) socketmapPort = Number(r[1]);
      const m = /metrics on [^ ]*:(\d+)/.exec(line);
      if (m) metricsPort = Number(m[1]);
      onLine();
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  let onExit;
  try {
    await new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`daemon not ready within ${timeoutMs} ms:\n${log.join('\n')}`)), timeoutMs);
      onLine = () => { if (socketmapPort && metricsPort) { clearTimeout(t); onLine = () => {}; res(); } };
      onExit = (code) => { clearTimeout(t); rej(new Error(`daemon exited (${code}):\n${log.join('\n')}`)); };
      child.once('exit', onExit);
    });
  } catch (e) {
    await stopChild(child);
    throw e;
  } finally {
    child.off('exit', onExit);
  }
  const admin = `127.0.0.1:${metricsPort}`;
  return {
    child,
    pid: child.pid,
    port: socketmapPort,
    metricsPort,
    admin,
    log,
    table: (map) => `socketmap:inet:127.0.0.1:${socketmapPort}:${map}`,
    metrics: () => fetchMetrics(metricsPort),
    /** POST /cache/flush, the endpoint behind `ldap-socketmap cache flush`. */
    flush: () => httpRequest('POST', metricsPort, '/cache/flush').then((b) => JSON.parse(b).flushed),
    /** The user-facing command: `node dist/cli/main.js cache flush --metrics HOST:PORT`. */
    flushCli: async () => {
      const r = await run(process.execPath, [cli, 'cache', 'flush', '--metrics', admin], { timeoutMs: 30_000, name: 'cache-flush' });
      if (r.code !== 0) throw new Error(`cache flush failed: ${r.stderr}`);
      return r.stdout.toString('utf8').trim();
    },
    rss: () => readRss(child.pid),
    stop: () => stopChild(child, 15_000),
  };
}

function httpRequest(method, port, path) {
  return new Promise((res, rej) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, timeout: 30_000 }, (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (r.statusCode !== 200) rej(new Error(`${method} ${path}: HTTP ${r.statusCode}: ${body}`));
        else res(body);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', rej);
    req.end();
  });
}

/** Prometheus text → { sum(name, labelFilter) }. */
export async function fetchMetrics(port) {
  const text = await httpRequest('GET', port, '/metrics');
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return {
    text,
    sum(name, filter = {}) {
      let s = 0;
      for (const x of samples) {
        if (x.name !== name) continue;
        if (Object.entries(filter).every(([k, v]) => x.labels[k] === v)) s += x.value;
      }
      return s;
    },
  };
}

/** VmRSS and VmHWM of a process, in MiB (from /proc/PID/status). */
export function readRss(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
}
