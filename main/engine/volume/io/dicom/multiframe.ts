/**
 * Frames of a multi-frame file:
 * - enhanced images (Enhanced CT/MR...): per-frame values from the Per-frame Functional Groups,
 *   else the Shared Functional Groups (PlanePosition, PlaneOrientation, PixelMeasures,
 *   PixelValueTransformation), else the top-level attributes;
 * - legacy multi-frame: ImagePositionPatient of the first frame, frames stacked along the slice
 *   normal by GridFrameOffsetVector, SpacingBetweenSlices or SliceThickness.
 */
import { VolumeReadError } from '../../../errors.ts';
import { add, cross, norm, scale } from '../../geometry.ts';
import type { Vec3 } from '../../volume.ts';
import { functionalGroup, getItems, getNumber, getNumbers } from './elements.ts';
import { classicFrameValues } from './frame-values.ts';
import type { DicomDataSet } from './parse.ts';
import { T } from './tags.ts';
import type { FileHeader, FrameInfo } from './types.ts';

export function isEnhanced(ds: DicomDataSet): boolean {
  return ds.elements.has(T.SharedFunctionalGroupsSequence) || ds.elements.has(T.PerFrameFunctionalGroupsSequence);
}

export function framesOfMultiFrame(ds: DicomDataSet, header: FileHeader, notes: string[]): FrameInfo[] {
  return isEnhanced(ds) ? enhancedFrames(ds, header, notes) : legacyFrames(ds, header, notes);
}

function enhancedFrames(ds: DicomDataSet, header: FileHeader, notes: string[]): FrameInfo[] {
  const n = header.numberOfFrames;
  const shared = getItems(ds, T.SharedFunctionalGroupsSequence)[0];
  const perFrame = getItems(ds, T.PerFrameFunctionalGroupsSequence);
  if (perFrame.length !== 0 && perFrame.length !== n)
    throw new VolumeReadError(header.file, `Per-frame Functional Groups has ${perFrame.length} items for ${n} frames`);
  const base = classicFrameValues(ds, notes);
  const frames: FrameInfo[] = [];
  for (let f = 0; f < n; f++) {
    const pf = perFrame[f];
    const pos = functionalGroup(pf, shared, T.PlanePositionSequence);
    const ori = functionalGroup(pf, shared, T.PlaneOrientationSequence);
    const meas = functionalGroup(pf, shared, T.PixelMeasuresSequence);
    const pvt = functionalGroup(pf, shared, T.PixelValueTransformationSequence);
    const ipp = pos ? getNumbers(pos, T.ImagePositionPatient) : [];
    const iop = ori ? getNumbers(ori, T.ImageOrientationPatient) : [];
    const ps = meas ? getNumbers(meas, T.PixelSpacing) : [];
    frames.push({
      header,
      frameIndex: f,
      ipp: ipp.length >= 3 ? (ipp.slice(0, 3) as Vec3) : base.ipp,
      iop: iop.length >= 6 ? iop.slice(0, 6) : base.iop,
      pixelSpacing: ps.length >= 2 ? [ps[0], ps[1]] : base.pixelSpacing,
      thickness: (meas && getNumber(meas, T.SliceThickness)) ?? base.thickness,
      spacingBetweenSlices: (meas && getNumber(meas, T.SpacingBetweenSlices)) ?? base.spacingBetweenSlices,
      slope: (pvt && getNumber(pvt, T.RescaleSlope)) ?? base.slope,
      intercept: (pvt && getNumber(pvt, T.RescaleIntercept)) ?? base.intercept,
    });
  }
  if (perFrame.length === 0 && n > 1 && frames.every((fr) => fr.ipp === base.ipp))
    return legacyFrames(ds, header, notes);
  return frames;
}

function legacyFrames(ds: DicomDataSet, header: FileHeader, notes: string[]): FrameInfo[] {
  const n = header.numberOfFrames;
  const base = classicFrameValues(ds, notes);
  let ipp = base.ipp;
  let iop = base.iop;
  if (!ipp || !iop) {
    notes.push(
      'multi-frame image without ImagePositionPatient/ImageOrientationPatient: frames placed at the origin with identity orientation',
    );
    ipp = ipp ?? [0, 0, 0];
    iop = iop ?? [1, 0, 0, 0, 1, 0];
  }
  const normal = cross([iop[0], iop[1], iop[2]], [iop[3], iop[4], iop[5]]);
  const nn = norm(normal);
  if (!(nn > 1e-6)) throw new VolumeReadError(header.file, `invalid ImageOrientationPatient ${iop.join('\\')}`);
  const unit = scale(normal, 1 / nn);
  let offsets: number[];
  const grid = getNumbers(ds, T.GridFrameOffsetVector);
  if (grid.length === n && grid.every(Number.isFinite)) {
    offsets = grid.map((g) => g - grid[0]);
  } else {
    let step = base.spacingBetweenSlices;
    if (step === null || !Number.isFinite(step) || step === 0) {
      step = base.thickness;
      if (step === null || !Number.isFinite(step) || step <= 0)
        throw new VolumeReadError(
          header.file,
          `multi-frame image with ${n} frames but no way to place them (no Per-frame Functional Groups, GridFrameOffsetVector, SpacingBetweenSlices or SliceThickness)`,
        );
      notes.push(`multi-frame image: frames assumed to be SliceThickness ${step} mm apart (no SpacingBetweenSlices)`);
    }
    const s = step;
    offsets = Array.from({ length: n }, (_, f) => f * s);
  }
  return offsets.map((o, f) => ({
    header,
    frameIndex: f,
    ...base,
    ipp: add(ipp, scale(unit, o)),
    iop,
  }));
}
