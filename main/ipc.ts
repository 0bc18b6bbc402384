/**
 * IPC handlers: one typed handler per engine operation, with the sender checked. With index.ts the
 * only code that imports 'electron'.
 */
import { dialog, ipcMain, type BrowserWindow, type IpcMainInvokeEvent } from 'electron';
import * as api from './engine/api.ts';

/** Only our own renderer (file:// in production, the dev server in development) may call. */
function checkSender(e: IpcMainInvokeEvent): void {
  const url = e.senderFrame?.url ?? '';
  const devUrl = process.env.ELECTRON_RENDERER_URL;
  if (!(url.startsWith('file://') || (devUrl && url.startsWith(devUrl))))
    throw new Error(`IPC call from an unexpected origin: ${url}`);
}

export function registerIpc(window: () => BrowserWindow | null): void {
  ipcMain.handle('volume:pick', async (e) => {
    checkSender(e);
    const w = window();
    const opts: Electron.OpenDialogOptions = {
      title: 'Open a CT volume',
      properties: ['openFile', 'openDirectory'],
      filters: [{ name: 'CT volumes', extensions: ['nii', 'gz', 'mha', 'mhd', 'vti', 'nrrd', 'nhdr', 'dcm'] }],
    };
    const r = w ? await dialog.showOpenDialog(w, opts) : await dialog.showOpenDialog(opts);
    return r.canceled ? null : r.filePaths[0];
  });
  ipcMain.handle('volume:info', async (e, path: unknown) => {
    checkSender(e);
    if (typeof path !== 'string') throw new Error('volume:info expects a path');
    return api.volumeInfo(path);
  });
}
