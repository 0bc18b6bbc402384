/**
 * Grid points for SAM-affine: the points of a world-aligned lattice (every `spacingMm` along the LPS
 * axes, through `anchor`, default the world origin) that fall inside a mask, optionally eroded by a
 * margin, capped to a maximum count by regular subsampling.
 *
 * - A lattice point belongs to the voxel nearest to it (index rounded); points outside the mask's
 *   grid are out. The mask is component 0 of the volume, nonzero = inside.
 * - Erosion: mask.ts boxFilter 'min' with half-widths round(marginMm / spacing) voxels (a box, not a
 *   ball), which does not erode where the body is cut by the field of view.
 * - Order: raster order of the lattice (x fastest, then y, then z). When more than maxPoints remain,
 *   the points at positions floor((i + 0.5) n / maxPoints) of that order are kept: an even thinning
 *   along the rows, deterministic.
 */
import { InputError } from '../errors.ts';
import { worldBounds, worldToIndexMatrix } from '../volume/geometry.ts';
import { boxFilter } from '../volume/mask.ts';
import type { Vec3, Volume } from '../volume/volume.ts';

export interface GridPointOptions {
  /** Lattice spacing in mm (default 16). */
  spacingMm?: number;
  /** Erode the mask by this many mm first (default 0). */
  marginMm?: number;
  /** Keep at most this many points (default 2000). */
  maxPoints?: number;
  /** A point of the lattice (default [0, 0, 0]). */
  anchor?: Vec3;
}

/** Lattice points (world LPS mm) inside the mask. */
export function gridPointsInMask(mask: Volume, options: GridPointOptions = {}): Vec3[] {
  const step = options.spacingMm ?? 16;
  const margin = options.marginMm ?? 0;
  const maxPoints = options.maxPoints ?? 2000;
  const anchor = options.anchor ?? [0, 0, 0];
  if (!(step > 0 && Number.isFinite(step))) throw new InputError('grid points', `invalid spacing ${step} mm`);
  if (!(margin >= 0)) throw new InputError('grid points', `invalid margin ${margin} mm`);
  if (!(maxPoints >= 1)) throw new InputError('grid points', `invalid maximum count ${maxPoints}`);
  const [ni, nj, nk] = mask.size;
  const nc = mask.components;
  let inside: ArrayLike<number> = mask.data;
  let stride = nc;
  if (margin > 0) {
    const bin = new Uint8Array(ni * nj * nk);
    for (let p = 0; p < bin.length; p++) bin[p] = mask.data[p * nc] ? 1 : 0;
    const radii = mask.spacing.map((s) => Math.round(margin / s));
    inside = boxFilter(bin, mask.size, radii, 'min');
    stride = 1;
  }
  const toIndex = worldToIndexMatrix(mask);
  const [lo, hi] = worldBounds(mask);
  const range = [0, 1, 2].map((a) => [
    Math.ceil((lo[a] - anchor[a]) / step - 1e-9),
    Math.floor((hi[a] - anchor[a]) / step + 1e-9),
  ]);
  const points: Vec3[] = [];
  // (applyAffine's sums written out: no arrays for the tens of thousands of lattice points outside)
  const [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11] = toIndex;
  for (let c = range[2][0]; c <= range[2][1]; c++)
    for (let b = range[1][0]; b <= range[1][1]; b++)
      for (let a = range[0][0]; a <= range[0][1]; a++) {
        const x = anchor[0] + a * step;
        const y = anchor[1] + b * step;
        const z = anchor[2] + c * step;
        const i = Math.round(m0 * x + m1 * y + m2 * z + m3);
        const j = Math.round(m4 * x + m5 * y + m6 * z + m7);
        const k = Math.round(m8 * x + m9 * y + m10 * z + m11);
        if (i < 0 || j < 0 || k < 0 || i >= ni || j >= nj || k >= nk) continue;
        if (inside[(i + ni * (j + nj * k)) * stride]) points.push([x, y, z]);
      }
  if (points.length <= maxPoints) return points;
  const n = points.length;
  return Array.from({ length: maxPoints }, (_, i) => points[Math.floor(((i + 0.5) * n) / maxPoints)]);
}
