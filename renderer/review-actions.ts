/**
 * The review tools' actions: keeps the comparison composite (checkerboard / difference) in step
 * with the fixed and warped volumes, the mode and the tile size; asks the engine for the cursor
 * readout and the field QA (fetching the Jacobian and displacement magnitude maps once); records the
 * sign-off.
 */
import type { SignOffRequest } from '../main/engine/workstation/types.ts';
import { samApi } from './api/client.ts';
import { heldVolumes, useApp, type AppState } from './store/index.ts';
import type { LoadedVolume } from './store/volumes.ts';
import { compositeVoxels, isComposite } from './views/composite.ts';
import { releaseImagesExcept } from './views/images.ts';
import type { Vec3 } from './store/view.ts';

/** Frees vtk images of volumes no longer shown (after the views have switched to the new ones). */
export function releaseLater(): void {
  setTimeout(() => {
    releaseImagesExcept(heldVolumes(useApp.getState()).map((v) => v.desc.id));
  }, 0);
}

function updateComposite(s: AppState): void {
  const { fixed, warped } = s;
  if (!isComposite(s.compare) || !fixed || !warped || fixed.voxels.length !== warped.voxels.length) {
    if (s.composite) {
      s.setComposite(null);
      releaseLater();
    }
    return;
  }
  const t0 = performance.now();
  const voxels = compositeVoxels(s.compare, fixed.voxels, warped.voxels, fixed.desc.size, s.checkerSize)!;
  const ms = performance.now() - t0;
  console.info(`[sam] ${s.compare} composite of ${fixed.voxels.length} voxels in ${ms.toFixed(0)} ms`);
  const id = `${fixed.desc.id}+${warped.desc.id}:${s.compare}:${s.checkerSize}`;
  s.setComposite({ desc: { ...fixed.desc, id }, voxels, transfer: { bytes: 0, ms } });
  releaseLater();
}

useApp.subscribe((s, p) => {
  if (s.fixed !== p.fixed || s.warped !== p.warped) {
    // a new result (or none): its readout, QA, overlay and sign-off no longer apply
    if (
      s.readout ||
      s.fieldQa ||
      s.signOff ||
      s.magnitude ||
      s.confidence ||
      s.confidenceStatus !== 'idle' ||
      s.tracked
    ) {
      s.setReadout(null);
      s.setFieldQa(null, null);
      s.showMap(null);
      s.setMagnitude(null);
      s.setSignOff(null);
      s.setConfidence({ confidence: null, confidenceMap: null, confidenceStatus: 'idle', confidenceProgress: null });
      s.setTrack({ tracked: null });
      releaseLater();
    }
  }
  if (s.summary !== p.summary && (s.refit || s.selectedPair !== null)) {
    s.setRefit(null);
    s.setSelectedPair(null);
  }
  if (s.fixed !== p.fixed || s.warped !== p.warped || s.compare !== p.compare || s.checkerSize !== p.checkerSize)
    updateComposite(useApp.getState());
  if (s.summary && s.summary !== p.summary) void loadFieldQa();
});

/**
 * Whether the warped volume shown is the engine's last result (a registration, or an exported result
 * the engine read back when a session was reopened).
 */
export function reviewable(s: AppState): boolean {
  return !!s.summary && !!s.warped && s.summary.warped.id === s.warped.desc.id;
}

/** The engine's readout at a world point (after a double-click); only for the engine's last result. */
export async function readoutAt(point: Vec3): Promise<void> {
  if (!reviewable(useApp.getState())) return;
  try {
    useApp.getState().setReadout(await samApi().readout(point));
  } catch (e) {
    useApp.getState().setError(`readout: ${(e as Error).message}`);
  }
}

export async function loadFieldQa(): Promise<void> {
  try {
    const qa = await samApi().fieldQa();
    const t0 = performance.now();
    const voxels = await samApi().fetchVoxels(qa.jacobianMap.id);
    const jac: LoadedVolume = {
      desc: qa.jacobianMap,
      voxels,
      transfer: { bytes: voxels.byteLength, ms: performance.now() - t0 },
    };
    const t1 = performance.now();
    const mag = await samApi().fetchVoxels(qa.magnitudeMap.id);
    const magnitude: LoadedVolume = {
      desc: qa.magnitudeMap,
      voxels: mag,
      transfer: { bytes: mag.byteLength, ms: performance.now() - t1 },
    };
    useApp.getState().setFieldQa(qa, jac);
    useApp.getState().setMagnitude(magnitude);
  } catch (e) {
    useApp.getState().setError(`field QA: ${(e as Error).message}`);
  }
}

export function signOff(decision: SignOffRequest['decision'], comment: string, reviewer: string): void {
  const s = useApp.getState();
  if (!reviewer.trim()) return s.setError('sign-off: name the reviewer');
  if (decision === 'rejected' && !comment.trim()) return s.setError('sign-off: a rejection needs a comment saying why');
  s.setError(null);
  s.setSignOff({ decision, comment: comment.trim(), reviewer: reviewer.trim(), time: new Date().toISOString() });
}
