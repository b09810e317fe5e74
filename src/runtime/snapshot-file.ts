/**
 * The snapshot file on disk: replaced atomically, so a crash or power loss at any moment leaves
 * either the previous snapshot or the new one, never a mix: the new bytes go to a temporary file
 * in the same directory, are fsynced, renamed over the old file, and the directory is fsynced so
 * the rename itself is durable.
 */
import { constants, promises as fsp, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Writes `data` to `path` atomically (temp file + fsync + rename + fsync of the directory). */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  const fh = await fsp.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, path);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  const d = await fsp.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Why a snapshot file could not be read. */
export class SnapshotReadError extends Error {
  override readonly name = 'SnapshotReadError';
}

/**
 * The file's bytes; undefined when there is none yet. A file larger than `maxBytes` is refused
 * before it is read (a snapshot is never larger than the caches it was taken from).
 */
export function readSnapshotFile(path: string, maxBytes: number): Buffer | undefined {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new SnapshotReadError('not a regular file');
    size = st.size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (err instanceof SnapshotReadError) throw err;
    throw new SnapshotReadError((err as Error).message);
  }
  if (size > maxBytes) throw new SnapshotReadError(`${size} bytes, more than the ${maxBytes} the caches can hold`);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new SnapshotReadError((err as Error).message);
  }
}
