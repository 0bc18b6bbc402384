/**
 * How much each image of a pair is smoothed before the deform stage and the stage checks compare them
 * (sam-deform.ts prepareImage): both to the same resolution along each world axis, whatever their voxel
 * sizes. A voxel of size d already averages about d (a CT slice its thickness); a box mean of 2r + 1
 * voxels makes that about (2r + 1) d. The target along world axis w is
 *   W_w = max(s + d_min, d_max)
 * with s the comparison's scale (the deform grid's spacing) and d_min, d_max the two images' smaller
 * and larger voxel size along w: two images of one voxel size d get (2r + 1) d near s + d, as before
 * this rule (then radius round(s / 2d) in every axis); a 5 mm slice scan against a 2 mm one is not
 * smoothed along z and the 2 mm one is smoothed to about 6 mm there. Before, the radius came from the
 * smallest voxel size and applied to every axis: at s = 4 mm a 0.98 x 0.98 x 5 mm scan was averaged
 * over 25 mm along z and its 0.98 x 0.98 x 2 mm partner over 10 mm, and the deform stage turned that
 * difference in blur into a deformation (a rigid pair came back with Jacobians 0.47-1.74).
 */
import type { Geometry } from '../../volume/geometry.ts';
import type { Vec3 } from '../../volume/volume.ts';

/** The index axis most aligned with each world axis (direction is row-major: d[3w + a]). */
function axisAlong(g: Geometry, w: number): number {
  const d = g.direction;
  let best = 0;
  for (let a = 1; a < 3; a++) if (Math.abs(d[3 * w + a]) > Math.abs(d[3 * w + best])) best = a;
  return best;
}

/** Voxel size along each world axis (the spacing of the index axis most aligned with it). */
export function voxelSizeAlongWorld(g: Geometry): Vec3 {
  return [0, 1, 2].map((w) => g.spacing[axisAlong(g, w)]) as Vec3;
}

/** The pair's voxel sizes along each world axis: the smaller and the larger of the two. */
export interface PairResolution {
  min: Vec3;
  max: Vec3;
}

export function pairResolution(a: Geometry, b: Geometry): PairResolution {
  const da = voxelSizeAlongWorld(a);
  const db = voxelSizeAlongWorld(b);
  return {
    min: [0, 1, 2].map((w) => Math.min(da[w], db[w])) as Vec3,
    max: [0, 1, 2].map((w) => Math.max(da[w], db[w])) as Vec3,
  };
}

/**
 * Box radii along v's index axes i, j, k for the scale s: (2r + 1) d nearest W_w (above). A tie goes
 * to the larger box for the pair's finer image (two images of one voxel size keep the radius
 * round(s / 2d) they had before this rule) and to the smaller one for the coarser image, whose voxel
 * already averages more. Without a pair, v's own voxel sizes stand for both.
 */
export function smoothingRadii(v: Geometry, s: number, pair?: PairResolution): [number, number, number] {
  const own = voxelSizeAlongWorld(v);
  const p = pair ?? { min: own, max: own };
  const r: [number, number, number] = [0, 0, 0];
  for (let w = 0; w < 3; w++) {
    const a = axisAlong(v, w);
    const d = v.spacing[a];
    const W = Math.max(s + p.min[w], p.max[w]);
    const x = (W / d - 1) / 2;
    r[a] = Math.max(0, d > p.min[w] ? Math.ceil(x - 0.5) : Math.round(x));
  }
  return r;
}
