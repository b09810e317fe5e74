import { NetstringDecoder } from '../protocol/netstring.js';
import { encodeSocketmapReply, parseSocketmapRequest } from '../protocol/socketmap.js';
import { encodeTcpReply, TcpTableDecoder, type TcpRequest } from '../protocol/tcp-table.js';
import { log, printable, redactSecrets } from '../log.js';
import { perm, temp, type LookupMap, type LookupResult } from '../lookup/result.js';
import type { Decoder } from './connection.js';

export interface MapRegistry {
  get(name: string): LookupMap | undefined;
  names(): string[];
}

export interface LookupObserver {
  /** Called once per answered request with the result kind and the reply's size problem, if any. */
  answered?(map: string, result: LookupResult, oversize?: number): void;
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

export function socketmapProtocol(registry: MapRegistry, observer: LookupObserver = {}, maxRequest = DEFAULT_MAX_REQUEST): {
  decoder: () => Decoder<Buffer>;
  handle: (payload: Buffer) => Promise<Buffer>;
} {
  return {
    decoder: () => new NetstringDecoder(maxRequest),
    handle: async (payload) => {
      const req = parseSocketmapRequest(payload);
      const map = registry.get(req.mapName);
      const result = map
        ? await safeLookup(map, req.key)
        : perm(`unknown map name ${printable(req.mapName, 64)}; known maps: ${registry.names().join(', ')}`);
      const { frame, oversize } = encodeSocketmapReply(result);
      if (oversize !== undefined) {
        log.warn(`map ${req.mapName}: answer for ${printable(req.key)} is ${oversize} bytes, over the socketmap limit; answered TEMP`);
      }
      observer.answered?.(req.mapName, result, oversize);
      return frame;
    },
  };
}

/** tcp_table requests carry no map name: one map per listener. */
export function tcpTableProtocol(map: LookupMap, observer: LookupObserver = {}, maxLine = DEFAULT_MAX_REQUEST): {
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
