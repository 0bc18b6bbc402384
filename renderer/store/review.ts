/**
 * Store slice: the review tools: fixed/warped comparison mode (blend, checkerboard, difference) and
 * its composite volume, the engine's cursor readout, the field QA with the Jacobian map overlay, and
 * the reviewer's sign-off (kept in the session and written into the export's report), the SAM
 * confidence map with its overlay and QA flags, and point tracking.
 */
import type { StateCreator } from 'zustand';
import type {
  ConfidenceInfo,
  CursorReadout,
  FieldQa,
  ReviewProgress,
  SignOffRequest,
  TrackedPointInfo,
} from '../../main/engine/workstation/types.ts';
import type { CompareMode } from '../views/composite.ts';
import type { AppState } from './index.ts';
import type { LoadedVolume } from './volumes.ts';

export interface ReviewSlice {
  compare: CompareMode;
  /** Checkerboard tile size, voxels. */
  checkerSize: number;
  /** The checkerboard or difference volume shown instead of fixed + overlay (null in blend mode). */
  composite: LoadedVolume | null;
  readout: CursorReadout | null;
  fieldQa: FieldQa | null;
  jacobian: LoadedVolume | null;
  showJacobian: boolean;
  signOff: (SignOffRequest & { time: string }) | null;
  /** The SAM confidence map of the result and its state (computed by the engine in the background). */
  confidence: ConfidenceInfo | null;
  confidenceMap: LoadedVolume | null;
  confidenceStatus: 'idle' | 'running' | 'done' | 'error';
  confidenceProgress: ReviewProgress | null;
  showConfidence: boolean;
  /** Point tracking: on = a double-click also tracks the point into the moving image. */
  trackMode: boolean;
  tracked: TrackedPointInfo | null;
  /** A point is being tracked (the first one also embeds both images: seconds). */
  tracking: boolean;
  setConfidence(
    s: Partial<Pick<ReviewSlice, 'confidence' | 'confidenceMap' | 'confidenceStatus' | 'confidenceProgress'>>,
  ): void;
  setTrack(s: Partial<Pick<ReviewSlice, 'trackMode' | 'tracked' | 'tracking'>>): void;
  /**
   * The map shown in the views' overlay layer: the Jacobian, the |u| or the confidence map, or none.
   * They share the layer, so turning one on turns the others off (one place decides it).
   */
  showMap(map: 'jacobian' | 'magnitude' | 'confidence' | null): void;
  setCompare(mode: CompareMode): void;
  setCheckerSize(n: number): void;
  setComposite(v: LoadedVolume | null): void;
  setReadout(r: CursorReadout | null): void;
  setFieldQa(qa: FieldQa | null, jacobian: LoadedVolume | null): void;
  setSignOff(s: ReviewSlice['signOff']): void;
}

export const reviewSlice: StateCreator<AppState, [], [], ReviewSlice> = (set) => ({
  compare: 'blend',
  checkerSize: 16,
  composite: null,
  readout: null,
  fieldQa: null,
  jacobian: null,
  showJacobian: false,
  signOff: null,
  confidence: null,
  confidenceMap: null,
  confidenceStatus: 'idle',
  confidenceProgress: null,
  showConfidence: false,
  trackMode: false,
  tracked: null,
  tracking: false,
  setConfidence: (c) => set(c),
  setTrack: (t) => set(t),
  showMap: (map) =>
    set({ showJacobian: map === 'jacobian', showMagnitude: map === 'magnitude', showConfidence: map === 'confidence' }),
  setCompare: (compare) => set({ compare }),
  setCheckerSize: (n) => set({ checkerSize: Math.max(1, Math.min(256, Math.round(n) || 1)) }),
  setComposite: (composite) => set({ composite }),
  setReadout: (readout) => set({ readout }),
  setFieldQa: (fieldQa, jacobian) => set({ fieldQa, jacobian }),
  setSignOff: (signOff) => set({ signOff }),
});
