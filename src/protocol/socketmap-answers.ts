/**
 * The form a cache keeps its answers in for the socketmap server (an AnswerCodec): the finished
 * reply frame as a latin1 string (one char per byte: lossless, compact on V8's heap, and never a
 * view into a larger buffer, which a Buffer per entry would risk and cost ~350 bytes more of
 * RSS). A hit is then written as is with `socket.write(form, 'latin1')`.
 *
 * The rare found value that cannot go out as `OK value` (too large for the client, or empty)
 * keeps the reply that is sent instead together with the value itself.
 */
import type { AnswerCodec } from '../contracts/map.js';
import { found, NOTFOUND } from '../contracts/result.js';
import { encodeNetstringWithPrefix } from './netstring.js';
import { encodeSocketmapReply, SOCKETMAP_MAX_REPLY } from './socketmap.js';

export interface UnsendableValue {
  /** What is sent for it: NOTFOUND for an empty value, TEMP for one over the reply limit. */
  readonly reply: string;
  readonly value: string;
  /** The payload size the value would have needed, when over the limit. */
  readonly oversize: number | undefined;
}

export type SocketmapForm = string | UnsendableValue;

const OK_PREFIX = 'OK ';

/** The codec for a reply limit (Postfix's socketmap_max_reply_size). */
export function socketmapAnswers(maxReply = SOCKETMAP_MAX_REPLY): AnswerCodec<SocketmapForm> {
  const notfound = encodeSocketmapReply(NOTFOUND, maxReply).frame.toString('latin1');
  return {
    encode(value) {
      if (value === undefined) return notfound;
      if (value.length > 0 && OK_PREFIX.length + value.length <= maxReply) {
        // Through a Buffer, so the string is one flat latin1 string from the start.
        return encodeNetstringWithPrefix(OK_PREFIX, value).toString('latin1');
      }
      const instead = encodeSocketmapReply(found(value), maxReply);
      return { reply: instead.frame.toString('latin1'), value: value.toString('latin1'), oversize: instead.oversize };
    },
    value(form) {
      if (typeof form !== 'string') return Buffer.from(form.value, 'latin1');
      return Buffer.from(form.slice(form.indexOf(':') + 1 + OK_PREFIX.length, form.length - 1), 'latin1');
    },
    size(form) {
      return typeof form === 'string' ? form.length : form.reply.length + form.value.length;
    },
  };
}
