/**
 * Voxel readout of a registration at one world point (LPS mm), snapped to the nearest voxel centre
 * of the fixed grid (the field's grid): what the review's cursor shows.
 *  - fixed HU at the voxel; moving HU at the mapped point x + u(x) (trilinear; NaN outside the
 *    moving image); warped HU at the voxel (when a warped image is given; it equals the moving HU
 *    when the warped image was made with this field and trilinear interpolation);
 *  - u(x) (mm) and the mapped point;
 *  - the Jacobian determinant of x -> x + u(x) at the voxel, and whether the voxel is folded, both
 *    computed by register/field/jacobian.ts on the voxel's 3x3x3 neighbourhood (clipped where the
 *    grid ends, so the one-sided fallbacks at the faces are the same): equal to the Jacobian map's
 *    value at that voxel without computing the whole map;
 *  - the SAM similarity: cosine of the fixed local embedding at x and the moving local embedding at
 *    x + u(x) (each trilinear in its grid and L2-normalised, sam/match.ts sampleEmbedding), when the
 *    embeddings are given.
 */
import { InputError } from '../errors.ts';
import { checkField } from '../register/field/field.ts';
import { jacobianDeterminant } from '../register/field/jacobian.ts';
import { trilinearAt } from '../volume/interpolate.ts';
import { cropIndex } from '../volume/crop.ts';
import { indexToWorld, insideExtent, sameGrid, worldToIndex } from '../volume/geometry.ts';
import type { Vec3, Volume } from '../volume/volume.ts';
import type { EmbeddedVolume } from '../sam/embed-volume.ts';
import { sampleEmbedding } from '../sam/match.ts';

export interface ReadoutInputs {
  fixed: Volume;
  moving: Volume;
  /** Displacement field on the fixed grid (fixed x -> moving x + u(x)). */
  field: Volume;
  /** The warped moving image on the fixed grid, when there is one. */
  warped?: Volume;
  /** SAM embeddings of the fixed and moving images (local grids used). */
  embeddings?: { fixed: EmbeddedVolume; moving: EmbeddedVolume };
}

export interface VoxelReadout {
  /** The point asked for, and the fixed voxel centre it was snapped to. */
  requested: Vec3;
  index: Vec3;
  point: Vec3;
  /** The requested point lies within half a voxel of the fixed grid. */
  inside: boolean;
  fixedHu: number;
  movingHu: number;
  warpedHu: number | null;
  /** u(x), mm, and x + u(x). */
  displacement: Vec3;
  mappedPoint: Vec3;
  jacobian: number;
  folded: boolean;
  /** Cosine of the fixed and moving local embeddings (null without embeddings). */
  samSimilarity: number | null;
  /** The mapped point is inside the moving image (its physical extent, as the warp: field/warp.ts). */
  mappedInside: boolean;
}

/** Trilinear scalar value at a world point as the warp samples it (NaN outside the physical extent). */
export function valueAt(v: Volume, p: Vec3): number {
  const idx = worldToIndex(v, p);
  const out = [NaN];
  return trilinearAt(v.data, v.size, v.components, idx[0], idx[1], idx[2], 'extent', out) ? out[0] : NaN;
}

/** Cosine similarity of the fixed local embedding at x and the moving one at y (both world mm). */
export function samSimilarityAt(embeddings: { fixed: EmbeddedVolume; moving: EmbeddedVolume }, x: Vec3, y: Vec3) {
  const C = embeddings.fixed.local.components;
  const a = new Float32Array(C);
  const b = new Float32Array(C);
  sampleEmbedding(embeddings.fixed.local, x, a);
  sampleEmbedding(embeddings.moving.local, y, b);
  let s = 0;
  for (let c = 0; c < C; c++) s += a[c] * b[c];
  return s;
}

/** The readout at a world point (see the header). */
export function voxelReadout(inputs: ReadoutInputs, point: Vec3): VoxelReadout {
  const { fixed, moving, field, warped, embeddings } = inputs;
  checkField(field);
  if (!sameGrid(field, fixed, 0.01)) throw new InputError('displacement field', 'the field is not on the fixed grid');
  if (warped && !sameGrid(warped, fixed, 0.01))
    throw new InputError('warped image', 'the warped image is not on the fixed grid');
  if (!point.every(Number.isFinite)) throw new InputError('point', `not a finite point: ${point.join(', ')}`);
  const cont = worldToIndex(fixed, point);
  const inside = insideExtent(fixed.size, cont[0], cont[1], cont[2]);
  const index = cont.map((v, a) => Math.max(0, Math.min(fixed.size[a] - 1, Math.round(v)))) as Vec3;
  const [ni, nj] = fixed.size;
  const n = index[0] + ni * (index[1] + nj * index[2]);
  const x = indexToWorld(fixed, index);
  const u: Vec3 = [field.data[3 * n], field.data[3 * n + 1], field.data[3 * n + 2]];
  const y: Vec3 = [x[0] + u[0], x[1] + u[1], x[2] + u[2]];
  const movingHu = valueAt(moving, y);
  // Jacobian on the clipped 3x3x3 neighbourhood: the same differences as on the whole grid
  const lo = index.map((v) => Math.max(0, v - 1)) as Vec3;
  const hi = index.map((v, a) => Math.min(field.size[a], v + 2)) as Vec3;
  const jr = jacobianDeterminant(cropIndex(field, lo, hi));
  const local = index.map((v, a) => v - lo[a]);
  const ln = local[0] + (hi[0] - lo[0]) * (local[1] + (hi[1] - lo[1]) * local[2]);
  return {
    requested: [...point] as Vec3,
    index,
    point: x,
    inside,
    fixedHu: fixed.data[n * fixed.components],
    movingHu,
    warpedHu: warped ? warped.data[n * warped.components] : null,
    displacement: u,
    mappedPoint: y,
    jacobian: jr.det.data[ln],
    folded: jr.foldedMask.data[ln] === 1,
    samSimilarity: embeddings ? samSimilarityAt(embeddings, x, y) : null,
    mappedInside: Number.isFinite(movingHu),
  };
}
