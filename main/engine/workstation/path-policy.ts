/**
 * Which paths the workstation may read and write. The desktop app trusts paths from its own native
 * dialogs (openPolicy); the browser mode only allows the configured data folders for reading and its
 * work folder for reading and writing (rootedPolicy), so a page cannot read arbitrary files.
 */
import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { InputError } from '../errors.ts';

export interface PathPolicy {
  /** Resolved path, or throws InputError when reading it is not allowed. */
  readable(path: string): string;
  /** Resolved path, or throws InputError when writing there is not allowed. */
  writable(path: string): string;
}

export const openPolicy: PathPolicy = { readable: (p) => resolve(p), writable: (p) => resolve(p) };

function inside(root: string, p: string): boolean {
  const r = relative(root, p);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r) && !r.startsWith(`..${sep}`));
}

/** The real path (symlinks resolved) of p, or of its deepest existing ancestor plus the rest. */
function realish(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    const parent = dirname(p);
    if (parent === p) return p;
    return resolve(realish(parent), relative(parent, p));
  }
}

export function rootedPolicy(readRoots: string[], workRoot: string): PathPolicy {
  const reads = [...readRoots, workRoot].map((r) => realish(resolve(r)));
  const work = realish(resolve(workRoot));
  return {
    readable(path) {
      const p = realish(resolve(workRoot, path));
      if (!reads.some((r) => inside(r, p)))
        throw new InputError(path, `outside the folders this server may read (${reads.join(', ')})`);
      return p;
    },
    writable(path) {
      const p = realish(resolve(workRoot, path));
      if (!inside(work, p)) throw new InputError(path, `outside the work folder this server may write (${work})`);
      return p;
    },
  };
}

export { inside as isInside };
