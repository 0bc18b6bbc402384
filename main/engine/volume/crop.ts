/**
 * Cropping: a sub-block of the voxel grid, with the origin moved so that every kept voxel
 * keeps its world position.
 */
import { indexToWorld, worldToIndex, type Geometry } from './geometry.ts';
import { allocateVoxels, makeVolume, voxelTypeOf, type Vec3, type Volume } from './volume.ts';
import { InputError } from '../errors.ts';

/** Crop to index box [start, end) (end exclusive), clamped to the volume. */
export function cropIndex(volume: Volume, start: Vec3, end: Vec3): Volume {
  const s = start.map((v, a) => Math.max(0, Math.min(volume.size[a], Math.floor(v)))) as Vec3;
  const e = end.map((v, a) => Math.max(0, Math.min(volume.size[a], Math.ceil(v)))) as Vec3;
  const size = [e[0] - s[0], e[1] - s[1], e[2] - s[2]] as Vec3;
  if (size.some((n) => n <= 0))
    throw new InputError(
      volume.meta.source ?? 'volume',
      `crop box [${start}]..[${end}] is empty or outside the volume`,
    );
  const nc = volume.components;
  const [ni, nj] = volume.size;
  const out = allocateVoxels(voxelTypeOf(volume.data), size[0] * size[1] * size[2] * nc);
  const rowLen = size[0] * nc;
  let o = 0;
  for (let k = 0; k < size[2]; k++)
    for (let j = 0; j < size[1]; j++) {
      const from = (s[0] + ni * (s[1] + j + nj * (s[2] + k))) * nc;
      out.set(volume.data.subarray(from, from + rowLen), o);
      o += rowLen;
    }
  return makeVolume({
    size,
    spacing: volume.spacing,
    origin: indexToWorld(volume, s),
    direction: volume.direction,
    components: nc,
    data: out,
    meta: { ...volume.meta, warnings: [...volume.meta.warnings] },
  });
}

/** Index box [start, end) of the voxels whose value passes `keep`, grown by `margin` voxels; null if none. */
export function boundingBox(
  volume: Volume,
  keep: (v: number) => boolean = (v) => v !== 0,
  margin = 0,
): { start: Vec3; end: Vec3 } | null {
  const [ni, nj, nk] = volume.size;
  const lo: Vec3 = [ni, nj, nk];
  const hi: Vec3 = [-1, -1, -1];
  const d = volume.data;
  let n = 0;
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, n++) {
        if (!keep(d[n * volume.components])) continue;
        if (i < lo[0]) lo[0] = i;
        if (i > hi[0]) hi[0] = i;
        if (j < lo[1]) lo[1] = j;
        if (j > hi[1]) hi[1] = j;
        if (k < lo[2]) lo[2] = k;
        if (k > hi[2]) hi[2] = k;
      }
  if (hi[0] < 0) return null;
  return {
    start: lo.map((v) => Math.max(0, v - margin)) as Vec3,
    end: hi.map((v, a) => Math.min(volume.size[a], v + 1 + margin)) as Vec3,
  };
}

/** Crop to the world-space box (LPS mm) given by two opposite corners; voxels whose centres lie inside are kept. */
export function cropWorld(volume: Volume, cornerA: Vec3, cornerB: Vec3): Volume {
  const g: Geometry = volume;
  const lo: Vec3 = [Infinity, Infinity, Infinity];
  const hi: Vec3 = [-Infinity, -Infinity, -Infinity];
  for (let c = 0; c < 8; c++) {
    const p: Vec3 = [c & 1 ? cornerB[0] : cornerA[0], c & 2 ? cornerB[1] : cornerA[1], c & 4 ? cornerB[2] : cornerA[2]];
    const ijk = worldToIndex(g, p);
    for (let a = 0; a < 3; a++) {
      lo[a] = Math.min(lo[a], ijk[a]);
      hi[a] = Math.max(hi[a], ijk[a]);
    }
  }
  return cropIndex(volume, lo.map((v) => Math.ceil(v - 1e-6)) as Vec3, hi.map((v) => Math.floor(v + 1e-6) + 1) as Vec3);
}
