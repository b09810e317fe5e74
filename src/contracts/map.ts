/**
 * The map contracts every layer agrees on. A map answers a key; wrappers (deadline, cache,
 * fallback) are maps around maps; the servers only ever see these interfaces, so the protocols
 * never know LDAP exists.
 */
import type { LookupResult } from './result.js';
import type { LookupTrace } from './trace.js';

/** How one lookup is to be made; absent for the requests the servers answer. */
export interface LookupContext {
  /**
   * Observes how this answer came about (wrappers report their own steps and pass it on; a
   * cache hit reports the hit and calls nothing below).
   */
  readonly trace?: LookupTrace;
  /**
   * Look without changing anything (`explain`): the cache answers and reports as it would, but
   * stores, counts, shares and refreshes nothing.
   */
  readonly lookOnly?: boolean;
}

/** Anything that answers lookups by key: the LDAP map, a wrapper around a map, a test double. */
export interface LookupMap {
  readonly name: string;
  lookup(key: Buffer, ctx?: LookupContext): Promise<LookupResult>;
  close?(): Promise<void>;
}

/**
 * An answer that is ready now, kept with the form a protocol codec gave it when it was stored
 * (`E`, opaque to the cache): the socketmap server writes that form as is, without a Promise, a
 * timer or any encoding.
 */
export interface ReadyAnswer<E> {
  readonly kind: 'found' | 'notfound';
  /** The codec's form of this answer, made once when it was stored. */
  readonly encoded: E;
  /** The answer as a LookupResult (a found value is a new Buffer per call). */
  result(): LookupResult;
}

/** Maps that can answer some keys synchronously: the cache, and every wrapper above it. */
export interface AnswersNow<E> {
  /**
   * A fresh answer for the key `key.subarray(start)` (the exact request bytes; `start` spares
   * the caller a subarray), counted like a lookup() that finds it; undefined when lookup() has
   * to decide, in which case nothing was counted.
   */
  answerNow(key: Buffer, start?: number): ReadyAnswer<E> | undefined;
}

/**
 * What the servers call: a map that also answers ready keys synchronously. Every wrapper placed
 * between the servers and the cache must implement it, so one that does not forward the
 * synchronous hit fails to compile instead of silently making every hit asynchronous.
 */
export interface ServedMap<E> extends LookupMap, AnswersNow<E> {}

/**
 * How a cache keeps an answer for one protocol: a form made once when the answer is stored,
 * opaque to the cache. The socketmap codec keeps the finished reply frame, so a hit is written
 * without encoding; the plain codec keeps the value.
 */
export interface AnswerCodec<E> {
  /** The form of a found value, or of NOTFOUND (undefined; may be one shared form). */
  encode(value: Buffer | undefined): E;
  /** The found value back from its form (a new Buffer). */
  value(encoded: E): Buffer;
  /** Bytes the form of a found value holds, for the cache's byte bound. */
  size(encoded: E): number;
}

/** Keeps a found value as a latin1 string (one char per byte, lossless): for maps no protocol serves from memory. */
export const PLAIN_ANSWERS: AnswerCodec<string> = {
  encode: (value) => (value === undefined ? '' : value.toString('latin1')),
  value: (encoded) => Buffer.from(encoded, 'latin1'),
  size: (encoded) => encoded.length,
};
