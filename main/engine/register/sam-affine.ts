/**
 * SAM-affine: the affine between two CTs from matched anatomical points.
 *
 *  1. grid points every gridMm (world-aligned lattice, grid-points.ts) inside the fixed body mask;
 *  2. each matched into the moving image (default: SAM embeddings, sam/match.ts matchPoints, fixed =
 *     template, moving = query, with the forward-backward cycle check);
 *  3. only confident pairs kept: accepted by the matcher (inside the template, score >= minScore, back
 *     within cycleThresholdMm), score >= minScore, and (as the official code) the matched point inside
 *     the moving body mask;
 *  4. a robust affine fit of the kept pairs (affine-fit.ts fitAffineRobust, default RANSAC then Tukey
 *     IRLS; the official code's plain least squares breaks on outliers);
 *  5. the residual of every pair under the fitted affine and the inlier set reported.
 * The affine maps FIXED world points (LPS mm) to MOVING world points, y = A x + t (affine-fit.ts).
 *
 * The matcher can be replaced (`match`): tests drive the pipeline with a known truth and injected
 * outliers; samAffineFromPairs fits pre-computed pairs. Pairs go to CSV with pairsCsv / writePairsCsv.
 */
import { CancelledError, InputError } from '../errors.ts';
import { yieldToEventLoop } from '../util/yield.ts';
import type { EmbeddedVolume } from '../sam/embed-volume.ts';
import { matchPoints } from '../sam/match.ts';
import type { SamMatchFn } from './sam-coarse.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { applyAffine, worldToIndexMatrix } from '../volume/geometry.ts';
import { bodyMask } from '../volume/mask.ts';
import type { Vec3, Volume } from '../volume/volume.ts';
import { fitAffineRobust, quantile, type Affine3x4, type FitMethod, type RobustFitOptions } from './affine-fit.ts';
import { gridPointsInMask } from './grid-points.ts';
import { affineDeterminant, symmetricEigen3 } from './affine3x4.ts';
import { profiler } from '../util/profile.ts';
import type { MatchThreads } from '../sam/match-threads.ts';

/** Minimum similarity of a kept pair: the official SAM-affine threshold. */
export const DEFAULT_MIN_SCORE = 0.7;

/** What a matcher says about one fixed point (a subset of sam/match.ts PointMatch). */
export interface MatchedPoint {
  /** Matched location in the moving image, world LPS mm. */
  location: Vec3;
  score: number;
  /** The matcher's own verdict (cycle check, in-template, its own minimum score). */
  accepted: boolean;
  cycleErrorMm?: number;
}

/** Matches fixed points (world mm) into the moving image, one result per point, in order. */
export type PointMatcher = (points: Vec3[], signal?: AbortSignal) => Promise<MatchedPoint[]>;

/** A fixed point and its match, before the fit. */
export interface CandidatePair {
  fixed: Vec3;
  moving: Vec3;
  score: number;
  accepted: boolean;
  cycleErrorMm?: number;
}

export interface SamAffinePair extends CandidatePair {
  /** Passed the confidence filters and went into the fit. */
  kept: boolean;
  /** |A fixed + t - moving|, mm (for every pair, kept or not). */
  residualMm: number;
  /** Kept and an inlier of the robust fit. */
  inlier: boolean;
}

export interface SamAffineStats {
  /** Pairs matched (grid points). */
  pairs: number;
  /** Pairs kept for the fit. */
  kept: number;
  inliers: number;
  /** Over the inliers, mm. */
  rmsMm: number;
  medianResidualMm: number;
  p95ResidualMm: number;
}

export interface SamAffineResult {
  affine: Affine3x4;
  method: FitMethod;
  pairs: SamAffinePair[];
  stats: SamAffineStats;
  /** Robust scale of the residuals (mm), IRLS iterations, RANSAC samples. */
  fit: { scaleMm: number; iterations: number; samples: number };
}

export interface SamAffineProgress {
  stage: 'grid' | 'match' | 'fit';
  done: number;
  total: number;
}

export interface SamAffineOptions {
  /** Grid spacing, mm (default 16). */
  gridMm?: number;
  /** Erode the fixed body mask by this much before placing points (mm, default 0). */
  marginMm?: number;
  /** At most this many grid points (default 2000). */
  maxPoints?: number;
  /** Body masks (default: volume/mask.ts bodyMask of each image). */
  fixedMask?: Volume;
  movingMask?: Volume;
  /** Drop pairs whose match lies outside the moving body mask (default true, as the official code). */
  useMovingMask?: boolean;
  /** Minimum similarity of a kept pair (default 0.7, the official SAM-affine threshold). */
  minScore?: number;
  /** Forward-backward check of the SAM matcher (default true) and its threshold (default 10 mm). */
  cycleCheck?: boolean;
  cycleThresholdMm?: number;
  /** Global candidates of the SAM matcher (sam/match.ts, default 5). */
  topK?: number;
  /** Default 'ransac+irls'. */
  method?: FitMethod;
  /** Further options of the robust fit. */
  fit?: Omit<RobustFitOptions, 'method'>;
  /** Fewest kept pairs to attempt a fit (default 12). */
  minPairs?: number;
  /** Matches with SAM's options and answers in place of matchPoints on `embeddings` (e.g. on the GPU). */
  samMatch?: SamMatchFn;
  /** Worker threads for the host matcher's search (sam/match-threads.ts; the same answers). */
  matchThreads?: MatchThreads | null;
  /** Replaces the SAM matcher (embeddings are then not needed). */
  match?: PointMatcher;
  /**
   * Refines the matcher's answers before the confidence filters (e.g. ncc-refine.ts: SAM's matches
   * moved by NCC template matching, with its own verdict), one answer per point, in order.
   */
  refine?: (points: Vec3[], found: MatchedPoint[], signal?: AbortSignal) => Promise<MatchedPoint[]>;
  /** Points per matcher call (progress and cancellation granularity; default 512). */
  chunk?: number;
  onProgress?: (p: SamAffineProgress) => void;
  signal?: AbortSignal;
}

/** The SAM affine of `moving` onto `fixed` (see the header). */
export async function samAffine(
  fixed: Volume,
  moving: Volume,
  embeddings: { fixed: EmbeddedVolume; moving: EmbeddedVolume } | null,
  options: SamAffineOptions = {},
): Promise<SamAffineResult> {
  const signal = options.signal;
  const check = () => {
    if (signal?.aborted) throw new CancelledError('SAM-affine');
  };
  check();
  const prof = profiler('sam-affine');
  options.onProgress?.({ stage: 'grid', done: 0, total: 1 });
  const fixedMask = options.fixedMask ?? bodyMask(fixed);
  const points = gridPointsInMask(fixedMask, {
    spacingMm: options.gridMm ?? 16,
    marginMm: options.marginMm,
    maxPoints: options.maxPoints,
  });
  if (points.length < 4)
    throw new InputError('SAM-affine', `only ${points.length} grid points in the fixed body mask; lower gridMm`);
  options.onProgress?.({ stage: 'grid', done: 1, total: 1 });
  check();
  prof.mark('grid');

  let match = options.match;
  if (!match) {
    const e = embeddings;
    // host embeddings (sam/match.ts), or the caller's SAM matcher (the GPU's, sam/device/)
    const sam: SamMatchFn | undefined =
      options.samMatch ??
      (e ? (pts, mo) => matchPoints(e.fixed, e.moving, pts, { ...mo, threads: options.matchThreads }) : undefined);
    if (!sam) throw new InputError('SAM-affine', 'no embeddings and no matcher given');
    match = (pts, sig) =>
      sam(pts, {
        topK: options.topK,
        cycleCheck: options.cycleCheck ?? true,
        cycleThresholdMm: options.cycleThresholdMm,
        minScore: options.minScore ?? DEFAULT_MIN_SCORE,
        signal: sig,
      });
  }
  const chunk = Math.max(1, options.chunk ?? 512);
  const candidates: CandidatePair[] = [];
  for (let p0 = 0; p0 < points.length; p0 += chunk) {
    // a synchronous matcher (NCC) would otherwise hold the event loop: no cancel, no progress
    await yieldToEventLoop();
    check();
    options.onProgress?.({ stage: 'match', done: p0, total: points.length });
    const part = points.slice(p0, p0 + chunk);
    const matched = await match(part, signal);
    const found = options.refine ? await options.refine(part, matched, signal) : matched;
    if (found.length !== part.length)
      throw new InputError('SAM-affine', `the matcher returned ${found.length} results for ${part.length} points`);
    found.forEach((r, n) =>
      candidates.push({
        fixed: part[n],
        moving: [...r.location] as Vec3,
        score: r.score,
        accepted: r.accepted,
        cycleErrorMm: r.cycleErrorMm,
      }),
    );
  }
  options.onProgress?.({ stage: 'match', done: points.length, total: points.length });
  check();
  prof.mark('match');
  const movingMask = (options.useMovingMask ?? true) ? (options.movingMask ?? bodyMask(moving)) : undefined;
  const result = samAffineFromPairs(candidates, { ...options, movingMask });
  prof.mark('fit');
  prof.done(`${points.length} points`);
  return result;
}

/** Is a world point in the mask (nearest voxel, component 0 nonzero)? */
function inMask(mask: Volume, p: Vec3, toIndex = worldToIndexMatrix(mask)): boolean {
  const idx = applyAffine(toIndex, p).map(Math.round);
  if (idx.some((v, a) => v < 0 || v >= mask.size[a])) return false;
  return mask.data[(idx[0] + mask.size[0] * (idx[1] + mask.size[1] * idx[2])) * mask.components] !== 0;
}

/**
 * Floor of the robust fit's residual scale (mm): the matchers place points to about a quarter of a
 * millimetre (sub-voxel refinement), so residuals below it are refinement noise, not outliers. Without
 * it a near-perfect set of matches (identical images) drives the scale to zero and the Tukey support
 * (4.685 sigma) calls pairs 0.1 mm off outliers.
 */
export const MIN_RESIDUAL_SCALE_MM = 0.25;

/**
 * Steps 3 to 5 on pre-computed pairs: keep the confident ones (accepted, score >= minScore, match in
 * `movingMask` when given), fit robustly, report residuals and inliers.
 */
export function samAffineFromPairs(
  candidates: CandidatePair[],
  options: Pick<SamAffineOptions, 'minScore' | 'method' | 'fit' | 'minPairs' | 'movingMask' | 'onProgress'> = {},
): SamAffineResult {
  const minScore = options.minScore ?? DEFAULT_MIN_SCORE;
  const toIndex = options.movingMask ? worldToIndexMatrix(options.movingMask) : null;
  const keep = candidates.map(
    (c) =>
      c.accepted &&
      c.score >= minScore &&
      c.fixed.every(Number.isFinite) &&
      c.moving.every(Number.isFinite) &&
      (!options.movingMask || inMask(options.movingMask, c.moving, toIndex!)),
  );
  const kept = candidates.filter((_, i) => keep[i]);
  const minPairs = Math.max(4, options.minPairs ?? 12);
  if (kept.length < minPairs)
    throw new InputError(
      'SAM-affine',
      `only ${kept.length} of ${candidates.length} points of the fixed body were matched with confidence ` +
        `(need ${minPairs}; similarity >= ${minScore}, cycle-checked): the two scans may not show the same ` +
        'part of the body (compare their extents), the patient may lie otherwise (feet first against head ' +
        'first, prone against supine, or turned by more than about 25 degrees: the matchers do not relate ' +
        'those), or this matcher cannot relate them (try the other one)',
    );
  const method = options.method ?? 'ransac+irls';
  options.onProgress?.({ stage: 'fit', done: 0, total: 1 });
  const fit = fitAffineRobust(
    kept.map((c) => c.fixed),
    kept.map((c) => c.moving),
    { minScaleMm: MIN_RESIDUAL_SCALE_MM, ...options.fit, method },
  );
  options.onProgress?.({ stage: 'fit', done: 1, total: 1 });
  const A = fit.matrix;
  const implausible = implausibleAffine(A, fit.rmsMm);
  if (implausible)
    throw new InputError(
      'SAM-affine',
      `the affine fitted to ${kept.length} confident pairs is not a patient-to-patient transform (${implausible}): ` +
        'most likely the two scans do not show the same part of the body (compare their extents) and the ' +
        'matches are wrong (the other matcher may relate them)' +
        (/mirror/.test(implausible)
          ? '; a scan stored mirrored (left and right swapped) would give this too, and so would a patient ' +
            'lying otherwise (feet first against head first, prone against supine), which the matchers do not relate'
          : ''),
    );
  let k = 0;
  const pairs: SamAffinePair[] = candidates.map((c, i) => {
    const y = applyAffine(A, c.fixed);
    const residualMm = Math.hypot(y[0] - c.moving[0], y[1] - c.moving[1], y[2] - c.moving[2]);
    const inlier = keep[i] ? fit.inliers[k++] : false;
    return { ...c, kept: keep[i], residualMm, inlier };
  });
  const inl = pairs.filter((p) => p.inlier).map((p) => p.residualMm);
  return {
    affine: A,
    method,
    pairs,
    stats: {
      pairs: candidates.length,
      kept: kept.length,
      inliers: inl.length,
      rmsMm: fit.rmsMm,
      medianResidualMm: quantile(inl, 0.5),
      p95ResidualMm: quantile(inl, 0.95),
    },
    fit: { scaleMm: fit.scaleMm, iterations: fit.iterations, samples: fit.samples },
  };
}

/**
 * Limits of a fixed-to-moving affine between two CTs of people (the scanners' millimetres are true
 * millimetres), in terms that do not depend on the images' axes: no reflection (det > 0); the
 * principal stretches (singular values of the linear part) within [1/2, 2] (a child against an adult
 * is about 0.6); their ratio at most 2.5 (strong anisotropic stretch or shear); and pairs that agree
 * with it (inlier RMS residual at most 25 mm: breathing and posture leave a few millimetres to the
 * deformable stages). Beyond these the matches are mostly wrong (e.g. images without common anatomy),
 * and a warp from them would be a silent wrong answer.
 */
export const AFFINE_LIMITS = { minStretch: 0.5, maxStretch: 2, maxStretchRatio: 2.5, maxRmsMm: 25 };

/** Why the affine is outside AFFINE_LIMITS (a short phrase), or null when it is within them. */
export function implausibleAffine(A: Affine3x4, rmsMm: number): string | null {
  const L = AFFINE_LIMITS;
  const why: string[] = [];
  if (!(affineDeterminant(A) > 0)) why.push('it mirrors the image');
  // singular values: square roots of the eigenvalues of M^T M (M the linear part)
  const M = [A[0], A[1], A[2], A[4], A[5], A[6], A[8], A[9], A[10]];
  const MtM = [0, 1, 2].flatMap((r) => [0, 1, 2].map((c) => M[r] * M[c] + M[3 + r] * M[3 + c] + M[6 + r] * M[6 + c]));
  const stretch = symmetricEigen3(MtM)
    .values.map((v) => Math.sqrt(Math.max(0, v)))
    .sort((a, b) => a - b);
  if (stretch[0] < L.minStretch || stretch[2] > L.maxStretch || stretch[2] > L.maxStretchRatio * stretch[0])
    why.push(`principal stretches ${stretch.map((v) => v.toFixed(2)).join(', ')}`);
  if (!(rmsMm <= L.maxRmsMm)) why.push(`residual RMS ${rmsMm.toFixed(1)} mm`);
  return why.length ? why.join('; ') : null;
}

/**
 * Pairs as CSV: fixed_x,fixed_y,fixed_z,moving_x,moving_y,moving_z (world LPS mm), score,
 * residual_mm, inlier (1/0), kept (1/0), cycle_error_mm (empty when not checked).
 */
export function pairsCsv(pairs: SamAffinePair[]): string {
  const f = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? String(+x.toFixed(4)) : '');
  const lines = ['fixed_x,fixed_y,fixed_z,moving_x,moving_y,moving_z,score,residual_mm,inlier,kept,cycle_error_mm'];
  for (const p of pairs)
    lines.push(
      [
        ...p.fixed.map(f),
        ...p.moving.map(f),
        f(p.score),
        f(p.residualMm),
        p.inlier ? 1 : 0,
        p.kept ? 1 : 0,
        f(p.cycleErrorMm),
      ].join(','),
    );
  return `${lines.join('\n')}\n`;
}

/** Write pairsCsv atomically, never over a path in `protect`. */
export function writePairsCsv(path: string, pairs: SamAffinePair[], options: { protect?: string[] } = {}): void {
  writeFileAtomic(path, new TextEncoder().encode(pairsCsv(pairs)), options);
}
