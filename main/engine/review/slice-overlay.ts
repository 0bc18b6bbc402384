/**
 * The deformation overlay of the slice through a world point, for the workstation's views: the arrow
 * glyphs and the deformed grid lines of field-stats.ts on that slice, every `every` voxels, in world
 * LPS mm. Grid lines are thinned to one point every `every / 4` voxels (and the line's last voxel) and
 * flattened, and coordinates are rounded to 1 µm, so that the answer stays small enough to be fetched
 * while the user scrolls.
 */
import { InputError } from '../errors.ts';
import { worldToIndex } from '../volume/geometry.ts';
import type { Vec3, Volume } from '../volume/volume.ts';
import { arrowGlyphs, deformedGridLines } from './field-stats.ts';
import { checkOrientation, sliceIndex, slicePlane, type Orientation } from './slice-plane.ts';

export interface OverlayGlyph {
  /** Voxel centre of the glyph's foot (LPS mm). */
  position: Vec3;
  /** u(x) without its component along the slice normal (mm): the arrow, true to scale. */
  inPlane: Vec3;
  /** |u(x)| (3-D), mm. */
  magnitudeMm: number;
}

export interface SliceOverlay {
  orientation: Orientation;
  /** Slice index along the plane's index axis of the field's (the fixed) grid. */
  slice: number;
  /** Spacing of glyphs and grid lines, voxels. */
  every: number;
  /** Unit world normal of the slice. */
  normal: Vec3;
  glyphs: OverlayGlyph[];
  /** Deformed grid lines, each flattened [x0, y0, z0, x1, y1, z1, ...] (LPS mm). */
  lines: number[][];
}

const MAX_EVERY = 512;
const round = (x: number) => Math.round(x * 1000) / 1000;
const round3 = (v: Vec3): Vec3 => [round(v[0]), round(v[1]), round(v[2])];

export function checkEvery(every: number): number {
  if (!Number.isInteger(every) || every < 1 || every > MAX_EVERY)
    throw new InputError('every', `overlay spacing must be an integer from 1 to ${MAX_EVERY} voxels, not ${every}`);
  return every;
}

/** The slice index of the plane through a world point (nearest slice, clamped into the grid). */
export function sliceThrough(field: Volume, orientation: Orientation, point: Vec3): number {
  const plane = slicePlane(field, orientation);
  const s = Math.round(worldToIndex(field, point)[plane.axis]);
  return Math.min(field.size[plane.axis] - 1, Math.max(0, s));
}

/**
 * Glyphs and grid lines of one slice: the slice through `point`, or `slice` (an index along the
 * plane's axis) when given, as a view asks for the slice it shows: a point halfway between two slices
 * rounds one way here and may round the other in the view's float arithmetic.
 */
export function sliceOverlay(
  field: Volume,
  orientation: Orientation,
  point: Vec3,
  every: number,
  slice?: number,
): SliceOverlay {
  checkOrientation(orientation);
  checkEvery(every);
  if (slice !== undefined) sliceIndex(field, slicePlane(field, orientation), slice);
  else slice = sliceThrough(field, orientation, point);
  const g = arrowGlyphs(field, { orientation, slice, every });
  const grid = deformedGridLines(field, { orientation, slice, every });
  const pointStep = Math.max(1, Math.floor(every / 4));
  const lines = grid.lines.map((l) => {
    const out: number[] = [];
    const n = l.points.length;
    for (let t = 0; t < n; t += t === n - 1 ? 1 : Math.min(pointStep, n - 1 - t)) out.push(...round3(l.points[t]));
    return out;
  });
  return {
    orientation,
    slice,
    every,
    normal: g.normal,
    glyphs: g.glyphs.map((x) => ({
      position: round3(x.position),
      inPlane: round3(x.inPlane),
      magnitudeMm: round(x.magnitudeMm),
    })),
    lines,
  };
}
