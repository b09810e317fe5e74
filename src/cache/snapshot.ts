/**
 * The cache snapshot file format: pure encode/decode, no file system (src/runtime/snapshot-file.ts
 * writes and reads the file).
 *
 * Why binary and not NDJSON: cached values and keys are arbitrary bytes (Postfix keys need not be
 * UTF-8), which NDJSON would have to carry base64-encoded (a third larger, and a decode per
 * field); a length-prefixed layout reads 100 000 entries with plain buffer reads, and the DNs and
 * filters the recorded dependencies repeat in every entry are written once, in a string table.
 * One SHA-256 over the whole file rejects a truncated or damaged file before any of it is used,
 * and every read is bounds-checked besides, so even a file with a valid checksum and nonsense
 * inside fails with a reason instead of an exception from deep inside Buffer.
 *
 *   magic "LSMCSNAP" (8) | version u16 | flags u16 (0) | body length u48 | body | SHA-256 (32)
 *
 * The SHA-256 covers everything before it. Body (integers big-endian, u32 unless noted):
 *
 *   writtenAt f64 (epoch ms)
 *   strings: n, then n × (length, UTF-8 bytes)                 DNs, filters, names, CSNs
 *   markers: n, then n × (servers str, base str, kind u8,
 *            kind 0 contextCSN: n, n × str | kind 1 modifyTimestamp: since f64 |
 *            kind 2 entryUSN, 3 uSNChanged, 4 changelog: source str, position str)
 *   maps:    n, then n × (name str, fingerprint 32 bytes, entries: n, n × entry)
 *   entry:   flags u8 (1 found, 2 has dependencies), key (length, bytes),
 *            found: value (length, bytes), ageMs f64, expiresInMs f64, staleForMs f64,
 *            dependencies: entries (n, n × str), bases (n, n × str),
 *                          searches (n, n × (base str, scope u8 0 one / 1 sub, filter str))
 *
 * "str" is an index into the string table. Times are remaining times at writing (the cache's
 * clock is monotonic and means nothing to another process); the reader subtracts the time the
 * daemon was down.
 */
import { createHash } from 'node:crypto';

export const SNAPSHOT_MAGIC = Buffer.from('LSMCSNAP', 'latin1');
export const SNAPSHOT_VERSION = 1;
const HEADER_BYTES = 8 + 2 + 2 + 6;
const CHECKSUM_BYTES = 32;
const FINGERPRINT_BYTES = 32;

export type SnapshotMarkerKind = 'contextCSN' | 'modifyTimestamp' | 'entryUSN' | 'uSNChanged' | 'changelog';

/** The kinds whose position is a counter of a source (kinds 2-4), in their order in the format. */
const COUNTER_KINDS = ['entryUSN', 'uSNChanged', 'changelog'] as const;

/** A watched naming context's change marker: how far the watcher had taken the cache into account. */
export interface SnapshotMarker {
  /** The watcher's server list (its pool), as ChangeWatcher.servers spells it. */
  servers: string;
  base: string;
  marker: SnapshotMarkerKind;
  /** contextCSN values (contextCSN only). */
  csn?: string[];
  /** The lower bound of the next modifyTimestamp poll, epoch seconds (modifyTimestamp only). */
  since?: number;
  /** What the counter belongs to: entryUSN the backend, uSNChanged the DC, changelog its DN. */
  source?: string;
  /** The counter's value up to which changes were applied (a decimal number). */
  position?: string;
}

export interface SnapshotDependencies {
  entries: readonly string[];
  bases: readonly string[];
  searches: readonly { base: string; scope: 'one' | 'sub'; filter: string }[];
}

export interface SnapshotEntry {
  /** The request key bytes, exactly as cached. */
  key: Buffer;
  kind: 'found' | 'notfound';
  /** The found value (found only). */
  value?: Buffer;
  ageMs: number;
  /** Negative or 0: already expired (kept for stale-if-error). */
  expiresInMs: number;
  /** How long it may still be served stale, counted from the writing. */
  staleForMs: number;
  deps?: SnapshotDependencies;
}

export interface SnapshotMap {
  name: string;
  /** Hex SHA-256 of what the map's answers depend on (snapshotFingerprint). */
  fingerprint: string;
  entries: SnapshotEntry[];
}

export interface Snapshot {
  /** Wall-clock time of the writing, epoch ms. */
  writtenAt: number;
  markers: SnapshotMarker[];
  maps: SnapshotMap[];
}

/** Why a snapshot cannot be used. */
export class SnapshotFormatError extends Error {
  override readonly name = 'SnapshotFormatError';
}

/* ---------------------------------------------------------------------------------------- */

class Writer {
  private buf = Buffer.allocUnsafe(64 * 1024);
  private pos = 0;

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }

  u16(v: number): void {
    this.room(2);
    this.pos = this.buf.writeUInt16BE(v, this.pos);
  }

  u32(v: number): void {
    this.room(4);
    this.pos = this.buf.writeUInt32BE(v, this.pos);
  }

  u48(v: number): void {
    this.room(6);
    this.pos = this.buf.writeUIntBE(v, this.pos, 6);
  }

  f64(v: number): void {
    this.room(8);
    this.pos = this.buf.writeDoubleBE(v, this.pos);
  }

  raw(b: Buffer): void {
    this.room(b.length);
    this.pos += b.copy(this.buf, this.pos);
  }

  bytes(b: Buffer): void {
    this.u32(b.length);
    this.raw(b);
  }

  /** Writes a placeholder now, the value later (counts known only at the end). */
  at(): number {
    return this.pos;
  }

  patchU32(pos: number, v: number): void {
    this.buf.writeUInt32BE(v, pos);
  }

  done(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** The string table, its entries encoded as they are first seen (finishing is then a copy). */
class StringTable {
  count = 0;
  readonly bytes = new Writer();
  private readonly index = new Map<string, number>();

  id(s: string): number {
    let i = this.index.get(s);
    if (i === undefined) {
      i = this.count++;
      this.index.set(s, i);
      this.bytes.bytes(Buffer.from(s, 'utf8'));
    }
    return i;
  }
}

/**
 * Builds a snapshot file a piece at a time, so that a writer can hand over a large cache in
 * slices and let the event loop run between them (runtime/cache-snapshot.ts): markers first,
 * then each map and its entries, then finish(). Entries go into their own writer, so the string
 * table they fill can precede them in the file.
 */
export class SnapshotEncoder {
  private readonly strings = new StringTable();
  private readonly tail = new Writer();
  private readonly mapsAt: number;
  private maps = 0;
  private countAt: number | undefined;
  private count = 0;

  constructor(private readonly writtenAt: number, markers: readonly SnapshotMarker[]) {
    const { tail, strings } = this;
    tail.u32(markers.length);
    for (const m of markers) {
      tail.u32(strings.id(m.servers));
      tail.u32(strings.id(m.base));
      if (m.marker === 'contextCSN') {
        tail.u8(0);
        const csn = m.csn ?? [];
        tail.u32(csn.length);
        for (const c of csn) tail.u32(strings.id(c));
      } else if (m.marker === 'modifyTimestamp') {
        tail.u8(1);
        tail.f64(m.since ?? 0);
      } else {
        tail.u8(2 + COUNTER_KINDS.indexOf(m.marker));
        tail.u32(strings.id(m.source ?? ''));
        tail.u32(strings.id(m.position ?? ''));
      }
    }
    this.mapsAt = tail.at();
    tail.u32(0);
  }

  /** Starts a map: the entries added next are its own. */
  map(name: string, fingerprint: string): void {
    this.closeMap();
    const fp = Buffer.from(fingerprint, 'hex');
    if (fp.length !== FINGERPRINT_BYTES) throw new Error(`map ${name}: fingerprint must be ${FINGERPRINT_BYTES} bytes of hex`);
    this.tail.u32(this.strings.id(name));
    this.tail.raw(fp);
    this.countAt = this.tail.at();
    this.tail.u32(0);
    this.count = 0;
    this.maps++;
  }

  add(e: SnapshotEntry): void {
    if (this.countAt === undefined) throw new Error('snapshot: an entry before its map');
    const { tail, strings } = this;
    const found = e.kind === 'found';
    tail.u8((found ? 1 : 0) | (e.deps ? 2 : 0));
    tail.bytes(e.key);
    if (found) tail.bytes(e.value ?? Buffer.alloc(0));
    tail.f64(e.ageMs);
    tail.f64(e.expiresInMs);
    tail.f64(e.staleForMs);
    if (e.deps) {
      const d = e.deps;
      tail.u32(d.entries.length);
      for (const dn of d.entries) tail.u32(strings.id(dn));
      tail.u32(d.bases.length);
      for (const dn of d.bases) tail.u32(strings.id(dn));
      tail.u32(d.searches.length);
      for (const q of d.searches) {
        tail.u32(strings.id(q.base));
        tail.u8(q.scope === 'one' ? 0 : 1);
        tail.u32(strings.id(q.filter));
      }
    }
    this.count++;
  }

  /** The snapshot as the bytes of its file. */
  finish(): Buffer {
    this.closeMap();
    this.tail.patchU32(this.mapsAt, this.maps);
    const strings = this.strings.bytes.done();
    const tail = this.tail.done();
    const w = new Writer();
    w.raw(SNAPSHOT_MAGIC);
    w.u16(SNAPSHOT_VERSION);
    w.u16(0);
    // The body: writtenAt, the string count, the strings, the tail.
    w.u48(8 + 4 + strings.length + tail.length);
    w.f64(this.writtenAt);
    w.u32(this.strings.count);
    const head = w.done();
    const sum = createHash('sha256').update(head).update(strings).update(tail).digest();
    return Buffer.concat([head, strings, tail, sum]);
  }

  private closeMap(): void {
    if (this.countAt !== undefined) this.tail.patchU32(this.countAt, this.count);
    this.countAt = undefined;
  }
}

/** The snapshot as the bytes of its file. */
export function encodeSnapshot(s: Snapshot): Buffer {
  const enc = new SnapshotEncoder(s.writtenAt, s.markers);
  for (const map of s.maps) {
    enc.map(map.name, map.fingerprint);
    for (const e of map.entries) enc.add(e);
  }
  return enc.finish();
}

/* ---------------------------------------------------------------------------------------- */

class Reader {
  pos: number;

  constructor(private readonly buf: Buffer, start: number, private readonly end: number) {
    this.pos = start;
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.end) throw new SnapshotFormatError(`${what} runs past the end of the data (offset ${this.pos})`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A count of items each at least `min` bytes long: never more than the bytes left allow. */
  count(min: number, what: string): number {
    const n = this.u32(what);
    if (n * min > this.end - this.pos) throw new SnapshotFormatError(`${what}: ${n} items cannot fit in the ${this.end - this.pos} bytes left`);
    return n;
  }

  f64(what: string): number {
    this.need(8, what);
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    if (!Number.isFinite(v)) throw new SnapshotFormatError(`${what} is not a finite number`);
    return v;
  }

  /** A copy: the entry must not keep the whole file's buffer alive. */
  bytes(what: string): Buffer {
    const n = this.u32(what);
    this.need(n, what);
    const out = Buffer.allocUnsafe(n);
    this.buf.copy(out, 0, this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  text(what: string): string {
    const n = this.u32(what);
    this.need(n, what);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  hex(n: number, what: string): string {
    this.need(n, what);
    const s = this.buf.toString('hex', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  atEnd(): boolean {
    return this.pos === this.end;
  }
}

/**
 * The snapshot in `file` (the whole file's bytes). Throws SnapshotFormatError naming what is
 * wrong: not a snapshot, another version, truncated, checksum mismatch, or inconsistent content.
 */
export function decodeSnapshot(file: Buffer): Snapshot {
  if (file.length < HEADER_BYTES + CHECKSUM_BYTES) throw new SnapshotFormatError(`too short to be a snapshot (${file.length} bytes)`);
  if (!file.subarray(0, SNAPSHOT_MAGIC.length).equals(SNAPSHOT_MAGIC)) throw new SnapshotFormatError('not a cache snapshot (wrong magic)');
  const version = file.readUInt16BE(8);
  if (version !== SNAPSHOT_VERSION) throw new SnapshotFormatError(`snapshot format version ${version} is not supported (this daemon reads version ${SNAPSHOT_VERSION})`);
  const bodyLength = file.readUIntBE(12, 6);
  const want = HEADER_BYTES + bodyLength + CHECKSUM_BYTES;
  if (file.length < want) throw new SnapshotFormatError(`truncated: ${file.length} of ${want} bytes`);
  if (file.length > want) throw new SnapshotFormatError(`${file.length - want} bytes of garbage after the end`);
  const bodyEnd = HEADER_BYTES + bodyLength;
  const sum = createHash('sha256').update(file.subarray(0, bodyEnd)).digest();
  if (!sum.equals(file.subarray(bodyEnd))) throw new SnapshotFormatError('checksum mismatch (the file is damaged)');
  return decodeBody(new Reader(file, HEADER_BYTES, bodyEnd));
}

function decodeBody(r: Reader): Snapshot {
  const writtenAt = r.f64('time of writing');
  const nStrings = r.count(4, 'string table');
  const strings: string[] = new Array<string>(nStrings);
  for (let i = 0; i < nStrings; i++) strings[i] = r.text('string');
  const str = (what: string): string => {
    const i = r.u32(what);
    const s = strings[i];
    if (s === undefined) throw new SnapshotFormatError(`${what}: string ${i} of ${nStrings} does not exist`);
    return s;
  };
  const strList = (what: string): string[] => {
    const n = r.count(4, what);
    const out = new Array<string>(n);
    for (let i = 0; i < n; i++) out[i] = str(what);
    return out;
  };

  const markers: SnapshotMarker[] = [];
  const nMarkers = r.count(9, 'markers');
  for (let i = 0; i < nMarkers; i++) {
    const servers = str('marker servers');
    const base = str('marker base');
    const kind = r.u8('marker kind');
    if (kind === 0) markers.push({ servers, base, marker: 'contextCSN', csn: strList('contextCSN values') });
    else if (kind === 1) markers.push({ servers, base, marker: 'modifyTimestamp', since: r.f64('modifyTimestamp bound') });
    else if (kind >= 2 && kind < 2 + COUNTER_KINDS.length) {
      markers.push({ servers, base, marker: COUNTER_KINDS[kind - 2]!, source: str('marker source'), position: str('marker position') });
    } else throw new SnapshotFormatError(`marker kind ${kind} is unknown`);
  }

  const maps: SnapshotMap[] = [];
  const names = new Set<string>();
  const nMaps = r.count(4 + FINGERPRINT_BYTES + 4, 'maps');
  for (let i = 0; i < nMaps; i++) {
    const name = str('map name');
    if (names.has(name)) throw new SnapshotFormatError(`map ${JSON.stringify(name)} appears twice`);
    names.add(name);
    const fingerprint = r.hex(FINGERPRINT_BYTES, 'fingerprint');
    const n = r.count(1 + 4 + 24, `entries of map ${name}`);
    const entries = new Array<SnapshotEntry>(n);
    for (let j = 0; j < n; j++) entries[j] = decodeEntry(r, str, strList);
    maps.push({ name, fingerprint, entries });
  }
  if (!r.atEnd()) throw new SnapshotFormatError(`unread bytes after the last map (offset ${r.pos})`);
  return { writtenAt, markers, maps };
}

function decodeEntry(r: Reader, str: (what: string) => string, strList: (what: string) => string[]): SnapshotEntry {
  const flags = r.u8('entry flags');
  if (flags > 3) throw new SnapshotFormatError(`entry flags ${flags} are unknown`);
  const key = r.bytes('key');
  const found = (flags & 1) !== 0;
  const e: SnapshotEntry = { key, kind: found ? 'found' : 'notfound', ageMs: 0, expiresInMs: 0, staleForMs: 0 };
  if (found) e.value = r.bytes('value');
  e.ageMs = r.f64('age');
  e.expiresInMs = r.f64('expiry');
  e.staleForMs = r.f64('stale window');
  if ((flags & 2) !== 0) {
    const entries = strList('dependency entries');
    const bases = strList('dependency bases');
    const n = r.count(9, 'dependency searches');
    const searches: { base: string; scope: 'one' | 'sub'; filter: string }[] = [];
    for (let i = 0; i < n; i++) {
      const base = str('search base');
      const scope = r.u8('search scope');
      if (scope > 1) throw new SnapshotFormatError(`search scope ${scope} is unknown`);
      searches.push({ base, scope: scope === 0 ? 'one' : 'sub', filter: str('search filter') });
    }
    e.deps = { entries, bases, searches };
  }
  return e;
}
