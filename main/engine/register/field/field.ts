/**
 * Displacement fields: the type, creation (zero, from an affine), sampling at arbitrary world
 * points, transforming points, magnitude statistics, and the small affine algebra that the other
 * field tools share.
 *
 * Convention (the product's, as elastix and ITK resample):
 * - A displacement field is a Volume with `components` = 3 (float32, interleaved), in mm, LPS,
 *   defined on the FIXED image's grid. It maps a fixed point x to the moving point x + u(x);
 *   warping the moving image onto the fixed grid reads moving(x + u(x)).
 * - An affine (`Affine`) is a 3x4 row-major matrix [L | t], world mm -> world mm, mapping fixed
 *   points to moving points: y = L x + t. Its field on a grid is u(x) = A x - x.
 *
 * Sampling outside the field's grid (FieldOutside): the grid's voxel-centre hull is [0, n-1] in
 * continuous index along each axis. Outside it,
 * - 'border' (default): the displacement of the nearest point of the hull (clamped index), as
 *   ITK's nearest-neighbour extrapolation; smooth and bounded, the safe choice for chains;
 * - 'linear': trilinear extrapolation from the border cell (reproduces affine fields exactly);
 * - 'zero': zero displacement (identity), as ITK's DisplacementFieldTransform outside its buffer.
 * An axis of size 1 is constant along that axis in every mode.
 */
import { trilinearAt } from '../../volume/interpolate.ts';
import { affineCompose } from '../affine3x4.ts';
import { InputError } from '../../errors.ts';
import {
  applyAffine,
  geometryProblem,
  indexToWorldMatrix,
  sameGrid,
  worldToIndexMatrix,
  type Affine3x4,
  type Geometry,
} from '../../volume/geometry.ts';
import { makeVolume, voxelCount, type Vec3, type Volume } from '../../volume/volume.ts';

/** A displacement field: 3 float32 components per voxel, LPS mm, on the fixed grid. */
export type Field = Volume<Float32Array>;
/** 3x4 row-major affine, world mm -> world mm, fixed point -> moving point. */
export type Affine = Affine3x4;
export type FieldOutside = 'border' | 'linear' | 'zero';

export const IDENTITY_AFFINE: Affine = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0];

/** Throws InputError unless `field` is a 3-component volume on a valid grid. */
export function checkField(field: Volume, name = 'displacement field'): void {
  if (field.components !== 3)
    throw new InputError(name, `a displacement field needs 3 components per voxel, not ${field.components}`);
  const problem = geometryProblem(field);
  if (problem) throw new InputError(name, problem);
}

/** Throws InputError unless `mask` is a scalar volume on the same grid as `like`. */
export function checkMask(mask: Volume, like: Geometry, name = 'mask'): void {
  if (mask.components !== 1) throw new InputError(name, `a mask needs 1 component, not ${mask.components}`);
  if (!sameGrid(mask, like)) throw new InputError(name, 'the mask is not on the grid of the field');
}

/** A copy of the grid (size, spacing, origin, direction) alone. */
export function gridCopy(grid: Geometry): Geometry {
  return {
    size: [...grid.size] as Vec3,
    spacing: [...grid.spacing] as Vec3,
    origin: [...grid.origin] as Vec3,
    direction: [...grid.direction] as Geometry['direction'],
  };
}

/** A field of zeros (the identity map) on a grid. */
export function zeroField(grid: Geometry, description = 'displacement field'): Field {
  const problem = geometryProblem(grid);
  if (problem) throw new InputError('grid', problem);
  return makeVolume({
    ...gridCopy(grid),
    components: 3,
    data: new Float32Array(voxelCount(grid.size) * 3),
    meta: { description },
  });
}

/** a∘b: the affine that applies b first, then a (matrix product a * b). */
export function affineProduct(a: Affine, b: Affine): Affine {
  return affineCompose(a, b) as Affine;
}

/**
 * The affine from continuous index of `from` to continuous index of `to`, through world and an
 * optional world map in between: index_to = W2I(to) * map * I2W(from).
 */
export function gridToGridAffine(from: Geometry, to: Geometry, worldMap: Affine = IDENTITY_AFFINE): Affine {
  return affineProduct(worldToIndexMatrix(to), affineProduct(worldMap, indexToWorldMatrix(from)));
}

/** u(x) = A x - x on the grid (float32): the field of an affine, exact to float32 rounding. */
export function fieldFromAffine(grid: Geometry, affine: Affine): Field {
  const field = zeroField(grid, 'displacement field (affine)');
  affineDisplacements(grid, affine, 0, grid.size[2], field.data as Float32Array);
  return field;
}

/** fieldFromAffine's values for the slices [k0, k1) of the grid, into out (3 per voxel, from out[0]). */
export function affineDisplacements(grid: Geometry, affine: Affine, k0: number, k1: number, out: Float32Array): void {
  // index -> u is affine too: (A - I) * I2W
  const a = affine;
  const aMinusI: Affine = [a[0] - 1, a[1], a[2], a[3], a[4], a[5] - 1, a[6], a[7], a[8], a[9], a[10] - 1, a[11]];
  const m = affineProduct(aMinusI, indexToWorldMatrix(grid));
  const [ni, nj] = grid.size;
  let o = 0;
  for (let k = k0; k < k1; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++) {
        out[o++] = m[0] * i + m[1] * j + m[2] * k + m[3];
        out[o++] = m[4] * i + m[5] * j + m[6] * k + m[7];
        out[o++] = m[8] * i + m[9] * j + m[10] * k + m[11];
      }
}

export interface FieldSampler {
  readonly field: Volume;
  readonly outside: FieldOutside;
  /** Writes u at world point (x, y, z) to out[o..o+3); returns whether the point is inside the grid hull. */
  sample(x: number, y: number, z: number, out: { [n: number]: number }, o?: number): boolean;
}

/** A sampler of the field at world points (trilinear in the field's grid; see FieldOutside). */
export function fieldSampler(field: Volume, outside: FieldOutside = 'border'): FieldSampler {
  checkField(field);
  const w = worldToIndexMatrix(field);
  const src = field.data;
  const size = field.size;
  const mode = outside === 'linear' ? 'linear' : outside === 'zero' ? 'fill' : 'border';
  return {
    field,
    outside,
    sample(x, y, z, out, o = 0) {
      const a = w[0] * x + w[1] * y + w[2] * z + w[3];
      const b = w[4] * x + w[5] * y + w[6] * z + w[7];
      const c = w[8] * x + w[9] * y + w[10] * z + w[11];
      if (trilinearAt(src, size, 3, a, b, c, mode, out, o)) return true;
      if (mode === 'fill') out[o] = out[o + 1] = out[o + 2] = 0;
      return false;
    },
  };
}

/** u at one world point (see FieldOutside for points outside the grid). */
export function sampleField(field: Volume, p: Vec3, outside: FieldOutside = 'border'): Vec3 {
  const out: Vec3 = [0, 0, 0];
  fieldSampler(field, outside).sample(p[0], p[1], p[2], out);
  return out;
}

/** Fixed points -> moving points: x -> x + u(x). */
export function transformPoints(field: Volume, points: readonly Vec3[], outside: FieldOutside = 'border'): Vec3[] {
  const s = fieldSampler(field, outside);
  const u: Vec3 = [0, 0, 0];
  return points.map((p) => {
    s.sample(p[0], p[1], p[2], u);
    return [p[0] + u[0], p[1] + u[1], p[2] + u[2]] as Vec3;
  });
}

export function transformPoint(field: Volume, p: Vec3, outside: FieldOutside = 'border'): Vec3 {
  return transformPoints(field, [p], outside)[0];
}

/** Apply an affine to a point (fixed -> moving). */
export function affinePoint(affine: Affine, p: Vec3): Vec3 {
  return applyAffine(affine, p);
}

export interface ValueStats {
  /** Values counted (finite, inside the mask). */
  count: number;
  min: number;
  max: number;
  mean: number;
  /** Population standard deviation. */
  std: number;
  rms: number;
  /** Median and 95th percentile from a 8192-bin histogram: accurate to (max - min) / 8192. */
  p50: number;
  p95: number;
}

const BINS = 8192;

/**
 * Statistics of the finite values (where `keep(n)` is true, or where the mask `keep` is nonzero, when
 * given); NaN everywhere when none.
 */
export function valueStats(values: ArrayLike<number>, keep?: ((n: number) => boolean) | Uint8Array): ValueStats {
  const mask = keep instanceof Uint8Array ? keep : null;
  const test = typeof keep === 'function' ? keep : null;
  let count = 0;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sumSq = 0;
  for (let n = 0; n < values.length; n++) {
    const v = values[n];
    if (!Number.isFinite(v) || (mask ? mask[n] === 0 : test !== null && !test(n))) continue;
    count++;
    sum += v;
    sumSq += v * v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (count === 0) return { count, min: NaN, max: NaN, mean: NaN, std: NaN, rms: NaN, p50: NaN, p95: NaN };
  const mean = sum / count;
  const hist = new Float64Array(BINS);
  const width = (max - min) / BINS;
  let dev = 0;
  for (let n = 0; n < values.length; n++) {
    const v = values[n];
    if (!Number.isFinite(v) || (mask ? mask[n] === 0 : test !== null && !test(n))) continue;
    dev += (v - mean) * (v - mean);
    if (width > 0) hist[Math.min(BINS - 1, Math.floor((v - min) / width))]++;
  }
  const quantile = (q: number): number => {
    if (!(width > 0)) return min;
    const target = q * count;
    let acc = 0;
    for (let b = 0; b < BINS; b++) {
      if (acc + hist[b] >= target) return min + (b + (hist[b] > 0 ? (target - acc) / hist[b] : 0)) * width;
      acc += hist[b];
    }
    return max;
  };
  return {
    count,
    min,
    max,
    mean,
    std: Math.sqrt(dev / count),
    rms: Math.sqrt(sumSq / count),
    p50: quantile(0.5),
    p95: quantile(0.95),
  };
}

/** Statistics of |u| in mm over the field (or the nonzero voxels of a mask on its grid). */
export function fieldMagnitudeStats(field: Volume, options: { mask?: Volume } = {}): ValueStats {
  checkField(field);
  const mask = options.mask;
  if (mask) checkMask(mask, field);
  const n = voxelCount(field.size);
  const mag = new Float32Array(n);
  const d = field.data;
  for (let v = 0; v < n; v++) mag[v] = Math.hypot(d[3 * v], d[3 * v + 1], d[3 * v + 2]);
  return valueStats(mag, mask ? (v) => mask.data[v] !== 0 : undefined);
}

export { trilinearAt };
