/**
 * What a registration result was made from, kept in its qa.json (`inputs`): each input's path, grid,
 * DICOM identity (series, frame of reference, study) and the tool's version, so that a result can be
 * traced to its scans, and a review against another moving scan than the one registered is refused
 * (the fixed one is caught by its grid: the field lies on it).
 */
import { resolve } from 'node:path';
import { InputError } from '../errors.ts';
import type { Volume } from '../volume/volume.ts';

export interface InputRecord {
  path: string;
  size: number[];
  spacing: number[];
  origin: number[];
  direction: number[];
  seriesInstanceUid?: string;
  frameOfReferenceUid?: string;
  studyInstanceUid?: string;
}

export function inputRecord(path: string, v: Volume): InputRecord {
  const a = (v.meta.dicom?.attributes ?? {}) as Record<string, unknown>;
  const str = (x: unknown) => (typeof x === 'string' && x ? x : undefined);
  return {
    path: resolve(path),
    size: [...v.size],
    spacing: [...v.spacing],
    origin: [...v.origin],
    direction: [...v.direction],
    seriesInstanceUid: str(v.meta.seriesInstanceUid) ?? str(a.SeriesInstanceUID),
    frameOfReferenceUid: str(a.FrameOfReferenceUID),
    studyInstanceUid: str(a.StudyInstanceUID),
  };
}

/**
 * Refuses a moving image whose grid is not the one recorded in a result's qa.json (another scan than
 * the one registered): its size, spacing (0.1 %), origin and axes (0.01 mm / 1e-4) must match.
 * A result without the record (written before it was kept) is not checked.
 */
export function checkRecordedMoving(qa: Record<string, unknown> | null, v: Volume, path: string): void {
  checkRecordedInput(qa, 'moving', v, path);
}

/** checkRecordedMoving for either input (sam transform-points checks its --fixed volume so). */
export function checkRecordedInput(
  qa: Record<string, unknown> | null,
  role: 'fixed' | 'moving',
  v: Volume,
  path: string,
): void {
  const r = (qa?.inputs as Record<string, Partial<InputRecord> | undefined> | undefined)?.[role];
  if (!r || !Array.isArray(r.size) || !Array.isArray(r.spacing) || !Array.isArray(r.origin)) return;
  const near = (a: readonly number[], b: readonly number[], tol: (x: number) => number) =>
    a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) <= tol(b[i]));
  const same =
    near(v.size, r.size, () => 0) &&
    near(v.spacing, r.spacing, (x) => 1e-3 * Math.abs(x)) &&
    near(v.origin, r.origin, () => 0.01) &&
    (!Array.isArray(r.direction) || near(v.direction, r.direction, () => 1e-4));
  if (!same)
    throw new InputError(
      path,
      `is not the ${role} image this result was registered with (${r.path ?? 'recorded'}: ${r.size.join('x')} voxels of ` +
        `${r.spacing.map((x) => +x.toFixed(3)).join('x')} mm at ${r.origin.map((x) => +x.toFixed(2)).join(', ')}; ` +
        `this one: ${v.size.join('x')} of ${v.spacing.map((x) => +x.toFixed(3)).join('x')} mm at ${v.origin.map((x) => +x.toFixed(2)).join(', ')})`,
    );
}
