/**
 * The final answer as explain shows it: the same encoders the servers use, the size against
 * each protocol's reply limit, and the exit status that follows from the socketmap answer.
 */
import { describe, expect, it } from 'vitest';
import { exitCodeFor, wireInfo } from '../../src/explain/explain.js';
import type { ExplainReport } from '../../src/explain/types.js';
import { found, NOTFOUND, perm, temp, timeout } from '../../src/contracts/result.js';
import { SOCKETMAP_MAX_REPLY } from '../../src/protocol/socketmap.js';
import { TCP_MAX_REPLY } from '../../src/protocol/tcp-table.js';

const exitFor = (w: ReturnType<typeof wireInfo>) => exitCodeFor({ wire: w } as ExplainReport);

describe('explain wire info', () => {
  it('found: OK netstring and a hex-quoted 200 line', () => {
    const w = wireInfo(found(Buffer.from('a b@x,c%d@y', 'utf8')));
    expect(w.socketmap).toMatchObject({ word: 'OK', frame: '14:OK a b@x,c%d@y,', payloadBytes: 14, frameBytes: 18, fits: true, limit: SOCKETMAP_MAX_REPLY });
    expect(Buffer.from(w.socketmap.frameBase64, 'base64').toString()).toBe('14:OK a b@x,c%d@y,');
    expect(w.tcpTable).toMatchObject({ status: '200', line: '200 a%20b@x,c%25d@y\n', fits: true, limit: TCP_MAX_REPLY });
    expect(exitFor(w)).toBe(0);
  });

  it('not found, temp, timeout, perm', () => {
    expect(wireInfo(NOTFOUND).socketmap.frame).toBe('9:NOTFOUND ,');
    expect(wireInfo(NOTFOUND).tcpTable.line).toBe('500 not%20found\n');
    expect(exitFor(wireInfo(NOTFOUND))).toBe(1);
    expect(wireInfo(temp('size limit 2 exceeded')).socketmap.frame).toBe('26:TEMP size limit 2 exceeded,');
    expect(exitFor(wireInfo(temp('x')))).toBe(75);
    expect(wireInfo(timeout('slow')).socketmap.word).toBe('TIMEOUT');
    expect(exitFor(wireInfo(timeout('slow')))).toBe(75);
    expect(exitFor(wireInfo(perm('unknown map')))).toBe(2);
  });

  it('an answer too large for socketmap goes out as TEMP, with the size it needed', () => {
    const value = Buffer.alloc(SOCKETMAP_MAX_REPLY, 0x61);
    const w = wireInfo(found(value));
    expect(w.socketmap).toMatchObject({ word: 'TEMP', fits: false, needed: SOCKETMAP_MAX_REPLY + 3 });
    expect(w.socketmap.frame).toBe(`35:TEMP reply too large (${SOCKETMAP_MAX_REPLY + 3} bytes),`);
    expect(w.tcpTable).toMatchObject({ status: '400', fits: false, needed: SOCKETMAP_MAX_REPLY + 5 });
    expect(exitFor(w)).toBe(75);
  });

  it('fits socketmap but not tcp_table: each protocol judged on its own', () => {
    const w = wireInfo(found(Buffer.alloc(TCP_MAX_REPLY, 0x61)));
    expect(w.socketmap.fits).toBe(true);
    expect(w.tcpTable).toMatchObject({ fits: false, needed: TCP_MAX_REPLY + 5, status: '400' });
    expect(exitFor(w)).toBe(0);
  });
});
