/**
 * Which paths the workstation may read and write. The desktop app trusts paths from its own native
 * dialogs (openPolicy); the browser mode only allows the configured data folders for reading and its
 * work folder for reading and writing (rootedPolicy), so a page cannot read arbitrary files.
 */
import { resolve } from 'node:path';
import { isInside, realPathOf } from '../util/paths.ts';
import { InputError } from '../errors.ts';

export interface PathPolicy {
  /** Resolved path, or throws InputError when reading it is not allowed. */
  readable(path: string): string;
  /** Resolved path, or throws InputError when writing there is not allowed. */
  writable(path: string): string;
}

export const openPolicy: PathPolicy = { readable: (p) => resolve(p), writable: (p) => resolve(p) };

export function rootedPolicy(readRoots: string[], workRoot: string): PathPolicy {
  const reads = [...readRoots, workRoot].map((r) => realPathOf(resolve(r)));
  const work = realPathOf(resolve(workRoot));
  return {
    readable(path) {
      const p = realPathOf(resolve(workRoot, path));
      if (!reads.some((r) => isInside(r, p)))
        throw new InputError(path, `outside the folders this server may read (${reads.join(', ')})`);
      return p;
    },
    writable(path) {
      const p = realPathOf(resolve(workRoot, path));
      if (!isInside(work, p)) throw new InputError(path, `outside the work folder this server may write (${work})`);
      return p;
    },
  };
}
