import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  geometryProblem,
  indexToWorld,
  invert3,
  mul3,
  orientationCode,
  orthonormalize,
  worldToIndex,
  sameGrid,
  type Geometry,
} from '../../main/engine/volume/geometry.ts';
import type { Mat3, Vec3 } from '../../main/engine/volume/volume.ts';

const c = Math.cos(0.3);
const s = Math.sin(0.3);
// Rotation about z by 0.3 rad, then the k axis flipped (det -1): an oblique, left-handed grid.
const oblique: Geometry = {
  size: [10, 20, 30],
  spacing: [0.5, 0.75, 2.5],
  origin: [-100, 50, 12],
  direction: [c, -s, 0, s, c, 0, 0, 0, -1] as Mat3,
};

test('indexToWorld matches a hand computation on an oblique, anisotropic grid', () => {
  // world = origin + D diag(spacing) ijk, computed by hand for ijk = (2, 4, 6)
  const ijk: Vec3 = [2, 4, 6];
  const expect: Vec3 = [-100 + c * 2 * 0.5 - s * 4 * 0.75, 50 + s * 2 * 0.5 + c * 4 * 0.75, 12 - 6 * 2.5];
  const got = indexToWorld(oblique, ijk);
  for (let a = 0; a < 3; a++) assert.ok(Math.abs(got[a] - expect[a]) < 1e-12, `axis ${a}: ${got[a]} vs ${expect[a]}`);
});

test('worldToIndex inverts indexToWorld', () => {
  for (const ijk of [
    [0, 0, 0],
    [9, 19, 29],
    [3.25, -1.5, 7.75],
  ] as Vec3[]) {
    const back = worldToIndex(oblique, indexToWorld(oblique, ijk));
    for (let a = 0; a < 3; a++) assert.ok(Math.abs(back[a] - ijk[a]) < 1e-10);
  }
});

test('geometryProblem accepts valid grids and names each invalid one', () => {
  assert.equal(geometryProblem(oblique), null);
  assert.match(geometryProblem({ ...oblique, spacing: [0, 1, 1] })!, /spacing/);
  assert.match(geometryProblem({ ...oblique, spacing: [1, -1, 1] })!, /spacing/);
  assert.match(geometryProblem({ ...oblique, spacing: [1, NaN, 1] })!, /spacing/);
  assert.match(geometryProblem({ ...oblique, size: [0, 1, 1] })!, /size/);
  assert.match(geometryProblem({ ...oblique, origin: [0, Infinity, 0] })!, /origin/);
  assert.match(geometryProblem({ ...oblique, direction: [1, 0.1, 0, 0, 1, 0, 0, 0, 1] })!, /orthonormal/);
});

test('orthonormalize repairs header rounding and keeps handedness', () => {
  const rounded = oblique.direction.map((x) => +x.toFixed(5)) as Mat3;
  const fixed = orthonormalize(rounded);
  assert.equal(geometryProblem({ ...oblique, direction: fixed }), null);
  for (let n = 0; n < 9; n++) assert.ok(Math.abs(fixed[n] - oblique.direction[n]) < 1e-5);
  assert.ok(fixed[8] < 0, 'the flipped k axis stays flipped');
});

test('orientationCode reports the direction of increasing index', () => {
  assert.equal(orientationCode([1, 0, 0, 0, 1, 0, 0, 0, 1]), 'LPS');
  // NIfTI-typical RAS-stored volume seen in LPS: i -> R, j -> A, k -> S
  assert.equal(orientationCode([-1, 0, 0, 0, -1, 0, 0, 0, 1]), 'RAS');
  assert.equal(orientationCode(oblique.direction), 'LPI');
});

test('sameGrid compares origin, far corner and direction', () => {
  assert.ok(sameGrid(oblique, { ...oblique }));
  assert.ok(!sameGrid(oblique, { ...oblique, origin: [-100, 50, 12.01] }));
  assert.ok(!sameGrid(oblique, { ...oblique, spacing: [0.5, 0.75, 2.51] }));
});

test('invert3: the inverse of a general 3x3 matrix times the matrix is the identity', () => {
  const m = [2, 1, 0.5, -1, 3, 0.25, 0.3, -0.7, 1.5] as Mat3;
  const p = mul3(invert3(m), m);
  p.forEach((x, n) => assert.ok(Math.abs(x - (n % 4 === 0 ? 1 : 0)) < 1e-12, `${n}: ${x}`));
});
