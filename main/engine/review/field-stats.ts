/**
 * Deformation statistics and overlay data for the review: the Jacobian determinant map and folding
 * (register/field/jacobian.ts, the product's one finite-difference convention), the displacement
 * magnitude map and its statistics, arrow glyphs on a slice (every N voxels) and the deformed grid
 * lines of a slice. The renderer only draws what these return.
 *
 * Field convention (register/field/field.ts): 3 float32 components, LPS mm, on the fixed grid; fixed
 * point x maps to moving point x + u(x). Glyphs and grid lines are in world LPS mm; "in-plane" is u
 * minus its component along the slice normal (the world direction of the sliced index axis), so a
 * deformed grid line stays in its slice's plane.
 */
import { checkField, checkMask, valueStats, type ValueStats } from '../register/field/field.ts';
import { jacobianDeterminant, type JacobianReport } from '../register/field/jacobian.ts';
import { column, dot, indexToWorld } from '../volume/geometry.ts';
import { makeVolume, voxelCount, type Vec3, type Volume } from '../volume/volume.ts';
import { InputError } from '../errors.ts';
import { slicePlane, sliceIndex, type Orientation, type SlicePlane } from './slice-plane.ts';

export interface FieldStatistics {
  /** Jacobian determinant map, folded-voxel mask, folded count and % (over `mask` when given). */
  jacobian: JacobianReport;
  /** |u(x)| in mm per voxel (float32, fixed grid). */
  magnitude: Volume<Float32Array>;
  /** Statistics of |u| (over `mask` when given). */
  magnitudeStats: ValueStats;
}

/** Jacobian, folding and magnitude of a displacement field (optionally inside a mask on its grid). */
export function fieldStatistics(field: Volume, options: { mask?: Volume } = {}): FieldStatistics {
  checkField(field);
  if (options.mask) checkMask(options.mask, field);
  const jacobian = jacobianDeterminant(field, options);
  const n = voxelCount(field.size);
  const mag = new Float32Array(n);
  const d = field.data;
  for (let v = 0; v < n; v++) mag[v] = Math.hypot(d[3 * v], d[3 * v + 1], d[3 * v + 2]);
  const mask = options.mask;
  const magnitude = makeVolume({
    size: field.size,
    spacing: field.spacing,
    origin: field.origin,
    direction: field.direction,
    data: mag,
    meta: { description: 'displacement magnitude (mm)' },
  });
  return { jacobian, magnitude, magnitudeStats: valueStats(mag, mask ? (v) => mask.data[v] !== 0 : undefined) };
}

export interface SliceOptions {
  orientation: Orientation;
  /** Slice index along the plane's index axis (default: the middle slice). */
  slice?: number;
  /** Spacing of the glyphs / grid lines, in voxels (default 8). */
  every?: number;
}

export interface ArrowGlyph {
  /** Fixed-grid voxel (i, j, k) of the glyph's foot. */
  index: Vec3;
  /** World position of the voxel centre (LPS mm). */
  position: Vec3;
  /** u(x), mm (3-D). */
  vector: Vec3;
  /** u(x) without its component along the slice normal, mm. */
  inPlane: Vec3;
  magnitudeMm: number;
}

export interface SliceGlyphs {
  plane: SlicePlane;
  slice: number;
  /** Unit world normal of the slice plane. */
  normal: Vec3;
  glyphs: ArrowGlyph[];
}

function every(options: SliceOptions): number {
  const n = options.every ?? 8;
  if (!Number.isInteger(n) || n < 1)
    throw new InputError('every', `glyph spacing must be a positive integer, not ${n}`);
  return n;
}

function unit(v: Vec3): Vec3 {
  const n = Math.hypot(v[0], v[1], v[2]);
  return [v[0] / n, v[1] / n, v[2] / n];
}

/** u at voxel (i, j, k) of the field. */
function uAt(field: Volume, ijk: Vec3): Vec3 {
  const o = 3 * (ijk[0] + field.size[0] * (ijk[1] + field.size[1] * ijk[2]));
  return [field.data[o], field.data[o + 1], field.data[o + 2]];
}

function project(u: Vec3, n: Vec3): Vec3 {
  const s = dot(u, n);
  return [u[0] - s * n[0], u[1] - s * n[1], u[2] - s * n[2]];
}

/**
 * Arrow glyphs on one slice: a glyph every `every` voxels along both in-plane axes (starting at
 * every/2, so they sit inside the grid), optionally only where `mask` (fixed grid) is nonzero.
 */
export function arrowGlyphs(field: Volume, options: SliceOptions & { mask?: Volume }): SliceGlyphs {
  checkField(field);
  if (options.mask) checkMask(options.mask, field);
  const plane = slicePlane(field, options.orientation);
  const slice = sliceIndex(field, plane, options.slice);
  const step = every(options);
  const normal = unit(column(field.direction, plane.axis));
  const glyphs: ArrowGlyph[] = [];
  const first = Math.floor(step / 2);
  for (let r = Math.min(first, field.size[plane.rowAxis] - 1); r < field.size[plane.rowAxis]; r += step)
    for (let c = Math.min(first, field.size[plane.colAxis] - 1); c < field.size[plane.colAxis]; c += step) {
      const ijk: Vec3 = [0, 0, 0];
      ijk[plane.axis] = slice;
      ijk[plane.rowAxis] = r;
      ijk[plane.colAxis] = c;
      if (options.mask && !options.mask.data[ijk[0] + field.size[0] * (ijk[1] + field.size[1] * ijk[2])]) continue;
      const u = uAt(field, ijk);
      glyphs.push({
        index: ijk,
        position: indexToWorld(field, ijk),
        vector: u,
        inPlane: project(u, normal),
        magnitudeMm: Math.hypot(u[0], u[1], u[2]),
      });
    }
  return { plane, slice, normal, glyphs };
}

export interface GridLine {
  /** The index axis the line runs along, and the fixed index of the other in-plane axis. */
  alongAxis: number;
  at: number;
  /** World points x + inPlane(u(x)) at every voxel along the line (LPS mm). */
  points: Vec3[];
}

export interface DeformedGrid {
  plane: SlicePlane;
  slice: number;
  normal: Vec3;
  lines: GridLine[];
}

/**
 * The deformed grid of one slice: the lines of constant row index and of constant column index,
 * every `every` voxels (and the last one), each a polyline through every voxel of the line displaced
 * by the in-plane part of u. With a zero field these are the straight grid lines.
 */
export function deformedGridLines(field: Volume, options: SliceOptions): DeformedGrid {
  checkField(field);
  const plane = slicePlane(field, options.orientation);
  const slice = sliceIndex(field, plane, options.slice);
  const step = every(options);
  const normal = unit(column(field.direction, plane.axis));
  const lines: GridLine[] = [];
  const positions = (n: number) => {
    const out: number[] = [];
    for (let p = 0; p < n; p += step) out.push(p);
    if (out[out.length - 1] !== n - 1) out.push(n - 1);
    return out;
  };
  for (const [along, across] of [
    [plane.colAxis, plane.rowAxis],
    [plane.rowAxis, plane.colAxis],
  ]) {
    for (const at of positions(field.size[across])) {
      const points: Vec3[] = [];
      for (let t = 0; t < field.size[along]; t++) {
        const ijk: Vec3 = [0, 0, 0];
        ijk[plane.axis] = slice;
        ijk[across] = at;
        ijk[along] = t;
        const x = indexToWorld(field, ijk);
        const w = project(uAt(field, ijk), normal);
        points.push([x[0] + w[0], x[1] + w[1], x[2] + w[2]]);
      }
      lines.push({ alongAxis: along, at, points });
    }
  }
  return { plane, slice, normal, lines };
}

/** The numbers of a Jacobian report, without its maps (what reports and the UI show). */
export interface JacobianSummary {
  min: number;
  max: number;
  mean: number;
  std: number;
  folded: number;
  foldedPercent: number;
  voxels: number;
}

export function jacobianSummary(j: JacobianReport): JacobianSummary {
  const { min, max, mean, std, folded, foldedPercent, voxels } = j;
  return { min, max, mean, std, folded, foldedPercent, voxels };
}
