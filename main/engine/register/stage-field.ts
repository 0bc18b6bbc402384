/**
 * The cascade's transform as one displacement field: u(x) = A x - x + Σ_s v_s(x) on any grid, where A
 * is the affine (fixed -> moving, LPS mm) and each v_s a correction field added in moving space (the
 * SAM-coarse control grid, the SAM-deform field), read trilinearly in its own grid with the 'border'
 * rule of field.ts. Conventions: see field/field.ts (3 components, mm, LPS, fixed point x -> x + u(x)).
 */
import { indexToWorldMatrix, worldToIndexMatrix, type Geometry } from '../volume/geometry.ts';
import type { Affine3x4 } from './affine-fit.ts';
import { affineDisplacements, checkField, zeroField, type Field } from './field/field.ts';
import { cellFraction, cellStart } from '../volume/interpolate.ts';

export function stageField(grid: Geometry, affine: Affine3x4, corrections: Field[] = []): Field {
  const out = zeroField(grid, 'displacement field (cascade)');
  stageFieldSlices(grid, affine, corrections, 0, grid.size[2], out.data as Float32Array);
  return out;
}

/** stageField's values for the slices [k0, k1) of the grid, into out (3 per voxel, from out[0]). */
export function stageFieldSlices(
  grid: Geometry,
  affine: Affine3x4,
  corrections: Field[],
  k0: number,
  k1: number,
  out: Float32Array,
): void {
  affineDisplacements(grid, affine, k0, k1, out);
  for (const c of corrections) addCorrection(out, grid, c, k0, k1);
}

/**
 * d += v(x) for every voxel x of the slices [k0, k1) of `grid` (d: 3 values per voxel, from d[0]), v read trilinearly in its own grid
 * with the 'border' rule: the arithmetic of field.ts fieldSampler + interpolate.ts trilinearAt
 * (border mode), written out for a float32 3-component field so the engine compiles one monomorphic
 * loop (the generic sampler, shared by every voxel type, ran at about 70 ns a sample).
 */
function addCorrection(d: Float32Array, grid: Geometry, correction: Field, k0: number, k1: number): void {
  checkField(correction, 'correction field');
  const src = correction.data instanceof Float32Array ? correction.data : Float32Array.from(correction.data);
  const m = indexToWorldMatrix(grid);
  const w = worldToIndexMatrix(correction);
  const [ni, nj] = grid.size;
  const [ci, cj, ck] = correction.size;
  const sj = ci * 3;
  const sk = sj * cj;
  const dx = ci > 1 ? 3 : 0;
  const dy = cj > 1 ? sj : 0;
  const dz = ck > 1 ? sk : 0;
  if (axisAligned(m) && axisAligned(w)) {
    addCorrectionAligned(d, grid, src, correction.size, m, w, k0, k1);
    return;
  }
  let n = 0;
  for (let k = k0; k < k1; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, n += 3) {
        const x = m[0] * i + m[1] * j + m[2] * k + m[3];
        const y = m[4] * i + m[5] * j + m[6] * k + m[7];
        const z = m[8] * i + m[9] * j + m[10] * k + m[11];
        const a = w[0] * x + w[1] * y + w[2] * z + w[3];
        const b = w[4] * x + w[5] * y + w[6] * z + w[7];
        const c = w[8] * x + w[9] * y + w[10] * z + w[11];
        const x0 = cellStart(a, ci);
        const y0 = cellStart(b, cj);
        const z0 = cellStart(c, ck);
        const fx = cellFraction(a, x0, ci);
        const fy = cellFraction(b, y0, cj);
        const fz = cellFraction(c, z0, ck);
        addTrilinear(d, n, src, x0 * 3 + y0 * sj + z0 * sk, dx, dy, dz, fx, fy, fz);
      }
}

/** A 3x4 index/world matrix whose linear part is diagonal (its off-diagonal entries exactly 0). */
function axisAligned(m: ArrayLike<number>): boolean {
  return m[1] === 0 && m[2] === 0 && m[4] === 0 && m[6] === 0 && m[8] === 0 && m[9] === 0;
}

/**
 * addCorrection when both grids are axis-aligned (both matrices diagonal, as for most axial CT): the
 * correction's index along each axis then depends on one output index alone (the other terms are
 * exact zeros), so each axis's cells and fractions are computed once, by the same formula, and the
 * loop only blends. The same values as the general loop.
 */
function addCorrectionAligned(
  d: Float32Array,
  grid: Geometry,
  src: Float32Array,
  csize: readonly number[],
  m: ArrayLike<number>,
  w: ArrayLike<number>,
  k0: number,
  k1: number,
): void {
  const [ni, nj] = grid.size;
  const [ci, cj, ck] = csize;
  const sj = ci * 3;
  const sk = sj * cj;
  const dx = ci > 1 ? 3 : 0;
  const dy = cj > 1 ? sj : 0;
  const dz = ck > 1 ? sk : 0;
  /** Cells (as offsets) and fractions along output axis `axis` for indices 0..n-1. */
  const axis = (a: number, n: number, cn: number, stride: number) => {
    const start = new Int32Array(n);
    const frac = new Float64Array(n);
    const idx = [0, 0, 0];
    for (let t = 0; t < n; t++) {
      idx[a] = t;
      const [i, j, k] = idx;
      const x = m[0] * i + m[1] * j + m[2] * k + m[3];
      const y = m[4] * i + m[5] * j + m[6] * k + m[7];
      const z = m[8] * i + m[9] * j + m[10] * k + m[11];
      const c = w[4 * a] * x + w[4 * a + 1] * y + w[4 * a + 2] * z + w[4 * a + 3];
      const c0 = cellStart(c, cn);
      start[t] = c0 * stride;
      frac[t] = cellFraction(c, c0, cn);
    }
    return { start, frac };
  };
  const X = axis(0, ni, ci, 3);
  const Y = axis(1, nj, cj, sj);
  const Z = axis(2, grid.size[2], ck, sk);
  let n = 0;
  for (let k = k0; k < k1; k++) {
    const zk = Z.start[k];
    const fz = Z.frac[k];
    for (let j = 0; j < nj; j++) {
      const yz = Y.start[j] + zk;
      const fy = Y.frac[j];
      for (let i = 0; i < ni; i++, n += 3) {
        addTrilinear(d, n, src, X.start[i] + yz, dx, dy, dz, X.frac[i], fy, fz);
      }
    }
  }
}

/**
 * d[n..n+3) += the trilinear blend of the 3-component cell at src[base] (corner steps dx, dy, dz;
 * fractions fx, fy, fz): the arithmetic of interpolate.ts trilinearAt. (The generic sampler wrote into
 * a float64 buffer first: the same value is added.)
 */
function addTrilinear(
  d: Float32Array,
  n: number,
  src: Float32Array,
  base: number,
  dx: number,
  dy: number,
  dz: number,
  fx: number,
  fy: number,
  fz: number,
): void {
  for (let q = 0; q < 3; q++) {
    const p = base + q;
    const c00 = src[p] + (src[p + dx] - src[p]) * fx;
    const c10 = src[p + dy] + (src[p + dy + dx] - src[p + dy]) * fx;
    const c01 = src[p + dz] + (src[p + dz + dx] - src[p + dz]) * fx;
    const c11 = src[p + dz + dy] + (src[p + dz + dy + dx] - src[p + dz + dy]) * fx;
    const c0 = c00 + (c10 - c00) * fy;
    const c1 = c01 + (c11 - c01) * fy;
    d[n + q] += c0 + (c1 - c0) * fz;
  }
}
