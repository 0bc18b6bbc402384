/**
 * Trilinear interpolation at a continuous index, shared by resampling, warping and field sampling,
 * and the value ranges of the integer voxel types (outputs are rounded and clamped into them).
 */
import type { Vec3, VoxelType } from './volume.ts';

export const INTEGER_RANGE: Partial<Record<VoxelType, [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
};

/**
 * Lower corner of the interpolation cell of index coordinate a on an axis of n samples: floor(a) kept
 * within [0, n - 2] (0 on an axis of one sample). Shared by every trilinear sampler on the host
 * (trilinearAt, resample.ts' fast path, stage-field.ts).
 */
export function cellStart(a: number, n: number): number {
  const a0 = Math.floor(a);
  return a0 > n - 2 ? (n > 1 ? n - 2 : 0) : a0 < 0 ? 0 : a0;
}

/** a's fraction within the cell from a0 (0 on an axis of one sample), clamped to [0, 1] unless `clamp` is false. */
export function cellFraction(a: number, a0: number, n: number, clamp = true): number {
  const f = n > 1 ? a - a0 : 0;
  return clamp ? (f < 0 ? 0 : f > 1 ? 1 : f) : f;
}

/**
 * Trilinear sample of an interleaved nc-component grid at continuous index (x, y, z), written to
 * out[o .. o+nc). mode 'fill': returns false (writing nothing) outside the hull [0, n-1] with 1e-6
 * slack, as resample.ts; 'extent': returns false outside the physical extent [-0.5, n-0.5] (voxel
 * centres +- half a voxel, as ITK) and gives the border values in the half voxel beyond the hull
 * (the warps of register/field/warp.ts); 'border' clamps to the hull; 'linear' extrapolates from
 * the border cell. Returns true when the point lies inside the hull ('extent': inside the extent).
 */
export function trilinearAt(
  src: ArrayLike<number>,
  size: Vec3,
  nc: number,
  x: number,
  y: number,
  z: number,
  mode: 'fill' | 'extent' | 'border' | 'linear',
  out: { [n: number]: number },
  o = 0,
): boolean {
  const ni = size[0];
  const nj = size[1];
  const nk = size[2];
  const eps = mode === 'extent' ? 0.5 : 1e-6;
  const inside = !(x < -eps || y < -eps || z < -eps || x > ni - 1 + eps || y > nj - 1 + eps || z > nk - 1 + eps);
  if (!inside && (mode === 'fill' || mode === 'extent')) return false;
  const clamp = mode !== 'linear';
  const x0 = cellStart(x, ni);
  const y0 = cellStart(y, nj);
  const z0 = cellStart(z, nk);
  const fx = cellFraction(x, x0, ni, clamp);
  const fy = cellFraction(y, y0, nj, clamp);
  const fz = cellFraction(z, z0, nk, clamp);
  const sj = ni * nc;
  const sk = sj * nj;
  const dx = ni > 1 ? nc : 0;
  const dy = nj > 1 ? sj : 0;
  const dz = nk > 1 ? sk : 0;
  const base = x0 * nc + y0 * sj + z0 * sk;
  for (let q = 0; q < nc; q++) {
    const p = base + q;
    const c00 = src[p] + (src[p + dx] - src[p]) * fx;
    const c10 = src[p + dy] + (src[p + dy + dx] - src[p + dy]) * fx;
    const c01 = src[p + dz] + (src[p + dz + dx] - src[p + dz]) * fx;
    const c11 = src[p + dz + dy] + (src[p + dz + dy + dx] - src[p + dz + dy]) * fx;
    const c0 = c00 + (c10 - c00) * fy;
    const c1 = c01 + (c11 - c01) * fy;
    out[o + q] = c0 + (c1 - c0) * fz;
  }
  return inside;
}
