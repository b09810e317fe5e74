import { AdminLimitExceededError, NoSuchObjectError, SizeLimitExceededError, TimeLimitExceededError } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { describeResultCode } from '../../src/ldap/connect.js';
import { toLdapFailure } from '../../src/ldap/errors.js';
import { describeCode, resultCodeName, resultMessage } from '../../src/ldap/result-codes.js';

describe('LDAP result codes by name', () => {
  it('RFC 4511 names for the codes servers send', () => {
    expect(describeCode(11)).toBe('adminLimitExceeded (11)');
    expect(describeCode(4)).toBe('sizeLimitExceeded (4)');
    expect(describeCode(32)).toBe('noSuchObject (32)');
    expect(describeCode(50)).toBe('insufficientAccessRights (50)');
    expect(describeCode(53)).toBe('unwillingToPerform (53)');
    expect(describeCode(80)).toBe('other (80)');
    expect(resultCodeName(4096)).toBe('syncRefreshRequired');
    // A number no RFC names still shows the number.
    expect(describeCode(99)).toBe('resultCode (99)');
  });

  it('a failure without server text (389-ds) names its code instead of a bare hex number', () => {
    // What ldapts throws when a server answers adminLimitExceeded with an empty diagnostic.
    const f = toLdapFailure(new AdminLimitExceededError(''));
    expect(f.message).toBe('adminLimitExceeded (11)');
    expect(f.message).not.toMatch(/0x/);
    expect(f.code).toBe(11);
    expect(f.kind).toBe('error');
  });

  it('the server text follows the name when there is one', () => {
    expect(toLdapFailure(new SizeLimitExceededError('Sizelimit exceeded')).message).toBe('sizeLimitExceeded (4): Sizelimit exceeded');
    expect(toLdapFailure(new NoSuchObjectError('no such entry')).message).toBe('noSuchObject (32): no such entry');
    expect(toLdapFailure(new TimeLimitExceededError('')).kind).toBe('timeout');
    expect(resultMessage(53, 'no global superior knowledge Code: 0x35')).toBe('unwillingToPerform (53): no global superior knowledge');
  });

  it('bind refusals keep libldap words and show the server text once', () => {
    expect(describeResultCode(49, ' Code: 0x31')).toBe('49 (Invalid credentials)');
    expect(describeResultCode(49, 'bad password Code: 0x31')).toBe('49 (Invalid credentials): bad password');
    expect(describeResultCode(11, '')).toBe('11 (adminLimitExceeded)');
  });
});
