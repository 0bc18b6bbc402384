import { test } from 'node:test';
import assert from 'node:assert/strict';
import { det3, indexToWorld } from '../../main/engine/volume/geometry.ts';
import { makeVolume, type Mat3, type Vec3 } from '../../main/engine/volume/volume.ts';
import { fieldFromAffine, zeroField } from '../../main/engine/register/field/field.ts';
import { JACOBIAN_VARIANTS, jacobianDeterminant } from '../../main/engine/register/field/jacobian.ts';
import {
  A1,
  affineOf,
  centeredGrid,
  fieldOf,
  leftHanded,
  PLANTED_VOXEL,
  plantedSwap,
  rotation,
  starFold,
} from './field-fixtures.ts';

const linearPart = (a: number[]): Mat3 => [a[0], a[1], a[2], a[4], a[5], a[6], a[8], a[9], a[10]];

test('the Jacobian of an affine field is det(A) everywhere, for right- and left-handed oblique grids', () => {
  for (const direction of [rotation([1, 2, -1], 0.6), leftHanded(rotation([0.5, -1, 2], 0.4))]) {
    const g = centeredGrid([9, 8, 7], [1.3, 0.8, 2.4], direction);
    const want = det3(linearPart(A1));
    const r = jacobianDeterminant(fieldFromAffine(g, A1));
    for (const d of r.det.data) assert.ok(Math.abs(d - want) < 1e-4, `${d} vs ${want}`);
    assert.equal(r.voxels, 9 * 8 * 7);
    assert.equal(r.folded, 0);
    assert.ok(Math.abs(r.mean - want) < 1e-4 && r.std < 1e-4);
    for (const v of JACOBIAN_VARIANTS) assert.equal(r.nonPositive[v], 0, v);
  }
});

test('a reflecting affine folds every voxel, in every variant', () => {
  const g = centeredGrid([6, 5, 4], [1, 1.5, 2], rotation([1, 1, 1], 0.3));
  const r = jacobianDeterminant(fieldFromAffine(g, affineOf([1, 0, 0, 0, -1, 0, 0, 0, 1], [0, 0, 0])));
  assert.equal(r.folded, 6 * 5 * 4);
  assert.equal(r.foldedPercent, 100);
  assert.ok(Math.abs(r.max + 1) < 1e-6 && Math.abs(r.min + 1) < 1e-6);
  for (const v of JACOBIAN_VARIANTS.slice(0, 9)) assert.ok(r.nonPositive[v] > 0, v);
  assert.equal(r.nonPositive['j1*'], 5 * 4 * 3);
  assert.equal(r.nonPositive['j2*'], 5 * 4 * 3);
});

test('the zero field has determinant 1 and no folds', () => {
  const r = jacobianDeterminant(zeroField(centeredGrid([5, 4, 3], [1, 2, 3], rotation([0, 0, 1], 1))));
  assert.equal(r.min, 1);
  assert.equal(r.max, 1);
  assert.equal(r.std, 0);
  assert.equal(r.folded, 0);
});

test('u = a sin(b x) along world x matches det = 1 + a b cos(b x) within 1e-3 (oblique, anisotropic)', () => {
  const [a, b] = [2, 0.1];
  const g = centeredGrid([20, 18, 14], [1.2, 0.9, 1.5], rotation([1, -1, 2], 0.7), [5, 0, -3]);
  const r = jacobianDeterminant(fieldOf(g, (p) => [a * Math.sin(b * p[0]), 0, 0]));
  let worst = 0;
  for (let k = 1; k < 13; k++)
    for (let j = 1; j < 17; j++)
      for (let i = 1; i < 19; i++) {
        const x = indexToWorld(g, [i, j, k] as Vec3)[0];
        const want = 1 + a * b * Math.cos(b * x);
        worst = Math.max(worst, Math.abs(r.det.data[i + 20 * (j + 18 * k)] - want));
      }
  assert.ok(worst < 1e-3, `max error ${worst}`);
  assert.equal(r.folded, 0);
  assert.ok(r.min > 0.78 && r.max < 1.22);
});

test('a planted fold (two neighbours swapped) is missed by central differences and counted by the variants', () => {
  const u = plantedSwap();
  const p0 = PLANTED_VOXEL;
  const r = jacobianDeterminant(u);
  assert.equal(r.nonPositive['000'], 0, 'central differences see no fold');
  assert.ok(r.min > 0, `central minimum ${r.min}`);
  assert.ok(Math.abs(r.det.data[p0] - 0.5) < 1e-5, `central det at p0 ${r.det.data[p0]}`);
  assert.equal(r.foldedMask.data[p0], 1);
  assert.equal(r.foldedMask.data[p0 + 1], 1);
  assert.equal(r.folded, 2);
  assert.equal(r.nonPositive['+++'], 1); // forward along i at p0
  assert.equal(r.nonPositive['---'], 1); // backward along i at p0 + 1
  assert.ok(Math.abs(r.foldedPercent - (100 * r.folded) / (8 * 7 * 6)) < 1e-12);
});

test('a fold that only the central-tetrahedron (star) variants see is counted (oblique, anisotropic)', () => {
  const u = starFold();
  const r = jacobianDeterminant(u);
  for (const v of JACOBIAN_VARIANTS.slice(0, 9)) assert.equal(r.nonPositive[v], 0, v);
  assert.ok(r.nonPositive['j1*'] + r.nonPositive['j2*'] > 0);
  assert.ok(r.folded > 0);
});

test('a mask restricts the counts', () => {
  const g = centeredGrid([6, 6, 6], [1, 1, 1], rotation([0, 0, 1], 0));
  const u = fieldFromAffine(g, affineOf([-1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0]));
  const m = makeVolume({ ...g, data: new Uint8Array(216) });
  m.data[0] = m.data[100] = 1;
  const r = jacobianDeterminant(u, { mask: m });
  assert.equal(r.voxels, 2);
  assert.equal(r.folded, 2);
});
