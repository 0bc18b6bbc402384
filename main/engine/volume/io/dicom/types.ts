/**
 * Types shared by the DICOM reader's modules: what one file's header says (FileHeader), what
 * each frame (slice) of it is (FrameInfo), and the options and summaries of the public API.
 */
import type { Vec3 } from '../../volume.ts';
import type { PixelDataLocation } from './parse.ts';
import type { TransferSyntax } from './transfer-syntax.ts';

export interface DicomReadOptions {
  /** Which series to read when the input holds several (see listDicomSeries). */
  seriesUid?: string;
  /** Interpolate across missing slices (with a warning) instead of refusing the series. */
  allowGaps?: boolean;
  /** Called as the reading progresses: done of total steps (files scanned, then slices read). */
  onProgress?: (done: number, total: number) => void;
  /** Aborting it makes the reader throw CancelledError. */
  signal?: AbortSignal;
}

/** One series found in a folder, for choosing (UI, `sam info`) and for error messages. */
export interface DicomSeriesSummary {
  seriesInstanceUid: string;
  description: string;
  modality: string;
  /** Number of slices (frames) in the series. */
  sliceCount: number;
  fileCount: number;
  seriesNumber?: number;
  studyInstanceUid?: string;
  rows: number;
  columns: number;
  transferSyntaxUid: string;
  /** One file of the series (for reading its details). */
  firstFile: string;
}

export interface PixelFormat {
  rows: number;
  columns: number;
  bitsAllocated: 8 | 16 | 32;
  bitsStored: number;
  highBit: number;
  /** 0 unsigned, 1 two's complement. */
  pixelRepresentation: 0 | 1;
  photometric: string;
}

/** Geometry and value transform of one frame (a slice) as the header gives them, unchecked. */
export interface FrameInfo {
  header: FileHeader;
  /** Index of the frame in its file (0 for single-frame files). */
  frameIndex: number;
  ipp: Vec3 | null;
  /** Row cosine then column cosine. */
  iop: number[] | null;
  /** DICOM order: [spacing between rows (along a column), spacing between columns (along a row)]. */
  pixelSpacing: [number, number] | null;
  thickness: number | null;
  spacingBetweenSlices: number | null;
  slope: number;
  intercept: number;
}

export interface FileHeader {
  file: string;
  fileSize: number;
  syntax: TransferSyntax;
  pixel: PixelDataLocation;
  /** Offsets in `pixel` refer to the inflated data set (Deflated transfer syntax). */
  deflated: boolean;
  seriesUid: string;
  sopInstanceUid: string;
  studyUid?: string;
  frameOfReferenceUid?: string;
  modality: string;
  description: string;
  seriesNumber?: number;
  instanceNumber?: number;
  gantryTilt?: number;
  /** ImageType values, upper case (e.g. ORIGINAL, PRIMARY, AXIAL / LOCALIZER). */
  imageType: string[];
  format: PixelFormat;
  numberOfFrames: number;
  frames: FrameInfo[];
  /** Notes about this file's header (e.g. a fallback spacing) for Volume.meta.warnings. */
  notes: string[];
}
