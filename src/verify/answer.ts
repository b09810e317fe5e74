/**
 * One lookup's outcome, the same shape for both sides (native postmap and the daemon), and how
 * two are compared: found values byte for byte, the other outcomes by kind only (the texts of
 * temporary errors differ by design: postmap prints strerror, the daemon a reason).
 */
export type Answer =
  | { kind: 'found'; value: string }
  | { kind: 'notfound' }
  | { kind: 'temp'; detail: string }
  /** Anything neither side should produce (a crash, PERM, a protocol error). */
  | { kind: 'error'; detail: string };

export function sameAnswer(a: Answer, b: Answer): boolean {
  if (a.kind !== b.kind) return false;
  return a.kind !== 'found' || a.value === (b as { value: string }).value;
}

export function describeAnswer(a: Answer): string {
  switch (a.kind) {
    case 'found':
      return `found ${JSON.stringify(a.value)}`;
    case 'notfound':
      return 'not found';
    case 'temp':
      return `temporary error (${a.detail})`;
    case 'error':
      return `error (${a.detail})`;
  }
}

const TEMP_RE = /(^|\n)postmap: fatal: .*(query error|lookup error)/;

/**
 * postmap -q KEY's outcome (Postfix 3.7): found = exit 0 and the value on stdout; not found =
 * exit 1, nothing on stdout, no fatal line; temporary error = exit 1 with
 * "postmap: fatal: table …: query error: …" on stderr (the LDAP warnings before it are kept).
 */
export function postmapAnswer(code: number | null, signal: string | null, stdout: string, stderr: string): Answer {
  const lastLines = stderr.trim().split('\n').slice(-2).join(' | ');
  if (signal !== null) return { kind: 'error', detail: `postmap killed by ${signal}` };
  if (code === 0 && stdout.length > 0) return { kind: 'found', value: stdout.endsWith('\n') ? stdout.slice(0, -1) : stdout };
  if (code === 1 && TEMP_RE.test(stderr)) return { kind: 'temp', detail: lastLines };
  if (code === 1 && stdout === '' && !/(^|\n)postmap: (fatal|panic): /.test(stderr)) return { kind: 'notfound' };
  return { kind: 'error', detail: `postmap exit ${code}: ${lastLines}` };
}

/** A socketmap reply payload (`OK value`, `NOTFOUND `, `TEMP reason`, `TIMEOUT reason`, `PERM reason`). */
export function socketmapAnswer(payload: string): Answer {
  const sp = payload.indexOf(' ');
  const status = sp < 0 ? payload : payload.slice(0, sp);
  const rest = sp < 0 ? '' : payload.slice(sp + 1);
  switch (status) {
    case 'OK':
      return { kind: 'found', value: rest };
    case 'NOTFOUND':
      return { kind: 'notfound' };
    case 'TEMP':
    case 'TIMEOUT':
      return { kind: 'temp', detail: `${status} ${rest}` };
    default:
      return { kind: 'error', detail: payload };
  }
}
