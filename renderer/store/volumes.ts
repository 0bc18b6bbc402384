/** Store slice: the loaded volumes (fixed, moving, warped) with their int16 voxels and transfer cost. */
import type { StateCreator } from 'zustand';
import type { VolumeDescriptor } from '../../main/engine/workstation/types.ts';
import type { AppState } from './index.ts';

export type Role = 'fixed' | 'moving' | 'warped';

export interface LoadedVolume {
  desc: VolumeDescriptor;
  voxels: Int16Array;
  /** How the voxels reached the renderer: bytes and milliseconds of the one transfer. */
  transfer: { bytes: number; ms: number };
}

export interface VolumesSlice {
  fixed: LoadedVolume | null;
  moving: LoadedVolume | null;
  warped: LoadedVolume | null;
  setVolume(role: Role, v: LoadedVolume | null): void;
}

export const volumesSlice: StateCreator<AppState, [], [], VolumesSlice> = (set) => ({
  fixed: null,
  moving: null,
  warped: null,
  setVolume: (role, v) => set({ [role]: v } as Partial<VolumesSlice>),
});
