import { readFileSync } from 'node:fs';

/** First file descriptor systemd passes (SD_LISTEN_FDS_START). */
const FIRST_FD = 3;

export interface InheritedSocket {
  fd: number;
  name: string;
}

/**
 * sd_listen_fds(3) without libsystemd: the listening sockets systemd (or
 * systemd-socket-activate) opened for us, with their FileDescriptorName=. Only when LISTEN_PID
 * is this process; the variables are removed so children do not take them too.
 */
export function takeListenFds(env: NodeJS.ProcessEnv = process.env): InheritedSocket[] {
  const pid = Number(env.LISTEN_PID);
  const count = Number(env.LISTEN_FDS);
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (pid !== process.pid || !Number.isInteger(count) || count <= 0) return [];
  return Array.from({ length: count }, (_, i) => ({ fd: FIRST_FD + i, name: names[i] ?? 'unknown' }));
}

/** uid/gid from a name or a number, via /etc/passwd or /etc/group (Node has no getpwnam). */
export function resolveId(nameOrId: string, db: '/etc/passwd' | '/etc/group'): number {
  if (/^\d+$/.test(nameOrId)) return Number(nameOrId);
  for (const line of readFileSync(db, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === nameOrId && f[2] !== undefined) return Number(f[2]);
  }
  throw new Error(`no ${db === '/etc/passwd' ? 'user' : 'group'} named ${nameOrId} in ${db}`);
}
