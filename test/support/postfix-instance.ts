/**
 * A private, running Postfix instance for end-to-end mail tests (needs root, like Postfix).
 *
 * Layout of one instance (a directory under the per-process scratch root of ./tmp.ts, chmod
 * 755 so the postfix user can enter it):
 *
 *   DIR/conf/main.cf, DIR/conf/master.cf   config_directory (`postfix -c DIR/conf ...`)
 *   DIR/queue                              queue_directory (with its own pid/master.pid)
 *   DIR/data                               data_directory (master.lock, ...)
 *   DIR/mail                               virtual_mailbox_base, owned by the delivery uid
 *   DIR/maillog                            maillog_file, written by the postlog service
 *
 * It never touches the system instance: its own config, queue and data directories, smtpd
 * only on 127.0.0.1:<free high port> (no port 25: master.cf has no `smtp inet` service),
 * `inet_interfaces = loopback-only`, and `relayhost = [127.0.0.1]:1` (a port that refuses
 * connections) so mail for external domains stays queued as deferred instead of leaving.
 * Every service runs unchrooted (chroot column `n`).
 *
 * Observed here (Postfix 3.7.11, Debian 12):
 * - Without a tty, `postfix` prints nothing on failure; its messages go to maillog_file, and
 *   maillog_file must start with one of maillog_file_prefixes (default /var, /dev/stdout).
 * - queue_directory and data_directory must exist before `postfix set-permissions`.
 * - The mailbox directory must be writable by the virtual(8) delivery uid (dot-locking).
 * - `postqueue -f` also re-triggers pickup, so mail parked in the maildrop queue (cleanup
 *   refused it with a temporary error) is retried by a flush, like the deferred queue.
 * - Postfix sleeps ~1 s before reading a main.cf modified less than a second ago, so the
 *   config files are backdated.
 *
 * Cleanup: stop()/destroy() from the test; a synchronous `process.on('exit')` hook that
 * kills the master's process group; and a detached shell watchdog that stops the instance
 * and removes its directory if this Node process dies without running exit hooks.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, readdirSync, rmSync, chmodSync, chownSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { backdate } from './postfix.js';
import { freePort, deadPort } from './slapd.js';
import { makeTmpDir } from './tmp.js';
import { sleep } from './wait.js';
import { ExitRegistry } from './exit-registry.js';
import { type CommandRun, runCommand } from './run.js';

export const POSTFIX = '/usr/sbin/postfix';
export const POSTQUEUE = '/usr/sbin/postqueue';
export const POSTCONF = '/usr/sbin/postconf';
export const SENDMAIL = '/usr/sbin/sendmail';
export const SWAKS = '/usr/bin/swaks';

// ---------------------------------------------------------------------------------------
// config text helpers (shared with the snippet tests)

/**
 * Parses main.cf text into parameters in file order (comments and blank lines dropped,
 * continuation lines joined with one space, later duplicates win).
 */
export function parseMainCf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let current: { name: string; value: string } | undefined;
  const flush = () => {
    if (current) out.set(current.name, current.value.trim());
    current = undefined;
  };
  for (const raw of text.replace(/\r\n/g, '\n').split('\n')) {
    // Blank lines and comment lines are skipped (readlline()).
    if (/^\s*#/.test(raw) || raw.trim() === '') continue;
    if (/^\s/.test(raw)) {
      if (current) current.value += ' ' + raw.trim();
      continue;
    }
    flush();
    const m = /^([A-Za-z0-9_.-]+)\s*=\s*(.*)$/.exec(raw);
    if (!m) throw new Error(`main.cf: cannot parse line: ${raw}`);
    current = { name: m[1] as string, value: m[2] as string };
  }
  flush();
  return out;
}

/** main.cf text from parameters, one `name = value` per line. */
export function formatMainCf(params: Map<string, string> | Record<string, string>): string {
  const entries = params instanceof Map ? [...params] : Object.entries(params);
  return entries.map(([k, v]) => (v === '' ? `${k} =` : `${k} = ${v}`)).join('\n') + '\n';
}

export interface MasterEntry {
  /** `service/type`, e.g. `virtual/unix`, `127.0.0.1:2525/inet`. */
  key: string;
  /** The entry's text: the service line plus its continuation lines, without a final newline. */
  text: string;
}

/** Splits master.cf text into entries (comments and blank lines dropped). */
export function parseMasterCf(text: string): MasterEntry[] {
  const out: MasterEntry[] = [];
  for (const raw of text.replace(/\r\n/g, '\n').split('\n')) {
    if (raw.trim() === '' || /^#/.test(raw)) continue;
    if (/^\s/.test(raw)) {
      if (/^\s*#/.test(raw)) continue;
      const last = out[out.length - 1];
      if (!last) throw new Error(`master.cf: continuation line without a service: ${raw}`);
      last.text += '\n' + raw;
      continue;
    }
    const f = raw.trim().split(/\s+/);
    if (f.length < 8) throw new Error(`master.cf: service line needs 8 fields: ${raw}`);
    out.push({ key: `${f[0]}/${f[1]}`, text: raw });
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// the instance

export interface PostfixInstanceOptions {
  /**
   * main.cf parameters. They replace the harness defaults of the same name (see
   * defaultMainCf); a value of `null` removes a default. Order: defaults first, then these.
   */
  main?: Record<string, string | null> | Map<string, string | null>;
  /**
   * master.cf entries keyed by `service/type`: a string replaces the default entry of that
   * key (or adds one), `null` removes it. The entry text is used verbatim (it may carry
   * `-o` continuation lines).
   */
  services?: Record<string, string | null>;
  /** Replaces the smtpd listener entry; `{PORT}` is replaced by the chosen port. */
  smtpdEntry?: string;
}

export interface QueueRecipient {
  address: string;
  orig_address?: string;
  delay_reason?: string;
}

/** One message as `postqueue -j` prints it. */
export interface QueueEntry {
  queue_name: string;
  queue_id: string;
  arrival_time: number;
  message_size: number;
  forced_expire?: boolean;
  sender: string;
  recipients: QueueRecipient[];
}

export type RunResult = CommandRun;

export interface WaitOptions {
  timeoutMs?: number;
  /** Also run `postqueue -f` at this interval while waiting (for retries after an outage). */
  flushEveryMs?: number;
}

export interface PostfixInstance {
  dir: string;
  confDir: string;
  queueDir: string;
  mailDir: string;
  maillogFile: string;
  smtpPort: number;
  /** `127.0.0.1:PORT` of the private smtpd. */
  smtpServer: string;
  /** uid/gid virtual(8) delivers as (owner of mailDir). */
  vmailUid: number;
  vmailGid: number;
  /** The main.cf parameters in force. */
  mainCf: Map<string, string>;
  /** The master.cf text in force. */
  masterCf: string;
  /** pid of the master process. */
  masterPid(): number | undefined;
  running(): boolean;
  /** Path of the mbox file virtual(8) writes for a mailbox map result (`DIR/mail/<name>`). */
  mailboxPath(name: string): string;
  /** Text of that mbox file ('' when it does not exist). */
  mailbox(name: string): string;
  /** The messages in that mbox file (split at `From ` lines). */
  mboxMessages(name: string): string[];
  /** Names of the mailbox files under mailDir (lock files excluded). */
  mailboxes(): string[];
  /** Wait until the mbox file satisfies `test` (a substring, a RegExp or a predicate). */
  waitForMailbox(name: string, test: string | RegExp | ((text: string) => boolean), opts?: WaitOptions): Promise<string>;
  /** Text of maillog_file. */
  maillog(): string;
  /** Byte offset to pass to maillogSince/waitForLog. */
  maillogMark(): number;
  maillogSince(mark: number): string;
  /** Wait for a maillog line matching `re` (after `mark`, default: anywhere). Resolves the line. */
  waitForLog(re: RegExp, opts?: WaitOptions & { since?: number }): Promise<string>;
  /** `postqueue -c DIR/conf -j`. */
  queue(): Promise<QueueEntry[]>;
  /** Poll the queue until `test` holds; resolves that queue listing. */
  waitForQueue(test: (q: QueueEntry[]) => boolean, opts?: WaitOptions): Promise<QueueEntry[]>;
  /** `postqueue -c DIR/conf -f`: deliver deferred mail now (and re-trigger pickup). */
  flush(): Promise<void>;
  /** Submit a message with `sendmail -C DIR/conf` (postdrop → maildrop queue → pickup → cleanup). */
  sendmail(from: string, to: string[], message: string): Promise<RunResult>;
  /** Run `postconf -c DIR/conf ARGS`. */
  postconf(args: string[]): Promise<RunResult>;
  /** `postfix -c DIR/conf reload` after rewriting main.cf with these parameter changes. */
  reload(main?: Record<string, string | null>): Promise<void>;
  /** Stop the mail system (SIGTERM to the master, then SIGKILL to its process group after 5 s). The directory is kept. */
  stop(): Promise<void>;
  /** stop() and remove the directory. */
  destroy(): Promise<void>;
}

/** The harness' default main.cf for an instance in DIR (see the file comment). */
export function defaultMainCf(dir: string, uid: number, gid: number): Map<string, string> {
  return new Map<string, string>([
    ['compatibility_level', '3.6'],
    ['myhostname', 'mx.example.test'],
    ['mydomain', 'example.test'],
    ['myorigin', '$myhostname'],
    ['mydestination', ''],
    ['inet_interfaces', 'loopback-only'],
    ['inet_protocols', 'ipv4'],
    ['mynetworks', '127.0.0.0/8'],
    ['queue_directory', join(dir, 'queue')],
    ['data_directory', join(dir, 'data')],
    ['maillog_file', join(dir, 'maillog')],
    ['maillog_file_prefixes', dir],
    // External mail goes to a loopback port that refuses connections: it stays deferred.
    ['relayhost', `[127.0.0.1]:${deadPort()}`],
    // No /etc/aliases, no NIS: local(8) is not used by these tests.
    ['alias_maps', ''],
    ['alias_database', ''],
    ['smtputf8_enable', 'yes'],
    ['biff', 'no'],
    ['readme_directory', 'no'],
    ['virtual_mailbox_base', join(dir, 'mail')],
    ['virtual_uid_maps', `static:${uid}`],
    ['virtual_gid_maps', `static:${gid}`],
  ]);
}

const DEFAULT_SERVICES = `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

const DEFAULT_SMTPD = '127.0.0.1:{PORT} inet n - n - - smtpd';

// ---------------------------------------------------------------------------------------
// process helpers

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** uid/gid of a passwd/group entry from /etc/passwd, /etc/group. */
function lookupId(file: '/etc/passwd' | '/etc/group', name: string): number | undefined {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined) return Number(f[2]);
  }
  return undefined;
}

/** The master is a session leader: its children share its process group. */
const live = new ExitRegistry((pid) => process.kill(-pid, 'SIGKILL'));

/** Stops the instance and removes its directory if this Node process dies without exit hooks. */
function spawnWatchdog(masterPid: number, dir: string): void {
  const q = `'${dir.replace(/'/g, `'\\''`)}'`;
  const script = `
    while kill -0 ${process.pid} 2>/dev/null && kill -0 ${masterPid} 2>/dev/null; do sleep 1; done
    if ! kill -0 ${process.pid} 2>/dev/null; then
      kill -TERM ${masterPid} 2>/dev/null; sleep 2; kill -KILL -${masterPid} 2>/dev/null
      rm -rf ${q}
    fi`;
  const w = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' });
  w.unref();
}

function requireTools(): void {
  if (process.getuid?.() !== 0) throw new Error('a private Postfix instance needs root (Postfix starts as root and drops privileges)');
  for (const [path, pkg] of [[POSTFIX, 'postfix'], [SWAKS, 'swaks'], ['/usr/lib/postfix/postfix-ldap.so', 'postfix-ldap']] as const) {
    if (!existsSync(path)) throw new Error(`${path} not found: install the Debian package '${pkg}'`);
  }
}

// ---------------------------------------------------------------------------------------

/** Creates, configures and starts a private Postfix instance. */
export async function startPostfix(opts: PostfixInstanceOptions = {}): Promise<PostfixInstance> {
  requireTools();

  // Under the per-process scratch root (removed by its own watchdog once this process is gone).
  const dir = makeTmpDir('postfix-');
  chmodSync(dir, 0o755);
  const confDir = join(dir, 'conf');
  const queueDir = join(dir, 'queue');
  const dataDir = join(dir, 'data');
  const mailDir = join(dir, 'mail');
  const maillogFile = join(dir, 'maillog');
  for (const d of [confDir, queueDir, dataDir, mailDir]) mkdirSync(d, { mode: 0o755 });

  // Deliver as nobody/nogroup: an unprivileged uid that exists everywhere (virtual(8) refuses
  // uids below virtual_minimum_uid = 100 and never delivers as root).
  const vmailUid = lookupId('/etc/passwd', 'nobody') ?? 65534;
  const vmailGid = lookupId('/etc/group', 'nogroup') ?? vmailUid;
  chownSync(mailDir, vmailUid, vmailGid);

  const main = defaultMainCf(dir, vmailUid, vmailGid);
  const applyMain = (changes: Record<string, string | null> | Map<string, string | null> | undefined) => {
    if (!changes) return;
    for (const [k, v] of changes instanceof Map ? changes : Object.entries(changes)) {
      if (v === null) main.delete(k);
      else main.set(k, v);
    }
  };
  applyMain(opts.main);

  const services = parseMasterCf(DEFAULT_SERVICES);
  for (const [key, text] of Object.entries(opts.services ?? {})) {
    const i = services.findIndex((s) => s.key === key);
    if (text === null) {
      if (i >= 0) services.splice(i, 1);
    } else if (i >= 0) services[i] = { key, text };
    else services.push({ key, text });
  }

  const mainFile = join(confDir, 'main.cf');
  const masterFile = join(confDir, 'master.cf');
  const writeMain = () => {
    writeFileSync(mainFile, formatMainCf(main));
    backdate(mainFile);
  };
  const masterText = (port: number) =>
    [(opts.smtpdEntry ?? DEFAULT_SMTPD).replace(/\{PORT\}/g, String(port)), ...services.map((s) => s.text)].join('\n') + '\n';

  let smtpPort = 0;
  let masterCf = '';
  let masterPid: number | undefined;
  const forget = live.add(dir, () => masterPid);

  const readMasterPid = (): number | undefined => {
    try {
      const n = Number(readFileSync(join(queueDir, 'pid', 'master.pid'), 'utf8').trim());
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  };

  const readLogBuf = (): Buffer => {
    try { return readFileSync(maillogFile); } catch { return Buffer.alloc(0); }
  };
  const logSize = (): number => {
    try { return statSync(maillogFile).size; } catch { return 0; }
  };

  const pf = (args: string[]) => runCommand(POSTFIX, ['-c', confDir, ...args]);

  const stopMaster = async (): Promise<void> => {
    const pid = masterPid ?? readMasterPid();
    if (pid === undefined) return;
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    const deadline = Date.now() + 5000;
    while (alive(pid) && Date.now() < deadline) await sleep(50);
    // Children exit when the master goes away; make sure nothing of this instance is left.
    const groupAlive = () => { try { process.kill(-pid, 0); return true; } catch { return false; } };
    const groupDeadline = Date.now() + 3000;
    while (groupAlive() && Date.now() < groupDeadline) await sleep(50);
    if (groupAlive() || alive(pid)) {
      try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    masterPid = undefined;
  };

  try {
    writeMain();
    let started = false;
    let lastErr = '';
    for (let attempt = 0; attempt < 4 && !started; attempt++) {
      smtpPort = await freePort();
      masterCf = masterText(smtpPort);
      writeFileSync(masterFile, masterCf);
      backdate(masterFile);
      const mark = logSize();
      if (attempt === 0) {
        const perm = await pf(['set-permissions']);
        if (perm.code !== 0) throw new Error(`postfix set-permissions failed (exit ${perm.code}): ${perm.stderr}${readLogBuf().subarray(mark).toString('utf8')}`);
      }
      const r = await pf(['start']);
      if (r.code === 0) {
        started = true;
        break;
      }
      lastErr = `exit ${r.code}: ${r.stderr}${readLogBuf().subarray(mark).toString('utf8')}`;
      await stopMaster();
      // Only a port race is worth another attempt.
      if (!/bind|address already in use/i.test(lastErr)) break;
    }
    if (!started) throw new Error(`postfix start failed (${dir}): ${lastErr}`);
    masterPid = readMasterPid();
    if (masterPid === undefined) throw new Error(`postfix started but ${queueDir}/pid/master.pid is missing`);
    spawnWatchdog(masterPid, dir);
  } catch (e) {
    await stopMaster();
    forget();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  const testText = (test: string | RegExp | ((text: string) => boolean)) => (text: string): boolean =>
    typeof test === 'string' ? text.includes(test) : test instanceof RegExp ? test.test(text) : test(text);

  const inst: PostfixInstance = {
    dir,
    confDir,
    queueDir,
    mailDir,
    maillogFile,
    get smtpPort() { return smtpPort; },
    get smtpServer() { return `127.0.0.1:${smtpPort}`; },
    vmailUid,
    vmailGid,
    mainCf: main,
    get masterCf() { return masterCf; },
    masterPid: () => masterPid,
    running: () => masterPid !== undefined && alive(masterPid),

    mailboxPath: (name) => join(mailDir, name),
    mailbox(name) {
      try { return readFileSync(join(mailDir, name), 'utf8'); } catch { return ''; }
    },
    mboxMessages(name) {
      const text = inst.mailbox(name);
      if (text === '') return [];
      return text.split(/^(?=From )/m).filter((m) => m.startsWith('From '));
    },
    mailboxes() {
      try {
        return readdirSync(mailDir).filter((f) => !f.endsWith('.lock')).sort();
      } catch {
        return [];
      }
    },
    async waitForMailbox(name, test, wopts = {}) {
      const ok = testText(test);
      const deadline = Date.now() + (wopts.timeoutMs ?? 15_000);
      let lastFlush = Date.now();
      for (;;) {
        const text = inst.mailbox(name);
        if (ok(text)) return text;
        if (Date.now() > deadline) {
          throw new Error(`mailbox ${name} did not get the expected content in time. Mailbox:\n${text}\nMaillog tail:\n${tail(inst.maillog(), 25)}`);
        }
        if (wopts.flushEveryMs !== undefined && Date.now() - lastFlush >= wopts.flushEveryMs) {
          lastFlush = Date.now();
          await inst.flush();
        }
        await sleep(100);
      }
    },

    maillog: () => readLogBuf().toString('utf8'),
    maillogMark: () => logSize(),
    maillogSince: (mark) => readLogBuf().subarray(mark).toString('utf8'),
    async waitForLog(re, wopts = {}) {
      const deadline = Date.now() + (wopts.timeoutMs ?? 15_000);
      let lastFlush = Date.now();
      for (;;) {
        const text = inst.maillogSince(wopts.since ?? 0);
        const hit = text.split('\n').find((l) => re.test(l));
        if (hit !== undefined) return hit;
        if (Date.now() > deadline) throw new Error(`no maillog line matching ${re} in time. Maillog tail:\n${tail(inst.maillog(), 25)}`);
        if (wopts.flushEveryMs !== undefined && Date.now() - lastFlush >= wopts.flushEveryMs) {
          lastFlush = Date.now();
          await inst.flush();
        }
        await sleep(100);
      }
    },

    async queue() {
      const r = await runCommand(POSTQUEUE, ['-c', confDir, '-j']);
      if (r.code !== 0) throw new Error(`postqueue -j failed (exit ${r.code}): ${r.stderr}`);
      return r.stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as QueueEntry);
    },
    async waitForQueue(test, wopts = {}) {
      const deadline = Date.now() + (wopts.timeoutMs ?? 15_000);
      let lastFlush = Date.now();
      for (;;) {
        const q = await inst.queue();
        if (test(q)) return q;
        if (Date.now() > deadline) throw new Error(`queue condition not reached in time. Queue:\n${JSON.stringify(q, null, 1)}\nMaillog tail:\n${tail(inst.maillog(), 25)}`);
        if (wopts.flushEveryMs !== undefined && Date.now() - lastFlush >= wopts.flushEveryMs) {
          lastFlush = Date.now();
          await inst.flush();
        }
        await sleep(150);
      }
    },
    async flush() {
      const r = await runCommand(POSTQUEUE, ['-c', confDir, '-f']);
      if (r.code !== 0) throw new Error(`postqueue -f failed (exit ${r.code}): ${r.stderr}`);
    },

    sendmail: (from, to, message) => runCommand(SENDMAIL, ['-C', confDir, '-f', from, '-i', '--', ...to], { input: message }),
    postconf: (args) => runCommand(POSTCONF, ['-c', confDir, ...args]),

    async reload(changes) {
      applyMain(changes);
      writeMain();
      const r = await pf(['reload']);
      if (r.code !== 0) throw new Error(`postfix reload failed (exit ${r.code}): ${tail(inst.maillog(), 10)}`);
    },
    async stop() {
      await stopMaster();
    },
    async destroy() {
      await stopMaster();
      forget();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return inst;
}

function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines - 1).join('\n');
}

// ---------------------------------------------------------------------------------------
// SMTP client: swaks

export interface SmtpReply {
  code: number;
  /** Enhanced status code and text of the last reply line, e.g. `5.1.1 <x>: Recipient address rejected: ...`. */
  text: string;
}

export interface SwaksResult {
  /** swaks exit code: 0 accepted; 24 every RCPT refused; 25 DATA refused; see swaks(1). */
  code: number;
  transcript: string;
  /** The reply to each RCPT TO, by address as sent. */
  rcpt: Map<string, SmtpReply>;
  /** Reply to the end of DATA, if the dialogue got that far. */
  data?: SmtpReply;
  /** Queue ID from `250 2.0.0 Ok: queued as ID`. */
  queueId?: string;
}

export interface SwaksOptions {
  from: string;
  to: string[];
  subject?: string;
  body?: string;
  /** Extra header lines (`Name: value`). */
  headers?: string[];
  timeoutMs?: number;
}

/** Parses a swaks transcript into the replies to RCPT TO and to the end of DATA. */
export function parseSwaksTranscript(transcript: string): Pick<SwaksResult, 'rcpt' | 'data' | 'queueId'> {
  const rcpt = new Map<string, SmtpReply>();
  let pending: { kind: 'rcpt'; addr: string } | { kind: 'data' } | undefined;
  let data: SmtpReply | undefined;
  let sawDataCmd = false;
  for (const line of transcript.split('\n')) {
    const cmd = /^ -> RCPT TO:<(.*)>/.exec(line);
    if (cmd) {
      pending = { kind: 'rcpt', addr: cmd[1] as string };
      continue;
    }
    if (/^ -> DATA\s*$/.test(line)) {
      sawDataCmd = true;
      pending = undefined;
      continue;
    }
    if (sawDataCmd && /^ -> \.\s*$/.test(line)) {
      pending = { kind: 'data' };
      continue;
    }
    const reply = /^<(?:-|\*\*) +(\d{3})([ -])(.*)$/.exec(line);
    if (reply && pending && reply[2] === ' ') {
      const r = { code: Number(reply[1]), text: (reply[3] as string).trim() };
      if (pending.kind === 'rcpt') rcpt.set(pending.addr, r);
      else data = r;
      pending = undefined;
    }
  }
  const queueId = data && /queued as ([0-9A-Za-z]+)/.exec(data.text)?.[1];
  return { rcpt, ...(data ? { data } : {}), ...(queueId ? { queueId } : {}) };
}

/** Sends one message to the instance's smtpd with swaks. */
export async function swaks(server: string, o: SwaksOptions): Promise<SwaksResult> {
  const args = [
    '--server', server,
    '--from', o.from,
    '--to', o.to.join(','),
    '--helo', 'client.example.test',
    '--timeout', String(Math.ceil((o.timeoutMs ?? 30_000) / 1000)),
    '--h-Subject', o.subject ?? 'ldap-socketmap e2e',
    ...(o.headers ?? []).flatMap((h) => ['--add-header', h]),
    '--body', o.body ?? 'This is an ldap-socketmap end-to-end test message.',
  ];
  const r = await runCommand(SWAKS, args, { timeoutMs: (o.timeoutMs ?? 30_000) + 5000 });
  const transcript = r.stdout + r.stderr;
  return { code: r.code ?? 1, transcript, ...parseSwaksTranscript(transcript) };
}
