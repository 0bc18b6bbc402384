/**
 * Resampling a volume onto another grid (any origin, spacing, direction and size):
 * trilinear for images, nearest neighbour for label maps. Positions are matched in world
 * coordinates (LPS mm), so a volume resampled onto its own grid is returned unchanged.
 */
import { INTEGER_RANGE, cellFraction, cellStart, trilinearAt } from './interpolate.ts';
import {
  applyAffine,
  column,
  dot,
  indexToWorldMatrix,
  worldToIndexMatrix,
  type Affine3x4,
  type Geometry,
} from './geometry.ts';
import {
  allocateVoxels,
  makeVolume,
  voxelCount,
  voxelTypeOf,
  type Mat3,
  type Vec3,
  type Volume,
  type VoxelArray,
  type VoxelType,
} from './volume.ts';

export type Interpolation = 'linear' | 'nearest';

export interface ResampleOptions {
  interpolation?: Interpolation;
  /** Value for points outside the input (default 0; use -1024 for CT in HU). */
  fill?: number;
  /** Voxel type of the output (default: the input's; integer outputs are rounded and clamped). */
  outputType?: VoxelType;
}

/** Compose: target continuous index -> world -> source continuous index. */
export function targetToSourceIndex(target: Geometry, source: Geometry): Affine3x4 {
  const a = indexToWorldMatrix(target);
  const b = worldToIndexMatrix(source);
  const m: number[] = [];
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 4; c++) {
      let v = b[r * 4] * a[c] + b[r * 4 + 1] * a[4 + c] + b[r * 4 + 2] * a[8 + c];
      if (c === 3) v += b[r * 4 + 3];
      m.push(v);
    }
  }
  return m as Affine3x4;
}

export function resample(volume: Volume, target: Geometry, options: ResampleOptions = {}): Volume {
  const interp = options.interpolation ?? 'linear';
  const fill = options.fill ?? 0;
  const outType = options.outputType ?? voxelTypeOf(volume.data);
  const range = INTEGER_RANGE[outType];
  const nc = volume.components;
  const out = allocateVoxels(outType, voxelCount(target.size) * nc);
  const m = targetToSourceIndex(target, volume);
  const [ni, nj, nk] = volume.size;
  const src = volume.data;
  const sj = ni * nc;
  const sk = ni * nj * nc;
  const [ti, tj, tk] = target.size;
  let o = 0;
  const vals = new Float64Array(nc);
  const put = (v: number): void => {
    if (range) {
      v = Math.round(v);
      v = v < range[0] ? range[0] : v > range[1] ? range[1] : v;
    }
    out[o++] = v;
  };
  if (interp === 'linear' && nc === 1) linearScalar(src, volume.size, m, target.size, out, fill, range);
  else
    for (let k = 0; k < tk; k++) {
      for (let j = 0; j < tj; j++) {
        // source index at i = 0 of this row, and its increment per i
        let x = m[1] * j + m[2] * k + m[3];
        let y = m[5] * j + m[6] * k + m[7];
        let z = m[9] * j + m[10] * k + m[11];
        for (let i = 0; i < ti; i++, x += m[0], y += m[4], z += m[8]) {
          if (interp === 'nearest') {
            const a = Math.round(x);
            const b = Math.round(y);
            const c = Math.round(z);
            if (a < 0 || b < 0 || c < 0 || a >= ni || b >= nj || c >= nk) {
              for (let q = 0; q < nc; q++) put(fill);
            } else {
              const base = a * nc + b * sj + c * sk;
              for (let q = 0; q < nc; q++) out[o++] = src[base + q];
            }
            continue;
          }
          // Trilinear, inside the voxel-centre hull [0, n-1] of each axis (with 1e-6 slack); fill outside.
          if (!trilinearAt(src, volume.size, nc, x, y, z, 'fill', vals)) {
            for (let q = 0; q < nc; q++) put(fill);
            continue;
          }
          for (let q = 0; q < nc; q++) put(vals[q]);
        }
      }
    }
  return makeVolume({
    ...target,
    components: nc,
    data: out,
    meta: { ...volume.meta, warnings: [...volume.meta.warnings] },
  });
}

/**
 * The grid with the given spacing (and by default the volume's own direction) that covers the
 * volume's extent: the first voxel centre stays where it was, and the size is the number of
 * whole new voxels inside the old extent (at least 1), as ITK/SimpleITK resampling scripts do.
 */
export function gridWithSpacing(volume: Geometry, spacing: Vec3, direction?: Mat3): Geometry {
  const dir = direction ?? volume.direction;
  if (!direction || dir.every((v, i) => Math.abs(v - volume.direction[i]) < 1e-9)) {
    const size = [0, 1, 2].map((a) =>
      Math.max(1, Math.floor(((volume.size[a] - 1) * volume.spacing[a]) / spacing[a] + 1e-6) + 1),
    ) as Vec3;
    return { size, spacing: [...spacing] as Vec3, origin: [...volume.origin] as Vec3, direction: [...dir] as Mat3 };
  }
  // Another direction: cover the world bounding box of the corners, measured along the new axes.
  const lo: Vec3 = [Infinity, Infinity, Infinity];
  const hi: Vec3 = [-Infinity, -Infinity, -Infinity];
  const toWorld = indexToWorldMatrix(volume);
  for (let c = 0; c < 8; c++) {
    const p = applyAffine(toWorld, [
      c & 1 ? volume.size[0] - 1 : 0,
      c & 2 ? volume.size[1] - 1 : 0,
      c & 4 ? volume.size[2] - 1 : 0,
    ]);
    for (let a = 0; a < 3; a++) {
      const t = dot(p, column(dir, a));
      lo[a] = Math.min(lo[a], t);
      hi[a] = Math.max(hi[a], t);
    }
  }
  const size = [0, 1, 2].map((a) => Math.max(1, Math.floor((hi[a] - lo[a]) / spacing[a] + 1e-6) + 1)) as Vec3;
  const origin: Vec3 = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    const col = column(dir, a);
    for (let r = 0; r < 3; r++) origin[r] += col[r] * lo[a];
  }
  return { size, spacing: [...spacing] as Vec3, origin, direction: [...dir] as Mat3 };
}

/**
 * resample's loop for one component and trilinear interpolation (the common case: CT images), the
 * arithmetic of interpolate.ts trilinearAt in 'fill' mode written out, so that the engine compiles it
 * for the few voxel types it meets here instead of the generic sampler shared by every caller.
 * `m` maps target indices to source indices; `eps` is the slack beyond the hull of the source's voxel
 * centres (1e-6: trilinearAt's 'fill', resample's rule; 0.5: its 'extent', the warps' rule). `slices`:
 * the target slices [k0, k1) written (out from out[0]; default all).
 */
export function linearScalar(
  src: ArrayLike<number>,
  size: readonly number[],
  m: Affine3x4,
  tsize: readonly number[],
  out: VoxelArray,
  fill: number,
  range: [number, number] | undefined,
  eps = 1e-6,
  slices: readonly [number, number] = [0, tsize[2]],
): void {
  const [ni, nj, nk] = size;
  const [ti, tj] = tsize;
  const dx = ni > 1 ? 1 : 0;
  const dy = nj > 1 ? ni : 0;
  const dz = nk > 1 ? ni * nj : 0;
  let o = 0;
  for (let k = slices[0]; k < slices[1]; k++)
    for (let j = 0; j < tj; j++) {
      let x = m[1] * j + m[2] * k + m[3];
      let y = m[5] * j + m[6] * k + m[7];
      let z = m[9] * j + m[10] * k + m[11];
      for (let i = 0; i < ti; i++, x += m[0], y += m[4], z += m[8]) {
        let v: number;
        if (x < -eps || y < -eps || z < -eps || x > ni - 1 + eps || y > nj - 1 + eps || z > nk - 1 + eps) v = fill;
        else {
          const x0 = cellStart(x, ni);
          const y0 = cellStart(y, nj);
          const z0 = cellStart(z, nk);
          const fx = cellFraction(x, x0, ni);
          const fy = cellFraction(y, y0, nj);
          const fz = cellFraction(z, z0, nk);
          const p = x0 + y0 * ni + z0 * ni * nj;
          const c00 = src[p] + (src[p + dx] - src[p]) * fx;
          const c10 = src[p + dy] + (src[p + dy + dx] - src[p + dy]) * fx;
          const c01 = src[p + dz] + (src[p + dz + dx] - src[p + dz]) * fx;
          const c11 = src[p + dz + dy] + (src[p + dz + dy + dx] - src[p + dz + dy]) * fx;
          const c0 = c00 + (c10 - c00) * fy;
          const c1 = c01 + (c11 - c01) * fy;
          v = c0 + (c1 - c0) * fz;
        }
        if (range) {
          v = Math.round(v);
          v = v < range[0] ? range[0] : v > range[1] ? range[1] : v;
        }
        out[o++] = v;
      }
    }
}

/**
 * The source voxels that linearScalar(src, size, m, tsize, ..., eps) reads: 1 for each, else 0 (its
 * index arithmetic repeated: the incremental positions, the hull test, the cells' corners). A caller
 * that fills only these voxels gets the same resampled values as with all of them filled.
 */
export function linearScalarFootprint(
  size: readonly number[],
  m: Affine3x4,
  tsize: readonly number[],
  eps = 1e-6,
): Uint8Array {
  const [ni, nj, nk] = size;
  const [ti, tj, tk] = tsize;
  const read = new Uint8Array(ni * nj * nk);
  const dx = ni > 1 ? 1 : 0;
  const dy = nj > 1 ? ni : 0;
  const dz = nk > 1 ? ni * nj : 0;
  for (let k = 0; k < tk; k++)
    for (let j = 0; j < tj; j++) {
      let x = m[1] * j + m[2] * k + m[3];
      let y = m[5] * j + m[6] * k + m[7];
      let z = m[9] * j + m[10] * k + m[11];
      for (let i = 0; i < ti; i++, x += m[0], y += m[4], z += m[8]) {
        if (x < -eps || y < -eps || z < -eps || x > ni - 1 + eps || y > nj - 1 + eps || z > nk - 1 + eps) continue;
        const p = cellStart(x, ni) + cellStart(y, nj) * ni + cellStart(z, nk) * ni * nj;
        read[p] = read[p + dx] = read[p + dy] = read[p + dy + dx] = 1;
        read[p + dz] = read[p + dz + dx] = read[p + dz + dy] = read[p + dz + dy + dx] = 1;
      }
    }
  return read;
}

/** Resample to an isotropic or anisotropic spacing over the same extent (e.g. 2 mm for the network). */
export function resampleToSpacing(volume: Volume, spacing: Vec3, options: ResampleOptions = {}): Volume {
  return resample(volume, gridWithSpacing(volume, spacing), options);
}
