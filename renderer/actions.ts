/**
 * What the panels do: each action calls the engine through samApi() and updates the store.
 * Voxels are fetched once per volume (int16) and timed, so the transfer cost is visible.
 */
import type { SessionFile } from '../main/engine/workstation/types.ts';
import { samApi } from './api/client.ts';
import { heldVolumes, useApp } from './store/index.ts';
import type { LoadedVolume, Role } from './store/volumes.ts';
import { centreOf } from './views/view-geometry.ts';
import { releaseImagesExcept } from './views/images.ts';
import { adoptConfidence } from './confidence-actions.ts';

async function guarded<T>(what: string, f: () => Promise<T>): Promise<T | undefined> {
  const s = useApp.getState();
  s.setError(null);
  s.setBusy(what);
  try {
    return await f();
  } catch (e) {
    useApp.getState().setError(`${what}: ${(e as Error).message}`);
    return undefined;
  } finally {
    useApp.getState().setBusy(null);
  }
}

async function fetchLoaded(desc: LoadedVolume['desc']): Promise<LoadedVolume> {
  const t0 = performance.now();
  const voxels = await samApi().fetchVoxels(desc.id);
  const transfer = { bytes: voxels.byteLength, ms: performance.now() - t0 };
  console.info(`[sam] voxels of ${desc.id}: ${(transfer.bytes / 1e6).toFixed(1)} MB in ${transfer.ms.toFixed(0)} ms`);
  return { desc, voxels, transfer };
}

function cleanup(): void {
  const s = useApp.getState();
  releaseImagesExcept(heldVolumes(s).map((v) => v.desc.id));
}

export async function loadVolume(role: Role, path: string, series?: string): Promise<boolean> {
  const r = await guarded(`open ${role}`, async () => {
    const old = useApp.getState()[role];
    const desc = await samApi().openVolume(path, series);
    const loaded = await fetchLoaded(desc);
    const s = useApp.getState();
    s.setVolume(role, loaded);
    if (role === 'fixed') s.setCursor(centreOf(desc));
    if (role === 'fixed' || role === 'moving') {
      // a new fixed or moving image invalidates the old result
      s.setVolume('warped', null);
      if (s.overlay === 'warped') s.setOverlay('moving');
      s.finishRegistration({ status: 'idle', summary: null });
      // ... and the last export's line (it named the old pair's folder)
      s.setLastExport(null);
    }
    if (old) void samApi().closeVolume(old.desc.id);
    cleanup();
    return true;
  });
  return !!r;
}

export async function runRegistration(): Promise<void> {
  const s = useApp.getState();
  if (!s.fixed || !s.moving) return s.setError('open a fixed and a moving volume first');
  s.startRegistration();
  try {
    const summary = await samApi().register(
      {
        fixedId: s.fixed.desc.id,
        movingId: s.moving.desc.id,
        matcher: s.matcher,
        refine: s.refine,
        stages: s.stages,
        gridMm: s.gridMm,
      },
      (p) => useApp.getState().reportProgress(p),
    );
    // the engine's part ends here; what follows is fetching and displaying the result
    performance.mark('sam:registered');
    const warped = await fetchLoaded(summary.warped);
    const st = useApp.getState();
    st.setVolume('warped', warped);
    st.setOverlay('warped');
    st.finishRegistration({ status: 'done', summary });
    cleanup();
  } catch (e) {
    const err = e as Error;
    const cancelled = err.name === 'CancelledError' || /cancelled/.test(err.message);
    useApp.getState().finishRegistration({ status: cancelled ? 'cancelled' : 'error', error: err.message });
  }
}

export async function cancelRegistration(): Promise<void> {
  await samApi().cancelRegistration();
}

export async function exportTo(dir: string): Promise<void> {
  const signOff = useApp.getState().signOff ?? undefined;
  await guarded('export', async () => {
    // (a failed export must not leave the previous one's "N files in ..." beside its error)
    useApp.getState().setLastExport(null);
    useApp.getState().setLastExport(await samApi().exportResult(dir, signOff));
  });
}

export function currentSession(): SessionFile {
  const s = useApp.getState();
  return {
    format: 'sam-workstation-session',
    version: 1,
    savedAt: new Date().toISOString(),
    fixed: s.fixed ? { path: s.fixed.desc.path, series: s.fixed.desc.series } : undefined,
    moving: s.moving ? { path: s.moving.desc.path, series: s.moving.desc.series } : undefined,
    settings: {
      matcher: s.matcher,
      refine: s.refine,
      stages: s.stages,
      gridMm: s.gridMm,
      window: s.window,
      level: s.level,
      opacity: s.opacity,
    },
    results:
      s.summary || s.lastExport
        ? { exportDir: s.lastExport?.dir, qa: s.summary?.qa, affine: s.summary?.affine }
        : undefined,
    signOff: s.signOff ?? undefined,
  };
}

export async function saveSession(path: string): Promise<void> {
  await guarded('save session', async () => {
    const saved = await samApi().saveSession(path, currentSession());
    useApp.getState().setSessionPath(saved.path);
    useApp.getState().setSessionSaved(saved);
  });
}

/**
 * Reopens a session: settings, both inputs and, when it was exported, the result for review (the
 * engine reads the folder back: readout, field QA, maps, pairs, confidence and export work again).
 */
export async function openSession(path: string): Promise<void> {
  const session = await guarded('open session', () => samApi().openSession(path));
  if (!session) return;
  const s = useApp.getState();
  s.setSettings({
    matcher: session.settings.matcher,
    // a session saved before the refinement existed ran SAM alone
    refine: session.settings.refine ?? (session.settings.matcher === 'sam' ? 'none' : 'ncc'),
    stages: session.settings.stages,
    gridMm: session.settings.gridMm,
  });
  s.setWindowLevel(session.settings.window, session.settings.level);
  s.setOpacity(session.settings.opacity);
  s.setSessionPath(path);
  if (session.fixed) await loadVolume('fixed', session.fixed.path, session.fixed.series);
  if (session.moving) await loadVolume('moving', session.moving.path, session.moving.series);
  const dir = session.results?.exportDir;
  const { fixed, moving } = useApp.getState();
  if (dir && fixed && moving) {
    await guarded('open exported result', async () => {
      const summary = await samApi().openResult({ dir, fixedId: fixed.desc.id, movingId: moving.desc.id });
      const st = useApp.getState();
      st.setVolume('warped', await fetchLoaded(summary.warped));
      st.setOverlay('warped');
      st.finishRegistration({ status: 'done', summary });
      st.setLastExport({ dir, files: [], reopened: true });
      cleanup();
      // the confidence map the export stored comes back with it (engine: readStoredConfidence)
      if (summary.confidence) await adoptConfidence(summary.confidence, useApp.getState().summary);
      if (summary.confidenceNotRead)
        useApp.getState().setError(`stored confidence map not read: ${summary.confidenceNotRead}`);
    });
  }
  if (session.signOff) useApp.getState().setSignOff(session.signOff);
}
