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
import { makeVolume, type Vec3, type Volume } from '../../volume/volume.ts';
import type { Geometry } from '../../volume/geometry.ts';
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
  const s = jacobianSlices(field, field.data, 0, 0, field.size[2], mask);
  return jacobianReport(field, s.det, s.foldedData, s, mask);
}

/** jacobianSlices' answer: determinants and fold flags of its slices, the counts over them. */
export interface JacobianSlab {
  /** Central determinants of the slices (from their first voxel). */
  det: Float32Array;
  /** 1 where folded. */
  foldedData: Uint8Array;
  voxels: number;
  folded: number;
  nonPositive: Record<JacobianVariant, number>;
}

/**
 * jacobianDeterminant's numbers for the slices [k0, k1) of the field's grid (the mask, when given,
 * covers the whole grid), from `u`: the field's values on its slices from kBase on (3 per voxel, from
 * u[0]), which must include slices k0 - 1 and k1 where the grid has them (the differences reach them).
 * `into`: arrays for the determinants and flags (zeroed; written from their start) instead of new ones.
 */
export function jacobianSlices(
  grid: Geometry,
  u: ArrayLike<number>,
  kBase: number,
  k0: number,
  k1: number,
  mask?: Volume,
  into?: { det: Float32Array; foldedData: Uint8Array },
): JacobianSlab {
  const [ni, nj, nk] = grid.size;
  const n3 = grid.size;
  // u's and the outputs' first voxels (global voxel numbers)
  const uOff = kBase * ni * nj;
  const oOff = k0 * ni * nj;
  const nvox = ni * nj * (k1 - k0);
  const D = grid.direction;
  const sp = grid.spacing;
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

  const det = into?.det ?? new Float32Array(nvox);
  const foldedData = into?.foldedData ?? new Uint8Array(nvox);
  const nonPositive = Object.fromEntries(JACOBIAN_VARIANTS.map((v) => [v, 0])) as Record<JacobianVariant, number>;
  const oneSided = JACOBIAN_VARIANTS.slice(1, 9);
  const hasPrev = [false, false, false];
  const hasNext = [false, false, false];
  const idx = new Int32Array(3);
  let voxels = 0;
  let folded = 0;
  // every voxel at the grid's faces (some variant lacks a neighbour there)
  const generalVoxel = (i: number, j: number, k: number, n: number): void => {
    idx[0] = i;
    idx[1] = j;
    idx[2] = k;
    const p = 3 * (n - uOff);
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
    det[n - oOff] = central;
    if (mask && mask.data[n] === 0) return;
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
      foldedData[n - oOff] = 1;
      folded++;
    }
  };
  const inner = full ? interiorRows(u, grid.size, uOff, oOff, mask, R, det, foldedData) : null;
  for (let k = k0, n = oOff; k < k1; k++)
    for (let j = 0; j < nj; j++, n += ni) {
      if (!inner || k === 0 || k === nk - 1 || j === 0 || j === nj - 1) {
        for (let i = 0; i < ni; i++) generalVoxel(i, j, k, n + i);
        continue;
      }
      generalVoxel(0, j, k, n);
      inner.row(n + 1, n + ni - 1);
      generalVoxel(ni - 1, j, k, n + ni - 1);
    }
  if (inner) {
    voxels += inner.voxels;
    folded += inner.folded;
    JACOBIAN_VARIANTS.forEach((name, v) => (nonPositive[name] += inner.nonPositive[v]));
  }

  return { det, foldedData, voxels, folded, nonPositive };
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
  const stats = valueStats(
    det,
    mask ? (mask.data instanceof Uint8Array ? mask.data : (v) => mask.data[v] !== 0) : undefined,
  );
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

/** detCols of the columns (a0, a1, a2), (b0, b1, b2), (c0, c1, c2): the same arithmetic, in locals. */
function det3(
  a0: number,
  a1: number,
  a2: number,
  b0: number,
  b1: number,
  b2: number,
  c0: number,
  c1: number,
  c2: number,
): number {
  return a0 * (b1 * c2 - b2 * c1) - b0 * (a1 * c2 - a2 * c1) + c0 * (a1 * b2 - a2 * b1);
}

/**
 * The voxels with both neighbours along every axis (all variants defined), written out with no
 * per-voxel branches on the faces or arrays of columns: the arithmetic of jacobianDeterminant's
 * general loop operation for operation (each difference R (u[q] - u[p]) with the same rounding, the
 * identity added as there), so the determinants and counts are identical. `row(from, to)` handles the
 * voxels [from, to) of one interior row; the counts accumulate (per variant in JACOBIAN_VARIANTS order).
 */
function interiorRows(
  u: ArrayLike<number>,
  size: readonly number[],
  uOff: number,
  oOff: number,
  mask: Volume | undefined,
  R: Float64Array,
  det: Float32Array,
  foldedData: Uint8Array,
) {
  const m = mask?.data;
  const [ni, nj] = size;
  const sj = 3 * ni;
  const sk = 3 * ni * nj;
  const [r0, r1, r2, r3, r4, r5, r6, r7, r8] = R;
  const counts = new Float64Array(JACOBIAN_VARIANTS.length);
  // star edges' offsets (see STAR1, STAR2)
  const s10 = -3 - sj;
  const s11 = -3 - sk;
  const s12 = -sj - sk;
  const s20 = 3 + sj;
  const s21 = sj + sk;
  const s22 = 3 + sk;
  const state = {
    voxels: 0,
    folded: 0,
    nonPositive: counts,
    row(from: number, to: number): void {
      let voxels = 0;
      let folded = 0;
      for (let n = from; n < to; n++) {
        const p = 3 * (n - uOff);
        const ux = u[p];
        const uy = u[p + 1];
        const uz = u[p + 2];
        // forward (f) and backward (b) columns along i, j, k: e_a + R (u[q] - u[p]) as diff() forms them
        let dx = u[p + 3] - ux;
        let dy = u[p + 4] - uy;
        let dz = u[p + 5] - uz;
        const fi0 = 1 + (r0 * dx + r1 * dy + r2 * dz);
        const fi1 = 0 + (r3 * dx + r4 * dy + r5 * dz);
        const fi2 = 0 + (r6 * dx + r7 * dy + r8 * dz);
        dx = ux - u[p - 3];
        dy = uy - u[p - 2];
        dz = uz - u[p - 1];
        const bi0 = 1 + (r0 * dx + r1 * dy + r2 * dz);
        const bi1 = 0 + (r3 * dx + r4 * dy + r5 * dz);
        const bi2 = 0 + (r6 * dx + r7 * dy + r8 * dz);
        dx = u[p + sj] - ux;
        dy = u[p + sj + 1] - uy;
        dz = u[p + sj + 2] - uz;
        const fj0 = 0 + (r0 * dx + r1 * dy + r2 * dz);
        const fj1 = 1 + (r3 * dx + r4 * dy + r5 * dz);
        const fj2 = 0 + (r6 * dx + r7 * dy + r8 * dz);
        dx = ux - u[p - sj];
        dy = uy - u[p - sj + 1];
        dz = uz - u[p - sj + 2];
        const bj0 = 0 + (r0 * dx + r1 * dy + r2 * dz);
        const bj1 = 1 + (r3 * dx + r4 * dy + r5 * dz);
        const bj2 = 0 + (r6 * dx + r7 * dy + r8 * dz);
        dx = u[p + sk] - ux;
        dy = u[p + sk + 1] - uy;
        dz = u[p + sk + 2] - uz;
        const fk0 = 0 + (r0 * dx + r1 * dy + r2 * dz);
        const fk1 = 0 + (r3 * dx + r4 * dy + r5 * dz);
        const fk2 = 1 + (r6 * dx + r7 * dy + r8 * dz);
        dx = ux - u[p - sk];
        dy = uy - u[p - sk + 1];
        dz = uz - u[p - sk + 2];
        const bk0 = 0 + (r0 * dx + r1 * dy + r2 * dz);
        const bk1 = 0 + (r3 * dx + r4 * dy + r5 * dz);
        const bk2 = 1 + (r6 * dx + r7 * dy + r8 * dz);
        const central = det3(
          (fi0 + bi0) / 2,
          (fi1 + bi1) / 2,
          (fi2 + bi2) / 2,
          (fj0 + bj0) / 2,
          (fj1 + bj1) / 2,
          (fj2 + bj2) / 2,
          (fk0 + bk0) / 2,
          (fk1 + bk1) / 2,
          (fk2 + bk2) / 2,
        );
        det[n - oOff] = central;
        if (m && m[n] === 0) continue;
        voxels++;
        // bit b set: variant b of JACOBIAN_VARIANTS is <= 0
        let fold = central <= 0 ? 1 : 0;
        // one-sided variants in JACOBIAN_VARIANTS order: '+++', '++-', '+-+', '+--', '-++', ...
        if (det3(fi0, fi1, fi2, fj0, fj1, fj2, fk0, fk1, fk2) <= 0) fold |= 2;
        if (det3(fi0, fi1, fi2, fj0, fj1, fj2, bk0, bk1, bk2) <= 0) fold |= 4;
        if (det3(fi0, fi1, fi2, bj0, bj1, bj2, fk0, fk1, fk2) <= 0) fold |= 8;
        if (det3(fi0, fi1, fi2, bj0, bj1, bj2, bk0, bk1, bk2) <= 0) fold |= 16;
        if (det3(bi0, bi1, bi2, fj0, fj1, fj2, fk0, fk1, fk2) <= 0) fold |= 32;
        if (det3(bi0, bi1, bi2, fj0, fj1, fj2, bk0, bk1, bk2) <= 0) fold |= 64;
        if (det3(bi0, bi1, bi2, bj0, bj1, bj2, fk0, fk1, fk2) <= 0) fold |= 128;
        if (det3(bi0, bi1, bi2, bj0, bj1, bj2, bk0, bk1, bk2) <= 0) fold |= 256;
        // star variants: edges e + R (u[p + e] - u[p]), determinant / 2
        if (starAt(p, s10, s11, s12, -1, -1, 0, -1, 0, -1, 0, -1, -1) <= 0) fold |= 512;
        if (starAt(p, s20, s21, s22, 1, 1, 0, 0, 1, 1, 1, 0, 1) <= 0) fold |= 1024;
        if (fold !== 0) {
          foldedData[n - oOff] = 1;
          folded++;
          for (let b = 0; b < counts.length; b++) if (fold & (1 << b)) counts[b]++;
        }
      }
      state.voxels += voxels;
      state.folded += folded;
    },
  };
  return state;

  /** The star determinant with edges (ea, eb, ec) at offsets oa, ob, oc from p. */
  function starAt(
    p: number,
    oa: number,
    ob: number,
    oc: number,
    ea0: number,
    ea1: number,
    ea2: number,
    eb0: number,
    eb1: number,
    eb2: number,
    ec0: number,
    ec1: number,
    ec2: number,
  ): number {
    const ux = u[p];
    const uy = u[p + 1];
    const uz = u[p + 2];
    let dx = u[p + oa] - ux;
    let dy = u[p + oa + 1] - uy;
    let dz = u[p + oa + 2] - uz;
    const a0 = ea0 + (r0 * dx + r1 * dy + r2 * dz);
    const a1 = ea1 + (r3 * dx + r4 * dy + r5 * dz);
    const a2 = ea2 + (r6 * dx + r7 * dy + r8 * dz);
    dx = u[p + ob] - ux;
    dy = u[p + ob + 1] - uy;
    dz = u[p + ob + 2] - uz;
    const b0 = eb0 + (r0 * dx + r1 * dy + r2 * dz);
    const b1 = eb1 + (r3 * dx + r4 * dy + r5 * dz);
    const b2 = eb2 + (r6 * dx + r7 * dy + r8 * dz);
    dx = u[p + oc] - ux;
    dy = u[p + oc + 1] - uy;
    dz = u[p + oc + 2] - uz;
    const c0 = ec0 + (r0 * dx + r1 * dy + r2 * dz);
    const c1 = ec1 + (r3 * dx + r4 * dy + r5 * dz);
    const c2 = ec2 + (r6 * dx + r7 * dy + r8 * dz);
    return det3(a0, a1, a2, b0, b1, b2, c0, c1, c2) / 2;
  }
}
