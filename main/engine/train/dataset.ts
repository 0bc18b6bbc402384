/**
 * The training set: every CT found under the given folders / files / list files, read, checked to
 * be CT in HU (label maps, masks, MR and windowed copies are skipped with the reason), resampled
 * to the network grid with its body mask (prepareCt), and kept in memory.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InputError } from '../errors.ts';
import { formatOfPath, readVolume } from '../volume/io/index.ts';
import { checkCt } from '../volume/intensity.ts';
import { prepareCt, type PreparedCt } from './patch-pairs.ts';

export interface TrainingCase {
  source: string;
  ct: PreparedCt;
}

export interface SkippedInput {
  source: string;
  reason: string;
}

/** Find candidate volumes: volume files, vtk.js data sets, and folders holding DICOM files. */
export function findVolumeInputs(inputs: string[]): string[] {
  const found: string[] = [];
  const visit = (p: string): void => {
    const st = statSync(p);
    if (!st.isDirectory()) {
      if (formatOfPath(p) && formatOfPath(p) !== 'dicom') found.push(p);
      return;
    }
    if (existsSync(join(p, 'index.json'))) {
      found.push(p);
      return;
    }
    const entries = readdirSync(p).sort();
    if (entries.some((e) => isDicomFile(join(p, e)))) found.push(p);
    for (const e of entries) {
      const q = join(p, e);
      if (statSync(q).isDirectory()) visit(q);
      else if (formatOfPath(q) && formatOfPath(q) !== 'dicom') found.push(q);
    }
  };
  for (const input of inputs) {
    if (!existsSync(input)) throw new InputError(input, 'no such file or folder');
    if (statSync(input).isFile() && input.toLowerCase().endsWith('.txt')) {
      // a list file: one path per line, relative to the list's folder
      for (const line of readFileSync(input, 'utf8').split(/\r?\n/)) {
        const t = line.trim();
        if (t && !t.startsWith('#')) visit(resolve(dirname(input), t));
      }
    } else visit(input);
  }
  return [...new Set(found)];
}

function isDicomFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    if (p.toLowerCase().endsWith('.dcm')) return true;
    const fd = openSync(p, 'r');
    try {
      const magic = Buffer.alloc(4);
      return readSync(fd, magic, 0, 4, 128) === 4 && magic.toString('latin1') === 'DICM';
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

export interface LoadOptions {
  spacingMm?: number;
  onCase?: (source: string, ok: boolean, reason: string) => void;
  signal?: AbortSignal;
}

/** Read and prepare every CT among the inputs; throws when none is usable. */
export async function loadTrainingSet(
  inputs: string[],
  options: LoadOptions = {},
): Promise<{ cases: TrainingCase[]; skipped: SkippedInput[] }> {
  const cases: TrainingCase[] = [];
  const skipped: SkippedInput[] = [];
  for (const source of findVolumeInputs(inputs)) {
    options.signal?.throwIfAborted();
    let reason: string;
    try {
      const v = await readVolume(source);
      const c = checkCt(v);
      if (c.ok) {
        cases.push({ source, ct: prepareCt(v, { spacingMm: options.spacingMm ?? 2 }) });
        options.onCase?.(source, true, c.reason);
        continue;
      }
      reason = `not CT in HU: ${c.reason}`;
    } catch (e) {
      reason = (e as Error).message;
    }
    skipped.push({ source, reason });
    options.onCase?.(source, false, reason);
  }
  if (cases.length === 0) throw new InputError(inputs.join(', '), 'no CT volume in HU found for training');
  return { cases, skipped };
}
