import type { Entry, Filter } from 'ldapts';
import { SearchEntry, SearchReference, SearchRequest, SearchResponse } from 'ldapts';

/*
 * What ldapts 8 gets wrong or leaves out for us, fixed on its message classes once, here.
 *
 * 1. Client.search() never hands its derefAliases option to the SearchRequest it builds, so
 *    every search went out with derefAliases = never whatever the map's `dereference` said.
 *    The filter object is ours and travels into the request, so a filter made for a search
 *    that dereferences carries the setting (withDeref), and the request reads it when written.
 */
type Deref = 'never' | 'search' | 'find' | 'always';
const DEREF_OF = new WeakMap<object, Deref>();

/** `filter`, marked so that the search it is sent with dereferences aliases as `deref` says. */
export function withDeref<F extends Filter>(filter: F, deref: Deref): F {
  if (deref !== 'never') DEREF_OF.set(filter, deref);
  return filter;
}

{
  const request = SearchRequest.prototype as unknown as { writeMessage(writer: unknown): void; filter: object; derefAliases: Deref };
  const write = request.writeMessage;
  request.writeMessage = function (this: typeof request, writer: unknown): void {
    const deref = DEREF_OF.get(this.filter);
    if (deref !== undefined) this.derefAliases = deref;
    write.call(this, writer);
  };
}

/*
 * 2. ldapts does not read the referral field of an LDAPResult (RFC 4511 §4.1.10, context tag 3),
 * and it flattens the URLs of all search references into one list, losing which URLs are
 * alternatives for the same reference. Both are needed to follow referrals like libldap, so
 * the two message classes learn to keep them: a reference's URLs are kept together (joined by
 * a newline, which an LDAP URL cannot contain), and a referral result's URLs travel in its
 * diagnostic message behind a marker, because ldapts builds the error it throws from the
 * status and the message only. referralsOf() takes them out again and clean() hides the marker.
 */
const MARKER = '\u0000ldap-socketmap-referral\u0000';
const CONTEXT_3 = 0xa3;
const LDAP_REFERRAL = 10;

interface BerReaderLike {
  offset: number;
  length: number;
  peek(): number | null;
  readSequence(tag?: number): number | null;
  readString(tag?: number): string | null;
}

{
  const response = SearchResponse.prototype as unknown as { parseMessage(reader: BerReaderLike): void; status: number; errorMessage: string };
  const inherited = response.parseMessage;
  response.parseMessage = function (this: typeof response, reader: BerReaderLike): void {
    inherited.call(this, reader);
    if (reader.peek() !== CONTEXT_3) return;
    reader.readSequence(CONTEXT_3);
    const end = reader.offset + reader.length;
    const urls: string[] = [];
    while (reader.offset < end) urls.push(reader.readString() ?? '');
    if (this.status === LDAP_REFERRAL && urls.length > 0) this.errorMessage = `${this.errorMessage}${MARKER}${urls.join('\n')}`;
  };
  const reference = SearchReference.prototype as unknown as { parseMessage(reader: BerReaderLike): void; uris: string[] };
  const readUris = reference.parseMessage;
  reference.parseMessage = function (this: typeof reference, reader: BerReaderLike): void {
    readUris.call(this, reader);
    if (this.uris.length > 1) this.uris = [this.uris.join('\n')];
  };
}

/** The URLs of a referral result, from what ldapts threw (undefined for anything else). */
export function referralsOf(err: unknown): string[] | undefined {
  if (!(err instanceof Error)) return undefined;
  const at = err.message.indexOf(MARKER);
  if (at < 0) return undefined;
  return err.message.slice(at + MARKER.length).replace(/\s*Code: 0x[0-9a-f]+\s*$/i, '').split('\n');
}

/** The message without the URLs carried for referralsOf(). */
export function clean(message: string): string {
  const at = message.indexOf(MARKER);
  if (at < 0) return message;
  const code = /\s*Code: 0x[0-9a-f]+\s*$/i.exec(message)?.[0] ?? '';
  return message.slice(0, at) + code;
}

/** One search reference's URLs (alternatives), as the pool received them. */
export function referenceUrls(reference: string): string[] {
  return reference.split('\n');
}

/*
 * 3. A server may send one attribute description twice in an entry: 389-ds does when two
 * requested names select the same subtype (`description` and `description;lang-en` both return
 * `description;lang-en`, and not next to each other). ldapts keys the entry by name and keeps
 * the last copy; libldap hands dict_ldap every attribute in the order it came, copies included
 * (Postfix then answers the value twice). Such an entry also carries its attributes in that
 * order under WIRE_ORDER, which attributesInOrder() reads; other entries are left as they are.
 */
const WIRE_ORDER = Symbol('attributes in the order the server sent them');

type EntryValues = Entry[string];
interface WireEntry { [WIRE_ORDER]?: [string, EntryValues][] }
interface AttributeLike { type: string; values: (string | Buffer)[]; parsedBuffers: Buffer[] }

{
  const entry = SearchEntry.prototype as unknown as {
    toObject(requested: string[], explicitBuffer: string[]): Entry;
    attributes: AttributeLike[];
  };
  const toObject = entry.toObject;
  entry.toObject = function (this: typeof entry, requested: string[], explicitBuffer: string[]): Entry {
    const obj = toObject.call(this, requested, explicitBuffer);
    const types = new Set(this.attributes.map((a) => a.type));
    if (types.size === this.attributes.length) return obj;
    // The values as ldapts gives them in the object: Buffers where any value is binary.
    (obj as WireEntry)[WIRE_ORDER] = this.attributes.map((a): [string, EntryValues] => [
      a.type,
      explicitBuffer.includes(a.type) || a.values.some((v) => Buffer.isBuffer(v)) ? a.parsedBuffers : (a.values as string[]),
    ]);
    return obj;
  };
}

/** An entry's attributes (not its dn) in the order the server sent them, repeated ones included. */
export function attributesInOrder(entry: Entry): [string, EntryValues][] {
  const wire = (entry as WireEntry)[WIRE_ORDER];
  if (wire) return wire;
  const out: [string, EntryValues][] = [];
  for (const k of Object.keys(entry)) if (k !== 'dn') out.push([k, entry[k]!]);
  return out;
}
