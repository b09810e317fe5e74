/**
 * `migrate --apply`: edits main.cf and master.cf with postconf (never by hand), after copying
 * both aside, then runs `postfix check`; if anything fails, the copies are put back.
 */
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { MigrationPlan } from './plan.js';
import { postconf, postfixTool, PostfixToolError, runTool } from './postconf-run.js';

export interface ApplyResult {
  backups: string[];
  check: string;
}

function stamp(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
}

export async function applyPlan(plan: MigrationPlan, configDir: string, now = new Date()): Promise<ApplyResult> {
  const files = ['main.cf', 'master.cf'].map((f) => join(configDir, f)).filter((f) => existsSync(f));
  const backups = files.map((f) => `${f}.before-ldap-socketmap.${stamp(now)}`);
  files.forEach((f, i) => copyFileSync(f, backups[i]!));
  const restore = () => files.forEach((f, i) => copyFileSync(backups[i]!, f));
  try {
    const mainEdits = plan.switches.filter((s) => s.scope === 'main').map((s) => `${s.name}=${s.after}`);
    if (mainEdits.length > 0) await postconf(configDir, ['-e', ...mainEdits]);
    const masterEdits = [
      ...plan.switches.filter((s) => s.scope === 'master').map((s) => `${s.service}/${s.name}=${s.after}`),
      ...plan.overrides.map((o) => `${o.service}/${o.name}=${o.value}`),
    ];
    if (masterEdits.length > 0) await postconf(configDir, ['-P', ...masterEdits]);
    const check = await runTool(postfixTool('postfix'), ['-c', configDir, 'check']);
    if (check.code !== 0) {
      throw new PostfixToolError(`postfix -c ${configDir} check failed (exit ${check.code}): ${check.stderr.trim() || check.stdout.trim()}`);
    }
    return { backups, check: check.stderr.trim() };
  } catch (err) {
    restore();
    throw new PostfixToolError(`${err instanceof Error ? err.message : String(err)}; main.cf and master.cf restored from ${backups.join(', ')}`);
  }
}
