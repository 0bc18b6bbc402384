// The deform stage's smoothing radii (register/deform/pair-resolution.ts): two images of one voxel size
// keep the radius round(s / 2d) they had before the per-axis rule; each axis of an anisotropic image
// gets its own; a thick-slice image against a thin one is not smoothed along z and the thin one is
// smoothed to about the thick one's slices; an oblique or permuted direction takes the nearest axis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  pairResolution,
  smoothingRadii,
  voxelSizeAlongWorld,
} from '../../main/engine/register/deform/pair-resolution.ts';
import type { Geometry } from '../../main/engine/volume/geometry.ts';
import type { Mat3, Vec3 } from '../../main/engine/volume/volume.ts';
import { rotation } from './field-fixtures.ts';

const I: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];
const grid = (spacing: Vec3, direction: Mat3 = I): Geometry => ({
  size: [10, 10, 10],
  spacing,
  origin: [0, 0, 0],
  direction,
});

test('one voxel size: the radius round(s / 2d) on every axis, as before', () => {
  for (const d of [0.7, 0.977, 1.5, 2, 3])
    for (const s of [2, 4, 8]) {
      const g = grid([d, d, d]);
      const want = Math.round(s / 2 / d);
      assert.deepEqual(smoothingRadii(g, s), [want, want, want], `d ${d}, s ${s}`);
      assert.deepEqual(smoothingRadii(g, s, pairResolution(g, g)), [want, want, want]);
    }
});

test('anisotropic voxels: a radius per axis, each box near s + d', () => {
  const g = grid([0.977, 0.977, 2]);
  assert.deepEqual(smoothingRadii(g, 4), [2, 2, 1]); // 4.9, 4.9, 6 mm (was 2 on z: 10 mm)
  assert.deepEqual(smoothingRadii(g, 8), [4, 4, 2]); // 8.8, 8.8, 10 mm (was 4 on z: 18 mm)
});

test('a 5 mm slice scan against a 2 mm one: both reach about the same width along z', () => {
  const thin = grid([0.977, 0.977, 2]);
  const thick = grid([0.977, 0.977, 5]);
  const p = pairResolution(thin, thick);
  assert.deepEqual(p.min, [0.977, 0.977, 2]);
  assert.deepEqual(p.max, [0.977, 0.977, 5]);
  // s = 4: W_z = max(4 + 2, 5) = 6: thin 3 slices (6 mm), thick none (its 5 mm slices)
  assert.deepEqual(smoothingRadii(thin, 4, p), [2, 2, 1]);
  assert.deepEqual(smoothingRadii(thick, 4, p), [2, 2, 0]);
  // s = 8: W_z = 10: thin 5 slices (10 mm); thick: 5 or 15 mm, a tie, the smaller for the coarser image
  assert.deepEqual(smoothingRadii(thin, 8, p), [4, 4, 2]);
  assert.deepEqual(smoothingRadii(thick, 8, p), [4, 4, 0]);
});

test('the index axis nearest each world axis: a sagittal-stored volume and an oblique one', () => {
  // index axes (i, j, k) along world (y, z, x): column a of the direction is axis a's world direction
  const sagittal = grid([0.5, 0.5, 3], [0, 0, 1, 1, 0, 0, 0, 1, 0]);
  assert.deepEqual(voxelSizeAlongWorld(sagittal), [3, 0.5, 0.5]);
  assert.deepEqual(smoothingRadii(sagittal, 4), [4, 4, 1]);
  const oblique = grid([0.8, 0.8, 2.5], rotation([1, 2, 0.5], 0.3));
  assert.deepEqual(voxelSizeAlongWorld(oblique), [0.8, 0.8, 2.5]);
});
