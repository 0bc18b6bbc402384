/**
 * Electron entry: the window, the menu and the IPC wiring. The engine it calls is plain Node code
 * under main/engine, shared with the CLI, the browser mode and the tests; registrations run in a
 * utilityProcess (utility-runner.ts), so the main process and the window never block on them.
 */
import { app, BrowserWindow, dialog, Menu, shell, type MenuItemConstructorOptions } from 'electron';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pick, registerIpc, setRendererUrl, type PickKind } from './ipc.ts';
import { openPolicy } from './engine/workstation/path-policy.ts';
import { Workstation } from './engine/workstation/workstation.ts';
import { utilityRunner } from './utility-runner.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const rendererIndex = join(here, '../renderer/index.html');
let mainWindow: BrowserWindow | null = null;
let workstation: Workstation | null = null;

// one app at a time: a second launch focuses the first window (each would hold GBs of volumes)
if (!app.requestSingleInstanceLock()) app.quit();
app.on('second-instance', () => {
  if (!mainWindow) return;
  if (mainWindow.isMinimized()) mainWindow.restore();
  mainWindow.focus();
});

function createWindow(): void {
  mainWindow = new BrowserWindow({
    width: 1400,
    height: 900,
    title: 'SAM Registration Workstation',
    webPreferences: {
      // sandboxed preloads must be CommonJS (see electron.vite.config.ts)
      preload: join(here, '../preload/index.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
    },
  });
  // External web links open in the user's browser, never inside the app; nothing else is opened
  // (openExternal on file:, smb: or a custom protocol could start a program)
  mainWindow.webContents.setWindowOpenHandler(({ url }) => {
    if (/^https:\/\//i.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  mainWindow.webContents.on('will-navigate', (e) => e.preventDefault());
  if (process.env.ELECTRON_RENDERER_URL) void mainWindow.loadURL(process.env.ELECTRON_RENDERER_URL);
  else void mainWindow.loadFile(rendererIndex);
  mainWindow.on('closed', () => (mainWindow = null));
}

/** Menu actions: a native dialog, then the renderer does the rest (the same code as its buttons). */
type MenuAction = 'open-fixed' | 'open-moving' | 'export' | 'session-save' | 'session-open';

function menuItem(label: string, action: MenuAction, kind: PickKind, accelerator?: string): MenuItemConstructorOptions {
  return {
    label,
    accelerator,
    click: async () => {
      const path = await pick(mainWindow, kind);
      if (!path) return;
      // macOS keeps the app running with no window: open one, then hand it the action once loaded
      if (!mainWindow) {
        createWindow();
        const w = mainWindow as BrowserWindow | null;
        w?.webContents.once('did-finish-load', () => w.webContents.send('sam:menu', { action, path }));
      } else mainWindow.webContents.send('sam:menu', { action, path });
    },
  };
}

function buildMenu(): void {
  Menu.setApplicationMenu(
    Menu.buildFromTemplate([
      ...(process.platform === 'darwin' ? [{ role: 'appMenu' as const }] : []),
      {
        label: 'File',
        submenu: [
          menuItem('Open fixed volume…', 'open-fixed', 'volume', 'CmdOrCtrl+O'),
          menuItem('Open fixed DICOM folder…', 'open-fixed', 'dicom-folder'),
          menuItem('Open moving volume…', 'open-moving', 'volume', 'CmdOrCtrl+Shift+O'),
          menuItem('Open moving DICOM folder…', 'open-moving', 'dicom-folder'),
          { type: 'separator' },
          menuItem('Export result into folder…', 'export', 'export-folder', 'CmdOrCtrl+E'),
          menuItem('Save session…', 'session-save', 'session-save', 'CmdOrCtrl+S'),
          menuItem('Open session…', 'session-open', 'session-open'),
          { type: 'separator' },
          { role: process.platform === 'darwin' ? 'close' : 'quit' },
        ],
      },
      { role: 'editMenu' },
      { role: 'viewMenu' },
      { role: 'windowMenu' },
    ]),
  );
}

void app.whenReady().then(() => {
  // The model ships in extraResources (electron-builder.yml); in development it is ./resources.
  const resources = app.isPackaged ? join(process.resourcesPath, 'resources') : join(here, '../../resources');
  setRendererUrl(pathToFileURL(rendererIndex).href);
  workstation = new Workstation({
    mode: 'desktop',
    policy: openPolicy,
    startWorker: utilityRunner(here),
    modelPath: process.env.SAM_MODEL || join(resources, 'sam-small.samw'),
  });
  registerIpc(() => mainWindow, workstation);
  buildMenu();
  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
});

// quitting during a registration asks first; the worker is ended either way
app.on('before-quit', (e) => {
  if (workstation?.registering()) {
    const choice = dialog.showMessageBoxSync({
      type: 'question',
      buttons: ['Keep running', 'Quit'],
      defaultId: 0,
      cancelId: 0,
      message: 'A registration is running. Quit and lose it?',
    });
    if (choice === 0) return e.preventDefault();
  }
  workstation?.dispose();
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});
