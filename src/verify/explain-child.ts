/**
 * explain's view of a key, from the `explain` command run as a child process (its output is a
 * stable interface; the library underneath is being reworked).
 */
import { spawn } from 'node:child_process';
import { cliPath } from './daemon.js';

export interface ExplainView {
  exitCode: number | null;
  /** The text tree (human output) or the parsed JSON report (--json). */
  text?: string;
  json?: unknown;
  error?: string;
}

export function explainKey(configFile: string, map: string, key: string, json: boolean, timeoutMs = 60_000): Promise<ExplainView> {
  const args = [cliPath(), 'explain', '--config', configFile, ...(json ? ['--json'] : []), map, '--', key];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      const text = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8').trim();
      if (!json) { resolve({ exitCode: code, text, ...(stderr ? { error: stderr } : {}) }); return; }
      try {
        resolve({ exitCode: code, json: JSON.parse(text) });
      } catch {
        resolve({ exitCode: code, error: stderr || 'explain printed no JSON' });
      }
    });
  });
}
