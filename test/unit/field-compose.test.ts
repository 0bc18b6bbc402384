import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeVolume, type Vec3 } from '../../main/engine/volume/volume.ts';
import { fieldFromAffine, type Field } from '../../main/engine/register/field/field.ts';
import { composeAffineAndField, composeAffines, composeFields } from '../../main/engine/register/field/compose.ts';
import { invertAffine, invertField, inverseConsistencyError } from '../../main/engine/register/field/invert.ts';
import { A1, A2, ap, centeredGrid, fieldOf, leftHanded, rotation } from './field-fixtures.ts';

const grid = centeredGrid([14, 12, 10], [1.4, 1.1, 2.3], rotation([1, -2, 0.5], 0.5));
const grid2 = centeredGrid([12, 12, 9], [2, 1.8, 2.5], leftHanded(rotation([0, 1, 1], -0.3)), [1, 0, -1]);

function maxDiff(a: Field, b: Field): number {
  let d = 0;
  for (let n = 0; n < a.data.length; n++) d = Math.max(d, Math.abs(a.data[n] - b.data[n]));
  return d;
}

test('composing two affine fields (first A1, then A2) gives the field of A2 A1', () => {
  const want = fieldFromAffine(grid, composeAffines({ first: A1, second: A2 }));
  const p: Vec3 = [3, -2, 5];
  const q = ap(composeAffines({ first: A1, second: A2 }), p);
  const r = ap(A2, ap(A1, p));
  for (let a = 0; a < 3; a++) assert.ok(Math.abs(q[a] - r[a]) < 1e-12);
  // The second field on another (left-handed, anisotropic) grid: linear extrapolation is exact for affines.
  const got = composeFields({
    first: fieldFromAffine(grid, A1),
    second: fieldFromAffine(grid2, A2),
    outside: 'linear',
  });
  assert.deepEqual(got.size, grid.size);
  assert.ok(maxDiff(got, want) < 1e-4, `max difference ${maxDiff(got, want)} mm`);
  // The order matters, and the test can tell.
  const swapped = fieldFromAffine(grid, composeAffines({ first: A2, second: A1 }));
  assert.ok(maxDiff(swapped, want) > 0.1);
});

test('composeAffineAndField, both orders, equals the composed affine', () => {
  const want = fieldFromAffine(grid, composeAffines({ first: A1, second: A2 }));
  const fieldFirst = composeAffineAndField({ first: fieldFromAffine(grid, A1), second: A2 });
  assert.ok(maxDiff(fieldFirst, want) < 1e-4, `field then affine: ${maxDiff(fieldFirst, want)}`);
  const affineFirst = composeAffineAndField({
    first: A1,
    second: fieldFromAffine(grid2, A2),
    grid,
    outside: 'linear',
  });
  assert.ok(maxDiff(affineFirst, want) < 1e-4, `affine then field: ${maxDiff(affineFirst, want)}`);
});

test('the inverse of an affine field is the field of the inverse affine', () => {
  const inv = invertField(fieldFromAffine(grid, A1), { outside: 'linear', tolerance: 1e-4 });
  assert.equal(inv.unconverged, 0);
  const want = fieldFromAffine(grid, invertAffine(A1));
  assert.ok(maxDiff(inv.field, want) < 1e-3, `max difference ${maxDiff(inv.field, want)}`);
  const id = composeAffines({ first: A1, second: invertAffine(A1) });
  for (let n = 0; n < 12; n++) assert.ok(Math.abs(id[n] - (n % 5 === 0 ? 1 : 0)) < 1e-12);
});

test('a smooth field of a few mm composed with its approximate inverse gives ~0 (oblique, anisotropic)', () => {
  const g = centeredGrid([24, 22, 16], [1.4, 1.1, 2.3], rotation([1, -2, 0.5], 0.5));
  const u = fieldOf(g, (p) => [
    3 * Math.sin(p[1] / 10 + 0.3),
    2.5 * Math.cos(p[2] / 12),
    2 * Math.sin(p[0] / 9 - 0.5) + 1,
  ]);
  const inv = invertField(u, { iterations: 50, tolerance: 1e-3 });
  assert.equal(inv.unconverged, 0, `unconverged ${inv.unconverged}`);
  assert.ok(inv.maxIterations < 30, `iterations ${inv.maxIterations}`);
  // v then u at the voxel centres of v: the fixed-point residual itself.
  const back = inverseConsistencyError(inv.field, u);
  assert.ok(back.max <= 1e-3 + 1e-6, `backward error ${back.max}`);
  // u then v: v is interpolated between its voxels. Near the faces the inverse needs u outside
  // its grid (border-clamped), so the strict bound is checked 4 voxels inside.
  const interior = makeVolume({ ...g, data: new Uint8Array(24 * 22 * 16) });
  for (let k = 4; k < 12; k++)
    for (let j = 4; j < 18; j++) for (let i = 4; i < 20; i++) interior.data[i + 24 * (j + 22 * k)] = 1;
  const all = inverseConsistencyError(u, inv.field);
  const inner = inverseConsistencyError(u, inv.field, { mask: interior });
  assert.ok(inner.count > 1000 && inner.excluded === 0, `${inner.count} voxels, ${inner.excluded} excluded`);
  assert.ok(inner.max < 0.1 && inner.mean < 0.03, `interior error mean ${inner.mean} max ${inner.max} mm`);
  assert.ok(all.mean < 0.1, `error mean ${all.mean} mm over ${all.count} voxels`);
  // u then v composed is ~0 there, while u itself is several mm.
  const c = composeFields({ first: u, second: inv.field });
  let worst = 0;
  let largest = 0;
  for (let n = 0; n < interior.data.length; n++) {
    if (!interior.data[n]) continue;
    worst = Math.max(worst, Math.hypot(c.data[3 * n], c.data[3 * n + 1], c.data[3 * n + 2]));
    largest = Math.max(largest, Math.hypot(u.data[3 * n], u.data[3 * n + 1], u.data[3 * n + 2]));
  }
  assert.ok(worst < 0.1 && largest > 3, `|u then v| ${worst} mm, |u| up to ${largest} mm`);
});
