import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stageField } from '../../main/engine/register/stage-field.ts';
import { fieldFromAffine, zeroField } from '../../main/engine/register/field/field.ts';
import { applyAffine, indexToWorld, type Affine3x4, type Geometry } from '../../main/engine/volume/geometry.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';

// an oblique, anisotropic output grid and a correction on its own oblique grid
const c = Math.cos(0.4);
const s = Math.sin(0.4);
const grid: Geometry = {
  size: [13, 9, 7],
  spacing: [2, 3, 2.5],
  origin: [-10, 4, 7],
  direction: [c, s, 0, -s, c, 0, 0, 0, 1],
};
const cGrid: Geometry = {
  size: [6, 5, 4],
  spacing: [7, 8, 9],
  origin: [-20, -15, -5],
  direction: [1, 0, 0, 0, c, s, 0, -s, c],
};
const affine: Affine3x4 = [1.05, 0.1, 0, 3, -0.08, 0.97, 0.02, -2, 0, 0.04, 1.1, 1.5];
// a correction linear in world coordinates: trilinear interpolation reproduces it exactly
const v = (p: Vec3): Vec3 => [
  0.02 * p[0] - 0.01 * p[1] + 1,
  0.03 * p[2] + 0.5,
  -0.015 * p[0] + 0.01 * p[1] - 0.02 * p[2],
];

test('stageField: u(x) = A x - x + v(x), v linear inside its grid, its border value outside (oblique grids)', () => {
  const corr = zeroField(cGrid);
  const [ci, cj, ck] = cGrid.size;
  for (let k = 0, q = 0; k < ck; k++)
    for (let j = 0; j < cj; j++)
      for (let i = 0; i < ci; i++, q += 3) corr.data.set(v(indexToWorld(cGrid, [i, j, k])), q);
  const f = stageField(grid, affine, [corr]);
  const toC = (p: Vec3) => {
    // world -> continuous index of the correction grid (its direction is orthonormal)
    const d = p.map((x, a) => x - cGrid.origin[a]);
    return [0, 1, 2].map(
      (a) =>
        (d[0] * cGrid.direction[a] + d[1] * cGrid.direction[3 + a] + d[2] * cGrid.direction[6 + a]) / cGrid.spacing[a],
    );
  };
  let inside = 0;
  let outside = 0;
  const [ni, nj, nk] = grid.size;
  for (let k = 0, q = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, q += 3) {
        const x = indexToWorld(grid, [i, j, k]);
        const idx = toC(x);
        // the border rule: v at the point clamped onto the correction's voxel-centre hull
        const clamped = idx.map((t, a) => Math.min(cGrid.size[a] - 1, Math.max(0, t))) as Vec3;
        const isInside = clamped.every((t, a) => t === idx[a]);
        if (isInside) inside++;
        else outside++;
        const ax = applyAffine(affine, x);
        const vx = v(indexToWorld(cGrid, clamped));
        for (let a = 0; a < 3; a++)
          assert.ok(
            Math.abs(f.data[q + a] - (ax[a] - x[a] + vx[a])) < 1e-4,
            `voxel ${i},${j},${k} component ${a}: ${f.data[q + a]} vs ${ax[a] - x[a] + vx[a]}`,
          );
      }
  assert.ok(inside > 50 && outside > 50, `${inside} voxels inside the correction grid, ${outside} outside`);
});

test('stageField on axis-aligned grids (per-axis cells) equals the general loop (the same grids a hair off axis)', () => {
  // diag(-1, -1, 1) (as a DICOM axial series in LPS) and the identity; a rough correction beyond the grid
  const make = (direction: Geometry['direction']): { out: Geometry; cg: Geometry } => ({
    out: { size: [17, 12, 9], spacing: [1.5, 1.2, 2.5], origin: [30, 20, -12], direction },
    cg: { size: [5, 4, 4], spacing: [6, 7, 8], origin: [25, 12, -20], direction },
  });
  let seed = 3;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 10 - 5;
  for (const d of [
    [-1, 0, 0, 0, -1, 0, 0, 0, 1],
    [1, 0, 0, 0, 1, 0, 0, 0, 1],
  ]) {
    const aligned = make(d as Geometry['direction']);
    // off-diagonal entries of 1e-300: the general loop, whose extra terms vanish in every sum
    const tilted = make(d.map((x) => (x === 0 ? 1e-300 : x)) as Geometry['direction']);
    const corr = zeroField(aligned.cg);
    for (let q = 0; q < corr.data.length; q++) corr.data[q] = rnd();
    const a = stageField(aligned.out, affine, [corr]);
    const b = stageField(tilted.out, affine, [{ ...corr, direction: tilted.cg.direction }]);
    assert.deepEqual(a.data, b.data, `direction ${d}`);
    assert.ok(
      a.data.some((x, q) => x !== fieldFromAffine(aligned.out, affine).data[q]),
      'the correction changed the field',
    );
  }
});
