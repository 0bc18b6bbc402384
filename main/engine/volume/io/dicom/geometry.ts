/**
 * Slice geometry of a series: checks every frame's orientation, size and pixel spacing, sorts
 * the frames along the slice normal (cross(row, column) of ImageOrientationPatient), and
 * computes the regular grid of the volume. When the slices are not on a regular grid (gantry
 * tilt, uneven spacing, missing slices with allowGaps) it also returns what resample.ts needs to
 * bring them onto one, with a warning; missing slices without allowGaps are refused.
 *
 * Conventions: i runs along a row (spacing PixelSpacing[1]), j down the columns (PixelSpacing[0]),
 * k along the normal; origin = ImagePositionPatient of the first sorted slice.
 */
import { VolumeReadError } from '../../../errors.ts';
import { cross, dot, fromColumns, norm, orthonormalize, scale, sub } from '../../geometry.ts';
import type { Mat3, Vec3 } from '../../volume.ts';
import type { FrameInfo } from './types.ts';

export interface Resampling {
  /** Position of each (sorted) input slice along the normal, relative to the first (mm). */
  inputZ: number[];
  /** In-plane offset of each input slice from the first, in pixels along i and j. */
  shiftI: number[];
  shiftJ: number[];
  /** Position of each output slice along the normal, relative to the first input (mm). */
  outputZ: number[];
}

export interface SeriesGrid {
  /** Frames in slice order (duplicates removed). */
  frames: FrameInfo[];
  size: Vec3;
  spacing: Vec3;
  origin: Vec3;
  direction: Mat3;
  resampling: Resampling | null;
  warnings: string[];
}

const fmt = (x: number, d = 3): string => String(+x.toFixed(d));

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function unitOrFail(v: Vec3, what: string, file: string): Vec3 {
  const n = norm(v);
  if (!Number.isFinite(n) || n < 0.5 || n > 1.5)
    throw new VolumeReadError(
      file,
      `invalid ImageOrientationPatient: ${what} cosine ${v.join('\\')} is not a unit vector`,
    );
  return scale(v, 1 / n);
}

function checkSpacing(ps: [number, number], file: string): void {
  if (!ps.every((x) => Number.isFinite(x) && x > 0))
    throw new VolumeReadError(file, `invalid PixelSpacing ${ps.join('\\')} (must be positive numbers)`);
}

export function seriesGrid(input: FrameInfo[], label: string, allowGaps: boolean): SeriesGrid {
  const warnings: string[] = [];
  const first = input[0];
  const { rows, columns } = first.header.format;
  for (const f of input) {
    const fr = f.header.format;
    if (fr.rows !== rows || fr.columns !== columns)
      throw new VolumeReadError(
        f.header.file,
        `slice size ${fr.columns}x${fr.rows} differs from ${columns}x${rows} of ${first.header.file} in the same series`,
      );
  }
  // Pixel spacing: the same for every frame.
  let ps = first.pixelSpacing;
  if (ps) checkSpacing(ps, first.header.file);
  else {
    ps = [1, 1];
    warnings.push('no PixelSpacing: 1 mm pixels assumed');
  }
  for (const f of input) {
    if (!f.pixelSpacing) continue;
    checkSpacing(f.pixelSpacing, f.header.file);
    if (Math.abs(f.pixelSpacing[0] - ps[0]) > 1e-3 * ps[0] || Math.abs(f.pixelSpacing[1] - ps[1]) > 1e-3 * ps[1])
      throw new VolumeReadError(
        f.header.file,
        `PixelSpacing ${f.pixelSpacing.join('\\')} differs from ${ps.join('\\')} of ${first.header.file} in the same series`,
      );
  }
  const si = ps[1];
  const sj = ps[0];

  if (input.length === 1) return singleSlice(first, ps, warnings);

  // Orientation: present, orthonormal and the same everywhere.
  for (const f of input) {
    if (!f.ipp || !f.ipp.every(Number.isFinite))
      throw new VolumeReadError(
        f.header.file,
        'missing or invalid ImagePositionPatient (0020,0032): cannot place the slice',
      );
    if (!f.iop || !f.iop.every(Number.isFinite))
      throw new VolumeReadError(
        f.header.file,
        'missing or invalid ImageOrientationPatient (0020,0037): cannot orient the slice',
      );
  }
  const iop0 = first.iop!;
  const row = unitOrFail([iop0[0], iop0[1], iop0[2]], 'row', first.header.file);
  const col = unitOrFail([iop0[3], iop0[4], iop0[5]], 'column', first.header.file);
  if (Math.abs(dot(row, col)) > 1e-3)
    throw new VolumeReadError(
      first.header.file,
      `invalid ImageOrientationPatient ${iop0.join('\\')}: row and column are not perpendicular`,
    );
  for (const f of input) {
    if (f.iop!.some((x, n) => Math.abs(x - iop0[n]) > 1e-3))
      throw new VolumeReadError(
        label,
        `slices of the series have different orientations: ${f.header.file} has ImageOrientationPatient ${f.iop!.join('\\')}, ${first.header.file} has ${iop0.join('\\')}`,
      );
  }
  const direction = orthonormalize(fromColumns(row, col, cross(row, col)));
  const r: Vec3 = [direction[0], direction[3], direction[6]];
  const c: Vec3 = [direction[1], direction[4], direction[7]];
  const normal: Vec3 = [direction[2], direction[5], direction[8]];

  // Sort along the normal; drop exact duplicates (the same instance twice).
  const keyed = input.map((f, n) => ({ f, z: dot(f.ipp!, normal), n }));
  keyed.sort((a, b) => a.z - b.z || a.n - b.n);
  const sorted: typeof keyed = [];
  let duplicates = 0;
  for (const e of keyed) {
    const prev = sorted[sorted.length - 1];
    if (prev && Math.abs(e.z - prev.z) < 1e-3) {
      const same =
        prev.f.header.sopInstanceUid !== '' &&
        prev.f.header.sopInstanceUid === e.f.header.sopInstanceUid &&
        prev.f.frameIndex === e.f.frameIndex;
      if (same) {
        duplicates++;
        continue;
      }
      throw new VolumeReadError(
        label,
        `two slices at the same position (${fmt(e.z)} mm along the slice normal): ${prev.f.header.file}${prev.f.header.numberOfFrames > 1 ? ` frame ${prev.f.frameIndex + 1}` : ''} and ${e.f.header.file}${e.f.header.numberOfFrames > 1 ? ` frame ${e.f.frameIndex + 1}` : ''}; the series seems to hold several volumes (time phases, acquisitions or stacks), which is not supported`,
      );
    }
    sorted.push(e);
  }
  if (duplicates) warnings.push(`${duplicates} duplicate slice(s) (same SOP instance) ignored`);
  const frames = sorted.map((e) => e.f);
  if (frames.length === 1) return singleSlice(frames[0], ps, warnings);

  const n = frames.length;
  const origin = [...frames[0].ipp!] as Vec3;
  const inputZ = sorted.map((e) => e.z - sorted[0].z);
  const steps = inputZ.slice(1).map((z, s) => z - inputZ[s]);
  const range = inputZ[n - 1];
  const mean = range / (n - 1);
  const shiftI = frames.map((f) => dot(sub(f.ipp!, origin), r) / si);
  const shiftJ = frames.map((f) => dot(sub(f.ipp!, origin), c) / sj);
  const maxShiftMm = Math.max(...frames.map((_, s) => Math.hypot(shiftI[s] * si, shiftJ[s] * sj)));
  const tilted = maxShiftMm > Math.max(0.01, 0.1 * Math.min(si, sj));
  const minStep = Math.min(...steps);
  const maxStep = Math.max(...steps);
  // Uneven: a slice lies off the regular grid by more than a tenth of the spacing (sub-voxel
  // deviations, e.g. positions rounded in the header, are used as they are, with a note).
  const offGrid = Math.max(...inputZ.map((z, s) => Math.abs(z - s * mean)));
  let uneven = offGrid > Math.max(0.01, 0.1 * mean);
  if (!uneven && offGrid > 0.01)
    warnings.push(
      `slice positions deviate by up to ${fmt(offGrid)} mm from a regular ${fmt(mean, 4)} mm grid: read as regular`,
    );

  // Missing slices: a step much larger than the typical steps on both sides of it.
  const gaps: number[] = [];
  for (let s = 0; s < steps.length; s++) {
    const left = steps.slice(Math.max(0, s - 3), s);
    const right = steps.slice(s + 1, s + 4);
    const ref = Math.max(left.length ? median(left) : 0, right.length ? median(right) : 0);
    if (ref > 0 && steps[s] > 1.5 * ref) gaps.push(s);
  }
  if (gaps.length && !allowGaps) {
    const s = gaps[0];
    throw new VolumeReadError(
      label,
      `slices appear to be missing: the slice positions jump by ${fmt(steps[s])} mm (typical spacing ${fmt(median(steps))} mm) between ${fmt(sorted[s].z)} mm (${frames[s].header.file}) and ${fmt(sorted[s + 1].z)} mm (${frames[s + 1].header.file}) along the slice normal${gaps.length > 1 ? `, and at ${gaps.length - 1} more place(s)` : ''}; --allow-gaps (info, convert, register, match, train) interpolates across it`,
    );
  }

  if (gaps.length) uneven = true;
  let nk = n;
  let spacingK = mean;
  if (uneven) {
    // As dcm2niix: the smallest step, at most twice as many slices as were acquired.
    nk = Math.min(Math.round(range / minStep) + 1, 2 * n);
    spacingK = range / (nk - 1);
  }
  const size: Vec3 = [columns, rows, nk];
  const spacing: Vec3 = [si, sj, spacingK];
  if (!tilted && !uneven) return { frames, size, spacing, origin, direction, resampling: null, warnings };

  if (tilted) {
    const angle = (Math.atan2(Math.hypot(shiftI[n - 1] * si, shiftJ[n - 1] * sj), range) * 180) / Math.PI;
    warnings.push(
      `gantry tilt ${angle.toFixed(1)} degrees corrected by resampling onto a regular grid (each slice shifted in-plane by bilinear interpolation, linear interpolation between slices)`,
    );
  }
  if (gaps.length)
    warnings.push(
      `missing slices interpolated (allowGaps): ${gaps.map((s) => `${fmt(steps[s])} mm gap after ${fmt(sorted[s].z)} mm`).join(', ')}`,
    );
  if (uneven)
    warnings.push(
      `uneven slice spacing (${fmt(minStep)} to ${fmt(maxStep)} mm between slices) resampled to a regular ${fmt(spacingK, 4)} mm grid by linear interpolation between slices`,
    );
  const outputZ = Array.from({ length: nk }, (_, k) => (k === nk - 1 ? range : k * spacingK));
  return { frames, size, spacing, origin, direction, resampling: { inputZ, shiftI, shiftJ, outputZ }, warnings };
}

/** One slice: a volume with nk = 1 and slice spacing = SliceThickness (or 1 mm), with a warning. */
function singleSlice(f: FrameInfo, ps: [number, number], warnings: string[]): SeriesGrid {
  const { rows, columns } = f.header.format;
  let origin: Vec3 = [0, 0, 0];
  let direction: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  if (f.ipp && f.ipp.every(Number.isFinite)) origin = [...f.ipp] as Vec3;
  else warnings.push('no ImagePositionPatient: slice placed at the origin');
  if (f.iop && f.iop.every(Number.isFinite)) {
    const row = unitOrFail([f.iop[0], f.iop[1], f.iop[2]], 'row', f.header.file);
    const col = unitOrFail([f.iop[3], f.iop[4], f.iop[5]], 'column', f.header.file);
    if (Math.abs(dot(row, col)) > 1e-3)
      throw new VolumeReadError(
        f.header.file,
        `invalid ImageOrientationPatient ${f.iop.join('\\')}: row and column are not perpendicular`,
      );
    direction = orthonormalize(fromColumns(row, col, cross(row, col)));
  } else warnings.push('no ImageOrientationPatient: identity orientation assumed');
  let dk: number;
  let why: string;
  if (f.thickness !== null && Number.isFinite(f.thickness) && f.thickness > 0) {
    dk = f.thickness;
    why = `SliceThickness ${fmt(dk)} mm`;
  } else if (f.spacingBetweenSlices !== null && Number.isFinite(f.spacingBetweenSlices) && f.spacingBetweenSlices > 0) {
    dk = f.spacingBetweenSlices;
    why = `SpacingBetweenSlices ${fmt(dk)} mm`;
  } else {
    dk = 1;
    why = '1 mm (no SliceThickness)';
  }
  warnings.push(`single slice: read as a volume one slice thick, slice spacing set to ${why}`);
  return {
    frames: [f],
    size: [columns, rows, 1],
    spacing: [ps[1], ps[0], dk],
    origin,
    direction,
    resampling: null,
    warnings,
  };
}
