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
 * Solved by conjugate gradients (the operator is symmetric positive definite), matrix-free.
 * Robustness: `irls` rounds of Tukey reweighting of the points by their residual (scale from the
 * median absolute residual), so the few wrong matches that pass the confidence filters lose their pull.
 */
import { InputError } from '../errors.ts';
import { applyAffine, worldToIndexMatrix } from '../volume/geometry.ts';
import { IDENTITY3, makeVolume, type Vec3 } from '../volume/volume.ts';
import type { Field } from './field/field.ts';

export interface ControlGridFitOptions {
  /** Node spacing, mm (default 24). */
  spacingMm?: number;
  /** Smoothness weight relative to the data (default 0.5). */
  smoothness?: number;
  /** Tukey reweighting rounds (default 2). */
  irls?: number;
  /** Per-point weights (default 1). */
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
  const lambda = (options.smoothness ?? 0.5) * Math.max(1, n / nodes);
  const eps = 1e-6 * lambda;
  const maxIt = options.maxIterations ?? 300;
  const theta = new Float64Array(nodes * 3);
  const residualMm = new Float64Array(n);

  // neighbour offsets along +i, +j, +k (edges counted once)
  const [ni, nj, nk] = size;
  const apply = (x: Float64Array, out: Float64Array, w: Float64Array) => {
    out.fill(0);
    for (let q = 0; q < n; q++) {
      if (w[q] === 0) continue;
      let s = 0;
      for (let k = 0; k < 8; k++) s += st.w[8 * q + k] * x[st.node[8 * q + k]];
      s *= w[q];
      for (let k = 0; k < 8; k++) out[st.node[8 * q + k]] += st.w[8 * q + k] * s;
    }
    let v = 0;
    for (let c = 0; c < nk; c++)
      for (let b = 0; b < nj; b++)
        for (let a = 0; a < ni; a++, v++) {
          out[v] += eps * x[v];
          if (a + 1 < ni) edge(v, v + 1);
          if (b + 1 < nj) edge(v, v + ni);
          if (c + 1 < nk) edge(v, v + ni * nj);
        }
    function edge(p: number, q: number) {
      const d = lambda * (x[p] - x[q]);
      out[p] += d;
      out[q] -= d;
    }
  };

  const rounds = Math.max(0, options.irls ?? 2);
  const x = new Float64Array(nodes);
  const rhs = new Float64Array(nodes);
  const r = new Float64Array(nodes);
  const p = new Float64Array(nodes);
  const ap = new Float64Array(nodes);
  for (let round = 0; round <= rounds; round++) {
    for (let comp = 0; comp < 3; comp++) {
      rhs.fill(0);
      for (let q = 0; q < n; q++)
        for (let k = 0; k < 8; k++) rhs[st.node[8 * q + k]] += weight[q] * st.w[8 * q + k] * displacements[q][comp];
      for (let v = 0; v < nodes; v++) x[v] = theta[3 * v + comp];
      apply(x, ap, weight);
      let rr = 0;
      for (let v = 0; v < nodes; v++) {
        r[v] = rhs[v] - ap[v];
        p[v] = r[v];
        rr += r[v] * r[v];
      }
      let bb = 0;
      for (let v = 0; v < nodes; v++) bb += rhs[v] * rhs[v];
      for (let it = 0; it < maxIt && rr > 1e-12 * Math.max(bb, 1e-12); it++) {
        apply(p, ap, weight);
        let pap = 0;
        for (let v = 0; v < nodes; v++) pap += p[v] * ap[v];
        const alpha = rr / pap;
        let rr2 = 0;
        for (let v = 0; v < nodes; v++) {
          x[v] += alpha * p[v];
          r[v] -= alpha * ap[v];
          rr2 += r[v] * r[v];
        }
        const beta = rr2 / rr;
        rr = rr2;
        for (let v = 0; v < nodes; v++) p[v] = r[v] + beta * p[v];
      }
      for (let v = 0; v < nodes; v++) theta[3 * v + comp] = x[v];
    }
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
      const sorted = Array.from(residualMm).sort((a, b) => a - b);
      const sigma = Math.max(0.5, 1.4826 * sorted[Math.floor(sorted.length / 2)]);
      const c = 4.685 * sigma;
      for (let q = 0; q < n; q++) {
        const u = residualMm[q] / c;
        weight[q] = u < 1 ? base[q] * (1 - u * u) ** 2 : 0;
      }
    }
  }
  const grid = makeVolume({
    ...geometry,
    components: 3,
    data: Float32Array.from(theta),
    meta: { description: 'coarse displacement (control grid)' },
  });
  return { grid, residualMm, weight };
}
