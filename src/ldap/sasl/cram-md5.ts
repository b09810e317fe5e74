/**
 * CRAM-MD5 (RFC 2195) as a client, pure. Cyrus' client sends the authentication identity and
 * ignores sasl_authz_id and sasl_realm (measured: both change nothing natively).
 */
import { createHmac } from 'node:crypto';

export function cramResponse(challenge: string, authcid: string, password: string): string {
  return `${authcid} ${createHmac('md5', Buffer.from(password, 'utf8')).update(challenge, 'utf8').digest('hex')}`;
}
