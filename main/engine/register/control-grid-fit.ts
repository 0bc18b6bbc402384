/**
 * A smooth displacement fitted to scattered point displacements: the fitting half of SAM-coarse.
 *
 * The displacement is held on a coarse control grid (LPS-aligned, every `spacingMm`, covering a
 * world box with one node of margin) and read anywhere by trilinear interpolation of the nodes
 * (field.ts fieldSampler, so the grid is itself a displacement Field). The node values θ minimise,
 * per component, the regularised weighted least squares (as SAME++'s coarse stage)
 *     Σ_i w_i (B θ - d)_i²  +  λ Σ_edges (θ_a - θ_b)²  +  ε |θ|²
 * with B the trilinear weights of point i on its 8 nodes, λ = smoothness × (points per node) so the
 * balance does not depend on the number of points, and ε a tiny ridge that fixes nodes far from any
 * point (they follow their neighbours through the diffusion term, and decay to 0 only very far).
 * Solved by conjugate gradients (the operator is symmetric positive definite), matrix-free, the three
 * components in lockstep (one operator), to a relative residual of 1e-5.
 * Robustness: `irls` rounds of Tukey reweighting of the points by their residual (scale from the
 * median absolute residual), so the few wrong matches that pass the confidence filters lose their pull.
 */
import { InputError } from '../errors.ts';
import { applyAffine, worldToIndexMatrix } from '../volume/geometry.ts';
import { IDENTITY3, makeVolume, type Vec3 } from '../volume/volume.ts';
import type { Field } from './field/field.ts';
import { profiler } from '../util/profile.ts';

export interface ControlGridFitOptions {
  /** Node spacing, mm (default 24). */
  spacingMm?: number;
  /** Smoothness weight relative to the data (default 0.5). */
  smoothness?: number;
  /** Tukey reweighting rounds (default 2). */
  irls?: number;
  /** Per-point weights (default 1); a point of weight 0 does not count, its residual is still reported. */
  weights?: number[];
  /** World box the grid must cover (default: the points' bounding box). */
  bounds?: [Vec3, Vec3];
  /** Conjugate-gradient iterations at most (default 300). */
  maxIterations?: number;
}

export interface ControlGridFit {
  /** Node displacements: a 3-component Field on the control grid (mm, LPS). */
  grid: Field;
  /** |fitted - observed| per point, mm. */
  residualMm: Float64Array;
  /** Final weight of each point (0 for points rejected by the Tukey rounds). */
  weight: Float64Array;
}

/** Trilinear stencil of one point: 8 node numbers and weights. */
interface Stencil {
  node: Int32Array;
  w: Float64Array;
}

function stencils(points: Vec3[], toIndex: ReturnType<typeof worldToIndexMatrix>, size: Vec3): Stencil {
  const n = points.length;
  const node = new Int32Array(8 * n);
  const w = new Float64Array(8 * n);
  const [ni, nj] = size;
  points.forEach((p, q) => {
    const c = applyAffine(toIndex, p);
    const i0 = [0, 1, 2].map((a) => Math.max(0, Math.min(size[a] - 2, Math.floor(c[a]))));
    const f = [0, 1, 2].map((a) => Math.max(0, Math.min(1, c[a] - i0[a])));
    for (let k = 0; k < 8; k++) {
      const o = [k & 1, (k >> 1) & 1, (k >> 2) & 1];
      let wt = 1;
      for (let a = 0; a < 3; a++) wt *= o[a] ? f[a] : 1 - f[a];
      node[8 * q + k] = i0[0] + o[0] + ni * (i0[1] + o[1] + nj * (i0[2] + o[2]));
      w[8 * q + k] = wt;
    }
  });
  return { node, w };
}

/** Fit the control grid to points (fixed world mm) and their displacements (mm). */
export function fitControlGrid(
  points: Vec3[],
  displacements: Vec3[],
  options: ControlGridFitOptions = {},
): ControlGridFit {
  const n = points.length;
  if (n !== displacements.length) throw new InputError('control grid fit', 'points and displacements differ in count');
  if (n < 1) throw new InputError('control grid fit', 'no points to fit');
  const h = options.spacingMm ?? 24;
  if (!(h > 0)) throw new InputError('control grid fit', `invalid spacing ${h} mm`);
  let [lo, hi] = options.bounds ?? [
    [0, 1, 2].map((a) => Math.min(...points.map((p) => p[a]))) as Vec3,
    [0, 1, 2].map((a) => Math.max(...points.map((p) => p[a]))) as Vec3,
  ];
  lo = lo.map((v) => v - h) as Vec3;
  hi = hi.map((v) => v + h) as Vec3;
  const size = [0, 1, 2].map((a) => Math.max(2, Math.ceil((hi[a] - lo[a]) / h) + 1)) as Vec3;
  const geometry = { size, spacing: [h, h, h] as Vec3, origin: lo, direction: [...IDENTITY3] as typeof IDENTITY3 };
  const nodes = size[0] * size[1] * size[2];
  const st = stencils(points, worldToIndexMatrix(geometry), size);
  const base = options.weights ? Float64Array.from(options.weights) : new Float64Array(n).fill(1);
  const weight = Float64Array.from(base);
  // the points that count (weight > 0: a point of weight 0 is only measured, e.g. held out)
  const counted = base.reduce((c, w) => c + (w > 0 ? 1 : 0), 0);
  if (!counted) throw new InputError('control grid fit', 'no point with a positive weight');
  const lambda = (options.smoothness ?? 0.5) * Math.max(1, counted / nodes);
  const eps = 1e-6 * lambda;
  const maxIt = options.maxIterations ?? 300;
  const theta = new Float64Array(nodes * 3);
  const residualMm = new Float64Array(n);

  // The operator is the same for the three components: they are solved together, three CG recurrences
  // in lockstep over node-major vectors (v*3 + component), so each pass over the stencils and nodes
  // serves all three; a converged component stops updating (it takes no step; its unused direction
  // still changes). Converged at a relative residual of 1e-5 (TOL is its square): nodes within about
  // 0.002 mm of a solve to 1e-6 (a review measured 0.03 mm at 1e-4, 0.1 mm with a tenth of the
  // smoothness). A chest-sized fit (24x24x15 nodes, 800 points): 139 -> 58 ms on this CPU, with the
  // Laplacian as a per-node stencil (the dense float64 solution is the test's reference). The Tukey
  // rounds before the last stop at a relative residual of 1e-3 (TOL_EARLY): 62-68 iterations instead
  // of 106-110 on a 2 mm chest pair, the same TRE (0.40 / 0.53 mm on pairs #11 / #12).
  const TOL = 1e-10;
  const TOL_EARLY = 1e-6;
  // (the operator and the CG's vector loops are module functions, see dots3 below)
  const apply = (x: Float64Array, out: Float64Array, w: Float64Array) =>
    applyOperator(x, out, w, st, n, size, eps, lambda);

  const rounds = Math.max(0, options.irls ?? 2);
  const len = 3 * nodes;
  const rhs = new Float64Array(len);
  const r = new Float64Array(len);
  const p = new Float64Array(len);
  const ap = new Float64Array(len);
  // the CG's three step sizes, directions' factors and sums of products (per component)
  const alpha = new Float64Array(3);
  const beta = new Float64Array(3);
  const sums = new Float64Array(3);
  const prof = profiler('control grid fit');
  const iterations: number[] = [];
  for (let round = 0; round <= rounds; round++) {
    rhs.fill(0);
    for (let q = 0; q < n; q++)
      for (let k = 8 * q; k < 8 * q + 8; k++)
        for (let m = 0; m < 3; m++) rhs[3 * st.node[k] + m] += weight[q] * st.w[k] * displacements[q][m];
    // theta (warm from the previous round) is the iterate
    apply(theta, ap, weight);
    const rr = [0, 0, 0];
    const bb = [0, 0, 0];
    for (let i = 0; i < len; i++) {
      r[i] = rhs[i] - ap[i];
      p[i] = r[i];
      rr[i % 3] += r[i] * r[i];
      bb[i % 3] += rhs[i] * rhs[i];
    }
    // the rounds before the last only set the Tukey weights, from the points' residuals: a relative
    // residual of 1e-3 gives those to a few hundredths of a millimetre (inexact IRLS), and the last
    // round, warm from them, converges to TOL
    const tol = round < rounds ? TOL_EARLY : TOL;
    const active = [0, 1, 2].map((m) => rr[m] > tol * Math.max(bb[m], 1e-12));
    let it = 0;
    for (; it < maxIt && active.some(Boolean); it++) {
      apply(p, ap, weight);
      dots3(p, ap, sums);
      // a converged component takes no step (alpha 0; its r is unchanged)
      for (let m = 0; m < 3; m++) alpha[m] = active[m] ? rr[m] / sums[m] : 0;
      stepAndResidual(theta, r, p, ap, alpha, sums);
      for (let m = 0; m < 3; m++) beta[m] = active[m] ? sums[m] / rr[m] : 1;
      newDirection(p, r, beta);
      for (let m = 0; m < 3; m++)
        if (active[m]) {
          rr[m] = sums[m];
          active[m] = rr[m] > tol * Math.max(bb[m], 1e-12);
        }
    }
    iterations.push(it);
    prof.mark(`round ${round}`);
    // residuals, then Tukey weights for the next round
    for (let q = 0; q < n; q++) {
      let e2 = 0;
      for (let comp = 0; comp < 3; comp++) {
        let s = 0;
        for (let k = 0; k < 8; k++) s += st.w[8 * q + k] * theta[3 * st.node[8 * q + k] + comp];
        e2 += (s - displacements[q][comp]) ** 2;
      }
      residualMm[q] = Math.sqrt(e2);
    }
    if (round < rounds) {
      const sorted = Array.from(residualMm)
        .filter((_, q) => base[q] > 0)
        .sort((a, b) => a - b);
      const sigma = Math.max(0.5, 1.4826 * sorted[Math.floor(sorted.length / 2)]);
      const c = 4.685 * sigma;
      for (let q = 0; q < n; q++) {
        const u = residualMm[q] / c;
        weight[q] = u < 1 ? base[q] * (1 - u * u) ** 2 : 0;
      }
    }
  }
  prof.done(`${n} points, ${size.join('x')} nodes, CG iterations ${iterations.join(', ')}`);
  const grid = makeVolume({
    ...geometry,
    components: 3,
    data: Float32Array.from(theta),
    meta: { description: 'coarse displacement (control grid)' },
  });
  return { grid, residualMm, weight };
}

/**
 * out = (Bᵀ W B + lambda L + eps I) x for the three components of x (node-major, v * 3 + component):
 * the points' trilinear stencils with their weights w, then each node against its up-to-six neighbours.
 */
function applyOperator(
  x: Float64Array,
  out: Float64Array,
  w: Float64Array,
  st: Stencil,
  n: number,
  size: Vec3,
  eps: number,
  lambda: number,
): void {
  const [ni, nj, nk] = size;

  out.fill(0);
  for (let q = 0; q < n; q++) {
    if (w[q] === 0) continue;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    for (let k = 8 * q; k < 8 * q + 8; k++) {
      const wt = st.w[k];
      const v = 3 * st.node[k];
      s0 += wt * x[v];
      s1 += wt * x[v + 1];
      s2 += wt * x[v + 2];
    }
    s0 *= w[q];
    s1 *= w[q];
    s2 *= w[q];
    for (let k = 8 * q; k < 8 * q + 8; k++) {
      const wt = st.w[k];
      const v = 3 * st.node[k];
      out[v] += wt * s0;
      out[v + 1] += wt * s1;
      out[v + 2] += wt * s2;
    }
  }
  // eps x + lambda (graph Laplacian) x: each node against its up-to-six neighbours
  const sj = 3 * ni;
  const sk = 3 * ni * nj;
  for (let c = 0, i = 0; c < nk; c++)
    for (let b = 0; b < nj; b++)
      for (let a = 0; a < ni; a++, i += 3) {
        const x0 = x[i];
        const x1 = x[i + 1];
        const x2 = x[i + 2];
        let d0 = 0;
        let d1 = 0;
        let d2 = 0;
        let deg = 0;
        if (a > 0) {
          deg++;
          d0 += x[i - 3];
          d1 += x[i - 2];
          d2 += x[i - 1];
        }
        if (a + 1 < ni) {
          deg++;
          d0 += x[i + 3];
          d1 += x[i + 4];
          d2 += x[i + 5];
        }
        if (b > 0) {
          deg++;
          d0 += x[i - sj];
          d1 += x[i - sj + 1];
          d2 += x[i - sj + 2];
        }
        if (b + 1 < nj) {
          deg++;
          d0 += x[i + sj];
          d1 += x[i + sj + 1];
          d2 += x[i + sj + 2];
        }
        if (c > 0) {
          deg++;
          d0 += x[i - sk];
          d1 += x[i - sk + 1];
          d2 += x[i - sk + 2];
        }
        if (c + 1 < nk) {
          deg++;
          d0 += x[i + sk];
          d1 += x[i + sk + 1];
          d2 += x[i + sk + 2];
        }
        out[i] += eps * x0 + lambda * (deg * x0 - d0);
        out[i + 1] += eps * x1 + lambda * (deg * x1 - d1);
        out[i + 2] += eps * x2 + lambda * (deg * x2 - d2);
      }
}

// The CG's vector loops, each a small module function: a fit calls each a few hundred times, so V8
// optimises them within the first fit (inlined in fitControlGrid's own loop they ran 3-4 times slower
// until a process's third or fourth fit: 211, 186, 95, then 60 ms on this CPU).

/** sums[m] = Σ_v a[3v + m] b[3v + m]. */
function dots3(a: Float64Array, b: Float64Array, sums: Float64Array): void {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < a.length; i += 3) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
  }
  sums[0] = s0;
  sums[1] = s1;
  sums[2] = s2;
}

/** theta += alpha p, r -= alpha ap (per component); rr[m] = the new Σ r². */
function stepAndResidual(
  theta: Float64Array,
  r: Float64Array,
  p: Float64Array,
  ap: Float64Array,
  alpha: Float64Array,
  rr: Float64Array,
): void {
  const a0 = alpha[0];
  const a1 = alpha[1];
  const a2 = alpha[2];
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < theta.length; i += 3) {
    theta[i] += a0 * p[i];
    theta[i + 1] += a1 * p[i + 1];
    theta[i + 2] += a2 * p[i + 2];
    r[i] -= a0 * ap[i];
    r[i + 1] -= a1 * ap[i + 1];
    r[i + 2] -= a2 * ap[i + 2];
    s0 += r[i] * r[i];
    s1 += r[i + 1] * r[i + 1];
    s2 += r[i + 2] * r[i + 2];
  }
  rr[0] = s0;
  rr[1] = s1;
  rr[2] = s2;
}

/** p = r + beta p (per component). */
function newDirection(p: Float64Array, r: Float64Array, beta: Float64Array): void {
  const b0 = beta[0];
  const b1 = beta[1];
  const b2 = beta[2];
  for (let i = 0; i < p.length; i += 3) {
    p[i] = r[i] + b0 * p[i];
    p[i + 1] = r[i + 1] + b1 * p[i + 1];
    p[i + 2] = r[i + 2] + b2 * p[i + 2];
  }
}
