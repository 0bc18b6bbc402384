/**
 * Warping a moving volume onto the fixed grid with a displacement field or an affine:
 * out(x) = moving(x + u(x)) (field) or moving(A x) (affine), for every voxel centre x of the fixed
 * grid (the field's grid). Trilinear for images, nearest neighbour for label maps; points that
 * fall outside the moving volume get `fill`. Conventions: see field.ts (fields map fixed points to
 * moving points, LPS mm, on the fixed grid; affines are 3x4 world -> world, fixed -> moving).
 *
 * Outside rule: a point is inside the moving volume within its physical extent, the voxel centres
 * +- half a voxel ([-0.5, n-0.5] in index units, as ITK's interpolators and as nearest neighbour
 * here); trilinear between the centres, the border values in the half voxel beyond the outermost
 * centres. (volume/resample.ts fills everything outside the centres' hull [0, n-1]: a warp by a
 * transform within half a voxel of the identity, e.g. a scan registered to itself, would otherwise
 * fill its outermost slices with `fill`.) Inside the hull the values are resample.ts's, so warping
 * with a zero field equals resampling onto the fixed grid there. Multi-component images are
 * interpolated per component (vectors are not reoriented). The loops allocate nothing per voxel.
 */
import { INTEGER_RANGE } from '../../volume/interpolate.ts';
import { InputError } from '../../errors.ts';
import { geometryProblem, worldToIndexMatrix, type Geometry } from '../../volume/geometry.ts';
import { linearScalar, type Interpolation } from '../../volume/resample.ts';
import {
  allocateVoxels,
  makeVolume,
  voxelTypeOf,
  type Vec3,
  type Volume,
  type VoxelArray,
  type VoxelType,
} from '../../volume/volume.ts';
import { checkField, gridToGridAffine, trilinearAt, type Affine } from './field.ts';

export interface WarpOptions {
  /** 'linear' (trilinear, default) for images, 'nearest' for label maps. */
  interpolation?: Interpolation;
  /** Value where x + u(x) falls outside the moving volume (default 0; -1024 for CT in HU). */
  fill?: number;
  /** Voxel type of the output (default: the moving volume's; integer outputs are rounded and clamped). */
  outputType?: VoxelType;
  /** Write the voxels into this array (of the output type; from its start) instead of a new one. */
  into?: VoxelArray;
}

/** The output array: options.into, checked, or a new one. */
function outputArray(outType: VoxelType, count: number, options: WarpOptions): VoxelArray {
  const into = options.into;
  if (!into) return allocateVoxels(outType, count);
  if (voxelTypeOf(into) !== outType || into.length < count)
    throw new Error(`warp: the output array is not ${count} voxels of ${outType}`);
  return into;
}

/** Writes interpolated moving values, voxel after voxel, into `out`. */
interface Writer {
  out: VoxelArray;
  /** Interpolate the moving volume at continuous index (x, y, z) and append the nc values. */
  put(x: number, y: number, z: number): void;
}

function makeWriter(moving: Volume, outCount: number, options: WarpOptions): Writer {
  const interp = options.interpolation ?? 'linear';
  if (interp !== 'linear' && interp !== 'nearest') throw new InputError('interpolation', `unknown mode ${interp}`);
  const fill = options.fill ?? 0;
  const outType = options.outputType ?? voxelTypeOf(moving.data);
  const range = INTEGER_RANGE[outType];
  const lo = range ? range[0] : 0;
  const hi = range ? range[1] : 0;
  const nc = moving.components;
  const out = outputArray(outType, outCount * nc, options);
  const src = moving.data;
  const size = moving.size;
  const [ni, nj, nk] = size;
  const sj = ni * nc;
  const sk = sj * nj;
  const vals = new Float64Array(nc);
  let o = 0;
  const store = (v: number): void => {
    if (range) {
      v = Math.round(v);
      v = v < lo ? lo : v > hi ? hi : v;
    }
    out[o++] = v;
  };
  if (interp === 'nearest') {
    return {
      out,
      put(x, y, z) {
        const a = Math.round(x);
        const b = Math.round(y);
        const c = Math.round(z);
        if (a < 0 || b < 0 || c < 0 || a >= ni || b >= nj || c >= nk) {
          for (let q = 0; q < nc; q++) store(fill);
        } else {
          const base = a * nc + b * sj + c * sk;
          for (let q = 0; q < nc; q++) store(src[base + q]);
        }
      },
    };
  }
  return {
    out,
    put(x, y, z) {
      if (trilinearAt(src, size, nc, x, y, z, 'extent', vals)) for (let q = 0; q < nc; q++) store(vals[q]);
      else for (let q = 0; q < nc; q++) store(fill);
    },
  };
}

/** The warped image as a volume on `grid` (the moving image's meta, a description of the warp). */
export function warpResult(moving: Volume, grid: Geometry, data: VoxelArray, how: string): Volume {
  return makeVolume({
    size: [...grid.size] as Vec3,
    spacing: [...grid.spacing] as Vec3,
    origin: [...grid.origin] as Vec3,
    direction: [...grid.direction] as Geometry['direction'],
    components: moving.components,
    data,
    meta: {
      ...moving.meta,
      warnings: [...moving.meta.warnings],
      description: `${moving.meta.description ?? 'volume'} (warped, ${how})`,
    },
  });
}

/** out(x) = moving(x + u(x)) on the field's (fixed) grid. */
export function warpVolume(moving: Volume, field: Volume, options: WarpOptions = {}): Volume {
  checkField(field);
  const out = warpSlices(moving, field, field.data, 0, field.size[2], options);
  return warpResult(moving, field, out, `displacement field, ${options.interpolation ?? 'linear'}`);
}

/**
 * warpVolume's voxels for the slices [k0, k1) of the field's grid, from `u`: the field's values on
 * those slices (3 per voxel, from u[0]).
 */
export function warpSlices(
  moving: Volume,
  fieldGrid: Geometry,
  u: ArrayLike<number>,
  k0: number,
  k1: number,
  options: WarpOptions = {},
): VoxelArray {
  const [ni, nj] = fieldGrid.size;
  const w = makeWriter(moving, ni * nj * (k1 - k0), options);
  // fixed index -> moving index without the field, and world displacement -> moving index change
  const m = gridToGridAffine(fieldGrid, moving);
  const r = worldToIndexMatrix(moving);
  let n = 0;
  for (let k = k0; k < k1; k++)
    for (let j = 0; j < nj; j++) {
      let x = m[1] * j + m[2] * k + m[3];
      let y = m[5] * j + m[6] * k + m[7];
      let z = m[9] * j + m[10] * k + m[11];
      for (let i = 0; i < ni; i++, x += m[0], y += m[4], z += m[8], n += 3) {
        const ux = u[n];
        const uy = u[n + 1];
        const uz = u[n + 2];
        w.put(
          x + r[0] * ux + r[1] * uy + r[2] * uz,
          y + r[4] * ux + r[5] * uy + r[6] * uz,
          z + r[8] * ux + r[9] * uy + r[10] * uz,
        );
      }
    }
  return w.out;
}

/** out(x) = moving(A x) on `fixedGrid`, without building a field. */
export function warpWithAffine(moving: Volume, fixedGrid: Geometry, affine: Affine, options: WarpOptions = {}): Volume {
  const problem = geometryProblem(fixedGrid);
  if (problem) throw new InputError('fixed grid', problem);
  const out = warpWithAffineSlices(moving, fixedGrid, affine, 0, fixedGrid.size[2], options);
  return warpResult(moving, fixedGrid, out, `affine, ${options.interpolation ?? 'linear'}`);
}

/** warpWithAffine's voxels for the slices [k0, k1) of `fixedGrid`. */
export function warpWithAffineSlices(
  moving: Volume,
  fixedGrid: Geometry,
  affine: Affine,
  k0: number,
  k1: number,
  options: WarpOptions = {},
): VoxelArray {
  if (affine.length !== 12 || !affine.every(Number.isFinite))
    throw new InputError('affine', 'an affine needs 12 finite numbers (3x4, row-major)');
  const m = gridToGridAffine(fixedGrid, moving, affine);
  const [ni, nj] = fixedGrid.size;
  const count = ni * nj * (k1 - k0);
  if ((options.interpolation ?? 'linear') === 'linear' && moving.components === 1) {
    // one component, trilinear (CT images): trilinearAt's 'extent' arithmetic written out (resample.ts)
    const outType = options.outputType ?? voxelTypeOf(moving.data);
    const out = outputArray(outType, count, options);
    const range = INTEGER_RANGE[outType];
    linearScalar(moving.data, moving.size, m, fixedGrid.size, out, options.fill ?? 0, range, 0.5, [k0, k1]);
    return out;
  }
  const w = makeWriter(moving, count, options);
  for (let k = k0; k < k1; k++)
    for (let j = 0; j < nj; j++) {
      let x = m[1] * j + m[2] * k + m[3];
      let y = m[5] * j + m[6] * k + m[7];
      let z = m[9] * j + m[10] * k + m[11];
      for (let i = 0; i < ni; i++, x += m[0], y += m[4], z += m[8]) w.put(x, y, z);
    }
  return w.out;
}
