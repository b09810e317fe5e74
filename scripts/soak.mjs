#!/usr/bin/env node
// npm run soak [-- --minutes N] — a bounded soak run of the built daemon, loopback only.
//
// A private slapd (test/fixtures/ldap/directory.ldif), the daemon (dist/cli/main.js serve) with
// two maps, and for `--minutes` (default 10):
//   - mixed load: persistent socketmap clients, reconnecting clients (like Postfix's), a
//     tcp_table client, a probe of never-cached keys, hostile clients (malformed frames,
//     slowloris) — over aliases (default cache) and mailboxes (2 s cache, so LDAP is busy);
//   - LDAP faults in the middle: slapd stopped and restarted, SIGKILLed and restarted, hung
//     (SIGSTOP) and resumed, restarted at once;
//   - daemon faults: the daemon itself SIGKILLed and started again (as systemd would) while
//     slapd is stopped, while it is frozen, and under plain load; with its cache snapshot
//     (cache_snapshot_file, written every 5 s) it answers what it had cached before;
//   - every answer checked: each OK (and each NOTFOUND) against the native Postfix answer for
//     that key, `postmap -q KEY ldap:FILE`, asked once per key before the load starts.
// Reports lookups served, answers and errors by type, RSS over time, recovery after each fault
// and the wrong answers (there must be none: exit 1 otherwise).
//
//   node scripts/soak.mjs [--minutes N] [--workers N] [--json FILE]
import { spawn, spawnSync, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, utimesSync, mkdirSync, existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const repo = resolve(import.meta.dirname, '..');
const { values: opt } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    workers: { type: 'string', default: '12' },
    json: { type: 'string' },
  },
});
const MINUTES = Number(opt.minutes);
if (!(MINUTES > 0 && MINUTES <= 120)) throw new Error('--minutes must be in (0, 120]');
const WORKERS = Math.max(1, Math.min(200, Number(opt.workers)));
const DURATION_MS = MINUTES * 60_000;
const CLI = join(repo, 'dist/cli/main.js');
const FIXTURES = join(repo, 'test/fixtures/ldap');
for (const f of [CLI, '/usr/sbin/slapd', '/usr/sbin/slapadd', '/usr/sbin/postmap', '/usr/lib/postfix/postfix-ldap.so']) {
  if (!existsSync(f)) throw new Error(`${f} is missing (npm run build; Debian packages slapd, ldap-utils, postfix, postfix-ldap)`);
}

// --------------------------------------------------------------------------------------------
// Processes and cleanup

const dir = mkdtempSync(join(tmpdir(), 'ldap-socketmap-soak-'));
const children = new Set();
const cleanup = () => {
  for (const c of children) {
    try { process.kill(c.pid, 'SIGCONT'); } catch { /* gone */ }
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
// Hard bound: the run plus generous time to set up and wind down.
setTimeout(() => { process.stderr.write('soak: hard time limit reached\n'); process.exit(2); }, DURATION_MS + 5 * 60_000).unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const backdate = (f) => { const t = new Date(Date.now() - 10_000); utimesSync(f, t, t); };
const log = (msg) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
const t0 = Date.now();
let runStart = Date.now();

function freePort() {
  return new Promise((res) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

async function waitForPort(port, ms = 15_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((r) => { const c = net.connect(port, '127.0.0.1', () => { c.destroy(); r(true); }); c.on('error', () => r(false)); });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on port ${port}`);
}

// --------------------------------------------------------------------------------------------
// slapd

const ldapPort = await freePort();
const ldapUrl = `ldap://127.0.0.1:${ldapPort}/`;
mkdirSync(join(dir, 'db'));
const slapdConf = join(dir, 'slapd.conf');
writeFileSync(slapdConf, [
  ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include /etc/ldap/schema/${s}.schema`),
  `include ${join(FIXTURES, 'socketmap-test.schema')}`,
  `pidfile ${join(dir, 'slapd.pid')}`,
  'modulepath /usr/lib/ldap', 'moduleload back_mdb', 'sizelimit unlimited',
  'database mdb', 'suffix "dc=example,dc=org"', 'rootdn "cn=admin,dc=example,dc=org"', 'rootpw secret',
  `directory ${join(dir, 'db')}`, 'maxsize 268435456', 'index objectClass eq', '',
].join('\n'));
const add = spawnSync('/usr/sbin/slapadd', ['-q', '-f', slapdConf, '-l', join(FIXTURES, 'directory.ldif')], { encoding: 'utf8' });
if (add.status !== 0) throw new Error(`slapadd failed: ${add.stderr}`);

let slapd;
async function startSlapd() {
  slapd = spawn('/usr/sbin/slapd', ['-d', '0', '-f', slapdConf, '-h', ldapUrl], { stdio: 'ignore' });
  children.add(slapd);
  const me = slapd;
  me.once('exit', () => children.delete(me));
  await waitForPort(ldapPort);
}
function slapdExited(p) {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', r));
}
await startSlapd();

// --------------------------------------------------------------------------------------------
// Maps, native answers, daemon

const cf = {};
for (const name of ['aliases', 'mailboxes']) {
  cf[name] = join(dir, `${name}.cf`);
  writeFileSync(cf[name], readFileSync(join(FIXTURES, `${name}.cf.in`), 'utf8').replaceAll('@LDAP_URL@', ldapUrl));
  backdate(cf[name]);
}
writeFileSync(join(dir, 'main.cf'), 'compatibility_level = 3.6\nsmtputf8_enable = yes\n');
backdate(join(dir, 'main.cf'));

const LISTS = ['sales', 'eng', 'deep1', 'deep2', 'deep3', 'ghost', 'all-ghosts', 'outside', 'odd-dn', 'star*list', 'starfishlist',
  'paren(list)', 'back\\slash', 'loop-a', 'self-loop', 'dupes', 'blank-list', 'no-at', 'nothing', 'with-frank', 'twin-term',
  'special-mails', 'JÜRGEN-LISTE', 'straße', 'ΣΊΣΥΦΟΣ', 'UPPERLIST', 'team lead', '100%', 'nope', '*'];
const MAILS = ['alice', 'robert', 'Bob.Builder', 'bob', 'carol', 'dave', 'erin', 'john.smith', 'juergen', 'sisyphus', 'gross-sharp',
  'star*man', '*', '(paren)', 'back\\slash', 'UPPER.CASE', 'blank', 'shared', 'twin2', 'stan', 'nobody', 'x*', 'a)(uid=*'];
const KEYS = {
  aliases: LISTS.flatMap((l) => [`${l}@example.org`, l]),
  mailboxes: MAILS.map((m) => `${m}@example.org`),
};

function postmap(key, table) {
  return new Promise((res) => {
    execFile('/usr/sbin/postmap', ['-c', dir, '-q', key, table], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      if (code === 0 && stdout.length > 0) res({ kind: 'found', value: stdout.replace(/\n$/, '') });
      else if (/postmap: fatal: .*(query error|lookup error)/.test(stderr)) res({ kind: 'temp' });
      else if (code === 1 && stdout === '' && !/postmap: (fatal|panic):/.test(stderr)) res({ kind: 'notfound' });
      else res({ kind: 'other', detail: stderr.trim() });
    });
  });
}

log(`slapd on ${ldapUrl}; asking native postmap for ${KEYS.aliases.length + KEYS.mailboxes.length} keys`);
const native = { aliases: new Map(), mailboxes: new Map() };
for (const map of Object.keys(KEYS)) {
  const keys = KEYS[map];
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < keys.length) {
      const k = keys[next++];
      native[map].set(k, await postmap(k, `ldap:${cf[map]}`));
    }
  }));
  for (const [k, v] of native[map]) if (v.kind === 'other') throw new Error(`native postmap for ${map} ${k}: ${v.detail}`);
}

const smPort = await freePort();
const tcpPort = await freePort();
const metricsPort = await freePort();
const daemonLog = [];
const snapshotFile = join(dir, 'cache.snapshot');
let daemon;
/** Set while the soak itself has killed the daemon: its exit is not a crash. */
let daemonDownOnPurpose = false;
let daemonDied = false;
let daemonStarts = 0;
async function startDaemon() {
  const d = spawn(process.execPath, [CLI, 'serve',
    '--socketmap', `inet:127.0.0.1:${smPort}`, '--tcp-table', `aliases=inet:127.0.0.1:${tcpPort}`, '--metrics', `127.0.0.1:${metricsPort}`,
    '--map', `aliases=${cf.aliases}`, '--map', `mailboxes=${cf.mailboxes}`,
    '--set', 'request_timeout=5', '--set', 'map.mailboxes.cache_ttl=2', '--set', 'map.mailboxes.cache_negative_ttl=2',
    '--set', 'request_read_timeout=5',
    '--set', `cache_snapshot_file=${snapshotFile}`, '--set', 'cache_snapshot_interval=5s',
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, JOURNAL_STREAM: '' } });
  daemon = d;
  daemonStarts++;
  children.add(d);
  d.once('exit', (code, sig) => {
    children.delete(d);
    if (daemonDownOnPurpose) return;
    daemonDied = true;
    log(`DAEMON EXITED (${code ?? sig})`);
  });
  for (const s of [d.stdout, d.stderr]) {
    let buf = '';
    s.on('data', (chunk) => {
      buf += chunk.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) { daemonLog.push(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
      if (daemonLog.length > 20_000) daemonLog.splice(0, 10_000);
    });
  }
  await waitForPort(smPort);
  await waitForPort(metricsPort);
}
/** SIGKILL, as an OOM kill or a crash would; then started again at once, as systemd's Restart= would. */
async function killAndRestartDaemon() {
  daemonDownOnPurpose = true;
  const d = daemon;
  const exited = new Promise((r) => d.once('exit', r));
  d.kill('SIGKILL');
  await exited;
  const killedAt = Date.now();
  await startDaemon();
  daemonDownOnPurpose = false;
  return Date.now() - killedAt;
}
await startDaemon();

function rssMb(pid) {
  try { return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024; } catch { return NaN; }
}
function httpGet(path) {
  return new Promise((res, rej) => {
    http.get({ host: '127.0.0.1', port: metricsPort, path, timeout: 10_000 }, (r) => {
      let body = '';
      r.on('data', (c) => { body += c; });
      r.on('end', () => res(body));
    }).on('error', rej);
  });
}

// --------------------------------------------------------------------------------------------
// Clients

const stats = {
  answers: { OK: 0, NOTFOUND: 0, TEMP: 0, TIMEOUT: 0, PERM: 0 },
  clientErrors: { closed: 0, noreply: 0, connect: 0 },
  tempWhileNativeFound: 0,
  wrong: [],
  byMap: { aliases: 0, mailboxes: 0, 'tcp_table aliases': 0 },
  hostile: { malformed: 0, slowloris: 0, slowlorisReaped: 0 },
  postfixClient: { asked: 0, agreed: 0, temp: 0 },
  /** The longest any client waited for an answer, and for what. */
  longestWait: { ms: 0, what: '' },
  /** Connections refused or cut while the daemon was being restarted. */
  duringRestart: 0,
};
function waited(ms, what) {
  if (ms > stats.longestWait.ms) stats.longestWait = { ms, what };
}
const wrongSeen = new Set();
let stopping = false;

function check(map, key, kind, value) {
  const n = native[map].get(key);
  let wrong = false;
  if (kind === 'OK') wrong = n.kind !== 'found' || n.value !== value;
  else if (kind === 'NOTFOUND') wrong = n.kind !== 'notfound';
  else if ((kind === 'TEMP' || kind === 'TIMEOUT') && n.kind === 'found') stats.tempWhileNativeFound++;
  if (wrong) {
    const id = `${map} ${key} ${kind} ${value ?? ''}`;
    if (!wrongSeen.has(id)) {
      wrongSeen.add(id);
      stats.wrong.push({ map, key, got: `${kind} ${value ?? ''}`.trim(), native: n, at: Date.now() - t0 });
      log(`WRONG ANSWER: ${map} ${JSON.stringify(key)}: daemon ${kind} ${JSON.stringify(value ?? '')}, native ${JSON.stringify(n)}`);
    }
  }
}

class Conn {
  constructor(port) {
    this.buf = Buffer.alloc(0);
    this.waiter = undefined;
    this.closed = false;
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.setNoDelay(true);
    this.sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.waiter?.(); });
    this.sock.on('close', () => { this.closed = true; this.waiter?.(); });
    this.sock.on('error', () => undefined);
  }
  async next(parse, ms) {
    const end = Date.now() + ms;
    for (;;) {
      const r = parse(this);
      if (r !== undefined) return r;
      if (this.closed) return 'closed';
      if (Date.now() > end) return 'noreply';
      await new Promise((res) => { this.waiter = res; setTimeout(res, Math.min(500, end - Date.now())); });
      this.waiter = undefined;
    }
  }
  end() { this.sock.destroy(); }
}

const parseNetstring = (c) => {
  const colon = c.buf.indexOf(0x3a);
  if (colon < 0) return undefined;
  const len = Number(c.buf.subarray(0, colon).toString());
  if (c.buf.length < colon + 2 + len) return undefined;
  const payload = c.buf.subarray(colon + 1, colon + 1 + len).toString('utf8');
  c.buf = c.buf.subarray(colon + 2 + len);
  return payload;
};
const parseLine = (c) => {
  const nl = c.buf.indexOf(0x0a);
  if (nl < 0) return undefined;
  const line = c.buf.subarray(0, nl).toString('latin1');
  c.buf = c.buf.subarray(nl + 1);
  return line;
};
const frame = (s) => { const b = Buffer.from(s, 'utf8'); return Buffer.concat([Buffer.from(`${b.length}:`), b, Buffer.from(',')]); };
const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];

function record(map, key, reply) {
  if (reply === 'closed' || reply === 'noreply') { stats.clientErrors[reply]++; return; }
  const sp = reply.indexOf(' ');
  const kind = sp < 0 ? reply : reply.slice(0, sp);
  const value = sp < 0 ? '' : reply.slice(sp + 1);
  stats.answers[kind] = (stats.answers[kind] ?? 0) + 1;
  stats.byMap[map]++;
  check(map, key, kind, kind === 'OK' ? value : undefined);
}

/** A socketmap client; `churn` = requests per connection before reconnecting (Postfix reconnects often). */
async function socketmapWorker(churn) {
  while (!stopping && !daemonDied) {
    const c = new Conn(smPort);
    for (let i = 0; i < churn && !stopping && !c.closed; i++) {
      const map = Math.random() < 0.6 ? 'aliases' : 'mailboxes';
      const key = pick(KEYS[map]);
      const asked = Date.now();
      c.sock.write(frame(`${map} ${key}`));
      const reply = await c.next(parseNetstring, 120_000);
      if (reply === 'closed' && daemonDownOnPurpose) {
        stats.duringRestart++;
        break;
      }
      if (reply !== 'closed' && reply !== 'noreply') waited(Date.now() - asked, `${map} ${key}: ${reply.slice(0, 40)}`);
      record(map, key, reply);
    }
    c.end();
    // A refused connection while the daemon restarts: Postfix would defer and try later.
    if (daemonDownOnPurpose) await sleep(50);
  }
}

async function tcpWorker() {
  while (!stopping && !daemonDied) {
    if (daemonDownOnPurpose) { await sleep(50); continue; }
    const c = new Conn(tcpPort);
    for (let i = 0; i < 200 && !stopping && !c.closed; i++) {
      const key = pick(KEYS.aliases);
      c.sock.write(`get ${encodeURIComponent(key).replace(/[!'()*~]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`)}\n`);
      const line = await c.next(parseLine, 120_000);
      if (line === 'closed' && daemonDownOnPurpose) { stats.duringRestart++; break; }
      if (line === 'closed' || line === 'noreply') { stats.clientErrors[line]++; break; }
      const code = line.slice(0, 3);
      const text = decodeURIComponent(line.slice(4).replace(/%(?![0-9A-Fa-f]{2})/g, '%25'));
      const kind = code === '200' ? 'OK' : code === '500' ? 'NOTFOUND' : 'TEMP';
      stats.answers[kind]++;
      stats.byMap['tcp_table aliases']++;
      check('aliases', key, kind, kind === 'OK' ? text : undefined);
    }
    c.end();
  }
}

/** Never-cached keys, once a second: tells when LDAP answers again after a fault. */
const probes = [];
async function probeWorker() {
  let n = 0;
  let c = new Conn(smPort);
  while (!stopping && !daemonDied) {
    if (c.closed) {
      await sleep(200);
      c = new Conn(smPort);
      continue;
    }
    const key = `probe-${n++}-${Date.now()}@example.org`;
    c.sock.write(frame(`aliases ${key}`));
    const r = await c.next(parseNetstring, 120_000);
    if (r === 'closed') continue;
    probes.push({ at: Date.now() - t0, ok: r === 'NOTFOUND ' });
    if (r !== 'NOTFOUND ' && !/^(TEMP|TIMEOUT) /.test(r)) log(`probe: unexpected ${r}`);
    await sleep(1_000);
  }
  c.end();
}

/** Hostile clients: a malformed frame on a fresh connection every second, a slowloris every 5 s. */
async function hostileWorker() {
  const bad = ['abc:xyz,', '-1:x,', '99999999999:', '3:abc;', '5:aliasesX', 'x'.repeat(50), '0:,', '8:aliases ,'];
  let n = 0;
  while (!stopping && !daemonDied) {
    if (daemonDownOnPurpose) { await sleep(200); continue; }
    const c = new Conn(smPort);
    c.sock.write(pick(bad));
    stats.hostile.malformed++;
    setTimeout(() => c.end(), 2_000);
    if (n++ % 5 === 0) {
      const s = new Conn(smPort);
      stats.hostile.slowloris++;
      const payload = frame('aliases sales@example.org');
      (async () => {
        for (let i = 0; i < payload.length - 1 && !s.closed; i++) { s.sock.write(payload.subarray(i, i + 1)); await sleep(1_000); }
        if (s.closed) stats.hostile.slowlorisReaped++;
        s.end();
      })();
    }
    await sleep(1_000);
  }
}

/** The real Postfix client through the daemon, every 10 s. */
async function postfixClientWorker() {
  while (!stopping && !daemonDied) {
    await sleep(10_000);
    if (stopping) break;
    const map = pick(['aliases', 'mailboxes']);
    const key = pick(KEYS[map]);
    if (daemonDownOnPurpose) continue;
    const r = await postmap(key, `socketmap:inet:127.0.0.1:${smPort}:${map}`);
    stats.postfixClient.asked++;
    const n = native[map].get(key);
    if (r.kind === 'temp') stats.postfixClient.temp++;
    else if (r.kind === n.kind && r.value === n.value) stats.postfixClient.agreed++;
    else check(map, key, r.kind === 'found' ? 'OK' : r.kind === 'notfound' ? 'NOTFOUND' : 'TEMP', r.value);
  }
}

// --------------------------------------------------------------------------------------------
// Faults in the middle of the run

const faults = [];
async function fault(name, atFraction, act) {
  await sleep(Math.max(0, atFraction * DURATION_MS - (Date.now() - runStart)));
  if (stopping || daemonDied) return;
  const f = { name, at: Date.now() - t0 };
  log(`fault: ${name}`);
  await act();
  f.restoredAt = Date.now() - t0;
  // Recovered when a never-cached key is answered by LDAP again.
  const end = Date.now() + 60_000;
  while (Date.now() < end && !probes.some((p) => p.ok && p.at > f.restoredAt)) await sleep(200);
  const p = probes.find((x) => x.ok && x.at > f.restoredAt);
  f.recoveredAfterMs = p ? p.at - f.restoredAt : null;
  log(`fault: ${name}: LDAP answering again ${f.recoveredAfterMs ?? 'never (60 s)'} ms after it was restored`);
  faults.push(f);
}
/** Answers from the daemon while slapd is down: OK ones can only come from its (restored) cache. */
const restarts = [];
async function daemonFault(name, atFraction, act) {
  await fault(name, atFraction, async () => {
    const r = { name, at: Date.now() - t0 };
    const okBefore = stats.answers.OK;
    await act(r);
    r.okAnswersWhileLdapAway = stats.answers.OK - okBefore;
    restarts.push(r);
  });
}
async function faultSchedule() {
  const downMs = Math.min(10_000, DURATION_MS / 12);
  await daemonFault(`daemon SIGKILLed under load and restarted at once`, 0.15, async (r) => {
    r.restartMs = await killAndRestartDaemon();
  });
  await fault(`slapd stopped (SIGTERM) for ${Math.round(downMs / 1000)} s, then started`, 0.25, async () => {
    const p = slapd; p.kill('SIGTERM'); await slapdExited(p); await sleep(downMs); await startSlapd();
  });
  await daemonFault(`slapd stopped; daemon SIGKILLed and restarted while it is down; slapd started ${Math.round(downMs / 1000)} s later`, 0.35, async (r) => {
    const p = slapd; p.kill('SIGTERM'); await slapdExited(p);
    await sleep(2_000);
    r.restartMs = await killAndRestartDaemon();
    await sleep(downMs);
    await startSlapd();
  });
  await fault(`slapd killed (SIGKILL) for ${Math.round(downMs / 2000)} s, then started`, 0.45, async () => {
    const p = slapd; p.kill('SIGKILL'); await slapdExited(p); await sleep(downMs / 2); await startSlapd();
  });
  await fault(`slapd hung (SIGSTOP) for ${Math.round(downMs * 1.5 / 1000)} s, then SIGCONT`, 0.65, async () => {
    process.kill(slapd.pid, 'SIGSTOP'); await sleep(downMs * 1.5); process.kill(slapd.pid, 'SIGCONT');
  });
  await daemonFault(`slapd frozen (SIGSTOP); daemon SIGKILLed and restarted while it is frozen; SIGCONT ${Math.round(downMs / 1000)} s later`, 0.75, async (r) => {
    process.kill(slapd.pid, 'SIGSTOP');
    await sleep(2_000);
    r.restartMs = await killAndRestartDaemon();
    await sleep(downMs);
    process.kill(slapd.pid, 'SIGCONT');
  });
  await fault('slapd restarted at once', 0.85, async () => {
    const p = slapd; p.kill('SIGTERM'); await slapdExited(p); await startSlapd();
  });
}

// --------------------------------------------------------------------------------------------
// Run

const rss = [];
runStart = Date.now();
log(`soak: ${MINUTES} min, ${WORKERS} socketmap clients (half reconnecting), 1 tcp_table client, probe, hostile clients, Postfix client`);
const sampler = (async () => {
  while (!stopping) {
    rss.push({ at: Date.now() - runStart, mb: rssMb(daemon.pid) });
    await sleep(5_000);
  }
})();
const reporter = setInterval(() => {
  const total = Object.values(stats.answers).reduce((a, b) => a + b, 0);
  log(`${total} answers ${JSON.stringify(stats.answers)}, RSS ${rssMb(daemon.pid).toFixed(1)} MB, wrong ${stats.wrong.length}`);
}, 30_000);
const workers = [
  ...Array.from({ length: WORKERS }, (_, i) => socketmapWorker(i % 2 === 0 ? 1_000_000 : 5 + (i % 7) * 5)),
  tcpWorker(), probeWorker(), hostileWorker(), postfixClientWorker(),
];
const schedule = faultSchedule();
await sleep(DURATION_MS);
stopping = true;
clearInterval(reporter);
await Promise.race([Promise.all([...workers, sampler]), sleep(130_000)]);
await Promise.race([schedule, sleep(1_000)]);

const metrics = await httpGet('/metrics').catch(() => '');
const metric = (name, labels = {}) => {
  let sum = 0;
  for (const line of metrics.split('\n')) {
    const m = /^([a-z_:]+)(\{(.*)\})? (\S+)$/.exec(line);
    if (m && m[1] === name && Object.entries(labels).every(([k, v]) => (m[3] ?? '').includes(`${k}="${v}"`))) sum += Number(m[4]);
  }
  return sum;
};
const total = Object.values(stats.answers).reduce((a, b) => a + b, 0);
const rssValues = rss.map((r) => r.mb).filter((x) => !Number.isNaN(x));
const report = {
  minutes: MINUTES,
  lookupsServed: total,
  perSecond: Math.round(total / (DURATION_MS / 1000)),
  answers: stats.answers,
  byMap: stats.byMap,
  clientErrors: stats.clientErrors,
  tempWhileNativeFound: stats.tempWhileNativeFound,
  wrongAnswers: stats.wrong.length,
  wrong: stats.wrong.slice(0, 20),
  faults,
  daemonRestarts: restarts,
  longestWait: stats.longestWait,
  refusedWhileRestarting: stats.duringRestart,
  hostile: stats.hostile,
  postfixClient: stats.postfixClient,
  daemon: {
    alive: !daemonDied,
    starts: daemonStarts,
    rssMb: { min: Math.min(...rssValues), max: Math.max(...rssValues), last: rssValues.at(-1), samples: rss.filter((_, i) => i % Math.max(1, Math.round(rss.length / 12)) === 0).map((r) => `${Math.round(r.at / 1000)}s:${r.mb.toFixed(1)}`) },
    metrics: {
      protocolErrors: metric('ldap_socketmap_protocol_errors_total'),
      readTimeouts: metric('ldap_socketmap_client_timeouts_total', { kind: 'read' }),
      rejected: metric('ldap_socketmap_client_connections_rejected_total'),
      ldapQueueTimeouts: metric('ldap_socketmap_ldap_queue_timeouts_total'),
      staleHits: metric('ldap_socketmap_cache_hits_total', { kind: 'stale' }),
      ldapRequests: metric('ldap_socketmap_ldap_requests_total'),
    },
    errorLines: daemonLog.filter((l) => /^(error|<3>)/.test(l)).length,
  },
};

const lines = [
  `soak: ${MINUTES} min, loopback, ${WORKERS} socketmap clients + tcp_table + probe + hostile + Postfix client`,
  `lookups served: ${total} (${report.perSecond}/s); answers ${JSON.stringify(stats.answers)}`,
  `  by map: ${JSON.stringify(stats.byMap)}`,
  `  temporary answers for keys the directory has (while LDAP was down/hung): ${stats.tempWhileNativeFound}`,
  `  client-side errors: ${JSON.stringify(stats.clientErrors)}`,
  `WRONG ANSWERS (OK or NOTFOUND differing from native postmap -q ... ldap:): ${stats.wrong.length}`,
  `faults survived: ${faults.length}`,
  ...faults.map((f) => `  at ${((f.at - (runStart - t0)) / 1000).toFixed(0)} s: ${f.name}; LDAP answering again ${f.recoveredAfterMs ?? 'never'} ms after restore`),
  `daemon restarts (SIGKILL, started again at once): ${restarts.length}`,
  ...restarts.map((r) => `  ${r.name}: back in ${r.restartMs} ms; ${r.okAnswersWhileLdapAway} OK answers during the fault`),
  `  connections cut or refused while it restarted: ${stats.duringRestart}; longest any client waited for an answer: ${stats.longestWait.ms} ms (${stats.longestWait.what})`,
  `hostile: ${stats.hostile.malformed} malformed frames, ${stats.hostile.slowloris} slowloris (${stats.hostile.slowlorisReaped} reaped); daemon protocol errors ${report.daemon.metrics.protocolErrors}, read timeouts ${report.daemon.metrics.readTimeouts}`,
  `real Postfix client through the daemon: ${stats.postfixClient.asked} asked, ${stats.postfixClient.agreed} agreed with native, ${stats.postfixClient.temp} temporary`,
  `daemon: ${report.daemon.alive ? 'alive' : 'DIED'} (started ${daemonStarts} times; metrics below are from its last start); RSS min ${report.daemon.rssMb.min.toFixed(1)} MB, max ${report.daemon.rssMb.max.toFixed(1)} MB, last ${report.daemon.rssMb.last?.toFixed(1)} MB`,
  `  RSS over time: ${report.daemon.rssMb.samples.join(' ')}`,
  `  stale answers served: ${report.daemon.metrics.staleHits}; LDAP searches: ${report.daemon.metrics.ldapRequests}; queue timeouts: ${report.daemon.metrics.ldapQueueTimeouts}; error lines in its log: ${report.daemon.errorLines}`,
];
process.stdout.write(lines.join('\n') + '\n');
if (opt.json) writeFileSync(opt.json, JSON.stringify(report, null, 2) + '\n');
process.exit(stats.wrong.length === 0 && !daemonDied && total > 0 ? 0 : 1);
