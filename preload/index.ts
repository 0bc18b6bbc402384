/**
 * The renderer's only door to the engine: a narrow typed API, one function per operation
 * (no generic invoke). Mirrors renderer/api/client.ts.
 */
import { contextBridge, ipcRenderer } from 'electron';
import type { SamApi } from '../renderer/api/client.ts';

const api: SamApi = {
  pickVolume: () => ipcRenderer.invoke('volume:pick'),
  volumeInfo: (path: string) => ipcRenderer.invoke('volume:info', path),
};

contextBridge.exposeInMainWorld('sam', api);
