import type { LookupResult } from '../contracts/result.js';
import { ProtocolError } from './errors.js';
import { encodeNetstring, encodeNetstringWithPrefix } from './netstring.js';
import { MAX_REASON_BYTES, sanitizeReason } from './reason.js';

/**
 * Postfix socketmap (util/dict_sockmap.c): the request payload is `NAME SP KEY`, the reply
 * payload is one of `OK value`, `NOTFOUND `, `TEMP text`, `TIMEOUT text`, `PERM text`, each
 * carried in a netstring.
 */

export interface SocketmapRequest {
  mapName: string;
  /** The key bytes verbatim; a subarray of the request payload. */
  key: Buffer;
}

const SPACE = 0x20;

/** The Postfix client rejects reply payloads longer than this before reading them. */
export const SOCKETMAP_MAX_REPLY = 100000;

/** Every error reply word plus its space fits in this, so any smaller limit is unusable. */
const MIN_REPLY_LIMIT = 'NOTFOUND '.length;

/**
 * Splits at the first space: map names cannot contain spaces, keys can. The name is decoded as
 * latin1 because that is lossless, so a non-ASCII name can never alias a configured one. An
 * empty key is not a protocol error: the lookup layer answers it with NOTFOUND, as Postfix does.
 */
export function parseSocketmapRequest(payload: Buffer): SocketmapRequest {
  const space = socketmapNameEnd(payload);
  return { mapName: payload.toString('latin1', 0, space), key: payload.subarray(space + 1) };
}

/**
 * Where the map name of a request payload ends (its first space; the key starts one byte
 * later), for callers that read name and key without parseSocketmapRequest's objects. Throws
 * the same ProtocolErrors.
 */
export function socketmapNameEnd(payload: Buffer): number {
  const space = payload.indexOf(SPACE);
  if (space < 0) throw new ProtocolError('bad_request', 'socketmap request has no space after the map name');
  if (space === 0) throw new ProtocolError('bad_request', 'socketmap request has an empty map name');
  return space;
}

export interface SocketmapReply {
  frame: Buffer;
  /** Set when a found value did not fit: the payload size that would have been needed. */
  oversize?: number;
}

/**
 * Encodes a lookup result as a complete netstring frame.
 *
 * An empty found value goes out as NOTFOUND, never as `OK `: Postfix's maps_find() treats an
 * empty found value as a configuration error, while dict_ldap never returns one (no values means
 * not found). A value too large for the client goes out as TEMP (the mail is deferred, which is
 * recoverable) instead of a frame the client would reject as a size error.
 */
export function encodeSocketmapReply(result: LookupResult, maxPayload = SOCKETMAP_MAX_REPLY): SocketmapReply {
  if (maxPayload < MIN_REPLY_LIMIT) throw new RangeError(`maxPayload must be at least ${MIN_REPLY_LIMIT}`);
  switch (result.kind) {
    case 'found':
      return encodeFound(result.value, maxPayload);
    case 'notfound':
      return { frame: encodeNetstring('NOTFOUND ') };
    case 'temp':
      return { frame: encodeError('TEMP ', result.reason, maxPayload) };
    case 'timeout':
      return { frame: encodeError('TIMEOUT ', result.reason, maxPayload) };
    case 'perm':
      return { frame: encodeError('PERM ', result.reason, maxPayload) };
  }
}

function encodeFound(value: Buffer, maxPayload: number): SocketmapReply {
  if (value.length === 0) return { frame: encodeNetstring('NOTFOUND ') };
  const size = 'OK '.length + value.length;
  if (size > maxPayload) {
    return { frame: encodeError('TEMP ', `reply too large (${size} bytes)`, maxPayload), oversize: size };
  }
  return { frame: encodeNetstringWithPrefix('OK ', value) };
}

function encodeError(word: string, reason: string, maxPayload: number): Buffer {
  return encodeNetstringWithPrefix(word, sanitizeReason(reason, Math.min(MAX_REASON_BYTES, maxPayload - word.length)));
}
