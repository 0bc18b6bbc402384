/**
 * One client interface for the renderer. In the desktop app the preload bridge implements it
 * (window.sam); the browser mode will implement the same interface over its local socket.
 */
import type { VolumeSummary } from '../../main/engine/volume/describe.ts';

export interface SamApi {
  /** Native file/folder dialog; null when cancelled. */
  pickVolume(): Promise<string | null>;
  /** Read a volume and return its summary (geometry, values, modality). */
  volumeInfo(path: string): Promise<VolumeSummary>;
}

declare global {
  interface Window {
    sam?: SamApi;
  }
}

export function samApi(): SamApi {
  if (!window.sam) throw new Error('the engine bridge is not available in this window');
  return window.sam;
}
