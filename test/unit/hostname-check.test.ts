import { describe, expect, it } from 'vitest';
import { certNames, ipBytes, libldapNameMatches } from '../../src/ldap/hostname-check.js';
import { parseGetentCanonical } from '../../src/ldap/local-hostname.js';
import { chooseMechanism } from '../../src/ldap/sasl-bind.js';

const cert = (dns: string[], ips: string[], cns: string[]) => ({ dns, ips, cns });

describe('libldap certificate name rules (GnuTLS backend)', () => {
  it('dNSName: exact, case-insensitive, one-label wildcard only', () => {
    expect(libldapNameMatches('LDAP.example.org', cert(['ldap.example.org'], [], []))).toBe(true);
    expect(libldapNameMatches('a.example.org', cert(['*.example.org'], [], []))).toBe(true);
    expect(libldapNameMatches('a.b.example.org', cert(['*.example.org'], [], []))).toBe(false);
    expect(libldapNameMatches('example.org', cert(['*.example.org'], [], []))).toBe(false);
    expect(libldapNameMatches('ldap', cert(['ldap.example.org'], [], []))).toBe(false);
  });

  it('iPAddress: byte comparison, never for DNS names; IPv6 spellings agree', () => {
    expect(libldapNameMatches('127.0.0.1', cert([], ['127.0.0.1'], []))).toBe(true);
    expect(libldapNameMatches('::1', cert([], ['0:0:0:0:0:0:0:1'], []))).toBe(true);
    expect(libldapNameMatches('127.0.0.1', cert(['127.0.0.1'], [], []))).toBe(false);
    expect(ipBytes('::ffff:1.2.3.4')?.toString('hex')).toBe('00000000000000000000ffff01020304');
  });

  it('the last CN decides when no SAN matched, also for an IP address', () => {
    expect(libldapNameMatches('vm', cert(['other.invalid'], [], ['vm']))).toBe(true);
    expect(libldapNameMatches('127.0.0.1', cert([], [], ['127.0.0.1']))).toBe(true);
    expect(libldapNameMatches('vm', cert([], [], ['vm', 'other']))).toBe(false);
    expect(libldapNameMatches('a.example.org', cert([], [], ['*.example.org']))).toBe(true);
    expect(libldapNameMatches('vm', cert([], [], []))).toBe(false);
  });

  it('reads Node\'s subjectaltname text and CN arrays', () => {
    expect(certNames({ subjectaltname: 'DNS:a.example, IP Address:127.0.0.1, DNS:"x, y"', subject: { CN: ['one', 'two'] } }))
      .toEqual({ dns: ['a.example', 'x, y'], ips: ['127.0.0.1'], cns: ['one', 'two'] });
  });

  it('canonical host name from getent ahostsv4', () => {
    expect(parseGetentCanonical('127.0.1.1       STREAM mail.example.org\n127.0.1.1 DGRAM\n')).toBe('mail.example.org');
    expect(parseGetentCanonical('')).toBeUndefined();
  });
});

describe('SASL mechanism choice (measured with postmap)', () => {
  it('Cyrus order whatever the list order; PLAIN only over a secure layer; EXTERNAL chosen even where it then fails', () => {
    expect(chooseMechanism(['PLAIN', 'EXTERNAL'], { secure: true })).toBe('EXTERNAL');
    expect(chooseMechanism(['EXTERNAL', 'PLAIN'], { secure: true })).toBe('EXTERNAL');
    expect(chooseMechanism(['PLAIN'], { secure: true })).toBe('PLAIN');
    expect(chooseMechanism(['PLAIN'], { secure: false })).toBeUndefined();
    expect(chooseMechanism(['PLAIN', 'CRAM-MD5'], { secure: true })).toBe('CRAM-MD5');
    expect(chooseMechanism(['CRAM-MD5', 'EXTERNAL'], { secure: false })).toBe('EXTERNAL');
    expect(chooseMechanism(['EXTERNAL', 'DIGEST-MD5'], { secure: true })).toBe('DIGEST-MD5');
    expect(chooseMechanism(['DIGEST-MD5', 'SCRAM-SHA-1'], { secure: false })).toBe('SCRAM-SHA-1');
    expect(chooseMechanism(['SCRAM-SHA-1', 'SCRAM-SHA-224'], { secure: false })).toBe('SCRAM-SHA-224');
    expect(chooseMechanism(['SCRAM-SHA-1', 'SCRAM-SHA-512', 'SCRAM-SHA-384'], { secure: false })).toBe('SCRAM-SHA-512');
  });
});
