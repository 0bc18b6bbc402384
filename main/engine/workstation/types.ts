/**
 * The workstation's operation types, shared by the engine side (Electron main, browser-mode server),
 * the preload bridge and the renderer. Type-only: no runtime code, no Node or DOM imports.
 */
import type { ConfidenceSummary } from '../review/confidence.ts';
import type { JacobianSummary } from '../review/field-stats.ts';
import type { QaFlag } from '../review/qa-flags.ts';
import type { TrackedPoint } from '../review/track-point.ts';

export type { OverlayGlyph, SliceOverlay } from '../review/slice-overlay.ts';

/** What the renderer needs to place and display a volume; the voxels travel separately (int16). */
export interface VolumeDescriptor {
  id: string;
  /** File or folder it was read from. */
  path: string;
  /** DICOM SeriesInstanceUID when a series was chosen. */
  series?: string;
  description?: string;
  size: [number, number, number];
  spacing: [number, number, number];
  origin: [number, number, number];
  /** Row-major 3x3; column c = world (LPS) direction of index axis c. */
  direction: number[];
  /** Orientation code of the index axes (e.g. LPS). */
  orientation: string;
  /** Voxel type of the source; the display copy is always int16 (HU, clamped). */
  voxelType: string;
  valueRange: [number, number];
  warnings: string[];
  /** Why registration will refuse it (not CT in HU: volume/intensity.ts checkCt), shown when it is opened; absent for a CT. */
  notCt?: string;
  /** Bytes of the int16 display copy (size product x 2). */
  displayBytes: number;
}

export interface SeriesChoice {
  seriesInstanceUid: string;
  description: string;
  slices: number;
  size: string;
}

export type Matcher = 'sam' | 'ncc';
/** SAM matcher: each match refined by NCC near it, or SAM's own locations (engine: register/ncc-refine.ts). */
export type Refine = 'ncc' | 'none';
export type StageName = 'affine' | 'coarse' | 'deform';

export interface RegisterRequest {
  fixedId: string;
  movingId: string;
  matcher: Matcher;
  /** SAM matcher's refinement (default 'ncc'). */
  refine?: Refine;
  stages: StageName[];
  /** Grid spacing of the matched points, mm. */
  gridMm: number;
}

export interface RegisterProgress {
  stage: string;
  done: number;
  total: number;
  /** Seconds since the registration started. */
  elapsed: number;
}

export interface RegisterSummary {
  /** The warped moving volume, on the fixed grid, ready to be fetched like any volume. */
  warped: VolumeDescriptor;
  affine: number[];
  qa: Record<string, unknown>;
  seconds: number;
  /** The affine stage's matched pairs (all of them, or only the kept ones when there are too many). */
  pairs?: AffinePair[];
  /** The affine fit's RMS residual over its inliers, mm. */
  affineRmsMm?: number;
  /** The SAM-coarse stage's kept pairs (when it ran), residuals after its smooth fit. */
  coarsePairs?: CoarsePairInfo[];
  /** Grid spacing of the matched points of this run, mm (the request's gridMm). */
  gridMm?: number;
  /** The result was read back from this folder (a reopened session); `seconds` is then the reading. */
  reopenedFrom?: string;
  /** A reopened result's confidence map, when its export had one (confidence.nii.gz + report.json). */
  confidence?: ConfidenceInfo;
  /** Why a reopened result's stored confidence map was not read (the rest of the result was). */
  confidenceNotRead?: string;
}

/** One kept point pair of the SAM-coarse stage (engine: register/sam-coarse.ts CoarsePair). */
export interface CoarsePairInfo {
  fixed: [number, number, number];
  moving: [number, number, number];
  score: number;
  /** |A p + v(p) - q| after the coarse fit, mm. */
  residualMm: number;
}

/** One matched point pair of the SAM-affine stage (engine: register/sam-affine.ts SamAffinePair). */
export interface AffinePair {
  /** The pair's index in the engine's list (what refitAffine's exclusions name). */
  index: number;
  fixed: [number, number, number];
  moving: [number, number, number];
  score: number;
  kept: boolean;
  residualMm: number;
  inlier: boolean;
}

/** An interactive refit of the affine without some pairs (engine: review/refit.ts); not applied. */
export interface AffineRefit {
  affine: number[];
  rmsMm: number;
  fitted: number;
  inliers: number;
  /** New residual and inlier flag per pair index (the same indices as RegisterSummary.pairs). */
  residuals: { index: number; residualMm: number; inlier: boolean; kept: boolean }[];
  histogram: { edgesMm: number[]; fitted: number[]; inliers: number[]; excluded: number[] };
  ms: number;
}

export interface ExportSummary {
  dir: string;
  files: string[];
  /** Where an earlier result in that folder was moved (register/previous-result.ts), if there was one. */
  previous?: string;
  /** The result was read back from this folder (a reopened session), not written now. */
  reopened?: boolean;
  /** Decisions the writer took that the user should hear of (e.g. the warped DICOM's new frame of reference). */
  notes?: string[];
}

export interface Capabilities {
  /** 'desktop' (Electron) or 'browser' (npm run web). */
  mode: 'desktop' | 'browser';
  /** Whether a trained SAM model is installed (resources/sam-small.samw); else only NCC, and no confidence map or point tracking. */
  samModel: boolean;
  defaultMatcher: Matcher;
  stages: StageName[];
  /** Browser mode: the folders it may read and write (the user cannot browse elsewhere). */
  dataRoots: string[];
  workRoot?: string;
}

/**
 * Reopening an exported result (a `sam register` / export folder) for review on the open fixed and
 * moving volumes: the engine answers as after a registration (RegisterSummary).
 */
export interface OpenResultRequest {
  dir: string;
  fixedId: string;
  movingId: string;
}

/** The session file: inputs, settings and results, enough to reopen the work. */
/** Where a session was saved, and whether an earlier session file there was replaced. */
export interface SessionSaved {
  path: string;
  replaced: boolean;
}

export interface SessionFile {
  format: 'sam-workstation-session';
  version: 1;
  savedAt: string;
  fixed?: { path: string; series?: string };
  moving?: { path: string; series?: string };
  settings: {
    matcher: Matcher;
    /** Absent in sessions saved before the refinement existed: then 'ncc'. */
    refine?: Refine;
    stages: StageName[];
    gridMm: number;
    window: number;
    level: number;
    opacity: number;
  };
  results?: { exportDir?: string; qa?: Record<string, unknown>; affine?: number[] };
  signOff?: SignOffRequest & { time: string };
}

/** The cursor readout of the last registration at one fixed voxel (engine: review/readout.ts). */
export interface CursorReadout {
  /** Fixed voxel (i, j, k) the point was snapped to, and its centre (LPS mm). */
  index: [number, number, number];
  point: [number, number, number];
  fixedHu: number;
  /** Warped HU at the voxel (the warped image on the fixed grid). */
  warpedHu: number | null;
  /** Moving HU at the mapped point x + u(x) (null outside the moving image). */
  movingHu: number | null;
  displacement: [number, number, number];
  jacobian: number;
  folded: boolean;
  samSimilarity: number | null;
}

/** Deformation QA of the last registration (engine: review/field-stats.ts). */
export interface FieldQa {
  jacobian: JacobianSummary;
  displacementMm: { mean: number; max: number };
  /** The Jacobian determinant map x1000 as an int16 volume on the fixed grid (fetch its voxels). */
  jacobianMap: VolumeDescriptor;
  /** The displacement magnitude |u| in tenths of a mm (|u| x 10) as an int16 volume on the fixed grid. */
  magnitudeMap: VolumeDescriptor;
}

/**
 * What sliceOverlay asks for: the slice of a view through a world point, glyphs and grid lines every
 * `every` voxels; the answer (SliceOverlay, engine: review/slice-overlay.ts) is in world LPS mm.
 */
export interface SliceOverlayRequest {
  orientation: 'axial' | 'coronal' | 'sagittal';
  point: [number, number, number];
  every: number;
  /** The slice index the view shows (along the plane's index axis of the fixed grid); wins over point. */
  slice?: number;
}

/** The reviewer's decision, stored in the session and written into the export's report. */
export interface SignOffRequest {
  decision: 'approved' | 'rejected';
  comment: string;
  reviewer: string;
}

/** Progress of the review's background work (SAM embeddings of both images, confidence map). */
export interface ReviewProgress {
  stage: string;
  done: number;
  total: number;
}

/** The confidence map of the last registration (engine: review/confidence.ts) and the QA flags. */
export interface ConfidenceInfo {
  summary: ConfidenceSummary;
  /** Local SAM similarity x1000 on the fixed grid, int16; -32768 where undefined (fetch its voxels). */
  map: VolumeDescriptor;
  /** Verdict of the QA rules (review/qa-flags.ts) on the confidence and the Jacobian statistics. */
  flags: QaFlag[];
  /** Seconds per step (embeddings are computed once per registration). */
  seconds: Record<string, number>;
}

/** A label map of the fixed image (any grid) for per-organ confidence summaries, and its label names. */
export interface ConfidenceLabels {
  path: string;
  /** JSON {"1": "spleen"}, lines '1,spleen', or a TotalSegmentator statistics.json (review/label-names.ts). */
  namesPath?: string;
}

/** A fixed point tracked into the moving image (engine: review/track-point.ts). */
export type TrackedPointInfo = TrackedPoint;
