/**
 * dcmjs, loaded lazily through createRequire (it ships no TypeScript types), with the small
 * typed surface this folder uses: reading a data set into naturalised attributes (keyword ->
 * value) and writing naturalised attributes as a DICOM file.
 */
import { createRequire } from 'node:module';

export type Attributes = Record<string, unknown>;

interface DicomDictLike {
  meta: Record<string, unknown>;
  dict: Record<string, unknown>;
  write(options?: Record<string, unknown>): ArrayBuffer;
}

export interface Dcmjs {
  data: {
    DicomMessage: {
      readFile(buffer: ArrayBuffer, options?: Record<string, unknown>): DicomDictLike;
    };
    DicomDict: new (meta: Record<string, unknown>) => DicomDictLike;
    DicomMetaDictionary: {
      naturalizeDataset(dict: Record<string, unknown>): Attributes;
      denaturalizeDataset(ds: Attributes): Record<string, unknown>;
    };
  };
  log: Logger & { getLogger(name: string): Logger };
}

interface Logger {
  getLevel(): number;
  setLevel(level: number | string, persist?: boolean): void;
}

let cached: Dcmjs | null = null;

export function dcmjs(): Dcmjs {
  if (!cached) cached = createRequire(import.meta.url)('dcmjs') as Dcmjs;
  return cached;
}

/** Run fn with dcmjs's console logging silenced (it warns about private tags it cannot type). */
export function quietly<T>(fn: () => T): T {
  const root = dcmjs().log;
  const loggers = [root, root.getLogger('validation.dcmjs')];
  const levels = loggers.map((l) => l.getLevel());
  for (const l of loggers) l.setLevel('silent', false);
  try {
    return fn();
  } finally {
    loggers.forEach((l, n) => l.setLevel(levels[n], false));
  }
}
