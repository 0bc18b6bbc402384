/**
 * Approximate inversion of displacement fields, inverse-consistency error, and affine inversion.
 *
 * If u maps x -> x + u(x) (fixed -> moving, see field.ts), its inverse v maps the moving point
 * y back: y -> y + v(y), with u(y + v(y)) = -v(y). v is found per voxel centre y of the output
 * grid by the fixed-point iteration  v_0(y) = -u(y),  v_{n+1}(y) = -u(y + v_n(y))  (each voxel is
 * independent), until the residual |v(y) + u(y + v(y))| drops below the tolerance or the
 * iteration limit is reached. It converges where the map is locally invertible with
 * |grad u| < 1 (smooth fields of a few mm); folded regions have no inverse and stay unconverged.
 */
import { affineInvert } from '../affine3x4.ts';
import { InputError } from '../../errors.ts';
import { geometryProblem, indexToWorldMatrix, type Geometry } from '../../volume/geometry.ts';
import { voxelCount, type Volume } from '../../volume/volume.ts';
import {
  checkField,
  checkMask,
  fieldSampler,
  valueStats,
  zeroField,
  type Affine,
  type Field,
  type FieldOutside,
  type ValueStats,
} from './field.ts';

export interface InvertOptions {
  /** Grid of the inverse (default: the grid of u; the inverse lives in the moving space). */
  grid?: Geometry;
  /** Most fixed-point iterations per voxel (default 50). */
  iterations?: number;
  /** Stop a voxel when its residual is at most this, in mm (default 0.01). */
  tolerance?: number;
  /** Sampling of u outside its grid (default 'border', see field.ts). */
  outside?: FieldOutside;
}

export interface InvertResult {
  /** The approximate inverse v, on the requested grid. */
  field: Field;
  /** Largest and mean number of iterations the voxels needed. */
  maxIterations: number;
  meanIterations: number;
  /** Voxels whose final residual is above the tolerance. */
  unconverged: number;
  /** Largest and mean final residual |v(y) + u(y + v(y))| in mm. */
  maxResidual: number;
  meanResidual: number;
}

/** Approximate inverse of u by fixed-point iteration (see the header). */
export function invertField(u: Volume, options: InvertOptions = {}): InvertResult {
  checkField(u);
  const grid = options.grid ?? u;
  const problem = geometryProblem(grid);
  if (problem) throw new InputError('grid', problem);
  const maxIter = options.iterations ?? 50;
  const tol = options.tolerance ?? 0.01;
  if (!Number.isInteger(maxIter) || maxIter < 0) throw new InputError('iterations', `invalid count ${maxIter}`);
  if (!(tol >= 0)) throw new InputError('tolerance', `invalid tolerance ${tol}`);
  const s = fieldSampler(u, options.outside ?? 'border');
  const out = zeroField(grid, 'displacement field (inverse)');
  const d = out.data;
  const m = indexToWorldMatrix(grid);
  const [ni, nj, nk] = grid.size;
  const su = new Float64Array(3);
  let n = 0;
  let itMax = 0;
  let itSum = 0;
  let unconverged = 0;
  let resMax = 0;
  let resSum = 0;
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, n++) {
        const x = m[0] * i + m[1] * j + m[2] * k + m[3];
        const y = m[4] * i + m[5] * j + m[6] * k + m[7];
        const z = m[8] * i + m[9] * j + m[10] * k + m[11];
        s.sample(x, y, z, su);
        let vx = -su[0];
        let vy = -su[1];
        let vz = -su[2];
        let it = 0;
        let res: number;
        for (;;) {
          s.sample(x + vx, y + vy, z + vz, su);
          res = Math.hypot(vx + su[0], vy + su[1], vz + su[2]);
          if (res <= tol || it >= maxIter || !Number.isFinite(res)) break;
          vx = -su[0];
          vy = -su[1];
          vz = -su[2];
          it++;
        }
        d[3 * n] = vx;
        d[3 * n + 1] = vy;
        d[3 * n + 2] = vz;
        if (it > itMax) itMax = it;
        itSum += it;
        if (!(res <= tol)) unconverged++;
        if (res > resMax) resMax = res;
        resSum += res;
      }
  const count = voxelCount(grid.size);
  return {
    field: out,
    maxIterations: itMax,
    meanIterations: itSum / count,
    unconverged,
    maxResidual: resMax,
    meanResidual: resSum / count,
  };
}

export interface ConsistencyOptions {
  /** Only the nonzero voxels of this mask (on the grid of u) are counted. */
  mask?: Volume;
  /** Sampling of v outside its grid (default 'border'); such points are excluded anyway. */
  outside?: FieldOutside;
}

export interface ConsistencyError extends ValueStats {
  /** Voxels of u's grid left out because x + u(x) falls outside the grid of v. */
  excluded: number;
}

/**
 * Inverse-consistency error in mm: |u(x) + v(x + u(x))| = the distance between x and where
 * x -> x + u(x) -> (that) + v(that) comes back, over the voxel centres x of u's grid whose image
 * lies inside v's grid. For the symmetric error, also call it with (v, u).
 */
export function inverseConsistencyError(u: Volume, v: Volume, options: ConsistencyOptions = {}): ConsistencyError {
  checkField(u, 'forward field');
  checkField(v, 'inverse field');
  const mask = options.mask;
  if (mask) checkMask(mask, u);
  const s = fieldSampler(v, options.outside ?? 'border');
  const m = indexToWorldMatrix(u);
  const [ni, nj, nk] = u.size;
  const d = u.data;
  const err = new Float32Array(voxelCount(u.size)).fill(NaN);
  const sv = new Float64Array(3);
  let excluded = 0;
  let n = 0;
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, n++) {
        if (mask && mask.data[n] === 0) continue;
        const ux = d[3 * n];
        const uy = d[3 * n + 1];
        const uz = d[3 * n + 2];
        const x = m[0] * i + m[1] * j + m[2] * k + m[3] + ux;
        const y = m[4] * i + m[5] * j + m[6] * k + m[7] + uy;
        const z = m[8] * i + m[9] * j + m[10] * k + m[11] + uz;
        if (!s.sample(x, y, z, sv)) {
          excluded++;
          continue;
        }
        err[n] = Math.hypot(ux + sv[0], uy + sv[1], uz + sv[2]);
      }
  return { ...valueStats(err), excluded };
}

/** The inverse of an affine (moving -> fixed for a fixed -> moving affine). Throws when singular. */
export function invertAffine(a: Affine): Affine {
  return affineInvert(a) as Affine;
}
