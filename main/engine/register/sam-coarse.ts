/**
 * SAM-coarse: the smooth non-linear correction after the affine (SAME++'s coarse stage).
 *
 *  1. grid points every gridMm (denser than the affine's) in the fixed body mask;
 *  2. each matched into the moving image near where the affine sends it:
 *     - SAM: sam/match.ts matchPoints on the embeddings (with its forward-backward cycle check), and the
 *       match must lie within priorRadiusMm of A p (the affine-mapped neighbourhood); with
 *       `movingAligned` (the cascade's default, as SAME++) the moving embeddings are those of the moving
 *       image resampled through the affine, W(x) = M(A x), and a match p' there is the moving point A p';
 *     - NCC: bench/ncc-match.ts template matching in the moving image resampled through the affine
 *       (W(x) = M(A x), on a 2 mm grid over the fixed image: rotation and scale undone), searched
 *       within searchRadiusMm of p; a match p' there is the moving point q = A p'; then matched back
 *       from W into the fixed image (search around p') for the cycle check (matchAfterAffine false:
 *       in the raw moving image around A p, and back around A^-1 q);
 *  3. confident pairs kept: similarity >= minScore and cycle error <= cycleThresholdMm;
 *  4. the kept pairs fitted by a robust affine B (refitAffine: what the affine stage left linear), and
 *     what B leaves, d = q - B p, by a smooth control grid (control-grid-fit.ts: regularised least
 *     squares with Tukey reweighting).
 * The correction is additive in moving space: the stage's map is x -> A x + v(x) (fixed world point to
 * moving world point, LPS mm), with v = (B - A) x + the smooth part, both held by the control grid's
 * nodes and read trilinearly (exact for the linear part); see stageField.
 */
import { CancelledError, InputError } from '../errors.ts';
import { yieldToEventLoop } from '../util/yield.ts';
import type { NccMatcher } from '../bench/ncc-match.ts';
import type { EmbeddedVolume } from '../sam/embed-volume.ts';
import { matchPoints, type MatchOptions, type PointMatch } from '../sam/match.ts';
import { applyAffine, norm, sub, worldBounds, worldCorners, type Geometry } from '../volume/geometry.ts';
import { implausibleAffine } from './sam-affine.ts';
import { gridWithSpacing } from '../volume/resample.ts';
import { warpWithAffine } from './field/warp.ts';
import type { Vec3, Volume } from '../volume/volume.ts';
import { affineInvert, fitAffineRobust, type Affine3x4 } from './affine-fit.ts';
import { fieldFromAffine } from './field/field.ts';
import { fitControlGrid } from './control-grid-fit.ts';
import type { Field } from './field/field.ts';
import { gridPointsInMask } from './grid-points.ts';
import { profiler } from '../util/profile.ts';
import { nccRefineMatches } from './ncc-refine.ts';
import type { MatchThreads } from '../sam/match-threads.ts';

export interface SamCoarseOptions {
  /** Spacing of the matched points, mm (default 10). */
  gridMm?: number;
  /** At most this many points (default 800). */
  maxPoints?: number;
  /** Control-grid spacing of the fitted field, mm (default 24). */
  controlSpacingMm?: number;
  /** Smoothness weight of the fit (control-grid-fit.ts, default 0.5). */
  smoothness?: number;
  /** Minimum similarity of a kept pair (default: SAM 0.6, NCC 0.5). */
  minScore?: number;
  /** Largest forward-backward distance of a kept pair, mm (default 4). */
  cycleThresholdMm?: number;
  /** SAM: largest distance of a match from the affine prediction, mm (default 25). */
  priorRadiusMm?: number;
  /** NCC: search radius around the affine prediction, mm (default 16). */
  searchRadiusMm?: number;
  /**
   * Match in the moving image resampled through the affine (rotation and scale undone, as SAME++
   * matches after the affine) instead of the raw moving image (default true). NCC: here; SAM: the
   * cascade embeds that image and passes `movingAligned` embeddings. Templates and embeddings are not
   * rotation or scale invariant (a 24 mm cube rotated 10 degrees and scaled 15 % is 3 mm off at its
   * corners): on the four 2 mm chest pairs of the README this lowered affine+coarse TRE on every pair,
   * with either matcher (NCC 2.86 -> 1.62 mm on the hardest; SAM 2.85 -> 1.53 mm on pair 12).
   */
  matchAfterAffine?: boolean;
  /**
   * Fit the kept pairs by a robust affine B first (affine-fit.ts RANSAC + IRLS), the control grid to
   * what B leaves, and v = (B - A) x + that grid (default true). The grid's diffusion term penalises a
   * linear displacement as much as any other, so a rotation or scale the affine stage left (its
   * matches were made across the whole motion; these after it, in the aligned image) was shrunk
   * towards zero: on the six large-motion chest pairs of the README affine + coarse TRE 0.32 / 0.25 /
   * 0.47 / 0.37 / 0.43 / 0.40 mm against 0.33 / 0.37 / 0.95 / 0.41 / 0.49 / 1.94 without it.
   */
  refitAffine?: boolean;
  /** Points per matcher call (progress and cancellation granularity; default SAM 256, NCC 50 a thread). */
  chunk?: number;
  /**
   * NCC: match on these worker threads (bench/ncc-threads.ts) or on the GPU (device/ncc-on-device.ts),
   * else in this thread.
   */
  nccThreads?: NccMatcher | null;
  /**
   * NCC after the affine: the aligned image (movingAfterAffine) made by the caller, e.g. on the device
   * for the GPU's matcher (default: warped here, on the host).
   */
  alignedImage?: () => Volume;
  /** Worker threads for the host SAM matcher's search (sam/match-threads.ts; the same answers). */
  matchThreads?: MatchThreads | null;
  onProgress?: (stage: string, done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface CoarsePair {
  fixed: Vec3;
  moving: Vec3;
  score: number;
  cycleErrorMm: number;
  kept: boolean;
  /** |A p + v(p) - q|, mm (kept pairs; NaN otherwise). */
  residualMm: number;
  /** A kept pair that the fit's Tukey rounds left a weight above 0 (stats.inliers counts them). */
  inlier: boolean;
}

export interface SamCoarseResult {
  /** v on the control grid (mm, LPS), added to the affine in moving space. */
  grid: Field;
  pairs: CoarsePair[];
  /** The affine refitted to the kept pairs (refitAffine), whose difference from A is part of v. */
  refitAffine?: Affine3x4;
  stats: {
    points: number;
    kept: number;
    /** Kept pairs after Tukey rounds (weight > 0). */
    inliers: number;
    /** Over the inliers: |q - A p| before the stage and |q - A p - v(p)| after it, mm. */
    affineResidualMm: { mean: number; p95: number };
    coarseResidualMm: { mean: number; p95: number };
    /** With the affine refit: |B p - A p| over the kept pairs, mm (the linear part of v there). */
    refitShiftMm?: { mean: number; p95: number };
    /** Why the refitted affine was not used (refitAffineOf), when it was not. */
    refitRejected?: string;
    /**
     * Set by the cascade: the fixed and moving images' NCC in the fixed body through the affine
     * alone and with this stage's correction (map-ncc.ts), and whether the correction was used
     * (only when it raised the NCC).
     */
    nccAffine?: number;
    nccCoarse?: number;
    used?: boolean;
  };
}

function meanP95(v: number[]): { mean: number; p95: number } {
  if (!v.length) return { mean: NaN, p95: NaN };
  const s = [...v].sort((a, b) => a - b);
  return { mean: s.reduce((a, b) => a + b, 0) / s.length, p95: s[Math.min(s.length - 1, Math.floor(0.95 * s.length))] };
}

/**
 * The moving image resampled through the affine, W(x) = M(A x), on a 2 mm grid over the fixed image:
 * where SAM-coarse matches after the affine (matchAfterAffine; the cascade embeds it for the SAM matcher).
 */
export function movingAfterAffine(fixed: Volume, moving: Volume, affine: Affine3x4): Volume {
  return warpWithAffine(moving, movingAfterAffineGrid(fixed), affine, { fill: -1024 });
}

/** movingAfterAffine's grid: 2 mm over the fixed image, in its directions. */
export function movingAfterAffineGrid(fixed: Geometry): Geometry {
  return gridWithSpacing(fixed, [2, 2, 2]);
}

/**
 * The kept pairs' robust affine B (see SamCoarseOptions.refitAffine), or why it is not used: it cannot
 * be fitted (the pairs in a plane), it is no patient-to-patient transform (sam-affine.ts
 * implausibleAffine), or it moves a corner of the fixed image more than maxShiftMm from where A sends
 * it (the pairs were matched within the search radius of A's prediction; a larger change extrapolates
 * a few pairs' slope over the whole image). Then the smooth grid alone corrects A.
 */
export function refitAffineOf(
  kept: CoarsePair[],
  affine: Affine3x4,
  fixed: Geometry,
  maxShiftMm: number,
): { matrix: Affine3x4 } | { rejected: string } {
  let fit;
  try {
    fit = fitAffineRobust(
      kept.map((p) => p.fixed),
      kept.map((p) => p.moving),
    );
  } catch (e) {
    if (e instanceof InputError) return { rejected: e.message };
    throw e;
  }
  const implausible = implausibleAffine(fit.matrix, fit.rmsMm);
  if (implausible) return { rejected: implausible };
  const shift = Math.max(
    ...worldCorners(fixed).map((x) => norm(sub(applyAffine(fit.matrix, x), applyAffine(affine, x)))),
  );
  if (shift > maxShiftMm)
    return { rejected: `it moves a corner of the fixed image ${shift.toFixed(1)} mm (limit ${maxShiftMm} mm)` };
  return { matrix: fit.matrix };
}

/** The affine map x -> x + (B - A) x: as a displacement, B x - A x. */
function affineDifferenceMap(b: Affine3x4, a: Affine3x4): Affine3x4 {
  return b.map((v, n) => v - a[n] + (n === 0 || n === 5 || n === 10 ? 1 : 0)) as Affine3x4;
}

/** A SAM point matcher with matchPoints' options and answers (e.g. sam/device/ matchPointsOnDevice). */
export type SamMatchFn = (points: Vec3[], options: MatchOptions) => Promise<PointMatch[]>;

export async function samCoarse(
  fixed: Volume,
  moving: Volume,
  affine: Affine3x4,
  matcher:
    | { kind: 'sam'; embeddings: { fixed: EmbeddedVolume; moving: EmbeddedVolume }; movingAligned?: boolean }
    | { kind: 'sam'; match: SamMatchFn; movingAligned?: boolean }
    | { kind: 'ncc' },
  fixedMask: Volume,
  o: SamCoarseOptions = {},
): Promise<SamCoarseResult> {
  const check = () => {
    if (o.signal?.aborted) throw new CancelledError('SAM-coarse');
  };
  const prof = profiler('sam-coarse');
  const points = gridPointsInMask(fixedMask, { spacingMm: o.gridMm ?? 10, maxPoints: o.maxPoints ?? 800 });
  prof.mark('grid');
  if (points.length < 8) throw new InputError('SAM-coarse', `only ${points.length} grid points in the fixed body`);
  const minScore = o.minScore ?? (matcher.kind === 'sam' ? 0.6 : 0.5);
  const cycleThr = o.cycleThresholdMm ?? 4;
  const inverse = affineInvert(affine);
  // matching in the affine-aligned moving image W(x) = M(A x) (its frame is the fixed one: a point p'
  // there is the moving point A p') or in the moving image; NCC works in the same image, made once
  const aligned = matcher.kind === 'sam' ? !!matcher.movingAligned : (o.matchAfterAffine ?? true);
  const toMoving = (x: Vec3) => (aligned ? applyAffine(affine, x) : x);
  let nccTarget: Volume | undefined;
  const nccImage = () =>
    (nccTarget ??= aligned ? (o.alignedImage?.() ?? movingAfterAffine(fixed, moving, affine)) : moving);
  // NCC matched back from a point in W (the fixed frame) or from A^-1 q
  const backStart = (q: Vec3) => (aligned ? q : applyAffine(inverse, q));
  // NCC matches synchronously: small chunks keep cancel and progress responsive between them (about
  // the same wall time on any number of threads)
  const chunk = Math.max(1, o.chunk ?? (matcher.kind === 'sam' ? 256 : 50 * (o.nccThreads?.size ?? 1)));
  const pairs: CoarsePair[] = [];
  for (let p0 = 0; p0 < points.length; p0 += chunk) {
    await yieldToEventLoop();
    check();
    o.onProgress?.('coarse: match', p0, points.length);
    const part = points.slice(p0, p0 + chunk);
    const predicted = part.map((p) => applyAffine(affine, p));
    if (matcher.kind === 'sam') {
      const opts = { cycleCheck: true, cycleThresholdMm: cycleThr, minScore, signal: o.signal };
      // host embeddings (sam/match.ts), or a matcher of the caller's (the GPU's, sam/device/)
      const found =
        'match' in matcher
          ? await matcher.match(part, opts)
          : await matchPoints(matcher.embeddings.fixed, matcher.embeddings.moving, part, {
              ...opts,
              threads: o.matchThreads,
            });
      const prior = o.priorRadiusMm ?? 25;
      found.forEach((m, n) => {
        const q = toMoving(m.location);
        const far = Math.hypot(q[0] - predicted[n][0], q[1] - predicted[n][1], q[2] - predicted[n][2]) > prior;
        pairs.push({
          fixed: part[n],
          moving: [...q] as Vec3,
          score: m.score,
          cycleErrorMm: m.cycleErrorMm ?? NaN,
          kept: m.accepted && m.score >= minScore && !far,
          residualMm: NaN,
          inlier: false,
        });
      });
    } else {
      // NCC alone: the same search as the SAM matches' refinement (ncc-refine.ts), started around p in
      // W, or around A p in the moving image, over a wider radius
      const starts = (aligned ? part : predicted).map((location) => ({ location, accepted: true }));
      const found = await nccRefineMatches(fixed, nccImage(), part, starts, {
        backStart,
        radiusMm: o.searchRadiusMm ?? 16,
        threads: o.nccThreads,
        signal: o.signal,
      });
      found.forEach((m, n) => {
        const cyc = m.cycleErrorMm;
        pairs.push({
          fixed: part[n],
          moving: [...toMoving(m.location)] as Vec3,
          score: m.score,
          cycleErrorMm: cyc,
          kept: Number.isFinite(cyc) && cyc <= cycleThr && m.score >= minScore,
          residualMm: NaN,
          inlier: false,
        });
      });
    }
  }
  o.onProgress?.('coarse: match', points.length, points.length);
  check();
  prof.mark('match');
  const kept = pairs.filter((p) => p.kept);
  if (kept.length < 8)
    throw new InputError(
      'SAM-coarse',
      `only ${kept.length} of ${pairs.length} points matched confidently; run the affine stage only`,
    );
  o.onProgress?.('coarse: fit', 0, 1);
  // the linear part first (refitAffine), so the smoothness term acts on what is not linear
  // (a corner may move at most twice the search radius: the pairs were found within it)
  const radius = matcher.kind === 'sam' ? (o.priorRadiusMm ?? 25) : (o.searchRadiusMm ?? 16);
  const refitted = (o.refitAffine ?? true) ? refitAffineOf(kept, affine, fixed, 2 * radius) : null;
  const refit = refitted && 'matrix' in refitted ? refitted.matrix : null;
  prof.mark('affine refit');
  const base = refit ?? affine;
  const fromAffine = (b: Affine3x4) =>
    kept.map((p) => {
      const a = applyAffine(b, p.fixed);
      return [p.moving[0] - a[0], p.moving[1] - a[1], p.moving[2] - a[2]] as Vec3;
    });
  const d = fromAffine(base);
  const fit = fitControlGrid(
    kept.map((p) => p.fixed),
    d,
    { spacingMm: o.controlSpacingMm ?? 24, smoothness: o.smoothness, bounds: worldBounds(fixed) },
  );
  // v(x) = (B - A) x + the grid's smooth part: trilinear interpolation of a linear function's node
  // values is that function, so the grid holds both
  if (refit) {
    const lin = fieldFromAffine(fit.grid, affineDifferenceMap(refit, affine));
    for (let n = 0; n < lin.data.length; n++) fit.grid.data[n] += lin.data[n];
  }
  o.onProgress?.('coarse: fit', 1, 1);
  prof.mark('control grid fit');
  prof.done(`${points.length} points`);
  const before: number[] = [];
  const after: number[] = [];
  const left = refit ? fromAffine(affine) : d;
  kept.forEach((p, n) => {
    p.residualMm = fit.residualMm[n];
    p.inlier = fit.weight[n] > 0;
    if (p.inlier) {
      before.push(Math.hypot(...left[n]));
      after.push(fit.residualMm[n]);
    }
  });
  return {
    grid: fit.grid,
    pairs,
    refitAffine: refit ?? undefined,
    stats: {
      points: pairs.length,
      kept: kept.length,
      inliers: after.length,
      affineResidualMm: meanP95(before),
      coarseResidualMm: meanP95(after),
      ...(refit
        ? {
            refitShiftMm: meanP95(
              kept.map((p) => norm(sub(applyAffine(refit, p.fixed), applyAffine(affine, p.fixed)))),
            ),
          }
        : {}),
      ...(refitted && 'rejected' in refitted ? { refitRejected: refitted.rejected } : {}),
    },
  };
}
