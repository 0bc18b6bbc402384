/**
 * Multi-frame files written here with dcmjs from the real Slicer CTHeadAxialDicom series:
 * an Enhanced CT image (Per-frame / Shared Functional Groups; frames stored in reverse order,
 * per-frame rescale), as Explicit VR, Implicit VR and RLE-compressed, and a legacy multi-frame
 * image (ImagePositionPatient + SpacingBetweenSlices). Each must read back equal to the series.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readDicomSeries } from '../../main/engine/volume/io/dicom/read-series.ts';
import type { Volume } from '../../main/engine/volume/volume.ts';
import { tempDir } from '../helpers.ts';
import { CTHEAD, filesOf, loadDicom, pixelsOf, rleEncode16, saveDicom, type DicomFile } from './dicom-fixtures.ts';

function sameVolume(got: Volume, want: Volume): void {
  assert.deepEqual(got.size, want.size);
  for (let a = 0; a < 3; a++) {
    assert.ok(Math.abs(got.spacing[a] - want.spacing[a]) < 1e-9, `spacing ${got.spacing} vs ${want.spacing}`);
    assert.ok(Math.abs(got.origin[a] - want.origin[a]) < 1e-9, `origin ${got.origin} vs ${want.origin}`);
  }
  assert.deepEqual(got.direction, want.direction);
  assert.equal(got.data.constructor, want.data.constructor);
  assert.deepEqual(Buffer.from(got.data.buffer), Buffer.from(want.data.buffer));
}

/** Patient/study/series attributes of the first file, without image-specific ones. */
function baseDataset(first: DicomFile, n: number): Record<string, unknown> {
  const ds: Record<string, unknown> = {};
  for (const k of [
    'PatientName',
    'PatientID',
    'StudyInstanceUID',
    'SeriesInstanceUID',
    'StudyDate',
    'Modality',
    'SeriesDescription',
    'FrameOfReferenceUID',
  ])
    if (first.ds[k] !== undefined) ds[k] = first.ds[k];
  return {
    ...ds,
    SOPInstanceUID: '2.25.1234567',
    NumberOfFrames: n,
    Rows: 64,
    Columns: 64,
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    BitsAllocated: 16,
    BitsStored: 16,
    HighBit: 15,
    PixelRepresentation: 1,
  };
}

test('Enhanced CT multi-frame (functional groups; explicit, implicit and RLE) reads equal to the series', async () => {
  const { dir, cleanup } = tempDir('sam-dicom-mf-');
  try {
    const series = await readDicomSeries(CTHEAD);
    const slices = filesOf(CTHEAD).map(loadDicom).reverse(); // stored out of order on purpose
    const first = slices[0];
    const frames = slices.map((s, f) => {
      const px = Int16Array.from(pixelsOf(s));
      const intercept = f % 2 ? 100 : 0; // per-frame rescale: stored = HU - intercept
      for (let n = 0; n < px.length; n++) px[n] -= intercept;
      return { px, intercept, ipp: s.ds.ImagePositionPatient };
    });
    const make = (name: string, ts: string, pixelData: ArrayBuffer[]) => {
      const meta = { ...first.meta, TransferSyntaxUID: ts, MediaStorageSOPClassUID: '1.2.840.10008.5.1.4.1.1.2.1' };
      const ds = {
        ...baseDataset(first, frames.length),
        SOPClassUID: '1.2.840.10008.5.1.4.1.1.2.1',
        ImageType: ['ORIGINAL', 'PRIMARY', 'AXIAL', 'NONE'],
        SharedFunctionalGroupsSequence: [
          {
            PlaneOrientationSequence: [{ ImageOrientationPatient: first.ds.ImageOrientationPatient }],
            PixelMeasuresSequence: [{ PixelSpacing: first.ds.PixelSpacing, SliceThickness: first.ds.SliceThickness }],
          },
        ],
        PerFrameFunctionalGroupsSequence: frames.map((fr, f) => ({
          FrameContentSequence: [{ InStackPositionNumber: frames.length - f }],
          PlanePositionSequence: [{ ImagePositionPatient: fr.ipp }],
          PixelValueTransformationSequence: [{ RescaleIntercept: fr.intercept, RescaleSlope: 1, RescaleType: 'HU' }],
        })),
        PixelData: pixelData,
        _vrMap: { PixelData: ts === '1.2.840.10008.1.2.5' ? 'OB' : 'OW' },
      };
      const p = join(dir, name);
      saveDicom(p, { meta, ds });
      return p;
    };
    const all = new Int16Array(frames.length * 4096);
    frames.forEach((fr, f) => all.set(fr.px, f * 4096));
    const explicit = make('explicit.dcm', '1.2.840.10008.1.2.1', [all.buffer]);
    const implicit = make('implicit.dcm', '1.2.840.10008.1.2', [all.buffer]);
    const rle = make(
      'rle.dcm',
      '1.2.840.10008.1.2.5',
      frames.map((fr) => rleEncode16(fr.px)),
    );
    for (const file of [explicit, implicit, rle]) {
      const v = await readDicomSeries(file);
      sameVolume(v, series);
      assert.equal(v.meta.modality, 'CT');
      assert.equal(v.meta.dicom!.attributes.PatientID, first.ds.PatientID);
      assert.equal(v.meta.dicom!.attributes.PerFrameFunctionalGroupsSequence, undefined);
    }
  } finally {
    cleanup();
  }
});

test('legacy multi-frame (ImagePositionPatient + SpacingBetweenSlices) reads equal to the series', async () => {
  const { dir, cleanup } = tempDir('sam-dicom-lmf-');
  try {
    const series = await readDicomSeries(CTHEAD);
    const slices = filesOf(CTHEAD).map(loadDicom);
    slices.sort((a, b) => (a.ds.ImagePositionPatient as number[])[2] - (b.ds.ImagePositionPatient as number[])[2]);
    const first = slices[0];
    const all = new Int16Array(slices.length * 4096);
    slices.forEach((s, f) => all.set(pixelsOf(s), f * 4096));
    const p = join(dir, 'legacy.dcm');
    saveDicom(p, {
      meta: { ...first.meta, TransferSyntaxUID: '1.2.840.10008.1.2.1' },
      ds: {
        ...baseDataset(first, slices.length),
        SOPClassUID: '1.2.840.10008.5.1.4.1.1.2',
        ImagePositionPatient: first.ds.ImagePositionPatient,
        ImageOrientationPatient: first.ds.ImageOrientationPatient,
        PixelSpacing: first.ds.PixelSpacing,
        SliceThickness: 1.5,
        SpacingBetweenSlices: 1.5,
        RescaleIntercept: 0,
        RescaleSlope: 1,
        PixelData: [all.buffer],
      },
    });
    sameVolume(await readDicomSeries(p), series);
  } finally {
    cleanup();
  }
});
