/**
 * Writing a volume as a derived CT series: one file per slice, Explicit VR Little Endian, int16 with
 * RescaleSlope / RescaleIntercept (quantize.ts).
 *
 * Voxel order: the series is written in the index order closest to LPS (volume/reorient.ts: rows
 * towards the patient's left, columns towards posterior, slices towards superior), by permuting and
 * flipping index axes only, so every voxel keeps its world position and nothing is resampled. PACS
 * viewers show the stored pixel matrix as it is: a RAS-ordered NIfTI written as stored would show
 * mirrored against the radiological convention, and a sagittal volume would not be the AXIAL series
 * its ImageType says. Geometry: ImagePositionPatient of each slice, ImageOrientationPatient = the
 * written rows and columns, PixelSpacing, SpacingBetweenSlices = the slice spacing; SliceThickness =
 * the larger of the source scan's SliceThickness and the slice spacing (a 5 mm scan resampled onto
 * 1 mm slices is still 5 mm thick).
 *
 * Identity: patient and study attributes (de-identification ones included) are copied from
 * `source.meta.dicom.attributes` (or, without a source, from the volume's own meta.dicom), so the
 * series joins the same study; the frame of reference (FrameOfReferenceUID,
 * PositionReferenceIndicator) and PatientPosition are `frameOfReference`'s, the scan whose patient
 * coordinates the volume's positions are in (default the source; a new UID when that scan is not DICOM,
 * or belongs to another PatientID than the source: a frame of reference is one patient's): a moving scan
 * resampled onto the fixed grid lies in the fixed scan's frame, and labelling it with the moving's would
 * put it, and anything drawn on it, in the wrong place. WindowCenter/WindowWidth are the source's
 * (else soft tissue, 40 / 400 HU). The series and every instance get new UIDs (2.25.<uuid>).
 * ImageType is DERIVED\SECONDARY\AXIAL, Modality CT.
 *
 * Files are named <prefix>_<nnnn>.dcm after the new series; each is written atomically, nothing
 * existing is ever overwritten (the whole series is refused before anything is written), and a
 * failure part way removes the files already written.
 */
import { yieldToEventLoop } from '../../../util/yield.ts';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CancelledError, VolumeWriteError } from '../../../errors.ts';
import { bytesOf, writeFileAtomic } from '../../../util/atomic-write.ts';
import { inputFolderHolding } from '../../../util/paths.ts';
import { column, cross, dot, geometryProblem, indexToWorld } from '../../geometry.ts';
import { lpsAxisOrder, oldOffsets } from '../../reorient.ts';
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
  /** PatientID / PatientName (a DICOM person name, "Family^Given") in place of the source's. */
  patient?: { id?: string; name?: string };
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
  /** Decisions the caller should pass on to the user (e.g. a new frame of reference, and why). */
  notes: string[];
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
  'DeidentificationMethod',
  'DeidentificationMethodCodeSequence',
  'StudyInstanceUID',
  'StudyDate',
  'StudyTime',
  'StudyID',
  'AccessionNumber',
  'ReferringPhysicianName',
  'StudyDescription',
  'BodyPartExamined',
  'Laterality',
];

/** The first value of a (possibly multi-valued) numeric attribute, if it is a positive number. */
function firstPositive(v: unknown): number | undefined {
  const x = Number(Array.isArray(v) ? v[0] : v);
  return Number.isFinite(x) && x > 0 ? x : undefined;
}

/** A backslash (DICOM's value separator) or a control character: not allowed in an LO or PN value. */
function badChars(text: string): boolean {
  for (const c of text) if (c === '\\' || c.charCodeAt(0) < 32) return true;
  return false;
}

/** PatientID of a DICOM source, trimmed ('' when none). */
function patientId(a: Attributes): string {
  return typeof a.PatientID === 'string' ? a.PatientID.trim() : '';
}

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
  const pid = options.patient?.id;
  if (pid !== undefined && (pid.length > 64 || badChars(pid)))
    throw new VolumeWriteError(
      dir,
      `PatientID "${pid}" is not a DICOM LO value (at most 64 characters, no backslash or control character)`,
    );
  const pname = options.patient?.name;
  if (pname !== undefined && (pname.length > 64 * 5 || badChars(pname) || pname.split('^').length > 5))
    throw new VolumeWriteError(
      dir,
      `PatientName "${pname}" is not a DICOM person name (Family^Given^Middle^Prefix^Suffix)`,
    );
  const host = inputFolderHolding(dir, options.protect ?? []);
  if (host)
    throw new VolumeWriteError(
      dir,
      `is inside the input folder ${host}: the series would become part of that input (read with its subfolders); write it outside`,
    );
  const src: Attributes = (options.source ?? volume).meta.dicom?.attributes ?? {};
  let frame: Attributes = (options.frameOfReference ?? options.source ?? volume).meta.dicom?.attributes ?? {};
  const notes: string[] = [];
  if (frame !== src && patientId(frame) && patientId(src) && patientId(frame) !== patientId(src)) {
    notes.push(
      `the fixed scan is another patient's (PatientID ${patientId(frame)}, the moving scan's ${patientId(src)}): ` +
        "the series gets a frame of reference of its own, not the fixed scan's",
    );
    frame = {};
  } else if (frame !== src && frame.FrameOfReferenceUID && !patientId(frame) !== !patientId(src)) {
    // one scan names its patient and the other does not: nothing says they are the same patient
    const [named, unnamed] = patientId(frame) ? ['fixed', 'moving'] : ['moving', 'fixed'];
    notes.push(
      `the ${unnamed} scan has no PatientID (the ${named} scan's is ${patientId(frame) || patientId(src)}): ` +
        "nothing shows they are one patient, so the series gets a frame of reference of its own, not the fixed scan's",
    );
    frame = {};
  }
  const order = lpsAxisOrder(volume);
  const [ni, nj, nk] = order.size;
  if (ni > 65535 || nj > 65535)
    throw new VolumeWriteError(dir, `slices of ${ni}x${nj} are too large for DICOM (65535 at most)`);
  const seriesUid = newUid();
  const prefix = `CT_${seriesUid.slice(-8)}`;
  const files = Array.from({ length: nk }, (_, k) => join(dir, `${prefix}_${String(k + 1).padStart(4, '0')}.dcm`));
  for (const f of files) if (existsSync(f)) throw new VolumeWriteError(f, 'already exists: refusing to overwrite it');

  const q = chooseQuantization(volume.data);
  const row = column(order.direction, 0);
  const col = column(order.direction, 1);
  const normal = cross(row, col);
  const sliceSpacing = order.spacing[2];
  const thickness = Math.max(firstPositive(src.SliceThickness) ?? 0, sliceSpacing);
  const windowCenter = src.WindowCenter ?? '40';
  const windowWidth = src.WindowWidth ?? '400';
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
    PatientPosition: '',
    Laterality: '',
    ...Object.fromEntries(KEPT.filter((k) => src[k] !== undefined).map((k) => [k, src[k]])),
    ...(frame.FrameOfReferenceUID ? { FrameOfReferenceUID: frame.FrameOfReferenceUID } : {}),
    ...(frame.PositionReferenceIndicator !== undefined
      ? { PositionReferenceIndicator: frame.PositionReferenceIndicator }
      : {}),
    ...(frame.PatientPosition !== undefined ? { PatientPosition: frame.PatientPosition } : {}),
    ...(options.patient?.id !== undefined ? { PatientID: options.patient.id } : {}),
    ...(options.patient?.name !== undefined ? { PatientName: options.patient.name } : {}),
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
    PixelSpacing: [formatDS(order.spacing[1]), formatDS(order.spacing[0])],
    SliceThickness: formatDS(thickness),
    SpacingBetweenSlices: formatDS(sliceSpacing),
    WindowCenter: windowCenter,
    WindowWidth: windowWidth,
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
  // the slice's values in the written order (volume/reorient.ts), gathered from the volume's own
  const [offI, offJ, offK] = oldOffsets(volume, order);
  const values = new Float64Array(plane);
  const written: string[] = [];
  try {
    for (let k = 0; k < nk; k++) {
      if (options.signal?.aborted) throw new CancelledError('DICOM writing');
      const sop = newUid();
      const ipp = indexToWorld(order, [0, 0, k]);
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
      for (let j = 0, n = 0; j < nj; j++) {
        const base = offK[k] + offJ[j];
        for (let i = 0; i < ni; i++, n++) values[n] = volume.data[base + offI[i]];
      }
      quantize(values, 0, plane, q, pixels);
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
  return { files: written, seriesInstanceUid: seriesUid, notes };
}
