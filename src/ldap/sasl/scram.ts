/**
 * SCRAM-SHA-* (RFC 5802, RFC 7677) as a client, pure but for PBKDF2, which runs on libuv's
 * thread pool so that a server asking for many iterations does not stall lookups.
 * No channel binding ("n" in the GS2 header): libldap only binds channels when
 * LDAP_OPT_X_SASL_CBINDING is set, which Postfix never does.
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';

export type ScramHash = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

/** "SCRAM-SHA-256" → "sha256"; undefined for other mechanisms. */
export function scramHashOf(mech: string): ScramHash | undefined {
  const m = /^SCRAM-SHA-(1|224|256|384|512)$/.exec(mech);
  return m ? (`sha${m[1]}` as ScramHash) : undefined;
}

/** Names in SCRAM messages escape "=" and "," (RFC 5802 5.1). */
const saslname = (s: string): string => s.replace(/=/g, '=3D').replace(/,/g, '=2C');

/** Most PBKDF2 iterations accepted from a server: a hostile one must not pin a core for minutes. */
export const MAX_ITERATIONS = 1_000_000;

export class ScramClient {
  private readonly gs2: string;
  private readonly firstBare: string;
  private serverSignature: Buffer | undefined;

  constructor(
    private readonly hash: ScramHash,
    authcid: string,
    private readonly password: string,
    authzid: string,
    private readonly cnonce: string = randomBytes(24).toString('base64'),
  ) {
    this.gs2 = authzid !== '' ? `n,a=${saslname(authzid)},` : 'n,,';
    this.firstBare = `n=${saslname(authcid)},r=${this.cnonce}`;
  }

  clientFirst(): string {
    return this.gs2 + this.firstBare;
  }

  async clientFinal(serverFirst: string): Promise<string> {
    const attrs = new Map<string, string>();
    for (const part of serverFirst.split(',')) {
      const eq = part.indexOf('=');
      if (eq === 1) attrs.set(part[0]!, part.slice(2));
    }
    if (attrs.has('m')) throw new Error('SCRAM: the server requires an extension this client does not know');
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (nonce === undefined || salt === undefined || !Number.isInteger(iterations) || iterations < 1) {
      throw new Error(`SCRAM: malformed server-first-message ${JSON.stringify(serverFirst.slice(0, 80))}`);
    }
    if (!nonce.startsWith(this.cnonce) || nonce.length === this.cnonce.length) throw new Error('SCRAM: the server nonce does not extend the client nonce');
    if (iterations > MAX_ITERATIONS) throw new Error(`SCRAM: the server asks for ${iterations} iterations (most accepted: ${MAX_ITERATIONS})`);
    const size = createHash(this.hash).digest().length;
    const salted = await new Promise<Buffer>((resolve, reject) => {
      pbkdf2(Buffer.from(this.password, 'utf8'), Buffer.from(salt, 'base64'), iterations, size, this.hash, (err, key) => (err ? reject(err) : resolve(key)));
    });
    const hmac = (key: Buffer, text: string): Buffer => createHmac(this.hash, key).update(text, 'utf8').digest();
    const withoutProof = `c=${Buffer.from(this.gs2, 'utf8').toString('base64')},r=${nonce}`;
    const authMessage = `${this.firstBare},${serverFirst},${withoutProof}`;
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash(this.hash).update(clientKey).digest();
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ signature[i]!;
    this.serverSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** The server-final-message must carry the signature only a server knowing the password can make. */
  checkServerFinal(serverFinal: string): void {
    if (serverFinal.startsWith('e=')) throw new Error(`SCRAM: the server reports ${serverFinal.slice(2)}`);
    const v = /^v=([^,]*)/.exec(serverFinal)?.[1];
    const got = v !== undefined ? Buffer.from(v, 'base64') : Buffer.alloc(0);
    if (this.serverSignature === undefined || got.length !== this.serverSignature.length || !timingSafeEqual(got, this.serverSignature)) {
      throw new Error('SCRAM: the server did not prove that it knows the password (server signature mismatch)');
    }
  }
}
