/**
 * The native side: Postfix's own `postmap -q KEY ldap:FILE`, one process per key (a batch
 * `postmap -q -` stops at the first temporary error and may lose what it had).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { postmapAnswer, type Answer } from './answer.js';

export function postmapPath(): string {
  return existsSync('/usr/sbin/postmap') ? '/usr/sbin/postmap' : 'postmap';
}

export function postmapQuery(file: string, key: string, opts: { postfixConfig?: string; timeoutMs?: number } = {}): Promise<Answer> {
  const args = [...(opts.postfixConfig !== undefined ? ['-c', opts.postfixConfig] : []), '-q', key, `ldap:${file}`];
  return new Promise((resolve) => {
    // postmap does not ignore SIGPIPE (Postfix's daemons do): a server closing a TLS connection
    // mid-write would kill it without a word. Ignored here as in the daemons; it stays ignored
    // across exec.
    const child = spawn('/bin/sh', ['-c', `trap '' PIPE; exec "$0" "$@"`, postmapPath(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.once('error', (e) => { clearTimeout(timer); resolve({ kind: 'error', detail: `postmap could not be run: ${e.message}` }); });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve(postmapAnswer(code, signal, Buffer.concat(out).toString('utf8'), Buffer.concat(err).toString('utf8')));
    });
  });
}
