/**
 * Affine transforms fitted to point pairs, robustly: the fitting half of SAM-affine.
 *
 * Convention: an affine maps FIXED world points (LPS mm) to MOVING world points, y = A x + t, stored
 * as a 3x4 row-major matrix [A | t] (geometry.ts Affine3x4). The residual of a pair is
 * |A x_f + t - x_m| in mm.
 *
 * - Least squares (weighted or not), float64, normal equations on centred coordinates: with the
 *   weighted centroids c_f, c_m, A = (Σ w (y - c_m)(x - c_f)^T) C^-1 with C = Σ w (x - c_f)(x - c_f)^T,
 *   t = c_m - A c_f. C is inverted through its eigen decomposition (Jacobi), which also measures the
 *   point set's spread along its principal axes: coincident, collinear or coplanar sets (smallest
 *   spread below minSpreadRatio of the largest) are refused with an InputError saying which.
 * - IRLS: weights from a robust loss of u = |r| / σ, σ = 1.4826 * median of the per-axis absolute
 *   residuals (MAD about zero, floored at minScaleMm), recomputed every iteration. 'irls' runs Huber
 *   (k = 2) from the least-squares fit, then Tukey's biweight (c = 4.685) from the Huber fit: Huber is
 *   convex (no bad local minimum), Tukey gives outliers zero weight. The official SAM-affine code
 *   solves plain least squares, which a few wrong matches pull far off.
 * - RANSAC: minimal sets of 4 pairs (seeded rng from train/rng.ts), thin tetrahedra and reflections
 *   skipped, MSAC cost Σ min(r², T²), adaptive sample count for `confidence`; the best model is refit
 *   on its inliers (r <= T) until the inlier set is stable. 'ransac+irls' then runs Tukey IRLS on all
 *   pairs from the RANSAC fit.
 * - Inliers reported: r <= inlierThresholdMm when given; else r <= T for 'ransac', r <= c σ (Tukey's
 *   support) for the IRLS methods, every pair for 'lsq'.
 * The helpers on 3x4 affines (apply, invert, compose, decompose) live in affine3x4.ts, re-exported here.
 */
import { InputError } from '../errors.ts';
import { applyAffine, type Affine3x4 } from '../volume/geometry.ts';
import { affineDeterminant, symmetricEigen3 } from './affine3x4.ts';
import type { Vec3 } from '../volume/volume.ts';
import { createRng } from '../train/rng.ts';

export type { Affine3x4 };
export * from './affine3x4.ts';
export type FitMethod = 'lsq' | 'irls' | 'ransac' | 'ransac+irls';

/** Tukey biweight and Huber tuning constants, in units of σ. */
export const TUKEY_C = 4.685;
export const HUBER_K = 2;

// ---- least squares ----

/** Pairs as flat float64 arrays, checked (same count, finite). */
interface Pairs {
  f: Float64Array;
  m: Float64Array;
  n: number;
}

function toPairs(fixed: Vec3[], moving: Vec3[]): Pairs {
  if (fixed.length !== moving.length)
    throw new InputError('affine fit', `${fixed.length} fixed points but ${moving.length} moving points`);
  const n = fixed.length;
  const f = new Float64Array(n * 3);
  const m = new Float64Array(n * 3);
  for (let i = 0; i < n; i++)
    for (let a = 0; a < 3; a++) {
      f[i * 3 + a] = fixed[i][a];
      m[i * 3 + a] = moving[i][a];
      if (!Number.isFinite(f[i * 3 + a]) || !Number.isFinite(m[i * 3 + a]))
        throw new InputError('affine fit', `pair ${i} has a non-finite coordinate`);
    }
  return { f, m, n };
}

/**
 * Weighted least squares (w null: all 1): the affine, or the reason it is undetermined.
 * minSpreadRatio: smallest principal spread / largest below which the set counts as degenerate.
 */
function solve(P: Pairs, w: ArrayLike<number> | null, minSpreadRatio: number): Affine3x4 | string {
  const { f, m, n } = P;
  let sw = 0;
  let used = 0;
  const cf = [0, 0, 0];
  const cm = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const wi = w ? w[i] : 1;
    if (!(wi > 0)) continue;
    sw += wi;
    used++;
    for (let a = 0; a < 3; a++) {
      cf[a] += wi * f[i * 3 + a];
      cm[a] += wi * m[i * 3 + a];
    }
  }
  if (used < 4) return `needs at least 4 point pairs with positive weight (got ${used})`;
  for (let a = 0; a < 3; a++) {
    cf[a] /= sw;
    cm[a] /= sw;
  }
  const C = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  const B = [0, 0, 0, 0, 0, 0, 0, 0, 0]; // B[r][c] = Σ w (y_r - cm_r)(x_c - cf_c)
  for (let i = 0; i < n; i++) {
    const wi = w ? w[i] : 1;
    if (!(wi > 0)) continue;
    const x = [f[i * 3] - cf[0], f[i * 3 + 1] - cf[1], f[i * 3 + 2] - cf[2]];
    const y = [m[i * 3] - cm[0], m[i * 3 + 1] - cm[1], m[i * 3 + 2] - cm[2]];
    for (let r = 0; r < 3; r++)
      for (let c = 0; c < 3; c++) {
        C[r * 3 + c] += wi * x[r] * x[c];
        B[r * 3 + c] += wi * y[r] * x[c];
      }
  }
  const { values, vectors: V } = symmetricEigen3(C);
  const order = [0, 1, 2].sort((p, q) => values[q] - values[p]);
  const spread = order.map((k) => Math.sqrt(Math.max(0, values[k]) / sw));
  const fmt = (x: number) => (x < 1e-3 ? x.toExponential(1) : x.toFixed(3));
  if (!(spread[0] > 1e-9)) return 'degenerate point set: all fixed points coincide';
  if (spread[1] < minSpreadRatio * spread[0])
    return `degenerate point set: the fixed points are collinear (RMS spread ${fmt(spread[0])} mm along their line, ${fmt(spread[1])} mm across); an affine is undetermined`;
  if (spread[2] < minSpreadRatio * spread[0])
    return `degenerate point set: the fixed points are coplanar (RMS spread ${fmt(spread[2])} mm out of their plane, ${fmt(spread[0])} mm in it); an affine is undetermined`;
  // C^-1 = V diag(1/λ) V^T; A = B C^-1
  const Ci = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 3; c++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += (V[r * 3 + k] * V[c * 3 + k]) / values[k];
      Ci[r * 3 + c] = s;
    }
  const out: number[] = [];
  for (let r = 0; r < 3; r++) {
    const row = [0, 1, 2].map((c) => B[r * 3] * Ci[c] + B[r * 3 + 1] * Ci[3 + c] + B[r * 3 + 2] * Ci[6 + c]);
    out.push(...row, cm[r] - (row[0] * cf[0] + row[1] * cf[1] + row[2] * cf[2]));
  }
  return out as Affine3x4;
}

/** Least-squares affine (optionally weighted); throws an InputError on degenerate point sets. */
export function fitAffineLeastSquares(
  fixed: Vec3[],
  moving: Vec3[],
  weights?: ArrayLike<number>,
  minSpreadRatio = 1e-3,
): Affine3x4 {
  const r = solve(toPairs(fixed, moving), weights ?? null, minSpreadRatio);
  if (typeof r === 'string') throw new InputError('affine fit', r);
  return r;
}

/** |A x_f + t - x_m| (mm) of every pair. */
export function affineResiduals(mat: Affine3x4, fixed: Vec3[], moving: Vec3[]): Float64Array {
  return residuals(mat, toPairs(fixed, moving));
}

function residuals(
  A: Affine3x4,
  P: Pairs,
  out: Float64Array = new Float64Array(P.n),
  axes?: Float64Array,
): Float64Array {
  const { f, m } = P;
  for (let i = 0; i < P.n; i++) {
    const x = f[i * 3];
    const y = f[i * 3 + 1];
    const z = f[i * 3 + 2];
    const d0 = A[0] * x + A[1] * y + A[2] * z + A[3] - m[i * 3];
    const d1 = A[4] * x + A[5] * y + A[6] * z + A[7] - m[i * 3 + 1];
    const d2 = A[8] * x + A[9] * y + A[10] * z + A[11] - m[i * 3 + 2];
    out[i] = Math.sqrt(d0 * d0 + d1 * d1 + d2 * d2);
    if (axes) {
      axes[i * 3] = Math.abs(d0);
      axes[i * 3 + 1] = Math.abs(d1);
      axes[i * 3 + 2] = Math.abs(d2);
    }
  }
  return out;
}

/** Median of a copy of the values (NaN for none). */
export function median(values: ArrayLike<number>): number {
  return quantile(values, 0.5);
}

/** Quantile q in [0, 1], linear between order statistics (NaN for none). */
export function quantile(values: ArrayLike<number>, q: number): number {
  const s = Float64Array.from(values).sort();
  if (s.length === 0) return NaN;
  const x = q * (s.length - 1);
  const lo = Math.floor(x);
  return lo + 1 < s.length ? s[lo] + (s[lo + 1] - s[lo]) * (x - lo) : s[lo];
}

// ---- robust fits ----

export interface RobustFitOptions {
  /** Default 'ransac+irls'. */
  method?: FitMethod;
  /** IRLS iterations per stage (default 50). */
  maxIterations?: number;
  /** IRLS stops when the fitted points move less than this RMS (mm, default 1e-7). */
  toleranceMm?: number;
  /** Floor of the robust scale σ (mm, default 1e-3). */
  minScaleMm?: number;
  /** RANSAC inlier threshold T (mm, default 5). */
  ransacThresholdMm?: number;
  /** RANSAC sample bounds (default 100 and 5000) and confidence (default 0.999). */
  minSamples?: number;
  maxSamples?: number;
  confidence?: number;
  /** Seed of the RANSAC sampler (default 1). */
  seed?: number;
  /** Inlier threshold of the final report (mm); default: see the header. */
  inlierThresholdMm?: number;
  /** Degeneracy threshold of the least-squares solves (default 1e-3). */
  minSpreadRatio?: number;
}

export interface RobustFitResult {
  matrix: Affine3x4;
  inliers: boolean[];
  /** Residual of every pair under `matrix`, mm. */
  residuals: number[];
  /** RMS residual over the inliers, mm. */
  rmsMm: number;
  /** Robust scale σ of the final residuals (1.4826 MAD of the per-axis residuals), mm. */
  scaleMm: number;
  /** IRLS iterations (all stages). */
  iterations: number;
  /** RANSAC minimal sets drawn. */
  samples: number;
  method: FitMethod;
}

const must = (r: Affine3x4 | string): Affine3x4 => {
  if (typeof r === 'string') throw new InputError('affine fit', r);
  return r;
};

function robustScale(A: Affine3x4, P: Pairs, minScale: number, r: Float64Array, axes: Float64Array): number {
  residuals(A, P, r, axes);
  return Math.max(minScale, 1.4826 * median(axes));
}

/** IRLS with one loss from `start`; returns the fit and the iterations done. */
function irls(P: Pairs, start: Affine3x4, loss: 'huber' | 'tukey', o: Required<RobustFitOptions>) {
  let A = start;
  const r = new Float64Array(P.n);
  const axes = new Float64Array(P.n * 3);
  const w = new Float64Array(P.n);
  let it = 0;
  while (it < o.maxIterations) {
    const sigma = robustScale(A, P, o.minScaleMm, r, axes);
    for (let i = 0; i < P.n; i++) {
      const u = r[i] / sigma;
      w[i] = loss === 'huber' ? (u <= HUBER_K ? 1 : HUBER_K / u) : u < TUKEY_C ? (1 - (u / TUKEY_C) ** 2) ** 2 : 0;
    }
    const next = solve(P, w, o.minSpreadRatio);
    it++;
    if (typeof next === 'string') break; // the weighted set degenerated: keep the last fit
    let d2 = 0;
    for (let i = 0; i < P.n; i++) {
      const x: Vec3 = [P.f[i * 3], P.f[i * 3 + 1], P.f[i * 3 + 2]];
      const a = applyAffine(A, x);
      const b = applyAffine(next, x);
      d2 += (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2;
    }
    A = next;
    if (Math.sqrt(d2 / P.n) < o.toleranceMm) break;
  }
  return { A, it };
}

function ransac(P: Pairs, o: Required<RobustFitOptions>) {
  const rng = createRng(o.seed);
  const T = o.ransacThresholdMm;
  const r = new Float64Array(P.n);
  let best: Affine3x4 | null = null;
  let bestCost = Infinity;
  let needed = o.maxSamples;
  let s = 0;
  let mirrored = 0;
  const sub: Pairs = { f: new Float64Array(12), m: new Float64Array(12), n: 4 };
  for (; s < Math.max(o.minSamples, Math.min(needed, o.maxSamples)); s++) {
    const idx = rng.sample(P.n, 4);
    for (let k = 0; k < 4; k++)
      for (let a = 0; a < 3; a++) {
        sub.f[k * 3 + a] = P.f[idx[k] * 3 + a];
        sub.m[k * 3 + a] = P.m[idx[k] * 3 + a];
      }
    const model = solve(sub, null, 0.05);
    if (typeof model === 'string') continue;
    if (!(affineDeterminant(model) > 0)) {
      mirrored++;
      continue;
    }
    residuals(model, P, r);
    let cost = 0;
    let inl = 0;
    for (let i = 0; i < P.n; i++) {
      cost += Math.min(r[i] * r[i], T * T);
      if (r[i] <= T) inl++;
    }
    if (cost < bestCost) {
      bestCost = cost;
      best = model;
      const w4 = (inl / P.n) ** 4;
      needed = w4 >= 1 ? 0 : w4 <= 0 ? Infinity : Math.ceil(Math.log(1 - o.confidence) / Math.log(1 - w4));
    }
  }
  if (!best && mirrored > 0)
    throw new InputError(
      'affine fit',
      `all ${mirrored} samples of 4 pairs that fixed an affine mirror the image (of ${s} drawn; the rest ` +
        'were degenerate): the matches are probably wrong (do the scans show the same part of the body?), ' +
        'unless one scan is stored mirrored',
    );
  if (!best) throw new InputError('affine fit', `RANSAC found no non-degenerate minimal set in ${s} samples`);
  // refit on the inliers until the set is stable
  let prev = '';
  for (let round = 0; round < 20; round++) {
    residuals(best, P, r);
    const w = Float64Array.from(r, (x) => (x <= T ? 1 : 0));
    const key = w.join('');
    if (key === prev) break;
    prev = key;
    const refit = solve(P, w, o.minSpreadRatio);
    if (typeof refit === 'string') break;
    best = refit;
  }
  return { A: best, samples: s };
}

/** Robust affine from point pairs (fixed -> moving, world mm); see the header for the methods. */
export function fitAffineRobust(fixed: Vec3[], moving: Vec3[], options: RobustFitOptions = {}): RobustFitResult {
  const o: Required<RobustFitOptions> = {
    method: 'ransac+irls',
    maxIterations: 50,
    toleranceMm: 1e-7,
    minScaleMm: 1e-3,
    ransacThresholdMm: 5,
    minSamples: 100,
    maxSamples: 5000,
    confidence: 0.999,
    seed: 1,
    inlierThresholdMm: NaN,
    minSpreadRatio: 1e-3,
    ...options,
  };
  const P = toPairs(fixed, moving);
  let A: Affine3x4;
  let iterations = 0;
  let samples = 0;
  if (o.method === 'lsq' || o.method === 'irls') {
    A = must(solve(P, null, o.minSpreadRatio));
    if (o.method === 'irls') {
      const h = irls(P, A, 'huber', o);
      const t = irls(P, h.A, 'tukey', o);
      A = t.A;
      iterations = h.it + t.it;
    }
  } else if (o.method === 'ransac' || o.method === 'ransac+irls') {
    must(solve(P, null, o.minSpreadRatio)); // refuse degenerate sets up front, with the reason
    const rs = ransac(P, o);
    A = rs.A;
    samples = rs.samples;
    if (o.method === 'ransac+irls') {
      const t = irls(P, A, 'tukey', o);
      A = t.A;
      iterations = t.it;
    }
  } else throw new InputError('affine fit', `unknown method '${o.method as string}'`);
  const r = new Float64Array(P.n);
  const axes = new Float64Array(P.n * 3);
  const sigma = robustScale(A, P, o.minScaleMm, r, axes);
  const thr = Number.isFinite(o.inlierThresholdMm)
    ? o.inlierThresholdMm
    : o.method === 'lsq'
      ? Infinity
      : o.method === 'ransac'
        ? o.ransacThresholdMm
        : TUKEY_C * sigma;
  const inliers = Array.from(r, (x) => x <= thr);
  let ss = 0;
  let ni = 0;
  r.forEach((x, i) => {
    if (inliers[i]) {
      ss += x * x;
      ni++;
    }
  });
  return {
    matrix: A,
    inliers,
    residuals: Array.from(r),
    rmsMm: ni ? Math.sqrt(ss / ni) : NaN,
    scaleMm: sigma,
    iterations,
    samples,
    method: o.method,
  };
}
