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

test('every variant on a rough folding field equals an independent float64 reference (oblique, anisotropic, mask)', () => {
  // a field rough enough to fold in every variant, on a left-handed oblique grid; a mask over part of it
  const size: Vec3 = [11, 9, 8];
  const g = centeredGrid(size, [1.3, 0.8, 2.4], leftHanded(rotation([1, 2, -1], 0.6)));
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const u = fieldOf(g, () => [1.1 * rnd(), 0.7 * rnd(), 1.8 * rnd()]);
  const mask = makeVolume({ ...g, data: new Uint8Array(11 * 9 * 8) });
  for (let n = 0; n < mask.data.length; n++) mask.data[n] = n % 5 === 0 ? 0 : 1;
  const r = jacobianDeterminant(u, { mask });

  // reference: the index-space map P(i) = i + S^-1 D^T u(i); each variant's columns are differences of P
  const D = g.direction;
  const P = (i: number, j: number, k: number): Vec3 => {
    const n = 3 * (i + size[0] * (j + size[1] * k));
    const w = [u.data[n], u.data[n + 1], u.data[n + 2]];
    const idx = [i, j, k];
    return [0, 1, 2].map((a) => idx[a] + (D[a] * w[0] + D[3 + a] * w[1] + D[6 + a] * w[2]) / g.spacing[a]) as Vec3;
  };
  const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
  // columns as a Mat3 (row-major: column c is entries c, c + 3, c + 6)
  const detOf = (c0: Vec3, c1: Vec3, c2: Vec3) => det3([c0[0], c1[0], c2[0], c0[1], c1[1], c2[1], c0[2], c1[2], c2[2]]);
  const counts = Object.fromEntries(JACOBIAN_VARIANTS.map((v) => [v, 0])) as Record<string, number>;
  let folded = 0;
  let worst = 0;
  for (let k = 0; k < size[2]; k++)
    for (let j = 0; j < size[1]; j++)
      for (let i = 0; i < size[0]; i++) {
        const n = i + size[0] * (j + size[1] * k);
        const idx = [i, j, k];
        const at = (d: number[]) => P(i + d[0], j + d[1], k + d[2]);
        const e = (a: number, s: number) => [0, 1, 2].map((b) => (b === a ? s : 0));
        const has = (a: number, s: number) => idx[a] + s >= 0 && idx[a] + s < size[a];
        const fwd = [0, 1, 2].map((a) => (has(a, 1) ? sub(at(e(a, 1)), at([0, 0, 0])) : null));
        const bwd = [0, 1, 2].map((a) => (has(a, -1) ? sub(at([0, 0, 0]), at(e(a, -1))) : null));
        const cen = [0, 1, 2].map((a) => {
          const f = fwd[a] ?? bwd[a]!;
          const b = bwd[a] ?? fwd[a]!;
          return [0, 1, 2].map((q) => (f[q] + b[q]) / 2) as Vec3;
        });
        const central = detOf(cen[0], cen[1], cen[2]);
        worst = Math.max(worst, Math.abs(r.det.data[n] - central) / Math.max(1, Math.abs(central)));
        if (!mask.data[n]) continue;
        let isFolded = false;
        const count = (name: string, d: number) => {
          if (d > 0) return;
          counts[name]++;
          isFolded = true;
        };
        count('000', central);
        JACOBIAN_VARIANTS.slice(1, 9).forEach((name) => {
          const cols = [0, 1, 2].map((a) => (name[a] === '+' ? fwd[a] : bwd[a]));
          if (cols.every((c) => c)) count(name, detOf(cols[0]!, cols[1]!, cols[2]!));
        });
        const star = (edges: number[][]) => {
          if (!edges.every((d) => d.every((s, a) => has(a, s)))) return;
          const [a, b, c] = edges.map((d) => sub(at(d), at([0, 0, 0])));
          return detOf(a, b, c) / 2;
        };
        const j1 = star([
          [-1, -1, 0],
          [-1, 0, -1],
          [0, -1, -1],
        ]);
        const j2 = star([
          [1, 1, 0],
          [0, 1, 1],
          [1, 0, 1],
        ]);
        if (j1 !== undefined) count('j1*', j1);
        if (j2 !== undefined) count('j2*', j2);
        if (isFolded) folded++;
        assert.equal(r.foldedMask.data[n], isFolded ? 1 : 0, `fold flag at ${idx}`);
      }
  assert.ok(worst < 1e-5, `central determinant: largest relative difference ${worst}`);
  for (const v of JACOBIAN_VARIANTS) {
    assert.ok(counts[v] > 0, `the field folds in variant ${v}`);
    assert.equal(r.nonPositive[v], counts[v], v);
  }
  assert.equal(r.folded, folded);
  assert.ok(folded < r.voxels, 'not every voxel folds');
});
