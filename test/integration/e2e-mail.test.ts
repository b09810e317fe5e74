/**
 * End to end: real mail through a private Postfix that resolves virtual_alias_maps and
 * virtual_mailbox_maps through the daemon (socketmap), configured from postfix-snippets/
 * exactly as an admin would: main.cf fragment, the master.cf `virtual` entry that gives
 * virtual(8) the SAME mailboxes .cf file natively, the example ldap .cf files (only
 * server_host changed) and the example ldap-socketmap.conf (listen address, metrics and
 * cache overridden on the command line).
 *
 *   swaks → smtpd (RCPT check: socketmap mailboxes + aliases)
 *         → cleanup (alias expansion: socketmap aliases) → qmgr/trivial-rewrite (socketmap)
 *         → virtual(8) (ldap: mailboxes, native) → DIR/mail/<uid> mbox files
 *         → smtp → [127.0.0.1]:1 (refused: external addresses stay deferred)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startSlapd, directoryLdif, type Slapd } from '../support/slapd.js';
import { startDaemon, REPO, type RunningDaemon } from '../support/daemon.js';
import { makeTmpDir } from '../support/tmp.js';
import { backdate, classify, makePostfixConfigDir, postmapQuery, valueOf } from '../support/postfix.js';
import { parseMainCf, parseMasterCf, startPostfix, swaks, type PostfixInstance, type QueueEntry } from '../support/postfix-instance.js';
import { sleep } from '../support/wait.js';

const SNIPPETS = resolve(REPO, 'postfix-snippets');
const SENDER = 'sender@example.net';

let slapd: Slapd | undefined;
let daemon: RunningDaemon | undefined;
let pfx: PostfixInstance | undefined;
let work: string | undefined;
let aliasesCf = '';
let mailboxesCf = '';

/** A snippet ldap .cf file with server_host pointed at the test slapd; nothing else changed. */
function snippetCf(name: string, ldapUrl: string): string {
  const text = readFileSync(join(SNIPPETS, name), 'utf8');
  const lines = text.split('\n');
  const i = lines.findIndex((l) => /^server_host\s*=/.test(l));
  if (i < 0) throw new Error(`${name}: no server_host line`);
  lines[i] = `server_host = ${ldapUrl}`;
  const file = join(work as string, name);
  writeFileSync(file, lines.join('\n'));
  backdate(file);
  return file;
}

function token(): string {
  return randomBytes(6).toString('hex');
}

function recipientsOf(q: QueueEntry[]): string[] {
  return q.flatMap((e) => e.recipients.map((r) => r.address));
}

/** Names of the mbox files that contain `text`. */
function mailboxesWith(p: PostfixInstance, text: string): string[] {
  return p.mailboxes().filter((m) => p.mailbox(m).includes(text));
}

function countOf(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

beforeAll(async () => {
  work = makeTmpDir('e2e-mail-');
  chmodSync(work, 0o755);
  slapd = await startSlapd({ ldif: directoryLdif() });
  aliasesCf = snippetCf('ldap-aliases.cf', slapd.url);
  mailboxesCf = snippetCf('ldap-mailboxes.cf', slapd.url);

  // The example daemon config, with test-only overrides: an OS-chosen port, no metrics
  // listener, these .cf files, and no cache (the outage test must reach LDAP).
  daemon = await startDaemon([
    '--config', join(SNIPPETS, 'ldap-socketmap.conf'),
    '--socketmap', 'inet:127.0.0.1:0',
    '--metrics', '',
    '--map', `aliases=${aliasesCf}`,
    '--map', `mailboxes=${mailboxesCf}`,
    '--set', 'cache_ttl=0',
    '--set', 'cache_negative_ttl=0',
    '--set', 'stale_if_error=0',
    '--set', 'map.mailboxes.fallback=address',
    '--set', 'map.mailboxes.recipient_delimiter=+',
  ]);
  const endpoint = `127.0.0.1:${daemon.ports[0]}`;

  // main.cf: the snippet's parameters, with the daemon's real port; mailbox base and
  // delivery uid/gid stay the harness' (a temp directory owned by nobody).
  const main = new Map<string, string | null>();
  for (const [k, v] of parseMainCf(readFileSync(join(SNIPPETS, 'main.cf'), 'utf8'))) {
    if (k === 'virtual_mailbox_base' || k === 'virtual_uid_maps' || k === 'virtual_gid_maps') continue;
    main.set(k, v.replaceAll('127.0.0.1:9054', endpoint));
  }
  // master.cf: the snippet's virtual entry, pointing at this mailboxes file.
  const virtualEntry = parseMasterCf(readFileSync(join(SNIPPETS, 'master.cf'), 'utf8')).find((e) => e.key === 'virtual/unix');
  if (!virtualEntry) throw new Error('postfix-snippets/master.cf has no virtual/unix entry');
  pfx = await startPostfix({
    main,
    services: { 'virtual/unix': virtualEntry.text.replaceAll('/etc/postfix/ldap-mailboxes.cf', mailboxesCf) },
  });
}, 60_000);

afterAll(async () => {
  // Each step on its own so one failure does not leave the others running.
  await pfx?.destroy().catch(() => {});
  await daemon?.stop().catch(() => {});
  await slapd?.destroy().catch(() => {});
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('mail through Postfix with the daemon as socketmap', () => {
  it('runs Postfix with socketmap lookups and virtual(8) on the native ldap: table', async () => {
    const p = pfx!;
    const port = daemon!.ports[0];
    expect(p.mainCf.get('virtual_alias_maps')).toBe(`socketmap:inet:127.0.0.1:${port}:aliases`);
    expect(p.mainCf.get('virtual_mailbox_maps')).toBe(`socketmap:inet:127.0.0.1:${port}:mailboxes`);
    const r = await p.postconf(['-P', 'virtual/unix/virtual_mailbox_maps']);
    expect(r.stdout.trim()).toBe(`virtual/unix/virtual_mailbox_maps = ldap:${mailboxesCf}`);
    expect(r.stderr).toBe('');
    expect(p.masterCf).not.toMatch(/^smtp\s+inet/m);
    expect(p.masterCf).toMatch(new RegExp(`^127\\.0\\.0\\.1:${p.smtpPort} inet`, 'm'));
  });

  it('delivers a list message to every member mailbox and queues external members as deferred', async () => {
    const p = pfx!;
    const t = token();
    const r = await swaks(p.smtpServer, { from: SENDER, to: ['sales@example.org'], subject: `list ${t}` });
    expect(r.rcpt.get('sales@example.org')?.code, r.transcript).toBe(250);
    expect(r.code, r.transcript).toBe(0);

    // sales = alice, bob (as robert@, Bob.Builder@Example.ORG and bob@: one mbox, three
    // deliveries, as with Postfix's own ldap: table) and sales-archive@elsewhere.net.
    await p.waitForMailbox('alice', t);
    await p.waitForMailbox('bob', (text) => countOf(text, `list ${t}`) === 3);
    const q = await p.waitForQueue((q) =>
      q.some((e) => e.queue_name === 'deferred' && e.recipients.some((x) => x.address === 'sales-archive@elsewhere.net' && /refused/i.test(x.delay_reason ?? ''))),
    );
    expect(mailboxesWith(p, t)).toEqual(['alice', 'bob']);
    // Only the external member is still queued for this message.
    const mine = q.filter((e) => e.queue_id === r.queueId);
    expect(recipientsOf(mine)).toEqual(['sales-archive@elsewhere.net']);
    const msg = p.mboxMessages('alice').find((m) => m.includes(t)) ?? '';
    expect(msg).toMatch(/^X-Original-To: sales@example\.org$/m);
    expect(msg).toMatch(/^Delivered-To: alice@example\.org$/m);
  });

  it('delivers mail for a person to that mailbox only', async () => {
    const p = pfx!;
    const t = token();
    const r = await swaks(p.smtpServer, { from: SENDER, to: ['carol@example.org'], subject: `person ${t}` });
    expect(r.rcpt.get('carol@example.org')?.code, r.transcript).toBe(250);
    await p.waitForMailbox('carol', t);
    await p.waitForLog(new RegExp(`^.*${r.queueId}: removed`));
    expect(mailboxesWith(p, t)).toEqual(['carol']);
    expect(countOf(p.mailbox('carol'), t)).toBe(1);
  });

  it('delivers person+tag@ to the person with the daemon\'s fallback = address emulation', async () => {
    const p = pfx!;
    // What the emulation adds: Postfix never asks a socketmap for alice@example.org after
    // alice+tag@example.org (it does ask an ldap: table), so the daemon does it itself.
    const conf = await makePostfixConfigDir();
    const viaDaemon = await postmapQuery(conf, daemon!.table('mailboxes'), 'alice+tag@example.org');
    expect(classify(viaDaemon)).toBe('found');
    expect(valueOf(viaDaemon)).toBe('alice');
    expect(classify(await postmapQuery(conf, `ldap:${mailboxesCf}`, 'alice+tag@example.org'))).toBe('notfound');

    const t = token();
    const r = await swaks(p.smtpServer, { from: SENDER, to: ['alice+tag@example.org'], subject: `tagged ${t}` });
    expect(r.rcpt.get('alice+tag@example.org')?.code, r.transcript).toBe(250);
    const text = await p.waitForMailbox('alice', t);
    const msg = text.split(/^(?=From )/m).find((m) => m.includes(t)) ?? '';
    expect(msg).toMatch(/^Delivered-To: alice\+tag@example\.org$/m);
    expect(mailboxesWith(p, t)).toEqual(['alice']);
  });

  it('rejects an unknown address at RCPT TO with 5xx', async () => {
    const p = pfx!;
    const t = token();
    const mark = p.maillogMark();
    const r = await swaks(p.smtpServer, { from: SENDER, to: ['nobody@example.org'], subject: `unknown ${t}` });
    const reply = r.rcpt.get('nobody@example.org');
    expect(reply?.code, r.transcript).toBe(550);
    expect(reply?.text).toMatch(/^5\.1\.1 <nobody@example\.org>: Recipient address rejected: User unknown in virtual mailbox table/);
    expect(r.code).toBe(24); // swaks: every recipient refused
    expect(r.data).toBeUndefined();
    await p.waitForLog(/NOQUEUE: reject: RCPT from .*<nobody@example\.org>/, { since: mark });
    expect(mailboxesWith(p, t)).toEqual([]);
    expect(recipientsOf(await p.queue())).not.toContain('nobody@example.org');
  });

  it('defers (never bounces) while slapd is down, and delivers once it is back', async () => {
    const p = pfx!;
    const s = slapd!;
    const t = token();
    const mark = p.maillogMark();
    await s.stop();
    try {
      // SMTP: the RCPT check cannot be answered → 4xx, the client keeps the message.
      const smtp = await swaks(p.smtpServer, { from: SENDER, to: ['carol@example.org'], subject: `outage smtp ${t}` });
      const reply = smtp.rcpt.get('carol@example.org');
      expect(reply?.code, smtp.transcript).toBe(451);
      expect(reply?.text).toMatch(/^4\.3\.0 .*Temporary lookup failure/);
      expect(smtp.code).toBe(24);

      // Local submission (no RCPT check): cleanup cannot expand the list → the message is
      // not accepted yet and stays in the maildrop queue, retried by pickup.
      const sub = await p.sendmail(SENDER, ['sales@example.org'], `Subject: outage queued ${t}\n\nqueued while LDAP is down\n`);
      expect(sub.code, sub.stderr).toBe(0);
      await p.waitForLog(/virtual_alias_maps map lookup problem for sales@example\.org -- message not accepted, try again later/, { since: mark });
      const q = await p.waitForQueue((q) => q.some((e) => e.recipients.some((x) => x.address === 'sales@example.org')));
      expect(q.find((e) => e.recipients.some((x) => x.address === 'sales@example.org'))?.queue_name).toBe('maildrop');
      // The temporary errors came from the daemon (Postfix has no other route to LDAP here
      // except virtual(8), which is never reached).
      expect(p.maillogSince(mark)).toContain(`socketmap:inet:127.0.0.1:${daemon!.ports[0]}:`);
      await p.flush();
      await sleep(500);
      expect(mailboxesWith(p, t)).toEqual([]);
    } finally {
      await s.start();
    }

    // LDAP is back: a flush (repeated while the daemon reconnects) delivers the queued
    // message; the SMTP client's retry is accepted.
    await p.waitForMailbox('alice', `outage queued ${t}`, { flushEveryMs: 1000, timeoutMs: 20_000 });
    await p.waitForMailbox('bob', (text) => countOf(text, `outage queued ${t}`) === 3, { flushEveryMs: 1000 });
    const retry = await swaks(p.smtpServer, { from: SENDER, to: ['carol@example.org'], subject: `outage smtp ${t}` });
    expect(retry.rcpt.get('carol@example.org')?.code, retry.transcript).toBe(250);
    await p.waitForMailbox('carol', `outage smtp ${t}`);
    const q = await p.waitForQueue((q) => !recipientsOf(q).includes('sales@example.org'));
    expect(q.every((e) => e.queue_name === 'deferred')).toBe(true);

    // Nothing bounced at any point.
    const log = p.maillogSince(mark);
    expect(log).not.toMatch(/status=bounced/);
    expect(log).not.toMatch(/sender non-delivery notification/);
    expect(mailboxesWith(p, t).sort()).toEqual(['alice', 'bob', 'carol']);
  });
});
