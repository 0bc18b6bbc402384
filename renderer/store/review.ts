/**
 * Store slice: the review tools: fixed/warped comparison mode (blend, checkerboard, difference) and
 * its composite volume, the engine's cursor readout, the field QA with the Jacobian map overlay, and
 * the reviewer's sign-off (kept in the session and written into the export's report).
 */
import type { StateCreator } from 'zustand';
import type { CursorReadout, FieldQa, SignOffRequest } from '../../main/engine/workstation/types.ts';
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
  setCompare(mode: CompareMode): void;
  setCheckerSize(n: number): void;
  setComposite(v: LoadedVolume | null): void;
  setReadout(r: CursorReadout | null): void;
  setFieldQa(qa: FieldQa | null, jacobian: LoadedVolume | null): void;
  setShowJacobian(on: boolean): void;
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
  setCompare: (compare) => set({ compare }),
  setCheckerSize: (n) => set({ checkerSize: Math.max(1, Math.min(256, Math.round(n) || 1)) }),
  setComposite: (composite) => set({ composite }),
  setReadout: (readout) => set({ readout }),
  setFieldQa: (fieldQa, jacobian) => set({ fieldQa, jacobian }),
  setShowJacobian: (showJacobian) => set({ showJacobian }),
  setSignOff: (signOff) => set({ signOff }),
});
