/**
 * The same voxels in the index order closest to LPS: index axis a runs along the world axis it is most
 * aligned with, in its positive direction (i towards the patient's left, j towards posterior, k towards
 * superior), by a permutation and flips of the index axes only, so no voxel is resampled and every
 * voxel keeps its world position.
 *
 * Why: a 2-D viewer (most PACS) shows a slice's pixel matrix as stored and only labels its edges from
 * ImageOrientationPatient. A volume stored in RAS order (NIfTI's usual one: i towards the patient's
 * right) written as it is shows mirrored against the radiological convention (the patient's right on
 * screen left); a sagittal acquisition written as it is would be slices of the wrong plane for a series
 * labelled AXIAL. The DICOM writer (io/dicom/write-series.ts) writes in this order.
 */
import { indexToWorld, type Geometry } from './geometry.ts';
import type { Mat3, Vec3 } from './volume.ts';

export interface AxisOrder {
  /** New axis a is old axis perm[a]... */
  perm: [number, number, number];
  /** ...run forwards (+1) or backwards (-1). */
  sign: [number, number, number];
  size: [number, number, number];
  spacing: Vec3;
  origin: Vec3;
  /** As Volume.direction (row-major by world axis): column a is new index axis a's world direction. */
  direction: Mat3;
}

const PERMUTATIONS: [number, number, number][] = [
  [0, 1, 2],
  [0, 2, 1],
  [1, 0, 2],
  [1, 2, 0],
  [2, 0, 1],
  [2, 1, 0],
];

/**
 * The order closest to LPS: new axis a = old axis perm[a], chosen to maximise the sum over a of
 * |world component a of old axis perm[a]| (ties: the identity first), each run in the direction whose
 * world component a is positive. Volume.direction is stored row-major by world axis: d[3 * w + a] is
 * world component w of index axis a.
 */
export function lpsAxisOrder(v: Geometry): AxisOrder {
  const d = v.direction;
  let best = PERMUTATIONS[0];
  let bestScore = -Infinity;
  for (const p of PERMUTATIONS) {
    const score = Math.abs(d[0 + p[0]]) + Math.abs(d[3 + p[1]]) + Math.abs(d[6 + p[2]]);
    if (score > bestScore + 1e-9) {
      best = p;
      bestScore = score;
    }
  }
  const sign = [0, 1, 2].map((a) => (d[3 * a + best[a]] < 0 ? -1 : 1)) as [number, number, number];
  const size = best.map((p) => v.size[p]) as [number, number, number];
  const spacing = best.map((p) => v.spacing[p]) as Vec3;
  const direction = new Array<number>(9).fill(0);
  for (let w = 0; w < 3; w++) for (let a = 0; a < 3; a++) direction[3 * w + a] = sign[a] * d[3 * w + best[a]];
  const corner: Vec3 = [0, 0, 0];
  for (let a = 0; a < 3; a++) corner[best[a]] = sign[a] > 0 ? 0 : v.size[best[a]] - 1;
  return {
    perm: best,
    sign,
    size,
    spacing,
    origin: indexToWorld(v, corner),
    direction: direction as Mat3,
  };
}

/**
 * For each new index along each new axis, the old linear-index offset it contributes: the old voxel of
 * new (i, j, k) is at offsets[0][i] + offsets[1][j] + offsets[2][k] in the volume's data.
 */
export function oldOffsets(v: Pick<Geometry, 'size'>, o: AxisOrder): [Int32Array, Int32Array, Int32Array] {
  const stride = [1, v.size[0], v.size[0] * v.size[1]];
  return [0, 1, 2].map((a) => {
    const n = o.size[a];
    const s = stride[o.perm[a]];
    const out = new Int32Array(n);
    for (let x = 0; x < n; x++) out[x] = (o.sign[a] > 0 ? x : n - 1 - x) * s;
    return out;
  }) as [Int32Array, Int32Array, Int32Array];
}
