/** Saving and reopening a workstation session (inputs, settings, results) as a JSON file, atomically. */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { InputError } from '../errors.ts';
import type { SessionFile } from './types.ts';

export function writeSession(path: string, s: SessionFile, protect: string[]): void {
  writeFileAtomic(path, Buffer.from(JSON.stringify(s, null, 2) + '\n'), { protect });
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
