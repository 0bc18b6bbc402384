/**
 * Composition of displacement fields and affines into one displacement field.
 *
 * Order, as in resampling chains (elastix / ITK): `first` is applied to the fixed point first,
 * `second` to the result:   x  --first-->  y = x + u_first(x)  --second-->  z = y + u_second(y),
 * and the composed field is   u(x) = z - x = u_first(x) + u_second(x + u_first(x)).
 * For affines, "first A then B" is z = B (A x) (see composeAffines).
 *
 * Typical use: a deformable field u registered between the fixed image and the moving image
 * already resampled with an affine A (moving_A(y) = moving(A y)) maps fixed -> the affinely
 * aligned space, then A maps to the moving image, so the total field is
 * composeAffineAndField({ first: u, second: A }).
 *
 * The result lives on `grid` (default: the grid of `first` when it is a field, otherwise the grid
 * of the field `second`: with an affine applied first, pass the fixed grid explicitly since the
 * second field's grid lies in the intermediate space). Fields are sampled trilinearly in their own
 * grid with the `outside` rule of field.ts ('border' by default; 'linear' reproduces affines).
 * Conventions: see field.ts.
 */
import { InputError } from '../../errors.ts';
import { indexToWorldMatrix, sameGrid, type Geometry } from '../../volume/geometry.ts';
import type { Volume } from '../../volume/volume.ts';
import {
  affineProduct,
  checkField,
  fieldSampler,
  zeroField,
  type Affine,
  type Field,
  type FieldOutside,
  type FieldSampler,
} from './field.ts';

export interface ComposeOptions {
  /** Grid of the result (see the header for the default). */
  grid?: Geometry;
  /** How fields are sampled outside their grid (default 'border'). */
  outside?: FieldOutside;
}

type Transform = Volume | Affine;

function isAffine(t: Transform): t is Affine {
  return Array.isArray(t);
}

/** Maps a world point in place: p -> T(p); `n` is the voxel number when p is the voxel centre n of the output grid. */
type PointMap = (p: Float64Array, n: number) => void;

function pointMap(t: Transform, grid: Geometry, outside: FieldOutside, name: string, onGrid: boolean): PointMap {
  if (isAffine(t)) {
    if (t.length !== 12 || !t.every(Number.isFinite))
      throw new InputError(name, 'an affine needs 12 finite numbers (3x4, row-major)');
    return (p) => {
      const x = p[0];
      const y = p[1];
      const z = p[2];
      p[0] = t[0] * x + t[1] * y + t[2] * z + t[3];
      p[1] = t[4] * x + t[5] * y + t[6] * z + t[7];
      p[2] = t[8] * x + t[9] * y + t[10] * z + t[11];
    };
  }
  checkField(t, name);
  const d = t.data;
  // The first map sees the output voxel centres: read the field directly when it is on that grid.
  if (onGrid && sameGrid(t, grid, 1e-6)) {
    return (p, n) => {
      p[0] += d[3 * n];
      p[1] += d[3 * n + 1];
      p[2] += d[3 * n + 2];
    };
  }
  const s: FieldSampler = fieldSampler(t, outside);
  const u = new Float64Array(3);
  return (p) => {
    s.sample(p[0], p[1], p[2], u);
    p[0] += u[0];
    p[1] += u[1];
    p[2] += u[2];
  };
}

function composeMaps(first: Transform, second: Transform, options: ComposeOptions): Field {
  const grid = options.grid ?? (isAffine(first) ? (second as Volume) : first);
  const outside = options.outside ?? 'border';
  const out = zeroField(grid, 'displacement field (composed)');
  const f1 = pointMap(first, grid, outside, 'first transform', true);
  const f2 = pointMap(second, grid, outside, 'second transform', false);
  const m = indexToWorldMatrix(grid);
  const [ni, nj, nk] = grid.size;
  const d = out.data;
  const p = new Float64Array(3);
  let n = 0;
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, n++) {
        const x = m[0] * i + m[1] * j + m[2] * k + m[3];
        const y = m[4] * i + m[5] * j + m[6] * k + m[7];
        const z = m[8] * i + m[9] * j + m[10] * k + m[11];
        p[0] = x;
        p[1] = y;
        p[2] = z;
        f1(p, n);
        f2(p, n);
        d[3 * n] = p[0] - x;
        d[3 * n + 1] = p[1] - y;
        d[3 * n + 2] = p[2] - z;
      }
  return out;
}

/** u(x) = u_first(x) + u_second(x + u_first(x)): apply `first` to the fixed point, then `second`. */
export function composeFields(opts: { first: Volume; second: Volume } & ComposeOptions): Field {
  return composeMaps(opts.first, opts.second, opts);
}

/**
 * One affine and one field, either order: { first: field, second: affine } gives
 * u(x) = A (x + u(x)) - x; { first: affine, second: field } gives u(x) = A x + u(A x) - x.
 */
export function composeAffineAndField(
  opts: ({ first: Volume; second: Affine } | { first: Affine; second: Volume }) & ComposeOptions,
): Field {
  if (isAffine(opts.first) === isAffine(opts.second))
    throw new InputError('composeAffineAndField', 'needs exactly one affine and one displacement field');
  return composeMaps(opts.first, opts.second, opts);
}

/** The affine "first, then second": x -> second(first(x)) = (second * first) x. */
export function composeAffines(opts: { first: Affine; second: Affine }): Affine {
  return affineProduct(opts.second, opts.first);
}
