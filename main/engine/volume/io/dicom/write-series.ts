/**
 * Writing a volume as a derived CT series: one file per k slice, Explicit VR Little Endian,
 * int16 with RescaleSlope / RescaleIntercept (quantize.ts), geometry from the volume
 * (ImagePositionPatient of each slice, ImageOrientationPatient = index axes i and j,
 * PixelSpacing, SliceThickness = SpacingBetweenSlices = spacing k).
 *
 * Identity: patient and study attributes are copied from `source.meta.dicom.attributes` (or,
 * without a source, from the volume's own meta.dicom), so the series joins the same study; the
 * frame of reference (FrameOfReferenceUID, PositionReferenceIndicator) is `frameOfReference`'s, the
 * scan whose patient coordinates the volume's positions are in (default the source; a new UID when
 * that scan is not DICOM): a moving scan resampled onto the fixed grid lies in the fixed scan's
 * frame, and labelling it with the moving's would put it, and anything drawn on it, in the wrong
 * place. The series and every instance get new UIDs (2.25.<uuid>).
 * ImageType is DERIVED\SECONDARY\AXIAL, Modality CT.
 *
 * Files are named <prefix>_<nnnn>.dcm after the new series; each is written atomically, nothing
 * existing is ever overwritten (the whole series is refused before anything is written), and a
 * failure part way removes the files already written.
 * A volume whose direction is left-handed (det -1) is written as it is; a reader will sort its
 * slices along cross(row, column) and so index k the other way round.
 */
import { yieldToEventLoop } from '../../../util/yield.ts';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CancelledError, VolumeWriteError } from '../../../errors.ts';
import { bytesOf, writeFileAtomic } from '../../../util/atomic-write.ts';
import { inputFolderHolding } from '../../../util/paths.ts';
import { column, cross, dot, geometryProblem, indexToWorld } from '../../geometry.ts';
import type { Volume } from '../../volume.ts';
import { dcmjs, quietly, type Attributes } from './dcmjs.ts';
import { chooseQuantization, formatDS, quantize } from './quantize.ts';
import { EXPLICIT_VR_LE } from './transfer-syntax.ts';
import { newUid } from './uid.ts';

export interface DicomWriteOptions {
  /** The volume whose patient / study identity the series keeps. */
  source?: Volume;
  /**
   * The scan whose patient coordinate system the volume's positions are in (default `source`): its
   * FrameOfReferenceUID, or a new one when it is not DICOM.
   */
  frameOfReference?: Volume;
  /** What the series is, e.g. "CT registered to baseline (SAM affine+deformable)". */
  seriesDescription: string;
  /** Paths never to overwrite (the inputs). */
  protect?: string[];
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface DicomWriteResult {
  files: string[];
  seriesInstanceUid: string;
}

const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
const IMPLEMENTATION_CLASS_UID = '2.25.156945712083406446380235338245624171437';

/** Patient, study and equipment-context attributes carried over from the source. */
const KEPT = [
  'PatientName',
  'PatientID',
  'IssuerOfPatientID',
  'PatientBirthDate',
  'PatientSex',
  'PatientAge',
  'PatientSize',
  'PatientWeight',
  'OtherPatientIDs',
  'EthnicGroup',
  'PatientComments',
  'PatientIdentityRemoved',
  'StudyInstanceUID',
  'StudyDate',
  'StudyTime',
  'StudyID',
  'AccessionNumber',
  'ReferringPhysicianName',
  'StudyDescription',
  'BodyPartExamined',
  'PatientPosition',
];

function dateTime(d = new Date()): { date: string; time: string } {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return {
    date: `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}`,
    time: `${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`,
  };
}

/** The Pixel Data element (Explicit VR LE, OW) header for `length` bytes. */
function pixelDataHeader(length: number): Uint8Array {
  const h = new Uint8Array(12);
  const v = new DataView(h.buffer);
  v.setUint16(0, 0x7fe0, true);
  v.setUint16(2, 0x0010, true);
  h[4] = 0x4f; // 'O'
  h[5] = 0x57; // 'W'
  v.setUint32(8, length, true);
  return h;
}

export async function writeDicomSeries(
  dir: string,
  volume: Volume,
  options: DicomWriteOptions,
): Promise<DicomWriteResult> {
  const problem = geometryProblem(volume);
  if (problem) throw new VolumeWriteError(dir, `cannot write this volume as DICOM: ${problem}`);
  if (volume.components !== 1)
    throw new VolumeWriteError(dir, `cannot write a ${volume.components}-component volume as a CT series`);
  const [ni, nj, nk] = volume.size;
  if (ni > 65535 || nj > 65535)
    throw new VolumeWriteError(dir, `slices of ${ni}x${nj} are too large for DICOM (65535 at most)`);

  const host = inputFolderHolding(dir, options.protect ?? []);
  if (host)
    throw new VolumeWriteError(
      dir,
      `is inside the input folder ${host}: the series would become part of that input (read with its subfolders); write it outside`,
    );
  const src: Attributes = (options.source ?? volume).meta.dicom?.attributes ?? {};
  const frame: Attributes = (options.frameOfReference ?? options.source ?? volume).meta.dicom?.attributes ?? {};
  const seriesUid = newUid();
  const prefix = `CT_${seriesUid.slice(-8)}`;
  const files = Array.from({ length: nk }, (_, k) => join(dir, `${prefix}_${String(k + 1).padStart(4, '0')}.dcm`));
  for (const f of files) if (existsSync(f)) throw new VolumeWriteError(f, 'already exists: refusing to overwrite it');

  const q = chooseQuantization(volume.data);
  const row = column(volume.direction, 0);
  const col = column(volume.direction, 1);
  const normal = cross(row, col);
  const now = dateTime();
  const common: Attributes = {
    SpecificCharacterSet: 'ISO_IR 192',
    ImageType: ['DERIVED', 'SECONDARY', 'AXIAL'],
    SOPClassUID: CT_IMAGE_STORAGE,
    StudyDate: now.date,
    StudyTime: now.time,
    AccessionNumber: '',
    ReferringPhysicianName: '',
    StudyID: '',
    PatientName: '',
    PatientID: '',
    PatientBirthDate: '',
    PatientSex: '',
    PositionReferenceIndicator: '',
    ...Object.fromEntries(KEPT.filter((k) => src[k] !== undefined).map((k) => [k, src[k]])),
    ...(frame.FrameOfReferenceUID ? { FrameOfReferenceUID: frame.FrameOfReferenceUID } : {}),
    ...(frame.PositionReferenceIndicator !== undefined
      ? { PositionReferenceIndicator: frame.PositionReferenceIndicator }
      : {}),
    SeriesDate: now.date,
    SeriesTime: now.time,
    ContentDate: now.date,
    ContentTime: now.time,
    Modality: 'CT',
    Manufacturer: 'SAM workstation',
    SeriesDescription: options.seriesDescription,
    DerivationDescription: options.seriesDescription,
    SeriesInstanceUID: seriesUid,
    SeriesNumber: String((Number(src.SeriesNumber) || 0) + 1000),
    ImageOrientationPatient: [...row, ...col].map(formatDS),
    PixelSpacing: [formatDS(volume.spacing[1]), formatDS(volume.spacing[0])],
    SliceThickness: formatDS(volume.spacing[2]),
    SpacingBetweenSlices: formatDS(volume.spacing[2]),
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: nj,
    Columns: ni,
    BitsAllocated: 16,
    BitsStored: 16,
    HighBit: 15,
    PixelRepresentation: 1,
    RescaleIntercept: q.interceptText,
    RescaleSlope: q.slopeText,
    RescaleType: 'HU',
    KVP: '',
    AcquisitionNumber: '',
  };
  if (!common.StudyInstanceUID) common.StudyInstanceUID = newUid();
  if (!common.FrameOfReferenceUID) common.FrameOfReferenceUID = newUid();

  const lib = dcmjs();
  const plane = ni * nj;
  const pixels = new Int16Array(plane);
  const written: string[] = [];
  try {
    for (let k = 0; k < nk; k++) {
      if (options.signal?.aborted) throw new CancelledError('DICOM writing');
      const sop = newUid();
      const ipp = indexToWorld(volume, [0, 0, k]);
      const ds: Attributes = {
        ...common,
        SOPInstanceUID: sop,
        InstanceNumber: String(k + 1),
        ImagePositionPatient: ipp.map(formatDS),
        SliceLocation: formatDS(dot(ipp, normal)),
      };
      const meta = {
        FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
        MediaStorageSOPClassUID: CT_IMAGE_STORAGE,
        MediaStorageSOPInstanceUID: sop,
        TransferSyntaxUID: EXPLICIT_VR_LE,
        ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
        ImplementationVersionName: 'SAM_WS_0_1',
      };
      const header = quietly(() => {
        const dict = new lib.data.DicomDict(lib.data.DicomMetaDictionary.denaturalizeDataset(meta));
        dict.dict = lib.data.DicomMetaDictionary.denaturalizeDataset(ds);
        return new Uint8Array(dict.write());
      });
      quantize(volume.data, k * plane, plane, q, pixels);
      writeFileAtomic(files[k], [header, pixelDataHeader(plane * 2), bytesOf(pixels)], { protect: options.protect });
      written.push(files[k]);
      options.onProgress?.(k + 1, nk);
      if (k % 16 === 15) await yieldToEventLoop();
    }
  } catch (e) {
    for (const f of written) rmSync(f, { force: true });
    if (e instanceof VolumeWriteError || e instanceof CancelledError) throw e;
    throw new VolumeWriteError(
      dir,
      `could not write the DICOM series (${e instanceof Error ? e.message : String(e)})`,
      { cause: e },
    );
  }
  return { files: written, seriesInstanceUid: seriesUid };
}
