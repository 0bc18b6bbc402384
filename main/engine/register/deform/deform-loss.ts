/**
 * The SAM-deform objective and its exact gradient: for a displacement w (mm, LPS, 3 per voxel) on the
 * deform grid G (fixed-aligned),
 *   J(x) = M(b(x) + w(x))           b(x) = x + u0(x): where the earlier stages send x (world mm)
 *   loss = LNCC(I, J) + featureWeight · F(w) + alpha · mean_x Σ_axes |Δ_axis w / h|^2
 * - M: the moving image (smoothed and normalised, on its own grid), read trilinearly with the border
 *   clamped; ∂J/∂w = ∇M at the sampled point (the exact derivative of the trilinear interpolant,
 *   zero along an axis where the point is clamped).
 * - LNCC: local-ncc.ts (exact gradient through box sums).
 * - F: optional feature term, e.g. SAM local embeddings: F = -mean_x <f(x), g(b(x) + w(x))> with f the
 *   fixed features on G and g the moving feature channels read trilinearly (unit-normalised beforehand;
 *   the sampled vector is not renormalised, so the term stays a smooth function of w).
 * - Diffusion: forward differences between neighbours on G (h: G's spacing per axis).
 * The gradient check in test/unit/reg-deform.test.ts compares this gradient with finite differences.
 */
import type { Affine3x4 } from '../../volume/geometry.ts';
import { lnccLoss, lnccLossOn, type FixedWindows } from './local-ncc.ts';
import type { BoxSumThreads } from './box-sum-threads.ts';

/** A multi-channel image on a grid (channels interleaved, i fastest) with its world -> index map. */
export interface SampledImage {
  data: Float32Array;
  size: readonly number[];
  channels: number;
  toIndex: Affine3x4;
}

export interface DeformProblem {
  size: readonly number[];
  spacing: readonly number[];
  /** b(x) = x + u0(x) per voxel of G, world mm (3 per voxel). */
  base: Float32Array;
  windows: FixedWindows;
  moving: SampledImage;
  alpha: number;
  features?: { fixed: Float32Array; moving: SampledImage; weight: number };
}

export interface DeformEval {
  loss: number;
  similarity: number;
  feature: number;
  smoothness: number;
}

/**
 * The trilinear cell of continuous index (x, y, z) on a grid of `size`, the point clamped onto the
 * grid first: returns the cell's first voxel (i fastest) and writes the fractions and the per-axis
 * derivative switches (0 where the point was clamped) into frac [fx, fy, fz, cx, cy, cz].
 */
function cell(size: readonly number[], x: number, y: number, z: number, frac: Float64Array): number {
  const [ni, nj, nk] = size;
  let cx = 1;
  let cy = 1;
  let cz = 1;
  if (x < 0 || x > ni - 1) {
    x = x < 0 ? 0 : ni - 1;
    cx = 0;
  }
  if (y < 0 || y > nj - 1) {
    y = y < 0 ? 0 : nj - 1;
    cy = 0;
  }
  if (z < 0 || z > nk - 1) {
    z = z < 0 ? 0 : nk - 1;
    cz = 0;
  }
  const x0 = Math.min(Math.floor(x), ni - 2);
  const y0 = Math.min(Math.floor(y), nj - 2);
  const z0 = Math.min(Math.floor(z), nk - 2);
  frac[0] = x - x0;
  frac[1] = y - y0;
  frac[2] = z - z0;
  frac[3] = cx;
  frac[4] = cy;
  frac[5] = cz;
  return x0 + y0 * ni + z0 * ni * nj;
}

/** Trilinear value and index-space gradient from a cell's 8 corner values (the trilinear interpolant's exact derivative). */
function interpolate(
  v000: number,
  v100: number,
  v010: number,
  v110: number,
  v001: number,
  v101: number,
  v011: number,
  v111: number,
  frac: Float64Array,
  out: Float64Array,
  g: Float64Array | null,
): void {
  const fx = frac[0];
  const fy = frac[1];
  const fz = frac[2];
  const c00 = v000 + (v100 - v000) * fx;
  const c10 = v010 + (v110 - v010) * fx;
  const c01 = v001 + (v101 - v001) * fx;
  const c11 = v011 + (v111 - v011) * fx;
  const c0 = c00 + (c10 - c00) * fy;
  const c1 = c01 + (c11 - c01) * fy;
  out[0] = c0 + (c1 - c0) * fz;
  if (g) {
    const dx0 = (v100 - v000) * (1 - fy) + (v110 - v010) * fy;
    const dx1 = (v101 - v001) * (1 - fy) + (v111 - v011) * fy;
    g[0] = frac[3] * (dx0 * (1 - fz) + dx1 * fz);
    g[1] = frac[4] * (c10 - c00 + (c11 - c01 - (c10 - c00)) * fz);
    g[2] = frac[5] * (c1 - c0);
  }
}

/**
 * The first channel of `img` (the moving intensities: one channel in practice) at continuous index
 * (x, y, z), border clamped, into out[0], and its index-space gradient into g[0..3) when given
 * (derivative zero along an axis where the point is clamped).
 */
function sampleFirstChannel(
  img: SampledImage,
  x: number,
  y: number,
  z: number,
  frac: Float64Array,
  out: Float64Array,
  g: Float64Array | null,
): void {
  const nc = img.channels;
  const d = img.data;
  const sj = img.size[0] * nc;
  const sk = sj * img.size[1];
  const p = nc * cell(img.size, x, y, z, frac);
  interpolate(
    d[p],
    d[p + nc],
    d[p + sj],
    d[p + sj + nc],
    d[p + sk],
    d[p + sk + nc],
    d[p + sk + sj],
    d[p + sk + sj + nc],
    frac,
    out,
    g,
  );
}

/**
 * Σ_c f_c · img_c and its index-space gradient at (x, y, z), f = f[fo .. fo + C): the corners' channel
 * vectors are projected on f first, then interpolated once (trilinear interpolation and its derivative
 * are linear in the corner values, so this equals projecting per-channel samples and gradients;
 * C times less interpolation for the feature term).
 */
function sampleProjected(
  img: SampledImage,
  x: number,
  y: number,
  z: number,
  f: Float32Array,
  fo: number,
  frac: Float64Array,
  out: Float64Array,
  g: Float64Array | null,
): void {
  const C = img.channels;
  const d = img.data;
  const ni = img.size[0];
  const sj = ni * C;
  const sk = sj * img.size[1];
  const p = C * cell(img.size, x, y, z, frac);
  let h000 = 0;
  let h100 = 0;
  let h010 = 0;
  let h110 = 0;
  let h001 = 0;
  let h101 = 0;
  let h011 = 0;
  let h111 = 0;
  for (let c = 0; c < C; c++) {
    const fc = f[fo + c];
    const q = p + c;
    h000 += fc * d[q];
    h100 += fc * d[q + C];
    h010 += fc * d[q + sj];
    h110 += fc * d[q + sj + C];
    h001 += fc * d[q + sk];
    h101 += fc * d[q + sk + C];
    h011 += fc * d[q + sk + sj];
    h111 += fc * d[q + sk + sj + C];
  }
  interpolate(h000, h100, h010, h110, h001, h101, h011, h111, frac, out, g);
}

/** Loss terms at w; the gradient (same layout as w) is written into `grad` when given. */
export function deformLoss(p: DeformProblem, w: Float32Array, grad?: Float32Array): DeformEval {
  const N = p.size[0] * p.size[1] * p.size[2];
  const J = new Float32Array(N);
  const gJ = grad ? new Float32Array(3 * N) : null;
  sampleMoving(p, w, J, gJ);
  const dJ = grad ? new Float64Array(N) : undefined;
  const similarity = lnccLoss(p.windows, J, dJ);
  return otherTerms(p, w, similarity, grad, dJ, gJ);
}

/**
 * deformLoss with the LNCC's box sums on worker threads (box-sum-threads.ts, lnccLossOn): the same
 * numbers; its images are the threads' reusable shared arrays.
 */
export async function deformLossOn(
  threads: BoxSumThreads,
  p: DeformProblem,
  w: Float32Array,
  grad?: Float32Array,
): Promise<DeformEval> {
  const N = p.size[0] * p.size[1] * p.size[2];
  const J = threads.shared32('deform.J', N);
  const gJ = grad ? threads.shared32('deform.gJ', 3 * N) : null;
  sampleMoving(p, w, J, gJ);
  const dJ = grad ? threads.shared64('deform.dJ', N) : undefined;
  const similarity = await lnccLossOn(threads, p.windows, J, dJ);
  return otherTerms(p, w, similarity, grad, dJ, gJ);
}

/** J = M(b + w) per voxel of G and, with gJ, its world gradient ∂J/∂w (3 per voxel). */
function sampleMoving(p: DeformProblem, w: Float32Array, J: Float32Array, gJ: Float32Array | null): void {
  const N = J.length;
  const m = p.moving.toIndex;
  const val = new Float64Array(1);
  const g = new Float64Array(3);
  const frac = new Float64Array(6);
  for (let v = 0, o = 0; v < N; v++, o += 3) {
    const X = p.base[o] + w[o];
    const Y = p.base[o + 1] + w[o + 1];
    const Z = p.base[o + 2] + w[o + 2];
    const x = m[0] * X + m[1] * Y + m[2] * Z + m[3];
    const y = m[4] * X + m[5] * Y + m[6] * Z + m[7];
    const z = m[8] * X + m[9] * Y + m[10] * Z + m[11];
    sampleFirstChannel(p.moving, x, y, z, frac, val, gJ ? g : null);
    J[v] = val[0];
    if (gJ) {
      // index gradient -> world gradient: dJ/dX_r = Σ_a dJ/didx_a · m[a][r]
      gJ[o] = g[0] * m[0] + g[1] * m[4] + g[2] * m[8];
      gJ[o + 1] = g[0] * m[1] + g[1] * m[5] + g[2] * m[9];
      gJ[o + 2] = g[0] * m[2] + g[1] * m[6] + g[2] * m[10];
    }
  }
}

/**
 * The loss terms after the LNCC: its gradient through J (∂loss/∂J · ∂J/∂w into grad), the feature term
 * and the diffusion term (both added into grad).
 */
function otherTerms(
  p: DeformProblem,
  w: Float32Array,
  similarity: number,
  grad: Float32Array | undefined,
  dJ: Float64Array | undefined,
  gJ: Float32Array | null,
): DeformEval {
  const N = p.size[0] * p.size[1] * p.size[2];
  const frac = new Float64Array(6);
  if (grad && dJ && gJ)
    for (let v = 0, o = 0; v < N; v++, o += 3) {
      grad[o] = dJ[v] * gJ[o];
      grad[o + 1] = dJ[v] * gJ[o + 1];
      grad[o + 2] = dJ[v] * gJ[o + 2];
    }
  let feature = 0;
  if (p.features && p.features.weight > 0) {
    const F = p.features;
    const C = F.moving.channels;
    const fm = F.moving.toIndex;
    const val1 = new Float64Array(1);
    const gp = grad ? new Float64Array(3) : null;
    const s = F.weight / N;
    for (let v = 0, o = 0; v < N; v++, o += 3) {
      const X = p.base[o] + w[o];
      const Y = p.base[o + 1] + w[o + 1];
      const Z = p.base[o + 2] + w[o + 2];
      // <f(x), g(b + w)> and its index-space gradient, in one interpolation of the projected corners
      sampleProjected(
        F.moving,
        fm[0] * X + fm[1] * Y + fm[2] * Z + fm[3],
        fm[4] * X + fm[5] * Y + fm[6] * Z + fm[7],
        fm[8] * X + fm[9] * Y + fm[10] * Z + fm[11],
        F.fixed,
        v * C,
        frac,
        val1,
        gp,
      );
      feature -= val1[0] / N;
      if (grad && gp) {
        grad[o] -= s * (gp[0] * fm[0] + gp[1] * fm[4] + gp[2] * fm[8]);
        grad[o + 1] -= s * (gp[0] * fm[1] + gp[1] * fm[5] + gp[2] * fm[9]);
        grad[o + 2] -= s * (gp[0] * fm[2] + gp[1] * fm[6] + gp[2] * fm[10]);
      }
    }
  }
  // diffusion regulariser: forward differences along each axis
  const [ni, nj, nk] = p.size;
  const coef = p.alpha / N;
  let smooth = 0;
  const axes: [number, number, number, number][] = [
    [3, 1, 0, 0],
    [3 * ni, 0, 1, 0],
    [3 * ni * nj, 0, 0, 1],
  ];
  for (let a = 0; a < 3; a++) {
    const [step, di, dj, dk] = axes[a];
    const inv = 1 / (p.spacing[a] * p.spacing[a]);
    const gd = 2 * coef * inv;
    for (let k = 0; k < nk - dk; k++)
      for (let j = 0; j < nj - dj; j++) {
        let o = 3 * ni * (j + nj * k);
        for (let i = 0; i < ni - di; i++, o += 3) {
          const q = o + step;
          for (let c = 0; c < 3; c++) {
            const dlt = w[q + c] - w[o + c];
            smooth += dlt * dlt * inv;
            if (grad) {
              grad[q + c] += gd * dlt;
              grad[o + c] -= gd * dlt;
            }
          }
        }
      }
  }
  smooth *= coef;
  const fw = p.features?.weight ?? 0;
  return { loss: similarity + fw * feature + smooth, similarity, feature, smoothness: smooth };
}
