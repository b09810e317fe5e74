/**
 * One line per event on stderr. Under systemd (JOURNAL_STREAM set) each line starts with a
 * syslog priority prefix like `<4>` so journald files it at the right level; elsewhere the
 * Postfix style `warning: ...` is easier to read and grep. No colours, no timestamps
 * (journald adds them).
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
const SYSLOG_PRIORITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };
const WORD: Record<LogLevel, string> = { error: 'error', warn: 'warning', info: 'info', debug: 'debug' };

export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  enabled(level: LogLevel): boolean;
}

class StderrLogger implements Logger {
  level: LogLevel = 'info';
  journald = Boolean(process.env.JOURNAL_STREAM);
  sink: (line: string) => void = (line) => process.stderr.write(line);

  private emit(level: LogLevel, msg: string): void {
    if (RANK[level] > RANK[this.level]) return;
    // A message must stay one line: a key or an LDAP error text could contain newlines.
    const clean = redactSecrets(msg).replace(/[\r\n]+/g, ' ');
    const prefix = this.journald ? `<${SYSLOG_PRIORITY[level]}>` : '';
    this.sink(`${prefix}${WORD[level]}: ${clean}\n`);
  }

  error(msg: string): void { this.emit('error', msg); }
  warn(msg: string): void { this.emit('warn', msg); }
  info(msg: string): void { this.emit('info', msg); }
  debug(msg: string): void { this.emit('debug', msg); }
  enabled(level: LogLevel): boolean { return RANK[level] <= RANK[this.level]; }
}

export const log = new StderrLogger();

export function setLogLevel(level: LogLevel): void {
  log.level = level;
}

/** Capture log lines (tests, the `check` command). Returns a function that restores stderr. */
export function captureLog(into: string[]): () => void {
  const previous = log.sink;
  log.sink = (line) => into.push(line);
  return () => { log.sink = previous; };
}

/**
 * Logs a message at most once per `intervalMs` per key, counting what it held back, so a dead
 * directory produces one loud line per period instead of one per lookup.
 */
export class RateLimitedLog {
  private last = new Map<string, { at: number; suppressed: number }>();
  constructor(private readonly intervalMs: number, private readonly now: () => number = Date.now) {}

  emit(level: LogLevel, key: string, msg: string): void {
    const t = this.now();
    const seen = this.last.get(key);
    if (seen && t - seen.at < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    const extra = seen && seen.suppressed > 0 ? ` (${seen.suppressed} similar messages suppressed)` : '';
    this.last.set(key, { at: t, suppressed: 0 });
    log[level](msg + extra);
  }
}

const secrets = new Set<string>();

/**
 * Declares a secret (a bind password): it is replaced by `[redacted]` in every log line, in
 * `check` output and in error answers. Defense in depth: no message is meant to contain one.
 * Strings shorter than 4 characters are not registered (redacting them would mangle text).
 */
export function registerSecret(secret: string): void {
  if (secret.length >= 4) secrets.add(secret);
}

/** `text` with every registered secret replaced by `[redacted]`. */
export function redactSecrets(text: string): string {
  for (const s of secrets) if (text.includes(s)) text = text.split(s).join('[redacted]');
  return text;
}

/** Keys and values in logs: printable, bounded, never raw control bytes. */
export function printable(b: Buffer | string, max = 200): string {
  const s = typeof b === 'string' ? b : b.toString('utf8');
  const cut = s.length > max ? s.slice(0, max) + `...(${s.length} chars)` : s;
  return JSON.stringify(cut);
}
