/**
 * Jacobian determinant of the map x -> x + u(x) of a displacement field (see field.ts), per voxel,
 * in world terms (spacing and direction accounted for: du/dx in mm per mm), with a folding count
 * that does not miss folds.
 *
 * A central-difference Jacobian averages the two sides of a voxel and stays positive for maps
 * that swap neighbouring voxels. Following Liu et al. 2024 ("On finite difference Jacobian
 * computation in deformable image registration", IJCV; github.com/yihao6/digital_diffeomorphism),
 * the determinant is also computed with one-sided differences: the 8 combinations of forward (+)
 * or backward (-) differences along i, j, k (the 8 corner tetrahedra of the cubes around the
 * voxel) and the two "star" variants j1* / j2* (the central tetrahedra of the two 5-tetrahedra
 * splits of a cube: vertices p, p-(1,1,0), p-(1,0,1), p-(0,1,1) and p, p+(1,1,0), p+(0,1,1),
 * p+(1,0,1)). Over all voxels these cover the 10 tetrahedra of both splits of every cube of the
 * grid; the map is free of folds at the voxel level when all 10 are positive.
 *
 * A voxel is counted as folded when ANY of its variants is <= 0. The central determinant is the
 * mean of the 8 one-sided ones (det is linear in each column), so central folds are included.
 * Variants are only evaluated where their neighbours exist: at the grid's faces the central
 * difference falls back to the one-sided one, and the one-sided and star variants that would
 * need voxels outside the grid are skipped (no extrapolation, no false folds at the border). An
 * axis of size 1 has zero derivative (2-D fields work: the star variants are then skipped).
 *
 * World terms: with index-to-world x = o + D S i, the map in index coordinates is
 * i -> i + S^-1 D^T u, whose Jacobian has the same determinant as the world one; differences of u
 * are rotated by D^T and divided by the spacing before the determinants are taken. An affine
 * field thus gives det(A) everywhere, whatever the grid's direction (even left-handed) and spacing.
 */
import { makeVolume, voxelCount, type Vec3, type Volume } from '../../volume/volume.ts';
import { checkField, checkMask, valueStats, type ValueStats } from './field.ts';

/** Variant names: one character per index axis i, j, k: '0' central, '+' forward, '-' backward. */
export const JACOBIAN_VARIANTS = ['000', '+++', '++-', '+-+', '+--', '-++', '-+-', '--+', '---', 'j1*', 'j2*'] as const;
export type JacobianVariant = (typeof JACOBIAN_VARIANTS)[number];

export interface JacobianReport extends Pick<ValueStats, 'min' | 'max' | 'mean' | 'std'> {
  /** Central-difference determinant per voxel (float32, on the field's grid). */
  det: Volume<Float32Array>;
  /** 1 where the voxel is folded (any variant <= 0), else 0. */
  foldedMask: Volume<Uint8Array>;
  /** Voxels counted (all, or the mask's nonzero voxels). */
  voxels: number;
  folded: number;
  foldedPercent: number;
  /** Per variant: voxels (counted ones) where that determinant is <= 0. */
  nonPositive: Record<JacobianVariant, number>;
}

/** det of the 3x3 matrix whose columns are m[a..a+3), m[b..b+3), m[c..c+3). */
function detCols(m: Float64Array, a: number, b: number, c: number): number {
  return (
    m[a] * (m[b + 1] * m[c + 2] - m[b + 2] * m[c + 1]) -
    m[b] * (m[a + 1] * m[c + 2] - m[a + 2] * m[c + 1]) +
    m[c] * (m[a + 1] * m[b + 2] - m[a + 2] * m[b + 1])
  );
}

// Star tetrahedra edges in index steps (i, j, k); each edge matrix has determinant 2.
const STAR1 = [
  [-1, -1, 0],
  [-1, 0, -1],
  [0, -1, -1],
];
const STAR2 = [
  [1, 1, 0],
  [0, 1, 1],
  [1, 0, 1],
];

/** Jacobian determinants and folding of x -> x + u(x) (see the header). */
export function jacobianDeterminant(field: Volume, options: { mask?: Volume } = {}): JacobianReport {
  checkField(field);
  const mask = options.mask;
  if (mask) checkMask(mask, field);
  const [ni, nj, nk] = field.size;
  const n3 = field.size;
  const nvox = voxelCount(field.size);
  const u = field.data;
  const D = field.direction;
  const sp = field.spacing;
  // R = S^-1 D^T: world displacement -> displacement in index units.
  const R = new Float64Array(9);
  for (let a = 0; a < 3; a++) for (let r = 0; r < 3; r++) R[a * 3 + r] = D[r * 3 + a] / sp[a];
  const stride = [3, 3 * ni, 3 * ni * nj];
  const starOff1 = STAR1.map((e) => e[0] * stride[0] + e[1] * stride[1] + e[2] * stride[2]);
  const starOff2 = STAR2.map((e) => e[0] * stride[0] + e[1] * stride[1] + e[2] * stride[2]);
  const full = n3.every((s) => s > 1);

  // fb: for axis a, forward column at 6a, backward column at 6a + 3 (identity + derivative).
  const fb = new Float64Array(18);
  const cen = new Float64Array(9);
  const star = new Float64Array(9);
  const w = new Float64Array(3);
  /** w = R (u[p] - u[q]) */
  const diff = (p: number, q: number): void => {
    const dx = u[p] - u[q];
    const dy = u[p + 1] - u[q + 1];
    const dz = u[p + 2] - u[q + 2];
    w[0] = R[0] * dx + R[1] * dy + R[2] * dz;
    w[1] = R[3] * dx + R[4] * dy + R[5] * dz;
    w[2] = R[6] * dx + R[7] * dy + R[8] * dz;
  };
  const starDet = (edges: number[][], offs: number[], p: number): number => {
    for (let e = 0; e < 3; e++) {
      diff(p + offs[e], p);
      for (let r = 0; r < 3; r++) star[3 * e + r] = edges[e][r] + w[r];
    }
    return detCols(star, 0, 3, 6) / 2;
  };

  const det = new Float32Array(nvox);
  const foldedData = new Uint8Array(nvox);
  const nonPositive = Object.fromEntries(JACOBIAN_VARIANTS.map((v) => [v, 0])) as Record<JacobianVariant, number>;
  const oneSided = JACOBIAN_VARIANTS.slice(1, 9);
  const hasPrev = [false, false, false];
  const hasNext = [false, false, false];
  const idx = new Int32Array(3);
  let voxels = 0;
  let folded = 0;
  let n = 0;
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, n++) {
        idx[0] = i;
        idx[1] = j;
        idx[2] = k;
        const p = 3 * n;
        for (let a = 0; a < 3; a++) {
          hasPrev[a] = idx[a] > 0;
          hasNext[a] = idx[a] < n3[a] - 1;
          const s = stride[a];
          const f = 6 * a;
          const b = f + 3;
          if (hasNext[a]) diff(p + s, p);
          else if (hasPrev[a]) diff(p, p - s);
          else w[0] = w[1] = w[2] = 0;
          for (let r = 0; r < 3; r++) fb[f + r] = (r === a ? 1 : 0) + w[r];
          if (hasPrev[a]) {
            if (hasNext[a]) diff(p, p - s); // else w already holds the backward difference
            for (let r = 0; r < 3; r++) fb[b + r] = (r === a ? 1 : 0) + w[r];
          } else for (let r = 0; r < 3; r++) fb[b + r] = fb[f + r];
          for (let r = 0; r < 3; r++) cen[3 * a + r] = (fb[f + r] + fb[b + r]) / 2;
        }
        const central = detCols(cen, 0, 3, 6);
        det[n] = central;
        if (mask && mask.data[n] === 0) continue;
        voxels++;
        let isFolded = false;
        if (central <= 0) {
          nonPositive['000']++;
          isFolded = true;
        }
        for (let v = 0; v < 8; v++) {
          // bit 2: axis i backward, bit 1: axis j, bit 0: axis k (order of JACOBIAN_VARIANTS)
          const bi = (v >> 2) & 1;
          const bj = (v >> 1) & 1;
          const bk = v & 1;
          if (!(bi ? hasPrev[0] : hasNext[0]) && ni > 1) continue;
          if (!(bj ? hasPrev[1] : hasNext[1]) && nj > 1) continue;
          if (!(bk ? hasPrev[2] : hasNext[2]) && nk > 1) continue;
          if (detCols(fb, 3 * bi, 6 + 3 * bj, 12 + 3 * bk) <= 0) {
            nonPositive[oneSided[v]]++;
            isFolded = true;
          }
        }
        if (full && hasPrev[0] && hasPrev[1] && hasPrev[2] && starDet(STAR1, starOff1, p) <= 0) {
          nonPositive['j1*']++;
          isFolded = true;
        }
        if (full && hasNext[0] && hasNext[1] && hasNext[2] && starDet(STAR2, starOff2, p) <= 0) {
          nonPositive['j2*']++;
          isFolded = true;
        }
        if (isFolded) {
          foldedData[n] = 1;
          folded++;
        }
      }

  return jacobianReport(field, det, foldedData, { voxels, folded, nonPositive }, mask);
}

/** The report of per-voxel central determinants and fold flags (its statistics over the mask). */
export function jacobianReport(
  field: Volume,
  det: Float32Array,
  foldedData: Uint8Array,
  counts: { voxels: number; folded: number; nonPositive: Record<JacobianVariant, number> },
  mask?: Volume,
): JacobianReport {
  const geometry = {
    size: [...field.size] as Vec3,
    spacing: [...field.spacing] as Vec3,
    origin: [...field.origin] as Vec3,
    direction: [...field.direction] as Volume['direction'],
  };
  const stats = valueStats(det, mask ? (v) => mask.data[v] !== 0 : undefined);
  return {
    det: makeVolume({ ...geometry, data: det, meta: { description: 'Jacobian determinant (central differences)' } }),
    foldedMask: makeVolume({ ...geometry, data: foldedData, meta: { description: 'folded voxels' } }),
    voxels: counts.voxels,
    folded: counts.folded,
    foldedPercent: counts.voxels > 0 ? (100 * counts.folded) / counts.voxels : 0,
    min: stats.min,
    max: stats.max,
    mean: stats.mean,
    std: stats.std,
    nonPositive: counts.nonPositive,
  };
}
