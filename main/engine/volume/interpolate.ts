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
 * Trilinear sample of an interleaved nc-component grid at continuous index (x, y, z), written to
 * out[o .. o+nc). mode 'fill': returns false (writing nothing) outside the hull [0, n-1] with 1e-6
 * slack, as resample.ts; 'border' clamps to the hull; 'linear' extrapolates from the border cell.
 * Returns true when the point lies inside the hull.
 */
export function trilinearAt(
  src: ArrayLike<number>,
  size: Vec3,
  nc: number,
  x: number,
  y: number,
  z: number,
  mode: 'fill' | 'border' | 'linear',
  out: { [n: number]: number },
  o = 0,
): boolean {
  const ni = size[0];
  const nj = size[1];
  const nk = size[2];
  const eps = 1e-6;
  const inside = !(x < -eps || y < -eps || z < -eps || x > ni - 1 + eps || y > nj - 1 + eps || z > nk - 1 + eps);
  if (!inside && mode === 'fill') return false;
  const clamp = mode !== 'linear';
  let x0 = Math.floor(x);
  let y0 = Math.floor(y);
  let z0 = Math.floor(z);
  x0 = x0 > ni - 2 ? ni - 2 : x0 < 0 ? 0 : x0;
  y0 = y0 > nj - 2 ? nj - 2 : y0 < 0 ? 0 : y0;
  z0 = z0 > nk - 2 ? nk - 2 : z0 < 0 ? 0 : z0;
  if (x0 < 0) x0 = 0; // axes of size 1
  if (y0 < 0) y0 = 0;
  if (z0 < 0) z0 = 0;
  let fx = ni > 1 ? x - x0 : 0;
  let fy = nj > 1 ? y - y0 : 0;
  let fz = nk > 1 ? z - z0 : 0;
  if (clamp) {
    fx = fx < 0 ? 0 : fx > 1 ? 1 : fx;
    fy = fy < 0 ? 0 : fy > 1 ? 1 : fy;
    fz = fz < 0 ? 0 : fz > 1 ? 1 : fz;
  }
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
