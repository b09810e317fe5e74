/**
 * Instances the support code started (slapd, Postfix) that must not outlive this test process.
 * At exit each one still registered is killed the way its owner says and its directory
 * removed; the detached shell watchdogs cover deaths that skip exit hooks.
 */
import { rmSync } from 'node:fs';

interface Entry {
  dir: string;
  pid(): number | undefined;
}

export class ExitRegistry {
  private readonly entries = new Set<Entry>();
  private hooked = false;

  /** `kill` ends a running instance by its pid (errors ignored: it may be gone already). */
  constructor(private readonly kill: (pid: number) => void) {}

  /** Registers an instance (its pid may change or be unknown yet); returns the function that forgets it. */
  add(dir: string, pid: () => number | undefined): () => void {
    if (!this.hooked) {
      this.hooked = true;
      process.on('exit', () => this.killAll());
    }
    const e: Entry = { dir, pid };
    this.entries.add(e);
    return () => { this.entries.delete(e); };
  }

  /** Kills every registered instance and removes its directory, now. */
  killAll(): void {
    for (const e of [...this.entries]) {
      const pid = e.pid();
      if (pid !== undefined) {
        try { this.kill(pid); } catch { /* gone */ }
      }
      try { rmSync(e.dir, { recursive: true, force: true }); } catch { /* ignore */ }
      this.entries.delete(e);
    }
  }
}
