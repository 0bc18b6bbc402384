/**
 * Atomic file writes: data goes to a temporary file in the destination's folder, is flushed,
 * then renamed over the destination, so a crash or a cancelled export never leaves a half file
 * and a reader never sees one. Refuses to write over any path listed in `protect` (the inputs), however spelt
 * (a symlink to an input counts as the input).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { VolumeWriteError } from '../errors.ts';
import { samePath, statOrNone } from './paths.ts';

export interface AtomicWriteOptions {
  /** Paths that must never be overwritten (e.g. the input volumes). */
  protect?: string[];
}

export function writeFileAtomic(
  path: string,
  chunks: Uint8Array | Uint8Array[],
  options: AtomicWriteOptions = {},
): void {
  const target = resolve(path);
  for (const p of options.protect ?? [])
    if (samePath(p, target)) throw new VolumeWriteError(path, 'refusing to overwrite an input file');
  // (under a file: no entry here, and the folder's making says so below)
  if (statOrNone(target)?.isDirectory())
    throw new VolumeWriteError(path, 'is a folder: give a file name (inside it, or beside it)');
  const dir = dirname(target);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'EEXIST')
      throw new VolumeWriteError(path, 'a part of its folder path is a file, not a folder: give another place', {
        cause: e,
      });
    throw new VolumeWriteError(path, `could not make its folder (${(e as Error).message})`, { cause: e });
  }
  const tmp = join(dir, `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd = -1;
  try {
    fd = openSync(tmp, 'wx');
    for (const c of Array.isArray(chunks) ? chunks : [chunks]) {
      let off = 0;
      while (off < c.byteLength) off += writeSync(fd, c, off, c.byteLength - off);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, target);
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    rmSync(tmp, { force: true });
    if (e instanceof VolumeWriteError) throw e;
    throw new VolumeWriteError(path, `could not write (${(e as Error).message})`, { cause: e });
  }
}

/** Bytes view of any typed array (no copy). */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
