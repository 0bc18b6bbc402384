/**
 * SAM matches refined by NCC template matching: SAM finds the anatomy (a global match needs no
 * starting guess), NCC its precise position (intensity templates are sharper than the 4 mm local
 * embeddings of a briefly trained model). From each match the matcher accepted, NCC searches within
 * radiusMm in the image it was found in (bench/ncc-match.ts: 24 mm templates, 4 mm then 2 mm grid,
 * continuous refinement), then matches the refined point back into the fixed image for a cycle error
 * of its own; the caller keeps a pair when SAM accepted it and the refinement is confident too
 * (score >= NCC_MIN_SCORE, cycle error within its threshold). SAM-coarse's NCC matcher is the same
 * search from the affine's prediction over a wider radius (every start `accepted`).
 */
import { CancelledError } from '../errors.ts';
import { nccMatchOn } from '../bench/ncc-threads.ts';
import type { NccMatcher } from '../bench/ncc-match.ts';
import { yieldToEventLoop } from '../util/yield.ts';
import type { Vec3, Volume } from '../volume/volume.ts';
import type { MatchedPoint } from './sam-affine.ts';

/** Least NCC of a kept NCC match (also the NCC matcher's default minimum in SAM-coarse). */
export const NCC_MIN_SCORE = 0.5;

/** Largest cycle error of a refined match in SAM-affine, mm (SAM-coarse uses its cycleThresholdMm, 4). */
export const NCC_REFINE_CYCLE_MM = 4;

/** Default search radius around the SAM match, mm. */
export const NCC_REFINE_RADIUS_MM = 8;

export interface NccRefined {
  /** The refined location in `target` (world mm); SAM's where the point was not searched. */
  location: Vec3;
  /** NCC at the refined location; NaN where SAM had not accepted the match (not searched). */
  score: number;
  /** Distance from the fixed point of the match back from `location`, mm (NaN: not searched). */
  cycleErrorMm: number;
}

export async function nccRefineMatches(
  fixed: Volume,
  target: Volume,
  points: Vec3[],
  found: Pick<MatchedPoint, 'location' | 'accepted'>[],
  o: {
    /** Where the back match starts in the fixed image, from the refined point (default the point itself). */
    backStart?: (refined: Vec3, n: number) => Vec3;
    radiusMm?: number;
    /** Where NCC runs: worker threads or the GPU (bench/ncc-match.ts NccMatcher); else in this thread. */
    threads?: NccMatcher | null;
    signal?: AbortSignal;
  } = {},
): Promise<NccRefined[]> {
  const idx = found.flatMap((m, n) => (m.accepted ? [n] : []));
  const out: NccRefined[] = found.map((m) => ({ location: m.location, score: NaN, cycleErrorMm: NaN }));
  const opts = {
    templateRadiusMm: 12,
    searchRadiusMm: o.radiusMm ?? NCC_REFINE_RADIUS_MM,
    coarseSpacingMm: 4,
    fineSpacingMm: 2,
  };
  // without threads NCC runs in this thread: in blocks, so that cancel and the event loop are seen
  const block = o.threads ? Math.max(1, idx.length) : SYNC_BLOCK;
  for (let b0 = 0; b0 < idx.length; b0 += block) {
    if (b0 > 0) await yieldToEventLoop();
    if (o.signal?.aborted) throw new CancelledError('NCC refinement');
    const part = idx.slice(b0, b0 + block);
    const pts = part.map((n) => points[n]);
    const initial = part.map((n) => found[n].location);
    const fwd = await nccMatchOn(o.threads, fixed, target, pts, { ...opts, initial }, o.signal);
    const back = await nccMatchOn(
      o.threads,
      target,
      fixed,
      fwd.map((m) => m.location),
      { ...opts, initial: fwd.map((m, j) => (o.backStart ? o.backStart(m.location, part[j]) : points[part[j]])) },
      o.signal,
    );
    part.forEach((n, j) => {
      const b = back[j].location;
      const p = points[n];
      out[n] = {
        location: fwd[j].location,
        score: fwd[j].score,
        cycleErrorMm: Math.hypot(b[0] - p[0], b[1] - p[1], b[2] - p[2]),
      };
    });
  }
  return out;
}

/** Points per synchronous block when NCC runs in the caller's thread (about 0.1-0.2 s here). */
const SYNC_BLOCK = 25;

/**
 * Where a refined match ends up: NCC's location when the refinement is confident (score >=
 * NCC_MIN_SCORE, back within cycleMm), else SAM's own (a point NCC cannot place keeps its anatomy).
 */
export function refinedLocation(
  sam: Vec3,
  r: NccRefined,
  cycleMm = NCC_REFINE_CYCLE_MM,
): { location: Vec3; refined: boolean } {
  const ok = r.score >= NCC_MIN_SCORE && r.cycleErrorMm <= cycleMm;
  return ok ? { location: r.location, refined: true } : { location: sam, refined: false };
}
