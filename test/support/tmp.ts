/**
 * Per-process scratch root for test files and instances.
 *
 * Vitest's fork workers are ended with a signal, so `process.on('exit')` hooks are not a
 * reliable way to clean up. Everything the support code creates lives under one root
 * directory per Node process, and a detached shell watchdog removes that root once the
 * process is gone, however it ended.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let root: string | undefined;

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The per-process root (created on first use, removed when this process has exited). */
export function testTmpRoot(): string {
  if (root) return root;
  const dir = mkdtempSync(join(tmpdir(), `lsm-${process.pid}-`));
  // Postfix daemons (user postfix) may need to traverse into instance directories.
  chmodSync(dir, 0o755);
  spawn('/bin/sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null; do sleep 2; done; rm -rf ${shellQuote(dir)}`], {
    detached: true,
    stdio: 'ignore',
  }).unref();
  process.on('exit', () => {
    try { rmSync(dir, { recursive: true, force: true }); } catch { /* ignore */ }
  });
  root = dir;
  return dir;
}

/** A fresh directory under the per-process root. */
export function makeTmpDir(prefix: string): string {
  return mkdtempSync(join(testTmpRoot(), prefix));
}
