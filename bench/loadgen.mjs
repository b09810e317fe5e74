// Load generator: N real TCP connections speaking socketmap netstrings, each strictly
// sequential (request, wait for the reply, next request), like Postfix's clients.
//
//   node bench/loadgen.mjs '<json>'   → one JSON line on stdout
//
// json: { host, port, conns, keysFile ("MAP\tKEY" lines), mode: "duration" | "list",
//         warmupMs, durationMs (duration mode), timeoutMs (hard bound for the whole run),
//         maxSamples }
// duration: every connection cycles over the keys (each from its own offset); requests
//           answered during warmupMs are not counted.
// list:     every key is requested exactly once, spread over the connections; the run ends
//           when the last reply is in.
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { encodeRequest, NetstringParser } from './lib/socketmap.mjs';

const cfg = JSON.parse(process.argv[2] ?? '{}');
const host = cfg.host ?? '127.0.0.1';
const conns = cfg.conns ?? 1;
const mode = cfg.mode ?? 'duration';
const warmupMs = cfg.warmupMs ?? 0;
const durationMs = cfg.durationMs ?? 2000;
const timeoutMs = cfg.timeoutMs ?? 120_000;
const frames = readFileSync(cfg.keysFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => {
  const tab = l.indexOf('\t');
  return encodeRequest(l.slice(0, tab), l.slice(tab + 1));
});
if (frames.length === 0) throw new Error('no keys');

const samples = new Float64Array(Math.min(cfg.maxSamples ?? 4_000_000, 20_000_000));
let nSamples = 0;
let counted = 0;
const status = { OK: 0, NOTFOUND: 0, TEMP: 0, TIMEOUT: 0, PERM: 0, other: 0 };
let errors = 0;
let firstError;

function statusOf(p) {
  switch (p[0]) {
    case 0x4f: return 'OK';
    case 0x4e: return 'NOTFOUND';
    case 0x50: return 'PERM';
    case 0x54: return p[1] === 0x49 ? 'TIMEOUT' : 'TEMP';
    default: return 'other';
  }
}

let recordFrom = Infinity;
let stopAt = Infinity;
let next = 0; // list mode: next key index
let active = 0;
let tStart = 0;
let tLast = 0;
let finish;
const done = new Promise((r) => { finish = r; });

function startConn(sock, c) {
  let idx = Math.floor((c * frames.length) / conns);
  let sentAt = 0;
  const send = () => {
    const now = performance.now();
    let f;
    if (mode === 'list') {
      if (next >= frames.length) { end(); return; }
      f = frames[next++];
    } else {
      if (now >= stopAt) { end(); return; }
      f = frames[idx];
      idx = idx + 1 === frames.length ? 0 : idx + 1;
    }
    sentAt = now;
    sock.write(f);
  };
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    sock.end();
    if (--active === 0) finish();
  };
  const parser = new NetstringParser((payload) => {
    const now = performance.now();
    tLast = now;
    if (sentAt >= recordFrom) {
      counted++;
      status[statusOf(payload)]++;
      if (nSamples < samples.length) samples[nSamples++] = now - sentAt;
    }
    send();
  }, 4 << 20);
  sock.on('data', (chunk) => {
    try { parser.push(chunk); } catch (e) { sock.destroy(e); }
  });
  sock.on('error', (e) => { firstError ??= e.message; });
  sock.on('close', () => {
    if (ended) return;
    errors++;
    firstError ??= 'server closed a connection';
    end();
  });
  return send;
}

const sockets = await Promise.all(Array.from({ length: conns }, () => new Promise((res, rej) => {
  const s = net.connect({ host, port: cfg.port, noDelay: true });
  s.once('connect', () => res(s));
  s.once('error', rej);
})));

const hard = setTimeout(() => {
  firstError ??= `hard timeout after ${timeoutMs} ms`;
  for (const s of sockets) s.destroy();
  finish();
}, timeoutMs);

tStart = performance.now();
if (mode === 'list') {
  recordFrom = 0;
} else {
  recordFrom = tStart + warmupMs;
  stopAt = recordFrom + durationMs;
}
active = conns;
const senders = sockets.map((s, c) => startConn(s, c));
for (const send of senders) send();
await done;
clearTimeout(hard);
for (const s of sockets) s.destroy();

const lat = samples.subarray(0, nSamples).sort();
const q = (p) => (nSamples === 0 ? NaN : lat[Math.min(nSamples - 1, Math.floor(p * nSamples))]);
const elapsed = mode === 'list' ? tLast - tStart : durationMs;
process.stdout.write(JSON.stringify({
  mode,
  conns,
  requests: counted,
  elapsedMs: Math.round(elapsed * 10) / 10,
  rps: counted / (elapsed / 1000),
  p50: q(0.5),
  p90: q(0.9),
  p99: q(0.99),
  p999: q(0.999),
  max: nSamples ? lat[nSamples - 1] : NaN,
  status,
  errors,
  firstError,
  unfinished: mode === 'list' ? frames.length - counted : 0,
}) + '\n');
process.exit(0);
