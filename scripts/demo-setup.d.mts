import type { ChildProcess, StdioOptions } from 'node:child_process';

export const REPO: string;
export const CLI: string;
export const README_PORTS: { ldap: number; socketmap: number; metrics: number };
export function freePort(): Promise<number>;
export function preferPort(preferred: number): Promise<number>;
export function waitForPort(port: number, ms?: number): Promise<void>;
export function startDemo(o: {
  dir: string;
  ports: { ldap: number; socketmap: number; metrics: number };
  children: ChildProcess[];
  daemonStdio?: StdioOptions;
}): Promise<{ dir: string; ldapUrl: string; cf: { aliases: string; mailboxes: string }; conf: string; slapd: ChildProcess; daemon: ChildProcess }>;
