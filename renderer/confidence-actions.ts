/**
 * The review's SAM tools: the confidence map (asked of the engine, which embeds both images once per
 * result in its worker; progress shown; the map fetched as an int16 volume and its no-data value
 * moved next to the scale, color-maps.ts CONFIDENCE_HOLE) and point tracking (a double-click in
 * tracking mode sends the fixed point to the engine and keeps its match on the moving image).
 */
import { CONFIDENCE_NO_DATA } from '../main/engine/workstation/register-protocol.ts';
import type { ConfidenceInfo, ConfidenceLabels, RegisterSummary } from '../main/engine/workstation/types.ts';
import { samApi } from './api/client.ts';
import { releaseLater, reviewable } from './review-actions.ts';
import { useApp } from './store/index.ts';
import type { Vec3 } from './store/view.ts';
import { CONFIDENCE_HOLE } from './views/color-maps.ts';

/** Asks for the confidence map (with a label map for per-organ summaries when given). */
export async function computeConfidence(labels?: ConfidenceLabels): Promise<void> {
  const s = useApp.getState();
  if (!reviewable(s) || s.confidenceStatus === 'running') return;
  const summary = s.summary;
  s.setConfidence({ confidenceStatus: 'running', confidenceProgress: null });
  const off = samApi().onReviewProgress((p) => useApp.getState().setConfidence({ confidenceProgress: p }));
  try {
    const info = await samApi().confidence(labels);
    if (!(await adoptConfidence(info, summary))) return; // another result meanwhile
    useApp.getState().showMap('confidence');
    releaseLater(); // a recomputed map replaces the previous one
  } catch (e) {
    if (useApp.getState().summary !== summary) return;
    useApp.getState().setConfidence({ confidenceStatus: 'error', confidenceProgress: null });
    useApp.getState().setError(`confidence map: ${(e as Error).message}`);
  } finally {
    off();
  }
}

/**
 * Fetches a confidence map's voxels and makes it the shown result's (computed now, or stored with a
 * reopened result); false when another result replaced `summary` meanwhile.
 */
export async function adoptConfidence(info: ConfidenceInfo, summary: RegisterSummary | null): Promise<boolean> {
  const t0 = performance.now();
  const voxels = await samApi().fetchVoxels(info.map.id);
  for (let n = 0; n < voxels.length; n++) if (voxels[n] === CONFIDENCE_NO_DATA) voxels[n] = CONFIDENCE_HOLE;
  if (useApp.getState().summary !== summary) return false;
  useApp.getState().setConfidence({
    confidence: info,
    confidenceMap: { desc: info.map, voxels, transfer: { bytes: voxels.byteLength, ms: performance.now() - t0 } },
    confidenceStatus: 'done',
    confidenceProgress: null,
  });
  return true;
}

/** Tracks a fixed point (mm) into the moving image when tracking mode is on. */
export async function trackAt(point: Vec3): Promise<void> {
  const s = useApp.getState();
  if (!s.trackMode || !reviewable(s)) return;
  const summary = s.summary;
  s.setTrack({ tracked: null, tracking: true });
  try {
    const tracked = await samApi().trackPoint(point);
    const now = useApp.getState();
    // shown only for the same result, with tracking still on
    if (now.summary === summary && now.trackMode) now.setTrack({ tracked });
  } catch (e) {
    useApp.getState().setError(`point tracking: ${(e as Error).message}`);
  } finally {
    useApp.getState().setTrack({ tracking: false });
  }
}
