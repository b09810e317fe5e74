/**
 * Runs Postfix's own tools against a configuration directory. postconf is the authority on
 * main.cf / master.cf syntax and on `$name` expansion, so migrate reads through it rather than
 * parsing the files itself.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { parseMasterLines, parseParamLines, parseServiceParamLines } from './postconf-output.js';
import type { PostfixView } from './plan.js';

/** A Postfix tool failed or is missing: a usage/config problem for the admin (exit 2). */
export class PostfixToolError extends Error {
  override name = 'PostfixToolError';
}

export function postfixTool(name: 'postconf' | 'postfix'): string {
  const sbin = `/usr/sbin/${name}`;
  return existsSync(sbin) ? sbin : name;
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runTool(cmd: string, args: string[], timeoutMs = 60_000): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
        reject(new PostfixToolError(`${cmd}: ${err.message}`));
        return;
      }
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** `postconf -c DIR ARGS`; a non-zero exit is an error naming postconf's own message. */
export async function postconf(configDir: string, args: string[]): Promise<string> {
  const r = await runTool(postfixTool('postconf'), ['-c', configDir, ...args]);
  if (r.code !== 0) {
    const fatal = r.stderr.split('\n').filter((l) => /fatal|error/.test(l)).join('; ') || r.stderr.trim();
    throw new PostfixToolError(`postconf -c ${configDir} ${args.join(' ')} failed (exit ${r.code}): ${fatal}`);
  }
  return r.stdout;
}

/** Everything the planner needs, read through postconf. */
export async function readPostfixView(configDir: string): Promise<PostfixView> {
  if (!existsSync(`${configDir}/main.cf`)) throw new PostfixToolError(`${configDir}/main.cf: no such file (--postfix-config names Postfix's config_directory)`);
  const [raw, expanded, services, serviceRaw, serviceExpanded] = await Promise.all([
    postconf(configDir, ['-n']),
    postconf(configDir, ['-x']),
    postconf(configDir, ['-M']),
    postconf(configDir, ['-P']),
    postconf(configDir, ['-x', '-P']),
  ]);
  return {
    raw: parseParamLines(raw, 'postconf -n'),
    expanded: parseParamLines(expanded, 'postconf -x'),
    services: parseMasterLines(services),
    serviceRaw: parseServiceParamLines(serviceRaw),
    serviceExpanded: parseServiceParamLines(serviceExpanded, 'postconf -x -P'),
  };
}
