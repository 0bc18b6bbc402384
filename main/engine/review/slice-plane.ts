/**
 * Slice planes of a volume for the review overlays and report images: which index axis an
 * orientation (axial / coronal / sagittal) cuts along, and how the two in-plane index axes are laid
 * out on screen (radiological display: columns run to the patient's left (+x LPS) for axial and
 * coronal, anterior to posterior (+y) for sagittal; rows run anterior to posterior (+y) for axial,
 * superior to inferior (-z) for coronal and sagittal).
 * Index axes are matched to world axes by the largest component of the direction's columns
 * (geometry.ts), so oblique grids get the nearest plane.
 */
import { InputError } from '../errors.ts';
import { column, type Geometry } from '../volume/geometry.ts';

export type Orientation = 'axial' | 'coronal' | 'sagittal';
export const ORIENTATIONS: readonly Orientation[] = ['axial', 'coronal', 'sagittal'];

/** World axis (0 x/L, 1 y/P, 2 z/S) normal to each plane. */
const NORMAL: Record<Orientation, number> = { axial: 2, coronal: 1, sagittal: 0 };

export interface SlicePlane {
  orientation: Orientation;
  /** Index axis along which the slices are taken. */
  axis: number;
  /** Index axis shown left to right, and whether it is flipped (index decreasing to the right). */
  colAxis: number;
  colFlip: boolean;
  /** Index axis shown top to bottom, and whether it is flipped. */
  rowAxis: number;
  rowFlip: boolean;
}

/** For each index axis: the world axis it runs along most, and the sign. */
export function indexAxesToWorld(g: Geometry): { world: number; sign: number }[] {
  return [0, 1, 2].map((c) => {
    const col = column(g.direction, c);
    let best = 0;
    for (let a = 1; a < 3; a++) if (Math.abs(col[a]) > Math.abs(col[best])) best = a;
    return { world: best, sign: col[best] >= 0 ? 1 : -1 };
  });
}

export function checkOrientation(o: string): Orientation {
  if (!(ORIENTATIONS as readonly string[]).includes(o))
    throw new InputError('orientation', `'${o}' is not one of ${ORIENTATIONS.join(', ')}`);
  return o as Orientation;
}

/** The slice plane of an orientation on a grid (see the header for the screen layout). */
export function slicePlane(g: Geometry, orientation: Orientation): SlicePlane {
  checkOrientation(orientation);
  const map = indexAxesToWorld(g);
  const byWorld = [0, 1, 2].map((w) => map.findIndex((m) => m.world === w));
  if (byWorld.some((a) => a < 0))
    throw new InputError('grid', 'two index axes run along the same world axis: cannot choose slice planes');
  const axis = byWorld[NORMAL[orientation]];
  // screen columns: +x for axial/coronal, +y for sagittal; rows: +y for axial, -z otherwise
  const colWorld = orientation === 'sagittal' ? 1 : 0;
  const rowWorld = orientation === 'axial' ? 1 : 2;
  const rowWantSign = orientation === 'axial' ? 1 : -1;
  const colAxis = byWorld[colWorld];
  const rowAxis = byWorld[rowWorld];
  return {
    orientation,
    axis,
    colAxis,
    colFlip: map[colAxis].sign < 0,
    rowAxis,
    rowFlip: map[rowAxis].sign !== rowWantSign,
  };
}

/** Clamp a slice index into the grid along the plane's axis (default: the middle slice). */
export function sliceIndex(g: Geometry, plane: SlicePlane, slice?: number): number {
  const n = g.size[plane.axis];
  if (slice === undefined) return Math.floor((n - 1) / 2);
  if (!Number.isInteger(slice) || slice < 0 || slice >= n)
    throw new InputError('slice', `slice ${slice} is outside 0..${n - 1} along index axis ${plane.axis}`);
  return slice;
}
