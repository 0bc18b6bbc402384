/**
 * The check every single-file output option gets before any work is done (sam convert, match --out,
 * transform-points --out, export-onnx): not one of the inputs however spelt, not a folder, the right
 * kind of name, and not an existing file unless --force (the write itself is atomic either way).
 */
import { dirname, resolve } from 'node:path';
import { InputError } from '../engine/errors.ts';
import { checkFolderCanBeMade, samePath, statOrNone } from '../engine/util/paths.ts';

export interface OutputFileRules {
  /** Files the command reads: never written over, --force or not. */
  inputs: readonly (string | undefined)[];
  /** --force: replace an existing file. */
  force?: boolean;
  /** The name the output must have, e.g. { pattern: /\.onnx$/i, label: '.onnx' }. */
  suffix?: { pattern: RegExp; label: string };
}

/** usage line of the --force option */
export const FORCE_USAGE = '  --force           replace an existing output file (never an input)';

export function checkOutputFile(out: string, rules: OutputFileRules): void {
  for (const input of rules.inputs)
    if (input && samePath(out, input))
      throw new InputError(out, 'refusing to overwrite an input file: give another output name');
  if (rules.suffix && !rules.suffix.pattern.test(out))
    throw new InputError(out, `the output must be a ${rules.suffix.label} file`);
  // (none also where a part of its path is a file: said below)
  const s = statOrNone(out);
  if (s?.isDirectory()) throw new InputError(out, 'is a folder: give a file name');
  if (s && !rules.force) throw new InputError(out, 'already exists: give another name, or --force to replace it');
  // its folder must be one, or can be made (not under a file)
  if (!s) checkFolderCanBeMade(dirname(resolve(out)));
}
