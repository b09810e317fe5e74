/**
 * Hostile input against the live daemon (the CLI, as users run it), seeded so a failure replays:
 *
 * 1. Arbitrary bytes on both listeners: random garbage, well-framed random payloads, huge and
 *    broken length prefixes, partial frames, random chunking, tcp_table lines with random
 *    %-escapes. The daemon never dies, never logs an internal error, closes or answers every
 *    connection, and a well-behaved client next to it keeps getting prompt answers.
 * 2. %-expansion and escaping: generated keys full of `* ( ) \`, DN specials and non-ASCII are
 *    looked up through the daemon and through Postfix's native `postmap -q KEY ldap:FILE`; the
 *    search filters and bases slapd logs (SRCH lines) must be identical key by key, and so must
 *    the answers. Keys with NUL (which Postfix itself can never send) must not reach LDAP as
 *    anything but an inert value.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonWithMetrics, startDaemonWithMetrics } from '../support/daemon.js';
import { mapLimit } from '../support/map-limit.js';
import { metricsText, metricValue } from '../support/metrics.js';
import { classify, makePostfixConfigDir, postmapQuery, valueOf, writeCf } from '../support/postfix.js';
import { prng as rng, int, pick, type Rand, randomBytes } from '../support/prng.js';
import { directoryLdif, startSlapd, type SearchRecord, type Slapd } from '../support/slapd.js';
import { frame, SocketmapClient } from '../support/socketmap-client.js';
import { sleep } from '../support/wait.js';
import { makeTmpDir } from '../support/tmp.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed1);

let slapd: Slapd;
let daemon: DaemonWithMetrics;
let confDir: string;
let filtCf: string;
let dnCf: string;

beforeAll(async () => {
  slapd = await startSlapd({ ldif: directoryLdif() });
  confDir = await makePostfixConfigDir();
  const dir = makeTmpDir('fuzz-');
  // Several substitutions in one filter: %s whole key, %u local part, %1 last domain label.
  filtCf = writeCf(dir, 'filt.cf', [
    `server_host = ${slapd.url}`,
    'search_base = ou=People,dc=example,dc=org',
    'query_filter = (&(objectClass=*)(|(mail=%s)(uid=%u)(cn=%1)))',
    'result_attribute = uid',
    'bind = no',
  ].join('\n') + '\n', {});
  // %d DN-escaped into the search base (noSuchObject when the OU is missing: not found).
  dnCf = writeCf(dir, 'dn.cf', [
    `server_host = ${slapd.url}`,
    'search_base = ou=%d,ou=Domains,dc=example,dc=org',
    'query_filter = (mail=%s)',
    'result_attribute = uid',
    'bind = no',
  ].join('\n') + '\n', {});
  daemon = await startDaemonWithMetrics([
    '--socketmap', 'inet:127.0.0.1:0', '--tcp-table', 'filt=inet:127.0.0.1:0',
    '--map', `filt=${filtCf}`, '--map', `dn=${dnCf}`,
    // Every lookup must reach LDAP, so each one leaves its SRCH line.
    '--set', 'cache_ttl=0', '--set', 'cache_negative_ttl=0',
  ]);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await slapd?.destroy?.();
});

// ---------------------------------------------------------------------------------------------

const MAPS = ['filt', 'dn', 'nosuchmap', '', 'FILT'];

/** One hostile byte stream for the socketmap listener, and whether it is all well-formed. */
function socketmapSession(r: Rand): Buffer {
  const parts: Buffer[] = [];
  const n = 1 + int(r, 4);
  for (let i = 0; i < n; i++) {
    switch (int(r, 9)) {
      case 0: parts.push(randomBytes(r, int(r, 2000))); break;
      case 1: parts.push(frame(randomBytes(r, int(r, 300)))); break;
      case 2: parts.push(frame(Buffer.concat([Buffer.from(`${pick(r, MAPS)} `), randomBytes(r, int(r, 200))]))); break;
      case 3: parts.push(Buffer.from(`${pick(r, ['99999999999999999999', '16385', '-1', '00', '0x10', ' 5', '5 ', ''])}:`)); break;
      case 4: { const f = frame(`filt ${randomKey(r)}`); parts.push(f.subarray(0, int(r, f.length))); break; }
      case 5: { const f = frame(`filt ${randomKey(r)}`); f[f.length - 1] = int(r, 256); parts.push(f); break; }
      case 6: parts.push(Buffer.from(`${int(r, 50)}:${'x'.repeat(int(r, 60))},`)); break;
      case 7: parts.push(frame('')); break;
      default: parts.push(frame(`${pick(r, ['filt', 'dn'])} ${randomKey(r)}`));
    }
  }
  return Buffer.concat(parts);
}

function tcpSession(r: Rand): Buffer {
  const lines: string[] = [];
  const n = 1 + int(r, 4);
  for (let i = 0; i < n; i++) {
    switch (int(r, 5)) {
      case 0: lines.push(randomBytes(r, int(r, 500)).toString('latin1')); break;
      case 1: lines.push(`get ${encodeURIComponent(randomKey(r)).replace(/%[0-9A-F]{2}/g, (m) => (r() < 0.2 ? '%' + 'zz' : m))}\n`); break;
      case 2: lines.push(`${pick(r, ['put', 'GET', 'get', ''])} ${'%'.repeat(int(r, 3))}${randomKey(r).replace(/\s/g, '')}\n`); break;
      case 3: lines.push('get ' + 'y'.repeat(int(r, 20_000)) + (r() < 0.5 ? '\n' : '')); break;
      default: lines.push(`get ${encodeURIComponent(randomKey(r))}\n`);
    }
  }
  return Buffer.from(lines.join(''), 'latin1');
}

/** Characters that matter to filters, DNs, %-expansion, folding and the wire. */
const ALPHABET = [
  'a', 'b', 'c', 'x', 'Z', 'Q', '0', '7', '.', '-', '_', '+', '*', '(', ')', '\\', '@', '%', '%s', '%u', '%d', '%1',
  ' ', '\t', ',', ';', '=', '&', '|', '!', '~', '<', '>', '"', '#', '/', "'", '[', ']', '{', '}', '?', ':',
  'é', 'É', 'ß', 'ẞ', 'Σ', 'ς', 'σ', 'ÿ', 'Ÿ', 'İ', 'ı', 'ﬁ', 'Å', 'Ω', 'K', 'µ', '中', '文', '😀', 'e\u0301', 'Ǆ', 'ǅ',
  '\u00a0', '\u2028', '\u00ad', '\u0001', '\u007f',
];

function randomKey(r: Rand): string {
  const len = 1 + int(r, 14);
  let s = '';
  for (let i = 0; i < len; i++) s += pick(r, ALPHABET);
  if (r() < 0.6) {
    let d = '';
    const dl = 1 + int(r, 10);
    for (let i = 0; i < dl; i++) d += pick(r, ALPHABET);
    s += '@' + d + pick(r, ['', '.org', '.EXAMPLE.org', '.', '..x']);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------

describe('arbitrary bytes against the live daemon', () => {
  it('never crash it, never hang a connection, never slow down a well-behaved client', async () => {
    const r = rng(SEED);
    const SESSIONS = 3000;
    const sessions = Array.from({ length: SESSIONS }, (_, i) => (i % 3 === 2 ? { tcp: true, bytes: tcpSession(r) } : { tcp: false, bytes: socketmapSession(r) }));
    const chunkSeeds = sessions.map(() => int(r, 2 ** 31));
    const totalBytes = sessions.reduce((n, s) => n + s.bytes.length, 0);
    const errorsBefore = await daemon.metric('ldap_socketmap_protocol_errors_total');

    // The well-behaved neighbour.
    let stop = false;
    const latencies: number[] = [];
    const canary = (async () => {
      const c = new SocketmapClient(daemon.ports[0]!);
      while (!stop) {
        const t0 = performance.now();
        expect(await c.ask('filt', 'alice@example.org', 5_000)).toBe('OK alice');
        latencies.push(performance.now() - t0);
        await sleep(20);
      }
      c.end();
    })();

    const outcomes = await mapLimit(sessions, 50, (s, i) => new Promise<'closed' | 'hung'>((resolve) => {
      const cr = rng(chunkSeeds[i]!);
      const sock = net.connect(s.tcp ? daemon.tcpPorts[0]! : daemon.ports[0]!, '127.0.0.1');
      sock.on('error', () => undefined);
      sock.on('data', () => undefined);
      const timer = setTimeout(() => { sock.destroy(); resolve('hung'); }, 8_000);
      sock.on('close', () => { clearTimeout(timer); resolve('closed'); });
      sock.on('connect', async () => {
        // Random chunking: some streams arrive in one write, others in pieces.
        let at = 0;
        while (at < s.bytes.length && !sock.destroyed) {
          const n = cr() < 0.5 ? s.bytes.length - at : 1 + int(cr, 64);
          sock.write(s.bytes.subarray(at, at + n));
          at += n;
          if (cr() < 0.3) await sleep(1);
        }
        // Then the client is done: half-close. The daemon must answer what it got and let go.
        if (!sock.destroyed) sock.end();
      });
    }));
    stop = true;
    await canary;

    expect(outcomes.filter((o) => o === 'hung')).toHaveLength(0);
    expect(daemon.proc.exitCode).toBe(null);
    expect(daemon.log.filter((l) => l.startsWith('error:'))).toEqual([]);
    const text = await metricsText(daemon.metricsPort);
    const protocolErrors = metricValue(text, 'ldap_socketmap_protocol_errors_total') - errorsBefore;
    expect(protocolErrors).toBeGreaterThan(SESSIONS / 4);
    expect(metricValue(text, 'ldap_socketmap_client_connections')).toBeLessThanOrEqual(1);
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
    expect(latencies.length).toBeGreaterThan(20);
    expect(p99).toBeLessThan(500);
    // Still serving normally afterwards.
    const after = new SocketmapClient(daemon.ports[0]!);
    expect(await after.ask('filt', 'alice@example.org')).toBe('OK alice');
    after.end();
    console.log(`fuzz: ${SESSIONS} hostile sessions, ${totalBytes} bytes, ${protocolErrors} protocol errors; neighbour p99 ${p99.toFixed(1)} ms over ${latencies.length} lookups (seed ${SEED})`);
  }, 60_000);
});

describe('escaping: the daemon sends the filters and bases native Postfix sends', () => {
  const searchesOf = (): SearchRecord[] => slapd.searches().map(({ base, scope, filter }) => ({ conn: 0, op: 0, base, scope, filter }));

  async function compare(map: 'filt' | 'dn', cf: string, keys: string[]): Promise<{ searched: number }> {
    const c = new SocketmapClient(daemon.ports[0]!);
    let searched = 0;
    const mismatches: string[] = [];
    for (const key of keys) {
      slapd.resetSearchCount();
      const native = await postmapQuery(confDir, `ldap:${cf}`, key);
      const nativeSearches = searchesOf();
      slapd.resetSearchCount();
      const ours = await c.ask(map, key);
      const ourSearches = searchesOf();
      searched += nativeSearches.length;
      const nativeKind = classify(native);
      const nativeAnswer = nativeKind === 'found' ? `OK ${valueOf(native)}` : nativeKind === 'notfound' ? 'NOTFOUND ' : nativeKind;
      const ourAnswer = ours.startsWith('TEMP') || ours.startsWith('TIMEOUT') ? 'temp' : ours;
      if (JSON.stringify(nativeSearches) !== JSON.stringify(ourSearches) || nativeAnswer !== ourAnswer) {
        mismatches.push(`${JSON.stringify(key)}: native ${JSON.stringify(nativeSearches)} ${nativeAnswer} / daemon ${JSON.stringify(ourSearches)} ${ourAnswer}`);
      }
    }
    c.end();
    expect(mismatches).toEqual([]);
    return { searched };
  }

  it('200 generated keys through %s, %u and %1 in one filter', async () => {
    const r = rng(SEED + 1);
    const keys = [...new Set(Array.from({ length: 260 }, () => randomKey(r)))].slice(0, 200);
    // Fixed shapes worth having whatever the seed.
    keys.push('*', '*)(uid=*', 'a)(|(uid=*', '\\2A', '\\', '(', ')', 'x*@*', 'ÉSSÉ@ÉXAMPLE.ORG', 'alice@example.org');
    const { searched } = await compare('filt', filtCf, keys);
    // Keys without a domain are never searched (%1 has no value): the same on both sides.
    expect(searched).toBeGreaterThan(100);
    console.log(`escaping: ${keys.length} keys (filter), ${searched} searches identical to native postmap`);
  }, 60_000);

  it('60 generated keys through %d in search_base (DN escaping)', async () => {
    const r = rng(SEED + 2);
    const keys = Array.from({ length: 60 }, () => `${randomKey(r).replace(/@/g, '')}@${randomKey(r).replace(/@/g, '')}`);
    keys.push('nina@example.net', 'x@a,ou=People', 'x@a+b', 'x@ lead', 'x@trail ', 'x@#hash', 'x@a\\,b', 'x@"q"', 'x@<a>;b');
    const { searched } = await compare('dn', dnCf, keys);
    expect(searched).toBeGreaterThan(40);
    console.log(`escaping: ${keys.length} keys (search_base), ${searched} searches identical to native postmap`);
  }, 60_000);

  it('NUL in a key (Postfix never sends one) reaches LDAP as nothing but an inert value', async () => {
    const c = new SocketmapClient(daemon.ports[0]!);
    for (const key of ['\0', 'a\0b', 'alice@example.org\0', '\0*', '*\0)(uid=*', 'x\0)(|(uid=*)(']) {
      slapd.resetSearchCount();
      const reply = await c.ask('filt', Buffer.from(key, 'utf8'));
      // No answer from a widened filter: never a value for these keys.
      expect(reply, JSON.stringify(key)).toMatch(/^(NOTFOUND |TEMP )/);
      for (const s of slapd.searches()) {
        // Whatever reached slapd has the template's shape: no extra filter components.
        expect(s.filter, JSON.stringify(key)).toMatch(/^\(&\(objectClass=\*\)\(\|\(mail=[^()*]*\)\(uid=[^()*]*\)\(cn=[^()*]*\)\)\)$/);
      }
    }
    c.end();
  });
});
