/** Saving and reopening a workstation session (inputs, settings, results) as a JSON file, atomically. */
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { InputError } from '../errors.ts';
import type { SessionFile } from './types.ts';

/**
 * Writes the session; an existing file is replaced only when it is a session file itself (saving
 * again), never another file of the user's. Returns whether one was replaced.
 */
export function writeSession(path: string, s: SessionFile, protect: string[]): { replaced: boolean } {
  const replaced = existsSync(path);
  if (replaced) {
    try {
      readSession(path);
    } catch {
      throw new InputError(path, 'exists and is not a SAM session file: refusing to overwrite it; give another name');
    }
  }
  writeFileAtomic(path, Buffer.from(JSON.stringify(s, null, 2) + '\n'), { protect });
  return { replaced };
}

export function readSession(path: string): SessionFile {
  let s: SessionFile;
  try {
    s = JSON.parse(readFileSync(path, 'utf8')) as SessionFile;
  } catch (e) {
    throw new InputError(path, `not a readable session file (${(e as Error).message})`);
  }
  if (s?.format !== 'sam-workstation-session' || s.version !== 1 || typeof s.settings !== 'object')
    throw new InputError(path, 'not a SAM workstation session (format/version)');
  return s;
}
