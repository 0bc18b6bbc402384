/**
 * The Jacobian determinant and folding on the GPU (register/device/jacobian-on-device.ts) against
 * field/jacobian.ts on the fields of field-jacobian.test.ts (affine on right- and left-handed oblique
 * grids, a reflection, a planted swap, a fold only the star tetrahedra see, a sine field) and a
 * smooth random field split into slabs of 3 slices (the halo), with a mask; WebGPU (lavapipe here).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { fieldFromAffine, zeroField, type Field } from '../../main/engine/register/field/field.ts';
import { JACOBIAN_VARIANTS, jacobianDeterminant } from '../../main/engine/register/field/jacobian.ts';
import { jacobianOnDevice } from '../../main/engine/register/device/jacobian-on-device.ts';
import { makeVolume, type Vec3, type Volume } from '../../main/engine/volume/volume.ts';
import { A1, affineOf, centeredGrid, fieldOf, leftHanded, rotation } from './field-fixtures.ts';

function plantedSwap(): Field {
  const g = centeredGrid([8, 7, 6], [1.5, 0.8, 2], rotation([2, 1, -1], 0.5));
  const u = zeroField(g);
  const stepI: Vec3 = [g.direction[0] * 1.5, g.direction[3] * 1.5, g.direction[6] * 1.5];
  const p0 = 3 + 8 * (3 + 7 * 2);
  u.data.set(stepI, 3 * p0);
  u.data.set(
    stepI.map((v) => -v),
    3 * (p0 + 1),
  );
  return u;
}

function starFold(): Field {
  const moved: [number, Vec3][] = [
    [21, [-0.506, 0.191, 0.063]],
    [22, [0.126, -0.383, -0.457]],
    [25, [0.324, 0.2, 0.707]],
    [26, [-0.351, 0.026, -0.005]],
    [37, [-0.572, -0.175, -0.306]],
    [38, [-0.298, -0.098, -0.179]],
    [41, [0.23, 0.276, 0.006]],
    [42, [-0.412, 0.077, -0.758]],
  ];
  const g = centeredGrid([4, 4, 4], [1.5, 0.7, 2.2], leftHanded(rotation([1, 3, -2], 0.9)));
  const u = zeroField(g);
  const d = g.direction;
  for (const [n, v] of moved) {
    const s = [v[0] * g.spacing[0], v[1] * g.spacing[1], v[2] * g.spacing[2]];
    for (let r = 0; r < 3; r++) u.data[3 * n + r] = d[3 * r] * s[0] + d[3 * r + 1] * s[1] + d[3 * r + 2] * s[2];
  }
  return u;
}

/** A smooth field with folds where its amplitude is large (asymmetric grid, oblique). */
function wavy(): Field {
  const g = centeredGrid([23, 17, 11], [1.1, 0.9, 1.7], rotation([1, -2, 1], 0.35));
  return fieldOf(g, (p) => [
    2.2 * Math.sin(p[1] / 2.1) * Math.cos(p[2] / 3),
    1.8 * Math.cos(p[0] / 1.7 + p[2] / 4),
    1.5 * Math.sin(p[0] / 2.5 - p[1] / 3.3),
  ]);
}

test('WebGPU: Jacobian determinants and fold counts equal the host (every variant, slabs with halo, mask)', async (t) => {
  try {
    await initTfBackend({ backend: 'webgpu', gradients: false });
  } catch (e) {
    if (process.env.CI || process.env.SAM_DEBUG) throw e;
    t.skip(`no WebGPU adapter here (${(e as Error).message}); run 'npm run setup:test' to install lavapipe`);
    return;
  }
  try {
    const w = wavy();
    const mask = makeVolume({
      ...w,
      components: 1,
      data: Uint8Array.from({ length: 23 * 17 * 11 }, (_, v) => (v % 5 ? 1 : 0)),
    });
    const cases: [string, Field, { mask?: Volume; slabSlices?: number }][] = [
      [
        'affine, right-handed oblique',
        fieldFromAffine(centeredGrid([9, 8, 7], [1.3, 0.8, 2.4], rotation([1, 2, -1], 0.6)), A1),
        {},
      ],
      [
        'affine, left-handed oblique',
        fieldFromAffine(centeredGrid([9, 8, 7], [1.3, 0.8, 2.4], leftHanded(rotation([0.5, -1, 2], 0.4))), A1),
        {},
      ],
      [
        'reflection',
        fieldFromAffine(
          centeredGrid([6, 5, 4], [1, 1.5, 2], rotation([1, 1, 1], 0.3)),
          affineOf([1, 0, 0, 0, -1, 0, 0, 0, 1], [0, 0, 0]),
        ),
        {},
      ],
      ['planted swap', plantedSwap(), {}],
      ['star-only fold', starFold(), {}],
      ['wavy, one slab', w, {}],
      ['wavy, slabs of 3 slices, masked', w, { mask, slabSlices: 3 }],
    ];
    for (const [name, field, o] of cases) {
      const host = jacobianDeterminant(field, { mask: o.mask });
      const dev = await jacobianOnDevice(field, o);
      let worst = 0;
      for (let v = 0; v < host.det.data.length; v++)
        worst = Math.max(worst, Math.abs(host.det.data[v] - dev.det.data[v]));
      t.diagnostic(
        `${name}: folded ${dev.folded} (host ${host.folded}) of ${dev.voxels}; det max difference ${worst.toExponential(2)}`,
      );
      assert.ok(worst < 1e-4, `${name}: determinants differ by ${worst}`);
      assert.equal(dev.voxels, host.voxels, name);
      assert.equal(dev.folded, host.folded, name);
      for (const v of JACOBIAN_VARIANTS) assert.equal(dev.nonPositive[v], host.nonPositive[v], `${name}: variant ${v}`);
      assert.deepEqual(dev.foldedMask.data, host.foldedMask.data, name);
      assert.ok(Math.abs(dev.mean - host.mean) < 1e-5 && Math.abs(dev.std - host.std) < 1e-5, name);
    }
    assert.ok(jacobianDeterminant(w).folded > 0, 'the wavy field folds somewhere (the test sees folds)');
  } finally {
    await initTfBackend({ backend: 'cpu', gradients: false });
  }
});
