/**
 * Renderer-side geometry of the three orthogonal views (world LPS mm). Radiological display:
 * axial seen from the feet (patient's right on screen left, anterior up), coronal seen from the front
 * (right on the left, superior up), sagittal seen from the patient's left (anterior on the left,
 * superior up). Screen right = direction of projection x view-up.
 */
import type { VolumeDescriptor } from '../../main/engine/workstation/types.ts';
import type { Vec3 } from '../store/view.ts';

export type ViewName = 'axial' | 'coronal' | 'sagittal';
export const VIEWS: ViewName[] = ['axial', 'coronal', 'sagittal'];

export const CAMERA: Record<ViewName, { normalAxis: 0 | 1 | 2; dop: Vec3; up: Vec3 }> = {
  axial: { normalAxis: 2, dop: [0, 0, 1], up: [0, -1, 0] },
  coronal: { normalAxis: 1, dop: [0, 1, 0], up: [0, 0, 1] },
  sagittal: { normalAxis: 0, dop: [-1, 0, 0], up: [0, 0, 1] },
};

/** The patient direction a world (LPS) axis points to, and its opposite: +x left, +y posterior, +z superior. */
const TOWARD = [
  ['L', 'R'],
  ['P', 'A'],
  ['S', 'I'],
] as const;

function directionLetter(v: Vec3): string {
  const a = [0, 1, 2].reduce((b, c) => (Math.abs(v[c]) > Math.abs(v[b]) ? c : b), 0);
  return TOWARD[a][v[a] >= 0 ? 0 : 1];
}

/** The world direction of a view's screen right: dop x up (vtk's camera convention). */
export function screenRight(view: ViewName): Vec3 {
  const { dop, up } = CAMERA[view];
  return [dop[1] * up[2] - dop[2] * up[1], dop[2] * up[0] - dop[0] * up[2], dop[0] * up[1] - dop[1] * up[0]];
}

/**
 * The patient directions at a view's screen edges, from its camera (screen right, top = up): axial
 * and coronal R on the left (radiological), sagittal A on the left; S at the top.
 */
export function orientationLabels(view: ViewName): { left: string; right: string; top: string; bottom: string } {
  const { up } = CAMERA[view];
  const right = screenRight(view);
  const neg = (v: Vec3): Vec3 => [-v[0], -v[1], -v[2]];
  return {
    left: directionLetter(neg(right)),
    right: directionLetter(right),
    top: directionLetter(up),
    bottom: directionLetter(neg(up)),
  };
}

/** The world (LPS) coordinate name along a view's normal: z axial, y coronal, x sagittal. */
export const NORMAL_NAME: Record<ViewName, string> = { axial: 'z', coronal: 'y', sagittal: 'x' };

type Geo = Pick<VolumeDescriptor, 'size' | 'spacing' | 'origin' | 'direction'>;

/** The index axis (0 = i, 1 = j, 2 = k) closest to a world axis. */
export function indexAxisAlong(g: Geo, worldAxis: number): 0 | 1 | 2 {
  let best: 0 | 1 | 2 = 0;
  for (const c of [0, 1, 2] as const)
    if (Math.abs(g.direction[worldAxis * 3 + c]) > Math.abs(g.direction[worldAxis * 3 + best])) best = c;
  return best;
}

/** Continuous index -> world LPS mm (origin + D diag(spacing) ijk). */
export function indexToWorld(g: Geo, ijk: Vec3): Vec3 {
  const d = g.direction;
  const out: Vec3 = [0, 0, 0];
  for (let r = 0; r < 3; r++)
    out[r] =
      g.origin[r] +
      d[r * 3] * g.spacing[0] * ijk[0] +
      d[r * 3 + 1] * g.spacing[1] * ijk[1] +
      d[r * 3 + 2] * g.spacing[2] * ijk[2];
  return out;
}

/** World LPS mm -> continuous index (D orthonormal: its inverse is its transpose). */
export function worldToIndex(g: Geo, x: Vec3): Vec3 {
  const d = g.direction;
  const p = [x[0] - g.origin[0], x[1] - g.origin[1], x[2] - g.origin[2]];
  const out: Vec3 = [0, 0, 0];
  for (let c = 0; c < 3; c++) out[c] = (d[c] * p[0] + d[3 + c] * p[1] + d[6 + c] * p[2]) / g.spacing[c];
  return out;
}

/** World centre of a volume. */
export function centreOf(g: Geo): Vec3 {
  return indexToWorld(g, [(g.size[0] - 1) / 2, (g.size[1] - 1) / 2, (g.size[2] - 1) / 2]);
}

/** The slice index a view shows for a cursor, clamped to the volume, and the axis it slices. */
export function sliceFor(
  g: Geo,
  view: ViewName,
  cursor: Vec3,
): { axis: 0 | 1 | 2; slice: number; count: number; inside: boolean } {
  const axis = indexAxisAlong(g, CAMERA[view].normalAxis);
  const count = g.size[axis];
  const t = worldToIndex(g, cursor)[axis];
  const s = Math.round(t);
  // inside: the cursor's plane cuts the volume (within half a voxel of its first or last slice)
  return { axis, slice: Math.min(count - 1, Math.max(0, s)), count, inside: t >= -0.5 && t <= count - 0.5 };
}

/** Cursor moved by n slices of the given volume along a view's normal. */
export function stepCursor(g: Geo, view: ViewName, cursor: Vec3, n: number): Vec3 {
  const { axis, slice, count } = sliceFor(g, view, cursor);
  const ijk = worldToIndex(g, cursor);
  ijk[axis] = Math.min(count - 1, Math.max(0, slice + n));
  return indexToWorld(g, ijk);
}
