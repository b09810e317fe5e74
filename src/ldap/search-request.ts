import type { SearchScope, SearchSpec } from '../contracts/trace.js';

export type Scope = SearchScope;

/** A search as the pool runs it: the map's SearchSpec, plus how values are to be returned. */
export interface SearchRequest extends SearchSpec {
  /**
   * Values of the requested attributes as Buffers (views into the LDAP message) rather than
   * strings: the maps want bytes, and decoding to a string only to encode it again costs time.
   */
  binary?: boolean;
}
