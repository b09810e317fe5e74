/**
 * Configuration errors and warnings.
 *
 * Every problem found while reading a configuration names where it comes from: the file (or
 * "command line" for flags), the line of the logical line that set the value, and the
 * parameter name. The rendered form is `FILE:LINE: KEY: problem`, with missing parts left out.
 *
 * Messages never contain a parameter's value unless the value is harmless to show; in
 * particular a password (`bind_pw`, the contents of `bind_pw_file`) never appears.
 */

/** Where a configuration value came from. */
export interface ConfigWhere {
  file: string;
  line?: number;
  key?: string;
}

export interface ConfigWarning extends ConfigWhere {
  message: string;
}

/** Renders `FILE:LINE: KEY: text`, leaving out the parts that are not known. */
export function formatLocation(where: ConfigWhere, text: string): string {
  let prefix = where.file;
  if (where.line !== undefined) prefix += `:${where.line}`;
  if (where.key !== undefined && where.key !== '') prefix += `: ${where.key}`;
  return prefix === '' ? text : `${prefix}: ${text}`;
}

export function formatWarning(w: ConfigWarning): string {
  return formatLocation(w, w.message);
}

/** A configuration that must not be used: the daemon refuses to start with it. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly file: string;
  readonly line?: number;
  readonly key?: string;
  /** The problem without the location prefix. */
  readonly problem: string;

  constructor(problem: string, where: ConfigWhere, options?: { cause?: unknown }) {
    super(formatLocation(where, problem), options);
    this.problem = problem;
    this.file = where.file;
    if (where.line !== undefined) this.line = where.line;
    if (where.key !== undefined) this.key = where.key;
  }
}

/** Collects warnings with their location. */
export function warningAt(where: ConfigWhere, message: string): ConfigWarning {
  const w: ConfigWarning = { file: where.file, message };
  if (where.line !== undefined) w.line = where.line;
  if (where.key !== undefined) w.key = where.key;
  return w;
}
