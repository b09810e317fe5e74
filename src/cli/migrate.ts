import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { formatListen, parseListen } from '../config/listen.js';
import { ConfigError } from '../config/errors.js';
import { applyPlan } from '../migrate/apply.js';
import { planMigration } from '../migrate/plan.js';
import { PostfixToolError, readPostfixView } from '../migrate/postconf-run.js';
import { PostconfOutputError } from '../migrate/postconf-output.js';
import { renderDaemonConfig, renderMasterFragment, renderPostconfScript, renderSummary } from '../migrate/render.js';
import { log } from '../log.js';
import { EXIT_CONFIG } from './args.js';

export interface MigrateArgs {
  postfixConfig: string;
  out: string;
  listen: string;
  keep?: string[];
  apply?: boolean;
}

/**
 * `migrate`: reads a Postfix configuration through postconf and writes the daemon config, the
 * postconf commands that switch Postfix over and the master.cf overrides (see src/migrate/).
 * Exit status: 0 done, 2 usage or configuration error (nothing applied).
 */
export async function runMigrate(a: MigrateArgs): Promise<number> {
  try {
    const configDir = resolve(a.postfixConfig);
    const listen = formatListen(parseListen(a.listen, { file: 'command line', key: '--listen' }));
    const view = await readPostfixView(configDir);
    const plan = planMigration(view, { listen, keep: new Set(a.keep ?? []) });
    if (plan.maps.length === 0 && plan.native.length === 0) {
      log.error(`no ldap: or proxy:ldap: table in ${configDir}/main.cf or master.cf: nothing to migrate`);
      return EXIT_CONFIG;
    }
    const out = resolve(a.out);
    mkdirSync(out, { recursive: true });
    const files = {
      daemon: join(out, 'ldap-socketmap.conf'),
      script: join(out, 'postconf-commands.sh'),
      master: join(out, 'master.cf-overrides'),
    };
    writeFileSync(files.daemon, renderDaemonConfig(plan, configDir));
    writeFileSync(files.script, renderPostconfScript(plan, configDir), { mode: 0o755 });
    writeFileSync(files.master, renderMasterFragment(plan));
    let applied = false;
    if (a.apply === true) {
      const r = await applyPlan(plan, configDir);
      applied = true;
      process.stdout.write(`backups: ${r.backups.join(', ')}\npostfix check: ok\n`);
    }
    process.stdout.write(renderSummary(plan, Object.values(files), applied));
    return 0;
  } catch (err) {
    if (err instanceof PostfixToolError || err instanceof PostconfOutputError || err instanceof ConfigError) {
      log.error(err.message);
      return EXIT_CONFIG;
    }
    throw err;
  }
}
