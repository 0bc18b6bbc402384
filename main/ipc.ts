/**
 * IPC handlers: one typed handler per workstation operation (the same operations and argument
 * checks as the browser mode, main/server/rpc.ts), each with the sender checked, plus the native
 * dialogs. With index.ts and utility-runner.ts the only code that imports 'electron'.
 */
import { dialog, ipcMain, type BrowserWindow, type IpcMainInvokeEvent } from 'electron';
import type { Workstation } from './engine/workstation/workstation.ts';
import { operations } from './server/rpc.ts';

/** The renderer's page (index.ts sets it): in production its file:// URL, in development the dev server's. */
let rendererUrl = '';
export function setRendererUrl(url: string): void {
  rendererUrl = url;
}

/** Only our own renderer page may call: that exact file (not any file://), or the dev server. */
function checkSender(e: IpcMainInvokeEvent): void {
  const url = (e.senderFrame?.url ?? '').replace(/[?#].*$/, '');
  const devUrl = process.env.ELECTRON_RENDERER_URL;
  if (!((rendererUrl && url === rendererUrl) || (devUrl && url.startsWith(devUrl))))
    throw new Error(`IPC call from an unexpected origin: ${url}`);
}

export type PickKind = 'volume' | 'dicom-folder' | 'export-folder' | 'session-open' | 'session-save';

export async function pick(w: BrowserWindow | null, kind: PickKind): Promise<string | null> {
  if (kind === 'session-save') {
    const opts: Electron.SaveDialogOptions = {
      title: 'Save session',
      filters: [{ name: 'Session', extensions: ['json'] }],
    };
    const r = w ? await dialog.showSaveDialog(w, opts) : await dialog.showSaveDialog(opts);
    return r.canceled || !r.filePath ? null : r.filePath;
  }
  const opts: Electron.OpenDialogOptions =
    kind === 'volume'
      ? {
          title: 'Open a CT volume',
          properties: ['openFile'],
          filters: [{ name: 'CT volumes', extensions: ['nii', 'gz', 'mha', 'mhd', 'vti', 'nrrd', 'nhdr', 'dcm'] }],
        }
      : kind === 'session-open'
        ? { title: 'Open session', properties: ['openFile'], filters: [{ name: 'Session', extensions: ['json'] }] }
        : {
            title: kind === 'dicom-folder' ? 'Open a DICOM folder' : 'Export into folder',
            properties: kind === 'export-folder' ? ['openDirectory', 'createDirectory'] : ['openDirectory'],
          };
  const r = w ? await dialog.showOpenDialog(w, opts) : await dialog.showOpenDialog(opts);
  return r.canceled ? null : (r.filePaths[0] ?? null);
}

export function registerIpc(window: () => BrowserWindow | null, workstation: Workstation): void {
  const ops = operations(workstation, (event: string, data: unknown) =>
    window()?.webContents.send(`sam:${event}`, data),
  );
  const handle = (channel: string, f: (...args: unknown[]) => unknown) =>
    ipcMain.handle(channel, (e, ...args: unknown[]) => {
      checkSender(e);
      return f(...args);
    });
  handle('sam:capabilities', ops.capabilities);
  handle('sam:pick-path', (kind) => pick(window(), kind as PickKind));
  handle('sam:list-series', ops.listSeries);
  handle('sam:open-volume', ops.openVolume);
  handle('sam:close-volume', ops.closeVolume);
  handle('sam:voxels', (id) => {
    if (typeof id !== 'string') throw new Error('sam:voxels expects a volume id');
    const v = workstation.voxels(id);
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  });
  handle('sam:register', ops.register);
  handle('sam:cancel-registration', ops.cancelRegistration);
  handle('sam:export', ops.exportResult);
  handle('sam:readout', ops.readout);
  handle('sam:field-qa', ops.fieldQa);
  handle('sam:refit-affine', ops.refitAffine);
  handle('sam:confidence', ops.confidence);
  handle('sam:track-point', ops.trackPoint);
  handle('sam:slice-overlay', ops.sliceOverlay);
  handle('sam:save-session', ops.saveSession);
  handle('sam:open-session', ops.openSession);
  handle('sam:open-result', ops.openResult);
}
