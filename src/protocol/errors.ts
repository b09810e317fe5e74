/**
 * Why a peer's bytes were rejected. The reason is a closed set so it can be a metric label and a
 * `switch` target; the message carries the human detail and is never matched on.
 */
export const PROTOCOL_ERROR_REASONS = [
  'bad_length', // netstring length prefix is not plain decimal digits
  'too_long', // netstring declares a payload above the configured maximum
  'bad_terminator', // netstring payload not followed by ','
  'bad_request', // frame or line is well-formed but is not a request we understand
  'line_too_long', // tcp_table line exceeds the maximum before its newline
  'bad_escape', // tcp_table %XX escape is incomplete or not hex
] as const;

export type ProtocolErrorReason = (typeof PROTOCOL_ERROR_REASONS)[number];

/**
 * A peer broke the wire protocol. Framing is lost after this, so the only safe reaction is to
 * close the connection (Postfix reconnects on its own).
 */
export class ProtocolError extends Error {
  readonly reason: ProtocolErrorReason;

  constructor(reason: ProtocolErrorReason, message: string) {
    super(message);
    this.name = 'ProtocolError';
    this.reason = reason;
  }
}
