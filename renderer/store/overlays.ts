/**
 * Store slice: the review overlays drawn over the views: the flicker and spyglass comparison settings
 * (rate, phase, lens radius), the affine pairs' markers (with the refit whose residuals colour them
 * and the selected pair), the field's arrow glyphs and deformed grid lines (their spacing on screen),
 * and the displacement magnitude map (an int16 volume, |u| x 10, toggled like the Jacobian map).
 */
import type { StateCreator } from 'zustand';
import type { AffineRefit } from '../../main/engine/workstation/types.ts';
import type { AppState } from './index.ts';
import type { LoadedVolume } from './volumes.ts';

export interface OverlaysSlice {
  /** Flicker rate: full fixed-warped cycles per second. */
  flickerHz: number;
  /** Flicker phase: whether the warped image is the one shown now. */
  flickerWarped: boolean;
  /** Spyglass lens radius, screen px. */
  spyglassPx: number;
  showPairs: boolean;
  /** The SAM-coarse stage's kept pairs (squares; the coarse stage's slab is a quarter of the grid). */
  showCoarsePairs: boolean;
  showGlyphs: boolean;
  showGrid: boolean;
  /** Wanted spacing of glyphs and grid lines on screen, px. */
  glyphSpacingPx: number;
  showMagnitude: boolean;
  magnitude: LoadedVolume | null;
  /** The last refit of the affine (its residuals colour the pair markers). */
  refit: AffineRefit | null;
  selectedPair: number | null;
  setFlickerHz(hz: number): void;
  setFlickerWarped(on: boolean): void;
  setSpyglassPx(px: number): void;
  setShowPairs(on: boolean): void;
  setShowCoarsePairs(on: boolean): void;
  setShowGlyphs(on: boolean): void;
  setShowGrid(on: boolean): void;
  setGlyphSpacingPx(px: number): void;
  setMagnitude(v: LoadedVolume | null): void;
  setRefit(r: AffineRefit | null): void;
  setSelectedPair(index: number | null): void;
}

const clamp = (x: number, lo: number, hi: number, fallback: number) =>
  Number.isFinite(x) ? Math.min(hi, Math.max(lo, x)) : fallback;

export const overlaysSlice: StateCreator<AppState, [], [], OverlaysSlice> = (set) => ({
  flickerHz: 1,
  flickerWarped: false,
  spyglassPx: 60,
  showPairs: false,
  showCoarsePairs: false,
  showGlyphs: false,
  showGrid: false,
  glyphSpacingPx: 28,
  showMagnitude: false,
  magnitude: null,
  refit: null,
  selectedPair: null,
  setFlickerHz: (hz) => set({ flickerHz: clamp(hz, 0.5, 4, 1) }),
  setFlickerWarped: (flickerWarped) => set({ flickerWarped }),
  setSpyglassPx: (px) => set({ spyglassPx: Math.round(clamp(px, 10, 300, 60)) }),
  setShowPairs: (showPairs) => set({ showPairs }),
  setShowCoarsePairs: (showCoarsePairs) => set({ showCoarsePairs }),
  setShowGlyphs: (showGlyphs) => set({ showGlyphs }),
  setShowGrid: (showGrid) => set({ showGrid }),
  setGlyphSpacingPx: (px) => set({ glyphSpacingPx: Math.round(clamp(px, 8, 200, 28)) }),
  setMagnitude: (magnitude) => set({ magnitude }),
  setRefit: (refit) => set({ refit }),
  setSelectedPair: (selectedPair) => set({ selectedPair }),
});
