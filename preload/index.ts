/**
 * The renderer's only door to the engine: a narrow typed API, one function per operation (no generic
 * invoke), implementing renderer/api/client.ts's SamApi over IPC. Registration progress arrives on
 * one event channel while a registration runs.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import type { MenuCommand, SamApi } from '../renderer/api/client.ts';
import type { RegisterProgress, ReviewProgress } from '../main/engine/workstation/types.ts';

const api: SamApi = {
  capabilities: () => ipcRenderer.invoke('sam:capabilities'),
  pickPath: (kind) => ipcRenderer.invoke('sam:pick-path', kind),
  listSeries: (path) => ipcRenderer.invoke('sam:list-series', path),
  openVolume: (path, series) => ipcRenderer.invoke('sam:open-volume', path, series),
  closeVolume: (id) => ipcRenderer.invoke('sam:close-volume', id),
  async fetchVoxels(id) {
    // One structured-clone transfer of the int16 display copy (a Uint8Array view of it).
    const bytes: Uint8Array = await ipcRenderer.invoke('sam:voxels', id);
    const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
    return new Int16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
  },
  async register(req, onProgress) {
    const listener = (_e: IpcRendererEvent, p: RegisterProgress) => onProgress(p);
    ipcRenderer.on('sam:register-progress', listener);
    try {
      return await ipcRenderer.invoke('sam:register', req);
    } finally {
      ipcRenderer.off('sam:register-progress', listener);
    }
  },
  cancelRegistration: () => ipcRenderer.invoke('sam:cancel-registration'),
  exportResult: (dir, signOff) => ipcRenderer.invoke('sam:export', dir, signOff),
  readout: (point) => ipcRenderer.invoke('sam:readout', point),
  fieldQa: () => ipcRenderer.invoke('sam:field-qa'),
  refitAffine: (excluded) => ipcRenderer.invoke('sam:refit-affine', excluded),
  onReviewProgress(listener) {
    const l = (_e: IpcRendererEvent, p: ReviewProgress) => listener(p);
    ipcRenderer.on('sam:review-progress', l);
    return () => void ipcRenderer.off('sam:review-progress', l);
  },
  confidence: (labels) => ipcRenderer.invoke('sam:confidence', labels),
  trackPoint: (point) => ipcRenderer.invoke('sam:track-point', point),
  sliceOverlay: (req) => ipcRenderer.invoke('sam:slice-overlay', req),
  saveSession: (path, s) => ipcRenderer.invoke('sam:save-session', path, s),
  openSession: (path) => ipcRenderer.invoke('sam:open-session', path),
  openResult: (req) => ipcRenderer.invoke('sam:open-result', req),
  onMenu(listener) {
    const l = (_e: IpcRendererEvent, m: MenuCommand) => listener(m);
    ipcRenderer.on('sam:menu', l);
    return () => void ipcRenderer.off('sam:menu', l);
  },
};

contextBridge.exposeInMainWorld('sam', api);
