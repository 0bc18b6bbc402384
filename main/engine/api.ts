/**
 * The operations the product offers, typed once. The Electron IPC handlers, the browser-mode
 * server, the CLI and the tests all call these; nothing here imports Electron or the DOM.
 */
import { readVolume, type ReadOptions } from './volume/io/index.ts';
import { summarizeVolume, type VolumeSummary } from './volume/describe.ts';
import { listDicomSeries } from './volume/io/dicom/read-series.ts';

export type { VolumeSummary };

/** Read a volume (file, DICOM folder or list of DICOM files) and summarise it. */
export async function volumeInfo(input: string | string[], options: ReadOptions = {}): Promise<VolumeSummary> {
  return summarizeVolume(await readVolume(input, options));
}

export { readVolume, listDicomSeries };

// ---- registration review (issue #7): the numbers behind the review tools ----
export { voxelReadout, type VoxelReadout, type ReadoutInputs } from './review/readout.ts';
export {
  confidenceMap,
  confidenceGrid,
  summarizeConfidence,
  DEFAULT_CONFIDENCE_THRESHOLD,
  type ConfidenceResult,
  type ConfidenceSummary,
  type RegionSummary,
} from './review/confidence.ts';
export {
  fieldStatistics,
  arrowGlyphs,
  deformedGridLines,
  type FieldStatistics,
  type SliceGlyphs,
  type DeformedGrid,
} from './review/field-stats.ts';
export { refitAffine, residualHistogram, type RefitResult, type RefitOptions } from './review/refit.ts';
export { trackPoint, trackPoints, type TrackedPoint, type TrackOptions } from './review/track-point.ts';
export {
  makeSignOff,
  renderReportHtml,
  writeReviewReport,
  sliceImage,
  checkerboardImage,
  flaggedOverlayImage,
  keyImages,
  type SignOff,
  type ReviewReport,
} from './review/report.ts';
export { reviewRegistration, type ReviewInputs, type ReviewOutput } from './review/review.ts';
export { readRegistrationResult, parsePairsCsv, type RegistrationResult } from './review/result-dir.ts';
export { parseLabelNames } from './review/label-names.ts';
export { slicePlane, type Orientation, type SlicePlane } from './review/slice-plane.ts';
export { sliceOverlay, sliceThrough, type SliceOverlay, type OverlayGlyph } from './review/slice-overlay.ts';
export { ReviewSession, openReviewSession, type OpenReviewOptions } from './review/session.ts';

/** The workstation (desktop app and browser mode): loaded volumes, registration worker, export, sessions. */
export { Workstation } from './workstation/workstation.ts';
export type * from './workstation/types.ts';
