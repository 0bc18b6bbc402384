import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { indexToWorld, worldBounds } from '../../main/engine/volume/geometry.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';
import { readVolume, writeVolume } from '../../main/engine/volume/io/index.ts';
import { InputError } from '../../main/engine/errors.ts';
import {
  checkField,
  fieldFromAffine,
  fieldMagnitudeStats,
  sampleField,
  transformPoint,
  transformPoints,
  valueStats,
  zeroField,
} from '../../main/engine/register/field/field.ts';
import { tempDir } from '../helpers.ts';
import { A1, ap, centeredGrid, fieldOf, leftHanded, rotation } from './field-fixtures.ts';

const g = centeredGrid([10, 9, 7], [1.3, 0.9, 2.1], rotation([2, -1, 1], 0.6));

test('an affine field maps points to A x, on and between voxel centres; outside per the chosen rule', () => {
  const f = fieldFromAffine(g, A1);
  const pts: Vec3[] = [indexToWorld(g, [0, 0, 0]), indexToWorld(g, [9, 8, 6]), indexToWorld(g, [3.3, 4.7, 2.2])];
  const moved = transformPoints(f, pts);
  for (let n = 0; n < pts.length; n++) {
    const want = ap(A1, pts[n]);
    for (let a = 0; a < 3; a++) assert.ok(Math.abs(moved[n][a] - want[a]) < 1e-4, `${n}: ${moved[n]} vs ${want}`);
  }
  const out = indexToWorld(g, [-3, 12, 8.5]);
  const lin = transformPoint(f, out, 'linear');
  const want = ap(A1, out);
  for (let a = 0; a < 3; a++) assert.ok(Math.abs(lin[a] - want[a]) < 1e-4, 'linear extrapolation is exact');
  const border = sampleField(f, out, 'border');
  const clamped = sampleField(f, indexToWorld(g, [0, 8, 6]));
  for (let a = 0; a < 3; a++) assert.ok(Math.abs(border[a] - clamped[a]) < 1e-5, 'border clamps to the hull');
  assert.deepEqual(transformPoint(f, out, 'zero'), out);
});

test('magnitude statistics of a field', () => {
  const f = fieldOf(g, () => [3, 4, 0]);
  const s = fieldMagnitudeStats(f);
  assert.equal(s.count, 630);
  assert.ok(Math.abs(s.mean - 5) < 1e-6 && s.std < 1e-6 && s.min === 5 && s.max === 5 && s.p95 === 5);
  const z = fieldMagnitudeStats(zeroField(g));
  assert.equal(z.max, 0);
  const v = valueStats(Float64Array.from({ length: 1001 }, (_, n) => n / 10));
  assert.ok(Math.abs(v.p50 - 50) < 0.05 && Math.abs(v.p95 - 95) < 0.05, `${v.p50} ${v.p95}`);
  assert.ok(Math.abs(v.std - Math.sqrt((1001 * 1001 - 1) / 12) / 10) < 1e-9);
});

test('a field written as .nii.gz reads back with the same LPS vectors and grid (left-handed oblique)', async () => {
  const h = centeredGrid([7, 6, 5], [1.25, 0.75, 2.5], leftHanded(rotation([1, 1, -2], 0.35)), [10, -20, 30]);
  const f = fieldOf(h, (p) => [Math.sin(p[0] / 5) + 1, -2 + 0.1 * p[1], Math.cos(p[2] / 4) - 0.5]);
  const { dir, cleanup } = tempDir('sam-field-');
  try {
    const path = join(dir, 'field.nii.gz');
    await writeVolume(path, f);
    const back = await readVolume(path);
    assert.equal(back.components, 3);
    assert.ok(back.data instanceof Float32Array);
    assert.deepEqual(Array.from(back.data), Array.from(f.data), 'vectors bit-exact in LPS');
    const [lo, hi] = worldBounds(back);
    const [lo0, hi0] = worldBounds(f);
    for (let a = 0; a < 3; a++) assert.ok(Math.abs(lo[a] - lo0[a]) < 1e-4 && Math.abs(hi[a] - hi0[a]) < 1e-4);
    for (let n = 0; n < 9; n++) assert.ok(Math.abs(back.direction[n] - f.direction[n]) < 1e-6);
    const p = indexToWorld(h, [2.5, 3.1, 1.7]);
    const a = transformPoint(f, p);
    const b = transformPoint(back, p);
    for (let q = 0; q < 3; q++) assert.ok(Math.abs(a[q] - b[q]) < 1e-4);
  } finally {
    cleanup();
  }
});

test('fields need 3 components', () => {
  const scalar = { ...zeroField(g), components: 1, data: new Float32Array(630) };
  assert.throws(() => checkField(scalar), InputError);
  assert.throws(() => fieldMagnitudeStats(scalar), InputError);
});
