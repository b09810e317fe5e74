/**
 * Cross-check of parseFilter() against the real libldap on this machine: ldapsearch (OpenLDAP
 * 2.5) is pointed at a tiny fake LDAP server that answers the bind, records the filter element
 * of every SearchRequest and answers searchResDone. A filter libldap rejects never reaches the
 * server (ldapsearch reports "Bad search filter (-7)").
 *
 * libldap writes constructed lengths in long form (0x84 + 4 bytes) while ldapts writes minimal
 * lengths; both are valid BER for the same value, so both sides are re-encoded with minimal
 * lengths before comparing. Every tag, every value byte and the structure must be identical.
 *
 * Top-level forms are run one ldapsearch per filter (argv). The bulk fuzz runs thousands of
 * filters through one ldapsearch with `-c -f FILE '(&%s)'` (each line becomes "(&LINE)"), with a
 * sentinel search after each line to tell which requests belong to which line.
 */
import { spawn, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { BerWriter } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilterError, parseFilter } from '../../src/ldap/filter.js';
import { prng as rng } from '../support/prng.js';
import { makeTmpDir } from '../support/tmp.js';

// libldap is the referee here: without ldapsearch this file must fail, never skip.
const haveLdapsearch = spawnSync('ldapsearch', ['-VV'], { encoding: 'utf8' }).error === undefined;
if (!haveLdapsearch) throw new Error('ldapsearch (Debian package ldap-utils) is required: run scripts/install-deps.sh');

// ---------------------------------------------------------------------------------------------
// Minimal BER.

interface Tlv {
  tag: number;
  content: Buffer;
  /** Offset just past this element. */
  end: number;
}

function readTlv(b: Buffer, at: number): Tlv | undefined {
  if (at + 2 > b.length) return undefined;
  const tag = b[at]!;
  let len = b[at + 1]!;
  let p = at + 2;
  if (len & 0x80) {
    const k = len & 0x7f;
    if (p + k > b.length) return undefined;
    len = 0;
    for (let i = 0; i < k; i++) len = len * 256 + b[p + i]!;
    p += k;
  }
  if (p + len > b.length) return undefined;
  return { tag, content: b.subarray(p, p + len), end: p + len };
}

function children(content: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < content.length; ) {
    const t = readTlv(content, at);
    if (!t) throw new Error('truncated BER');
    out.push(t);
    at = t.end;
  }
  return out;
}

function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Re-encodes one element with minimal definite lengths. */
function canon(t: Tlv): Buffer {
  const content = t.tag & 0x20 ? Buffer.concat(children(t.content).map(canon)) : t.content;
  return Buffer.concat([Buffer.from([t.tag]), encodeLength(content.length), content]);
}

function oursHex(filter: string): string {
  const w = new BerWriter();
  parseFilter(filter).write(w);
  const t = readTlv(w.buffer, 0);
  if (!t) throw new Error('ldapts wrote truncated BER');
  return canon(t).toString('hex');
}

/** What parseFilter makes of a filter: canonical hex, or 'ERROR'. */
function ours(filter: string): string {
  try {
    return oursHex(filter);
  } catch (err) {
    if (err instanceof FilterError) return 'ERROR';
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Fake LDAP server: answers bind and search, records canonical filter hex per search.

class Capture {
  private server!: Server;
  port = 0;
  filters: string[] = [];

  async start(): Promise<void> {
    this.server = createServer((sock) => this.serve(sock));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(sock: Socket): void {
    let buf = Buffer.alloc(0);
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const msg = readTlv(buf, 0);
        if (!msg) break;
        buf = buf.subarray(msg.end);
        const [id, op] = children(msg.content);
        if (!id || !op) continue;
        const idTlv = canon(id);
        const reply = (tag: number): void => {
          const result = Buffer.from([tag, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]);
          const body = Buffer.concat([idTlv, result]);
          sock.write(Buffer.concat([Buffer.from([0x30]), encodeLength(body.length), body]));
        };
        if (op.tag === 0x60) reply(0x61); // bindRequest -> bindResponse success
        else if (op.tag === 0x63) {
          const f = children(op.content)[6];
          this.filters.push(f ? canon(f).toString('hex') : 'NOFILTER');
          reply(0x65); // searchResDone success
        } else if (op.tag === 0x42) sock.end(); // unbind
      }
    });
  }
}

function ldapsearchArgs(port: number): string[] {
  return ['-x', '-LLL', '-H', `ldap://127.0.0.1:${port}`, '-b', '', '-o', 'nettimeout=10'];
}

const env = { ...process.env, LDAPNOINIT: '1' };

/** libldap's verdict on one filter given as ldapsearch's argument. */
async function libldap(cap: Capture, filter: string): Promise<string> {
  const before = cap.filters.length;
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const p = spawn('ldapsearch', [...ldapsearchArgs(cap.port), filter, '1.1'], { env });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (c) => resolve({ code: c, stderr }));
  });
  if (cap.filters.length > before) return cap.filters[before]!;
  if (/Bad search filter \(-7\)/.test(stderr)) return 'ERROR';
  throw new Error(`ldapsearch ${JSON.stringify(filter)} exited ${code}: ${stderr}`);
}

/** libldap's verdicts on "(&LINE)" for many lines, through one ldapsearch -c -f. */
async function libldapBulk(cap: Capture, lines: string[]): Promise<string[]> {
  const dir = makeTmpDir('filter-bytes-');
  try {
    const file = join(dir, 'filters');
    const sentinel = (i: number): string => `(zzsentinel=${i})`;
    writeFileSync(file, lines.map((l, i) => `${l}\n${sentinel(i)}\n`).join(''));
    const before = cap.filters.length;
    const code = await new Promise<number | null>((resolve, reject) => {
      const p = spawn('ldapsearch', [...ldapsearchArgs(cap.port), '-c', '-f', file, '(&%s)', '1.1'], {
        env,
        stdio: ['ignore', 'ignore', 'ignore'],
      });
      p.on('error', reject);
      p.on('close', resolve);
    });
    const got = cap.filters.slice(before);
    const out: string[] = [];
    let k = 0;
    for (let i = 0; i < lines.length; i++) {
      const s = oursHex(`(&${sentinel(i)})`);
      if (got[k] === s) {
        out.push('ERROR');
        k += 1;
      } else if (got[k + 1] === s) {
        out.push(got[k]!);
        k += 2;
      } else {
        throw new Error(`lost track at line ${i} (ldapsearch exit ${code})`);
      }
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Random filters: grammar-built ones, mutated ones and character soup.

function makeGen(seed: number) {
  const r = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const attrs = ['cn', 'mail', 'objectClass', 'CN', 'x-y', '2.5.4.3', 'cn;lang-de', 'a1', 'mailAlternateAddress'];
  const valueAtoms = [
    'a', 'b', 'Z', '0', '@', '.', ' ', '=', '&', '|', '!', '~', ':', '<', '>', '%', ';',
    'ü', 'é', '€', '漢', '😀', '\t',
    '\\2a', '\\28', '\\29', '\\5c', '\\5C', '\\c3\\bc', '\\C3\\BC', '\\00', '\\ff', '\\e2\\82\\ac', '\\0a',
    '\\*', '\\(', '\\)', '\\\\',
  ];
  const badAtoms = ['\\zz', '\\4', '\\g0', '\\', '(', ')', '*', '\\ü', '\\=', '**'];
  const value = (maxLen: number): string => {
    let s = '';
    const n = Math.floor(r() * maxLen);
    for (let i = 0; i < n; i++) s += pick(valueAtoms);
    return s;
  };
  const simple = (): string => {
    const a = pick(attrs);
    switch (Math.floor(r() * 9)) {
      case 0:
        return `${a}=*`;
      case 1: {
        const parts = [value(3)];
        const k = 1 + Math.floor(r() * 3);
        for (let i = 0; i < k; i++) parts.push(value(3));
        return `${a}=${parts.join('*')}`;
      }
      case 2:
        return `${a}>=${value(4)}`;
      case 3:
        return `${a}<=${value(4)}`;
      case 4:
        return `${a}~=${value(4)}`;
      case 5: {
        const forms = [`${a}:`, `${a}:dn:`, `${a}:DN:`, `${a}:caseExactMatch:`, `${a}:dn:2.5.13.5:`, `:caseIgnoreMatch:`, `:dn:1.2.3:`, `${a}::`, `${a}:dn::`];
        return `${pick(forms)}=${value(4)}`;
      }
      default:
        return `${a}=${value(6)}`;
    }
  };
  const sp = (): string => (r() < 0.15 ? pick([' ', '  ', '\t']) : '');
  const filter = (depth: number): string => {
    const k = r();
    if (depth > 2 || k < 0.55) return `(${sp()}${simple()})`;
    if (k < 0.7) return `(${sp()}!${sp()}${filter(depth + 1)})`;
    const n = Math.floor(r() * 4);
    let s = `(${sp()}${pick(['&', '|'])}`;
    for (let i = 0; i < n; i++) s += sp() + filter(depth + 1);
    return s + sp() + ')';
  };
  const mutate = (s: string): string => {
    const chars = [...s];
    const at = Math.floor(r() * (chars.length + 1));
    switch (Math.floor(r() * 3)) {
      case 0:
        chars.splice(at, 1);
        break;
      case 1:
        chars.splice(at, 0, pick([...badAtoms, '(', ')', ' ', '&', '!', '=', ':', '\\']));
        break;
      default:
        chars.splice(at, 1, pick(['(', ')', '*', '\\', ' ', '=', ':', '~', 'ü']));
    }
    return chars.join('');
  };
  const soupChars = ['(', ')', '&', '|', '!', '=', '*', '\\', '<', '>', '~', ':', ' ', 'a', 'c', 'n', 'd', '2', 'f', ';', '.', 'ü'];
  const soup = (): string => {
    let s = '';
    const n = 1 + Math.floor(r() * 12);
    for (let i = 0; i < n; i++) s += pick(soupChars);
    return s;
  };
  return (): string => {
    const k = r();
    if (k < 0.5) return filter(0);
    if (k < 0.85) return mutate(filter(0));
    return soup();
  };
}

// ---------------------------------------------------------------------------------------------

describe('parseFilter matches libldap (ldapsearch) byte for byte', () => {
  const cap = new Capture();
  beforeAll(() => cap.start());
  afterAll(() => cap.stop());

  // ldapsearch itself replaces a first argument that neither starts with '(' nor contains '='
  // by (objectclass=*), so only such filters can be put to libldap this way.
  const topLevel = [
    '(mail=a\\2Ab\\28c\\29@x)',
    '(cn=J\\c3\\bcrgen)',
    '(cn=Jürgen)',
    '(cn=J\\C3\\BCrgen)',
    '(&(objectClass=*)(listName=x))',
    '(|(a=1)(!(b=2)))',
    '(cn=a*b*c)',
    '(cn=*x*)',
    '(cn:dn:caseExactMatch:=Fred)',
    'mail=x',
    'mail=x ',
    'mail=x)',
    ' mail=x',
    ' (mail=x)',
    '(mail=x) ',
    '(mail=x)(cn=y)',
    '( mail=x)',
    '(\tmail=x)',
    '(\nmail=x)',
    '(mail =x)',
    '(mail= x )',
    '( & (a=1) (b=2) )',
    '(&)',
    '(|)',
    '(!)',
    '(! (a=1))',
    '(!(a=1) )',
    '(!(a=1)(b=2))',
    '((a=1))',
    '(a=1',
    '(a=1))',
    ')(a=1)',
    '=x',
    '(=x)',
    '(cn=\\zz)',
    '(cn=\\4)',
    '(cn=\\4g)',
    '(cn=\\*\\(\\)\\\\)',
    '(cn=\\x)',
    '(cn=\\)',
    '(cn=a\\)',
    '(cn=a**b)',
    '(cn=**)',
    '(cn=*)',
    '(cn=)',
    '(cn<=*)',
    '(cn>=)',
    '(cn~=ü)',
    '(cn=a=b)',
    '(cn;lang-de=x)',
    '(cn;=x)',
    '(2.5.4.3=x)',
    '(2.5..4=x)',
    '(2.5.=x)',
    '(c_n=x)',
    '(cn:=x)',
    '(cn::=x)',
    '(cn:dn::=x)',
    '(:dn:=x)',
    '(:1.2.3:=x)',
    '(:dn:1.2.3:=x)',
    '(::=x)',
    '(cn:xx:1.2:=x)',
    '(cn:dn:1.2:3:=x)',
    '(cn:1.2.:=x)',
    '(cn:DN:=x)',
    '(cn:=a*b)',
    '(cn=\\00x)',
    '(cn=\\ff\\FE)',
    '(cn=😀)',
    // the unit tests' tables
    '(cn= a=b&|!~<> )',
    '( & (a=1)\t(b=2)\n)',
    '(uid<=\\c3\\bc)',
    '(cn=ü*\\2a*\\c3\\bc)',
    '(cn:DN:=\\c3\\bc)',
    '(:dn:2.5.13.5:=)',
    '(CN;lang-de;x-1=x)',
    'cn=a*',
    '(mail=x',
    '(&(a=1)',
    '(|(a=1)))',
    '()',
    '(&a=1)',
    '(&(a=1)x)',
    '(mail=x)y',
    '(ma il=x)',
    '(-mail=x)',
    '(cn;a_b=x)',
    '(2.a=x)',
    '(mail!=x)',
    '(<=x)',
    '(cn=\\g4)',
    '(cn=\\ü)',
    'cn=a\\',
    '(cn=a(b)',
    '(cn=a)b)',
    'mail=(x',
    '(cn>=a*)',
    '(cn~=*)',
    '(cn:=*)',
    '(cn=*\\zz*)',
    '(cn=a*(*)',
    '(:=x)',
    '(:dn::=x)',
    '(cn:1..2:=x)',
    '(cn:case_exact:=x)',
    '(c_n:=x)',
  ];

  it('agrees on top-level and hand-picked filters', async () => {
    const mismatches: string[] = [];
    for (const f of topLevel) {
      const want = await libldap(cap, f);
      const got = ours(f);
      if (want !== got) mismatches.push(`${JSON.stringify(f)}: libldap ${want}, ours ${got}`);
    }
    expect(mismatches).toEqual([]);
  });

  it('agrees on 150 random top-level filters', async () => {
    const gen = makeGen(4515);
    const r = rng(1960);
    const blanks = ['', '', '', ' ', '\t', '\n', '  '];
    const pickBlank = (): string => blanks[Math.floor(r() * blanks.length)]!;
    const filters: string[] = [];
    while (filters.length < 150) {
      let f = gen();
      // Also the forms without outer parentheses, and stray blanks around the whole filter.
      if (r() < 0.3 && f.startsWith('(') && f.endsWith(')')) f = f.slice(1, -1);
      f = pickBlank() + f + pickBlank();
      if ((f.startsWith('(') || f.includes('=')) && !f.startsWith('-')) filters.push(f);
    }
    const mismatches: string[] = [];
    for (const f of filters) {
      const want = await libldap(cap, f);
      const got = ours(f);
      if (want !== got) mismatches.push(`${JSON.stringify(f)}: libldap ${want}, ours ${got}`);
    }
    expect(mismatches).toEqual([]);
  });

  it('agrees on 4000 random filters inside (&...)', async () => {
    const gen = makeGen(20240607);
    const lines: string[] = [];
    while (lines.length < 4000) {
      const f = gen();
      // One line per filter for ldapsearch -f; '%' is fine (it is in the value, not the pattern).
      if (!f.includes('\n')) lines.push(f);
    }
    const want = await libldapBulk(cap, lines);
    const mismatches: string[] = [];
    let errors = 0;
    for (let i = 0; i < lines.length; i++) {
      const got = ours(`(&${lines[i]!})`);
      if (want[i] === 'ERROR') errors++;
      if (want[i] !== got) mismatches.push(`${JSON.stringify(lines[i])}: libldap ${want[i]}, ours ${got}`);
    }
    expect(mismatches.slice(0, 20)).toEqual([]);
    // The generator must exercise both sides.
    expect(errors).toBeGreaterThan(400);
    expect(lines.length - errors).toBeGreaterThan(1000);
  });
});
