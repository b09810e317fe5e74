import type { LookupMap, ReadyAnswer, ServedMap } from '../contracts/map.js';
import { perm, temp, type AnswerKind, type LookupResult } from '../contracts/result.js';
import { log, printable, redactSecrets } from '../log.js';
import { NetstringDecoder } from '../protocol/netstring.js';
import { encodeSocketmapReply, SOCKETMAP_MAX_REPLY, socketmapNameEnd } from '../protocol/socketmap.js';
import type { SocketmapForm } from '../protocol/socketmap-answers.js';
import { encodeTcpReply, TcpTableDecoder, type TcpRequest } from '../protocol/tcp-table.js';
import type { Decoder, Reply } from './connection.js';

/** The maps a socketmap listener serves: their ready answers are kept as socketmap replies. */
export interface MapRegistry {
  get(name: string): ServedMap<SocketmapForm> | undefined;
  names(): string[];
}

export interface LookupObserver {
  /** Called once per answered request with the result kind and the reply's size problem, if any. */
  answered?(map: string, result: AnswerKind, oversize?: number): void;
}

/**
 * Postfix's requests are small (a map name and an address or domain); anything near this is not
 * Postfix. The daemon's max_request_size setting (same default) replaces it.
 */
export const DEFAULT_MAX_REQUEST = 16_384;

async function safeLookup(map: LookupMap, key: Buffer): Promise<LookupResult> {
  try {
    const r = await map.lookup(key);
    // Error texts go to the client (and on into Postfix's log): never with a password in them.
    if (r.kind === 'temp' || r.kind === 'timeout' || r.kind === 'perm') {
      const reason = redactSecrets(r.reason);
      if (reason !== r.reason) return { ...r, reason };
    }
    return r;
  } catch (err) {
    // A bug must not become NOTFOUND (mail would bounce); a temporary error defers it.
    log.error(`map ${map.name}: lookup of ${printable(key)} failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    return temp('internal error');
  }
}

/** A fresh cached answer for `payload.subarray(start)`, or undefined (also when asking threw: the lookup then decides). */
function safeAnswerNow(map: ServedMap<SocketmapForm>, payload: Buffer, start: number): ReadyAnswer<SocketmapForm> | undefined {
  try {
    return map.answerNow(payload, start);
  } catch (err) {
    log.error(`map ${map.name}: cache lookup of ${printable(payload.subarray(start))} failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    return undefined;
  }
}

/**
 * The map name of each request as a string, reusing the previous one when the bytes are the
 * same (a connection asks one map over and over): no string per request. Latin1, as in
 * parseSocketmapRequest: one char per byte, so comparing char codes with bytes is exact.
 */
function mapNames(): (payload: Buffer, end: number) => string {
  let last = '';
  return (payload, end) => {
    if (end === last.length) {
      let i = 0;
      while (i < end && payload[i] === last.charCodeAt(i)) i++;
      if (i === end) return last;
    }
    last = payload.toString('latin1', 0, end);
    return last;
  };
}

/**
 * A cache hit is answered synchronously with the reply the cache keeps in socketmap form;
 * everything else (a miss, an unknown map) goes through the map's lookup and is encoded here.
 * `maxReply` is the client's socketmap_max_reply_size; the maps' codec must use the same.
 */
export function socketmapProtocol(registry: MapRegistry, observer: LookupObserver = {}, maxRequest = DEFAULT_MAX_REQUEST, maxReply = SOCKETMAP_MAX_REPLY): {
  decoder: () => Decoder<Buffer>;
  handle: (payload: Buffer) => Reply | Promise<Reply>;
} {
  const oversized = (mapName: string, key: Buffer, size: number): void => {
    log.warn(`map ${mapName}: answer for ${printable(key)} is ${size} bytes, over the socketmap limit; answered TEMP`);
  };
  const reply = (mapName: string, key: Buffer, result: LookupResult): Buffer => {
    const { frame, oversize } = encodeSocketmapReply(result, maxReply);
    if (oversize !== undefined) oversized(mapName, key, oversize);
    observer.answered?.(mapName, result, oversize);
    return frame;
  };
  const nameOf = mapNames();
  return {
    decoder: () => new NetstringDecoder(maxRequest),
    handle: (payload) => {
      // parseSocketmapRequest without its objects: a hit needs neither them nor a key subarray.
      const space = socketmapNameEnd(payload);
      const mapName = nameOf(payload, space);
      const map = registry.get(mapName);
      if (map) {
        const hit = safeAnswerNow(map, payload, space + 1);
        if (hit) {
          const form = hit.encoded;
          if (typeof form === 'string') {
            observer.answered?.(mapName, hit, undefined);
            return form;
          }
          if (form.oversize !== undefined) oversized(mapName, payload.subarray(space + 1), form.oversize);
          observer.answered?.(mapName, hit, form.oversize);
          return form.reply;
        }
      }
      const key = payload.subarray(space + 1);
      if (!map) return reply(mapName, key, perm(`unknown map name ${printable(mapName, 64)}; known maps: ${registry.names().join(', ')}`));
      return safeLookup(map, key).then((result) => reply(mapName, key, result));
    },
  };
}

/**
 * The longest tcp_table request line for a max_request_size: Postfix %XX-encodes every byte of a
 * key that is not printable ASCII, so a key of N bytes can take 3N on the line, plus "get " and
 * the newline. Bounding the line by max_request_size itself refused non-ASCII keys three times
 * shorter than the same keys over socketmap.
 */
export function tcpLineLimit(maxRequestSize: number): number {
  return maxRequestSize * 3 + 5;
}

/** tcp_table requests carry no map name: one map per listener. */
export function tcpTableProtocol(map: LookupMap, observer: LookupObserver = {}, maxLine = tcpLineLimit(DEFAULT_MAX_REQUEST)): {
  decoder: () => Decoder<TcpRequest>;
  handle: (req: TcpRequest) => Promise<Buffer>;
} {
  return {
    decoder: () => new TcpTableDecoder(maxLine),
    handle: async (req) => {
      const result = await safeLookup(map, req.key);
      const { line, oversize } = encodeTcpReply(result);
      if (oversize !== undefined) {
        log.warn(`map ${map.name}: answer for ${printable(req.key)} is ${oversize} bytes, over the tcp_table limit; answered 400`);
      }
      observer.answered?.(map.name, result, oversize);
      return line;
    },
  };
}
