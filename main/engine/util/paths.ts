/**
 * Path relations that survive symlinks and relative spellings: whether one path lies inside another,
 * and which input folder (a DICOM series folder, read recursively) would take in a file written
 * inside it. Used by the atomic writer's input protection, the DICOM series writer, the register
 * command's output check and the workstation's path policy and export.
 */
import { accessSync, constants, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { InputError } from '../errors.ts';

/** Whether p is root or lies under it (both absolute, already resolved). */
export function isInside(root: string, p: string): boolean {
  const r = relative(root, p);
  return r === '' || (!r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r));
}

/** The real path (symlinks resolved) of p, or of its deepest existing ancestor plus the rest. */
export function realPathOf(p: string): string {
  const abs = resolve(p);
  try {
    return realpathSync(abs);
  } catch {
    const parent = dirname(abs);
    if (parent === abs) return abs;
    return resolve(realPathOf(parent), relative(parent, abs));
  }
}

/** Whether a and b name the same file or folder, however spelt (a symlink counts as its target). */
export function samePath(a: string, b: string): boolean {
  return resolve(a) === resolve(b) || realPathOf(a) === realPathOf(b);
}

/** The first of `inputs` that is a folder holding `path` (or is it), else undefined. */
export function inputFolderHolding(path: string, inputs: readonly string[]): string | undefined {
  const p = realPathOf(path);
  return inputs.find(
    (input) => statSync(input, { throwIfNoEntry: false })?.isDirectory() && isInside(realPathOf(input), p),
  );
}

/**
 * Refuses an output folder that is one of the inputs or lies inside an input folder: the written
 * files (a DICOM series above all) would become part of that input, which is read with its subfolders.
 */
export function checkOutputFolder(out: string, inputs: readonly string[]): void {
  for (const p of inputs) if (samePath(out, p)) throw new InputError(out, 'is an input: give another output folder');
  const host = inputFolderHolding(out, inputs);
  if (host)
    throw new InputError(
      out,
      `is inside the input folder ${host}: what is written there would become part of that input (a DICOM folder is read with its subfolders); give a folder outside it`,
    );
}

/**
 * Refuses a folder path that cannot be a folder: an existing file, or a path under a file. Where it
 * does not exist yet, its deepest existing ancestor must be a writable folder.
 */
/**
 * statSync, or undefined where nothing is: also for a path under a file (ENOTDIR, which
 * `throwIfNoEntry: false` does not cover); other errors (permission) are thrown.
 */
export function statOrNone(p: string): Stats | undefined {
  try {
    return statSync(p, { throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

export function checkFolderCanBeMade(dir: string): void {
  const abs = resolve(dir);
  const st = statOrNone(abs);
  if (st && !st.isDirectory()) throw new InputError(dir, 'is a file, not a folder: give a folder');
  let p = abs;
  while (!statOrNone(p)) {
    const parent = dirname(p);
    if (parent === p) return;
    p = parent;
  }
  if (!statSync(p).isDirectory())
    throw new InputError(dir, `${p} is a file, so no folder can be made under it: give another place`);
  try {
    accessSync(p, constants.W_OK);
  } catch {
    throw new InputError(dir, `cannot write in ${p === abs ? 'it' : p} (permission denied): give another place`);
  }
}
