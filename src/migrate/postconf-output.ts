/**
 * Parsers for what `postconf` prints (pure; migrate/postconf-run.ts runs the program).
 *
 *   postconf -n / -d / -x:   `name = value` (value may be empty: `name =`)
 *   postconf -P:             `service/type/name = value`
 *   postconf -M:             `service type private unpriv chroot wakeup maxproc command args…`
 *                            (one line per service, -o options folded onto it)
 */

export class PostconfOutputError extends Error {
  override name = 'PostconfOutputError';
}

/** `name = value` lines → name → value, in output order. */
export function parseParamLines(text: string, what = 'postconf'): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const m = /^([A-Za-z0-9_.-]+) =(?: (.*))?$/.exec(line);
    if (m === null) throw new PostconfOutputError(`${what}: cannot parse line: ${line}`);
    out.set(m[1]!, m[2] ?? '');
  }
  return out;
}

export interface ServiceParam {
  service: string;
  type: string;
  name: string;
  value: string;
}

/** `postconf -P` lines. */
export function parseServiceParamLines(text: string, what = 'postconf -P'): ServiceParam[] {
  const out: ServiceParam[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const m = /^(.+)\/([a-z-]+)\/([A-Za-z0-9_.-]+) =(?: (.*))?$/.exec(line);
    if (m === null) throw new PostconfOutputError(`${what}: cannot parse line: ${line}`);
    out.push({ service: m[1]!, type: m[2]!, name: m[3]!, value: m[4] ?? '' });
  }
  return out;
}

export interface MasterService {
  service: string;
  type: string;
  /** The daemon program (8th field), e.g. `virtual`, `local`, `smtpd`. */
  command: string;
}

/** `postconf -M` lines (only the fields migrate needs). */
export function parseMasterLines(text: string, what = 'postconf -M'): MasterService[] {
  const out: MasterService[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const f = line.trim().split(/\s+/);
    if (f.length < 8) throw new PostconfOutputError(`${what}: service line needs 8 fields: ${line}`);
    out.push({ service: f[0]!, type: f[1]!, command: f[7]! });
  }
  return out;
}
