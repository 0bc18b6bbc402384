/** Store slice: what the three linked views show (cursor in world LPS mm, window/level, overlay). */
import type { StateCreator } from 'zustand';
import type { AppState } from './index.ts';

export type Vec3 = [number, number, number];

export const PRESETS = {
  lung: { window: 1500, level: -600 },
  'soft tissue': { window: 400, level: 40 },
  bone: { window: 1800, level: 400 },
} as const;
export type PresetName = keyof typeof PRESETS;

export interface ViewSlice {
  /** The linked cursor: each view shows the slice through it. */
  cursor: Vec3;
  window: number;
  level: number;
  /** Which volume is blended over the fixed one. */
  overlay: 'none' | 'moving' | 'warped';
  opacity: number;
  setCursor(c: Vec3): void;
  setWindowLevel(window: number, level: number): void;
  setOverlay(o: ViewSlice['overlay']): void;
  setOpacity(o: number): void;
}

export const viewSlice: StateCreator<AppState, [], [], ViewSlice> = (set) => ({
  cursor: [0, 0, 0],
  window: PRESETS.lung.window,
  level: PRESETS.lung.level,
  overlay: 'moving',
  opacity: 0.5,
  setCursor: (cursor) => set({ cursor }),
  setWindowLevel: (window, level) => set({ window: Math.max(1, window), level }),
  setOverlay: (overlay) => set({ overlay }),
  setOpacity: (opacity) => set({ opacity: Math.min(1, Math.max(0, opacity)) }),
});
