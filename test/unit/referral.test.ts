import { BerReader, BerWriter, SearchReference, SearchResponse, StatusCodeParser, type Entry } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { LDAP_REFERRAL, LdapFailure, toLdapFailure } from '../../src/ldap/errors.js';
import { clean, referenceUrls, referralsOf } from '../../src/ldap/ldapts-fixes.js';
import { parseReferralUrl, ReferralChaser, serverKey } from '../../src/ldap/referral.js';

/** The body of an LDAPResult: resultCode, matchedDN, diagnosticMessage, [3] referral URLs. */
function resultBody(code: number, message: string, urls?: string[]): Buffer {
  const w = new BerWriter();
  w.writeEnumeration(code);
  w.writeString('');
  w.writeString(message);
  if (urls !== undefined) {
    w.startSequence(0xa3);
    for (const u of urls) w.writeString(u);
    w.endSequence();
  }
  return w.buffer;
}

describe('what ldapts is taught to keep (ldapts-fixes.ts)', () => {
  it('a referral result keeps its URLs through the error ldapts throws, and the message stays clean', () => {
    const r = new SearchResponse({ messageId: 1 });
    (r as unknown as { parseMessage(reader: BerReader): void }).parseMessage(new BerReader(resultBody(LDAP_REFERRAL, 'see there', ['ldap://a:1/o=x', 'ldap://b/o=x??sub'])));
    expect(r.status).toBe(LDAP_REFERRAL);
    // ldapts builds its error from the status and the diagnostic message only, here.
    const thrown = StatusCodeParser.parse(r);
    expect(referralsOf(thrown)).toEqual(['ldap://a:1/o=x', 'ldap://b/o=x??sub']);
    expect(clean(thrown.message)).toBe('see there Code: 0xa');
    const f = toLdapFailure(thrown);
    expect(f.code).toBe(LDAP_REFERRAL);
    expect(f.referrals).toEqual(['ldap://a:1/o=x', 'ldap://b/o=x??sub']);
    expect(f.message).not.toContain('ldap://');
  });

  it('other results are left alone (no referral field, or a referral field with another code)', () => {
    const plain = new SearchResponse({ messageId: 1 });
    (plain as unknown as { parseMessage(reader: BerReader): void }).parseMessage(new BerReader(resultBody(32, 'no such object')));
    expect(plain.errorMessage).toBe('no such object');
    const odd = new SearchResponse({ messageId: 1 });
    (odd as unknown as { parseMessage(reader: BerReader): void }).parseMessage(new BerReader(resultBody(0, '', ['ldap://a/o=x'])));
    expect(odd.errorMessage).toBe('');
    expect(referralsOf(new Error('anything Code: 0x20'))).toBeUndefined();
  });

  it("a search reference's URLs stay together: they are alternatives for one reference", () => {
    // As on the wire: [APPLICATION 19] SEQUENCE OF URI; ldapts has read the tag and length.
    const w = new BerWriter();
    w.startSequence(0x73);
    w.writeString('ldap://a/o=x');
    w.writeString('ldap://b/o=x');
    w.endSequence();
    const reader = new BerReader(w.buffer);
    reader.readSequence(0x73);
    const ref = new SearchReference({ messageId: 1 });
    (ref as unknown as { parseMessage(reader: BerReader): void }).parseMessage(reader);
    expect(ref.uris).toHaveLength(1);
    expect(referenceUrls(ref.uris[0] as string)).toEqual(['ldap://a/o=x', 'ldap://b/o=x']);
  });
});

describe('parseReferralUrl', () => {
  it('reads scheme, host, port, DN and scope like libldap', () => {
    expect(parseReferralUrl('ldap://127.0.0.1:3890/ou=Remote,dc=example,dc=org')).toEqual({
      server: { url: 'ldap://127.0.0.1:3890/', scheme: 'ldap', host: '127.0.0.1', port: 3890 },
      key: 'ldap://127.0.0.1:3890',
      dn: 'ou=Remote,dc=example,dc=org',
    });
    const sub = parseReferralUrl('LDAP://Host.Example/cn=a%20b,o=x??sub');
    expect(sub?.key).toBe('ldap://host.example:389');
    expect(sub?.dn).toBe('cn=a b,o=x');
    expect(sub?.scope).toBe('sub');
    expect(parseReferralUrl('ldap://h/o=x??one')?.scope).toBe('one');
    expect(parseReferralUrl('ldap://h/o=x?cn?base?(cn=*)')?.scope).toBe('base');
    expect(parseReferralUrl('ldaps://h/o=x')?.server.port).toBe(636);
    expect(parseReferralUrl('ldap://[::1]:10389/o=x')?.server.host).toBe('::1');
  });

  it('a URL without a DN has none (the caller decides: the root for a reference, the old base for a referral)', () => {
    expect(parseReferralUrl('ldap://h')?.dn).toBeUndefined();
    expect(parseReferralUrl('ldap://h/')?.dn).toBeUndefined();
    // libldap's bad-escape rule empties the DN field: no DN either.
    expect(parseReferralUrl('ldap://h/o=%zz')?.dn).toBeUndefined();
  });

  it('what libldap will not follow is refused: other schemes, bad syntax, critical extensions', () => {
    expect(parseReferralUrl('ldapi://%2Frun%2Fslapd/o=x')).toBeUndefined();
    expect(parseReferralUrl('http://h/o=x')).toBeUndefined();
    expect(parseReferralUrl('ldap://h/o=x??bogus')).toBeUndefined();
    expect(parseReferralUrl('ldap://h:99999/o=x')).toBeUndefined();
    expect(parseReferralUrl('ldap://h/o=x????!e-bindname=cn=x')).toBeUndefined();
  });

  it('serverKey of a configured server compares with a referral key', () => {
    expect(serverKey({ url: 'ldap://127.0.0.1:3890/', scheme: 'ldap', host: '127.0.0.1', port: 3890 })).toBe(parseReferralUrl('ldap://127.0.0.1:3890/o=x')?.key);
    expect(serverKey({ url: 'ldap://LOCALHOST/', scheme: 'ldap', host: 'LOCALHOST' })).toBe('ldap://localhost:389');
    expect(serverKey({ url: 'ldapi:///', scheme: 'ldapi', socketPath: '/run/x' })).toBeUndefined();
  });
});

describe('search references behind search references (Active Directory), as libldap follows them', () => {
  const HOME = 'ldap://ad.example.org:389';
  const settings = {} as ConstructorParameters<typeof ReferralChaser>[0];
  const entry = (dn: string) => ({ dn }) as Entry;

  it("CN=Configuration, then CN=Schema: both followed over the map's own connection", async () => {
    const asked: string[] = [];
    const chaser = new ReferralChaser(settings);
    const got = await chaser.complete({ base: 'DC=ad', scope: 'sub' }, { kind: 'entries', entries: [entry('CN=u,DC=ad')], references: ['ldap://ad.example.org/CN=Configuration,DC=ad'], serverKey: HOME }, {
      searchHome: async (c) => {
        asked.push(`${c.base} ${c.scope}`);
        return c.base.startsWith('CN=Configuration')
          ? { kind: 'entries', entries: [], references: ['ldap://ad.example.org/CN=Schema,CN=Configuration,DC=ad'] }
          : { kind: 'entries', entries: [entry('CN=s,CN=Schema,CN=Configuration,DC=ad')], references: [] };
      },
      searchOn: () => Promise.reject(new Error('no other server here')),
    });
    expect(asked).toEqual(['CN=Configuration,DC=ad sub', 'CN=Schema,CN=Configuration,DC=ad sub']);
    expect(got.map((e) => e.dn)).toEqual(['CN=u,DC=ad', 'CN=s,CN=Schema,CN=Configuration,DC=ad']);
    await chaser.close();
  });

  it('the fifth referred search drops the references it gets, silently (ld_refhoplimit 5)', async () => {
    const asked: string[] = [];
    const chaser = new ReferralChaser(settings);
    const got = await chaser.complete({ base: 'DC=ad', scope: 'sub' }, { kind: 'entries', entries: [], references: ['ldap://ad.example.org/OU=1,DC=ad'], serverKey: HOME }, {
      searchHome: async (c) => {
        asked.push(c.base);
        const n = Number(/^OU=(\d+)/.exec(c.base)![1]);
        return { kind: 'entries', entries: [entry(`CN=x,${c.base}`)], references: [`ldap://ad.example.org/OU=${n + 1},DC=ad`] };
      },
      searchOn: () => Promise.reject(new Error('no other server here')),
    });
    expect(asked).toEqual(['OU=1,DC=ad', 'OU=2,DC=ad', 'OU=3,DC=ad', 'OU=4,DC=ad', 'OU=5,DC=ad']);
    expect(got).toHaveLength(5);
    await chaser.close();
  });

  it("following them spends the search's own timeout: past it, the lookup is libldap's LDAP_TIMEOUT, not a skip", async () => {
    // A DomainDnsZones host that drops packets: libldap's connect to it outlives `timeout`.
    const chaser = new ReferralChaser({ timeoutSec: 0.2 } as ConstructorParameters<typeof ReferralChaser>[0]);
    const slow = chaser.complete({ base: 'DC=ad', scope: 'sub' }, { kind: 'entries', entries: [entry('CN=u,DC=ad')], references: ['ldap://ad.example.org/DC=DomainDnsZones,DC=ad'], serverKey: HOME }, {
      searchHome: () => new Promise((resolve) => setTimeout(() => resolve({ kind: 'entries', entries: [], references: [] }), 600)),
      searchOn: () => Promise.reject(new Error('no other server here')),
    });
    await expect(slow).rejects.toMatchObject({ kind: 'timeout' });
    // Within the budget the same walk answers.
    const quick = await chaser.complete({ base: 'DC=ad', scope: 'sub' }, { kind: 'entries', entries: [entry('CN=u,DC=ad')], references: ['ldap://ad.example.org/DC=DomainDnsZones,DC=ad'], serverKey: HOME }, {
      searchHome: async () => ({ kind: 'entries', entries: [entry('CN=z,DC=DomainDnsZones,DC=ad')], references: [] }),
      searchOn: () => Promise.reject(new Error('no other server here')),
    });
    expect(quick.map((e) => e.dn)).toEqual(['CN=u,DC=ad', 'CN=z,DC=DomainDnsZones,DC=ad']);
    await chaser.close();
  });

  it('a referral result met behind a reference is the temporary error libldap waits into', async () => {
    const chaser = new ReferralChaser(settings);
    const p = chaser.complete({ base: 'DC=ad', scope: 'sub' }, { kind: 'entries', entries: [entry('CN=u,DC=ad')], references: ['ldap://ad.example.org/OU=r,DC=ad'], serverKey: HOME }, {
      searchHome: async () => ({ kind: 'referral', failure: new LdapFailure('error', 'elsewhere', LDAP_REFERRAL), urls: ['ldap://ad.example.org/OU=s,DC=ad'] }),
      searchOn: () => Promise.reject(new Error('no other server here')),
    });
    await expect(p).rejects.toThrow(/referral behind a referral/);
    await chaser.close();
  });
});

describe('search references behind a referral result, as libldap follows them (measured in referral-results.test.ts)', () => {
  const HOME = 'ldap://ldap.example.org:389';
  const settings = {} as ConstructorParameters<typeof ReferralChaser>[0];
  const entry = (dn: string) => ({ dn }) as Entry;
  const referralTo = (url: string) => ({ kind: 'referral' as const, failure: new LdapFailure('error', 'elsewhere', LDAP_REFERRAL), urls: [url], serverKey: HOME });

  it("are followed: the referred search's entries, then each reference's; a reference to the original base is a loop", async () => {
    const asked: string[] = [];
    const chaser = new ReferralChaser(settings);
    const got = await chaser.complete({ base: 'ou=A,o=x', scope: 'sub' }, referralTo('ldap://ldap.example.org/ou=R,o=x'), {
      searchHome: async (c) => {
        asked.push(`${c.base} ${c.scope}`);
        if (c.base === 'ou=R,o=x') {
          return { kind: 'entries', entries: [entry('uid=x,ou=R,o=x')], references: ['ldap://ldap.example.org/ou=A,o=x', 'ldap://ldap.example.org/ou=T,o=x'] };
        }
        return { kind: 'entries', entries: [entry(`uid=x,${c.base}`)], references: [] };
      },
      searchOn: () => Promise.reject(new Error('no other server here')),
    });
    expect(asked).toEqual(['ou=R,o=x sub', 'ou=T,o=x sub']);
    expect(got.map((e) => e.dn)).toEqual(['uid=x,ou=R,o=x', 'uid=x,ou=T,o=x']);
    await chaser.close();
  });

  it('a one-level search behind a referral result asks a reference with scope base', async () => {
    const asked: string[] = [];
    const chaser = new ReferralChaser(settings);
    await chaser.complete({ base: 'ou=A,o=x', scope: 'one' }, referralTo('ldap://ldap.example.org/ou=R,o=x'), {
      searchHome: async (c) => {
        asked.push(`${c.base} ${c.scope}`);
        return { kind: 'entries', entries: [], references: c.base === 'ou=R,o=x' ? ['ldap://ldap.example.org/ou=T,o=x'] : [] };
      },
      searchOn: () => Promise.reject(new Error('no other server here')),
    });
    expect(asked).toEqual(['ou=R,o=x one', 'ou=T,o=x base']);
    await chaser.close();
  });

  it('count toward the hop limit: the search a referral led to is the first of five', async () => {
    const asked: string[] = [];
    const chaser = new ReferralChaser(settings);
    const got = await chaser.complete({ base: 'ou=A,o=x', scope: 'sub' }, referralTo('ldap://ldap.example.org/ou=0,o=x'), {
      searchHome: async (c) => {
        asked.push(c.base);
        const n = Number(/^ou=(\d+)/.exec(c.base)![1]);
        return { kind: 'entries', entries: [entry(`uid=x,${c.base}`)], references: [`ldap://ldap.example.org/ou=${n + 1},o=x`] };
      },
      searchOn: () => Promise.reject(new Error('no other server here')),
    });
    expect(asked).toEqual(['ou=0,o=x', 'ou=1,o=x', 'ou=2,o=x', 'ou=3,o=x', 'ou=4,o=x']);
    expect(got).toHaveLength(5);
    await chaser.close();
  });

  it('an error behind such a reference is the search\'s result; a referral result behind it the temporary error libldap waits into', async () => {
    const chaser = new ReferralChaser(settings);
    const missing = chaser.complete({ base: 'ou=A,o=x', scope: 'sub' }, referralTo('ldap://ldap.example.org/ou=R,o=x'), {
      searchHome: async (c) => {
        if (c.base === 'ou=R,o=x') return { kind: 'entries', entries: [entry('uid=x,ou=R,o=x')], references: ['ldap://ldap.example.org/ou=Nope,o=x'] };
        throw new LdapFailure('error', 'no such object', 32);
      },
      searchOn: () => Promise.reject(new Error('no other server here')),
    });
    await expect(missing).rejects.toMatchObject({ code: 32 });
    const again = chaser.complete({ base: 'ou=A,o=x', scope: 'sub' }, referralTo('ldap://ldap.example.org/ou=R,o=x'), {
      searchHome: async (c) => c.base === 'ou=R,o=x'
        ? { kind: 'entries', entries: [], references: ['ldap://ldap.example.org/ou=S,o=x'] }
        : referralTo('ldap://ldap.example.org/ou=T,o=x'),
      searchOn: () => Promise.reject(new Error('no other server here')),
    });
    await expect(again).rejects.toThrow(/referral behind a referral/);
    await chaser.close();
  });
});
