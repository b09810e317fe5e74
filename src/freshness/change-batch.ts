import type { ChangedEntry } from './match.js';

/** What one poll of a change marker found; the watcher expires what it may have affected. */
export interface ChangeBatch {
  changed: ChangedEntry[];
  deleted: Set<string>;
  /** Something changed that cannot be pinned down: expire whatever may depend on the context. */
  unexplained?: string;
}

export const SIZE_LIMIT_REASON = 'more changed entries than the server returns in one search (size limit)';
