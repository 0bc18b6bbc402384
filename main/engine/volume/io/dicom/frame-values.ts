/**
 * Geometry and rescale values of an image as its top-level attributes give them (classic
 * single-frame images; fallbacks for multi-frame ones). Values are returned unchecked:
 * geometry.ts validates them with the file names at hand.
 */
import type { Vec3 } from '../../volume.ts';
import { getNumber, getNumbers } from './elements.ts';
import type { DicomDataSet } from './parse.ts';
import { T } from './tags.ts';
import type { FrameInfo } from './types.ts';

function vec(v: number[], n: number): number[] | null {
  return v.length >= n ? v.slice(0, n) : null;
}

/** Geometry and rescale of a classic (single-frame) image, also used as multi-frame fallback. */
export function classicFrameValues(ds: DicomDataSet, notes: string[]): Omit<FrameInfo, 'header' | 'frameIndex'> {
  let ps = getNumbers(ds, T.PixelSpacing);
  if (ps.length === 0) {
    ps = getNumbers(ds, T.ImagerPixelSpacing);
    if (ps.length > 0) notes.push('no PixelSpacing: ImagerPixelSpacing used for the pixel size');
  }
  return {
    ipp: vec(getNumbers(ds, T.ImagePositionPatient), 3) as Vec3 | null,
    iop: vec(getNumbers(ds, T.ImageOrientationPatient), 6),
    pixelSpacing: ps.length >= 2 ? [ps[0], ps[1]] : ps.length === 1 ? [ps[0], ps[0]] : null,
    thickness: getNumber(ds, T.SliceThickness) ?? null,
    spacingBetweenSlices: getNumber(ds, T.SpacingBetweenSlices) ?? null,
    slope: getNumber(ds, T.RescaleSlope) ?? 1,
    intercept: getNumber(ds, T.RescaleIntercept) ?? 0,
  };
}
