/**
 * One SASL bind step over ldapts. ldapts sends a SASL bind request and throws on anything but
 * success; the server's credentials of an intermediate step (saslBindInProgress) come with
 * its SaslBindInProgressError, but those of the final, successful response (SCRAM's
 * server-final-message) are dropped. They are needed to check that the server knows the
 * password, so this file watches the client's requests and responses for the duration of the
 * bind. It also takes the credentials out of the first request of a server-first mechanism:
 * ldapts always sends them, empty if need be, and Cyrus' server then refuses CRAM-MD5
 * ("Remote sent first but mech does not allow it"); libldap sends none. This is the one place
 * that knows these things about ldapts; test/integration/sasl.test.ts fails if an ldapts
 * upgrade moves them.
 */
import { BindRequest, BindResponse, SaslBindInProgressError, type BerWriter, type Client } from 'ldapts';

/** LDAP's SaslCredentials without the optional credentials (RFC 4511 4.2). */
class CredentiallessSaslBind extends BindRequest {
  override writeMessage(writer: BerWriter): void {
    writer.writeInt(this.version);
    writer.writeString(this.dn);
    writer.startSequence(0xa3);
    writer.writeString(this.mechanism ?? '');
    writer.endSequence();
  }
}

export interface StepResult {
  /** false: the server wants another step (saslBindInProgress). */
  done: boolean;
  /** serverSaslCreds of the response, '' when absent. */
  serverCreds: string;
}

interface Sender { _send(message: unknown): Promise<unknown> }

function hasSender(client: unknown): client is Sender {
  return typeof (client as Partial<Sender>)._send === 'function';
}

export class SaslExchange {
  private last: BindResponse | undefined;
  private omitCredentials = false;
  private readonly restore: () => void;

  constructor(private readonly client: Client) {
    const sender: unknown = client;
    if (!hasSender(sender)) throw new Error('ldapts no longer exposes the bind response (Client._send); SASL mechanisms with a server-final message cannot be checked');
    const own = Object.prototype.hasOwnProperty.call(sender, '_send');
    const original = sender._send;
    sender._send = async (message: unknown): Promise<unknown> => {
      if (this.omitCredentials && message instanceof BindRequest) {
        this.omitCredentials = false;
        const bare = new CredentiallessSaslBind({ messageId: message.messageId, mechanism: message.mechanism ?? '' });
        if (message.controls !== undefined) bare.controls = message.controls;
        message = bare;
      }
      const r = await original.call(sender, message);
      if (r instanceof BindResponse) this.last = r;
      return r;
    };
    this.restore = () => {
      if (own) sender._send = original;
      else delete (sender as Partial<Sender>)._send;
    };
  }

  /** credentials undefined: a request without credentials (a server-first mechanism's start). */
  async step(mechanism: string, credentials: string | undefined): Promise<StepResult> {
    this.last = undefined;
    this.omitCredentials = credentials === undefined;
    try {
      await this.client.bindSASL(mechanism, credentials ?? '');
      return { done: true, serverCreds: (this.last as BindResponse | undefined)?.data.at(-1) ?? '' };
    } catch (err) {
      if (err instanceof SaslBindInProgressError) return { done: false, serverCreds: (err.response as BindResponse | undefined)?.data.at(-1) ?? '' };
      throw err;
    }
  }

  close(): void {
    this.restore();
  }
}
