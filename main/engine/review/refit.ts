/**
 * Interactive residual refit of the SAM affine: the reviewer excludes matched pairs (or re-includes
 * pairs the confidence filters dropped) and the affine is refitted at once, with the new residual of
 * every pair, the inlier set and a residual histogram.
 *
 * The pairs are those of register/sam-affine.ts (SamAffinePair: fixed, moving, score, accepted,
 * kept, residualMm, inlier). The set fitted is: the pairs kept by SAM-affine's filters, minus
 * `exclude`, plus `include` (an index in both is excluded: the reviewer's last word is exclusion).
 * The fit is register/affine-fit.ts fitAffineRobust with the same options as SAM-affine (default
 * RANSAC + Tukey IRLS, seeded: refitting the same set gives the same affine), so a refit equals
 * fitting the remaining pairs directly. About 10-30 ms for 2000 pairs on one core.
 */
import { InputError } from '../errors.ts';
import {
  fitAffineRobust,
  quantile,
  type Affine3x4,
  type FitMethod,
  type RobustFitOptions,
} from '../register/affine-fit.ts';
import { implausibleAffine, type CandidatePair, type SamAffinePair } from '../register/sam-affine.ts';
import { applyAffine } from '../volume/geometry.ts';

export interface RefitOptions {
  /** Indices of pairs to leave out of the fit. */
  exclude?: Iterable<number>;
  /** Indices of pairs to fit although SAM-affine's filters did not keep them. */
  include?: Iterable<number>;
  /** Default 'ransac+irls' (SAM-affine's). */
  method?: FitMethod;
  fit?: Omit<RobustFitOptions, 'method'>;
  /** Histogram: bin width (mm, default 1) and upper edge (mm, default: the largest residual, at least 10). */
  binMm?: number;
  maxMm?: number;
}

export interface ResidualHistogram {
  /** Bin edges in mm (bins + 1 values); the last bin also counts everything above the top edge. */
  edgesMm: number[];
  /** Pairs in the fit per bin, and the inliers among them. */
  fitted: number[];
  inliers: number[];
  /** Pairs left out of the fit per bin (residuals under the new affine). */
  excluded: number[];
}

export interface RefitResult {
  affine: Affine3x4;
  method: FitMethod;
  /** The pairs with `kept` = in this fit, and the new residuals and inlier flags. */
  pairs: SamAffinePair[];
  /** Indices of the pairs fitted. */
  used: number[];
  stats: {
    pairs: number;
    fitted: number;
    inliers: number;
    rmsMm: number;
    medianResidualMm: number;
    p95ResidualMm: number;
  };
  histogram: ResidualHistogram;
  /** Time of the refit, ms. */
  ms: number;
}

function indexSet(name: string, it: Iterable<number> | undefined, n: number): Set<number> {
  const s = new Set<number>();
  for (const i of it ?? []) {
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new InputError(name, `pair index ${i} is not in 0..${n - 1}`);
    s.add(i);
  }
  return s;
}

/** Residual histogram of the pairs under a fit (see ResidualHistogram). */
export function residualHistogram(
  residuals: ArrayLike<number>,
  fitted: ArrayLike<boolean>,
  inliers: ArrayLike<boolean>,
  options: { binMm?: number; maxMm?: number } = {},
): ResidualHistogram {
  const bin = options.binMm ?? 1;
  if (!(bin > 0)) throw new InputError('binMm', `bin width must be positive, not ${bin}`);
  let top = options.maxMm;
  if (top === undefined) {
    top = 10;
    for (let i = 0; i < residuals.length; i++) if (Number.isFinite(residuals[i])) top = Math.max(top, residuals[i]);
  }
  const bins = Math.max(1, Math.ceil(top / bin - 1e-9));
  const edgesMm = Array.from({ length: bins + 1 }, (_, b) => b * bin);
  const h: ResidualHistogram = {
    edgesMm,
    fitted: new Array(bins).fill(0),
    inliers: new Array(bins).fill(0),
    excluded: new Array(bins).fill(0),
  };
  for (let i = 0; i < residuals.length; i++) {
    const r = residuals[i];
    if (!Number.isFinite(r)) continue;
    const b = Math.min(bins - 1, Math.floor(r / bin));
    if (fitted[i]) {
      h.fitted[b]++;
      if (inliers[i]) h.inliers[b]++;
    } else h.excluded[b]++;
  }
  return h;
}

/** Refit the affine on the kept pairs minus `exclude` plus `include` (see the header). */
export function refitAffine(pairs: (CandidatePair & { kept: boolean })[], options: RefitOptions = {}): RefitResult {
  const t0 = performance.now();
  const n = pairs.length;
  const exclude = indexSet('exclude', options.exclude, n);
  const include = indexSet('include', options.include, n);
  const used: number[] = [];
  for (let i = 0; i < n; i++) if ((pairs[i].kept || include.has(i)) && !exclude.has(i)) used.push(i);
  if (used.length < 4)
    throw new InputError('refit', `only ${used.length} pairs left to fit (an affine needs at least 4 spread pairs)`);
  const method = options.method ?? 'ransac+irls';
  const fit = fitAffineRobust(
    used.map((i) => pairs[i].fixed),
    used.map((i) => pairs[i].moving),
    { ...options.fit, method },
  );
  const A = fit.matrix;
  // the cascade's limits (sam-affine.ts): a refit on hand-picked pairs is no exception
  const implausible = implausibleAffine(A, fit.rmsMm);
  if (implausible)
    throw new InputError('refit', `the refitted affine is not a patient-to-patient transform (${implausible})`);
  const inFit = new Array<boolean>(n).fill(false);
  const inlier = new Array<boolean>(n).fill(false);
  used.forEach((i, k) => {
    inFit[i] = true;
    inlier[i] = fit.inliers[k];
  });
  const residuals = new Float64Array(n);
  const out: SamAffinePair[] = pairs.map((p, i) => {
    const y = applyAffine(A, p.fixed);
    residuals[i] = Math.hypot(y[0] - p.moving[0], y[1] - p.moving[1], y[2] - p.moving[2]);
    return {
      fixed: p.fixed,
      moving: p.moving,
      score: p.score,
      accepted: p.accepted,
      cycleErrorMm: p.cycleErrorMm,
      kept: inFit[i],
      residualMm: residuals[i],
      inlier: inlier[i],
    };
  });
  const inl = out.filter((p) => p.inlier).map((p) => p.residualMm);
  return {
    affine: A,
    method,
    pairs: out,
    used,
    stats: {
      pairs: n,
      fitted: used.length,
      inliers: inl.length,
      rmsMm: fit.rmsMm,
      medianResidualMm: quantile(inl, 0.5),
      p95ResidualMm: quantile(inl, 0.95),
    },
    histogram: residualHistogram(residuals, inFit, inlier, options),
    ms: performance.now() - t0,
  };
}
