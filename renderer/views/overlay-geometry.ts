/**
 * What the 2-D overlay of a view shows, decided without drawing: the affine pairs within the slab
 * of the shown slice (world axis of the view's normal, +- half the pairs' grid spacing), the glyph
 * spacing in voxels for a wanted spacing on screen, the length of a scale bar, and which marker a
 * click hits. Pure functions (no DOM, no vtk.js), shared by the views and the UI tests.
 */
import type { AffinePair } from '../../main/engine/workstation/types.ts';
import { niceFloor, residualScaleMm } from './color-maps.ts';

type Vec3 = readonly [number, number, number];

/** Any matched pair (affine or coarse): a fixed and a moving point, world mm. */
export interface PointPair {
  fixed: readonly number[];
  moving: readonly number[];
}

export interface PairInSlab<P extends PointPair = AffinePair> {
  pair: P;
  fixedIn: boolean;
  movingIn: boolean;
}

/**
 * The pairs with their fixed or their moving point within `halfMm` of `centreMm` along world axis
 * `axis` (0 x, 1 y, 2 z), in the order given.
 */
export function pairsInSlab<P extends PointPair>(
  pairs: readonly P[],
  axis: 0 | 1 | 2,
  centreMm: number,
  halfMm: number,
): PairInSlab<P>[] {
  const out: PairInSlab<P>[] = [];
  for (const pair of pairs) {
    const fixedIn = Math.abs(pair.fixed[axis] - centreMm) <= halfMm;
    const movingIn = Math.abs(pair.moving[axis] - centreMm) <= halfMm;
    if (fixedIn || movingIn) out.push({ pair, fixedIn, movingIn });
  }
  return out;
}

/** The pairs' residual colour scale (mm): from the fit's inliers (all pairs when it has none). */
export function pairResidualScaleMm(pairs: readonly AffinePair[]): number {
  const inliers = pairs.filter((p) => p.inlier);
  return residualScaleMm((inliers.length ? inliers : pairs).map((p) => p.residualMm));
}

/** Glyph / grid spacing in voxels (1..512) nearest to `targetPx` screen pixels at `pxPerVoxel`. */
export function glyphEvery(pxPerVoxel: number, targetPx: number): number {
  if (!(pxPerVoxel > 0) || !Number.isFinite(pxPerVoxel)) return 8;
  return Math.min(512, Math.max(1, Math.round(targetPx / pxPerVoxel)));
}

/** A scale bar: the round length in mm (1, 2, 5 x 10^n) at most `maxPx` long, and its length in px. */
export function scaleBar(pxPerMm: number, maxPx: number): { mm: number; px: number } {
  const mm = niceFloor(maxPx / pxPerMm);
  return { mm, px: mm * pxPerMm };
}

/** Screen distance (px) between two points. */
function dist(a: readonly [number, number], b: readonly [number, number]): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

export interface Marker {
  index: number;
  at: [number, number];
}

/** The marker nearest to a click within `radiusPx`, or null. */
export function hitMarker(markers: readonly Marker[], at: [number, number], radiusPx: number): Marker | null {
  let best: Marker | null = null;
  let bestD = radiusPx;
  for (const m of markers) {
    const d = dist(m.at, at);
    if (d <= bestD) {
      best = m;
      bestD = d;
    }
  }
  return best;
}

/** a + b (3-D). */
export function plus(a: Vec3, b: Vec3): [number, number, number] {
  return [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
}
