/**
 * The Jacobian determinant and folding on the GPU (register/device/jacobian-on-device.ts) against
 * field/jacobian.ts on the fields of field-jacobian.test.ts (affine on right- and left-handed oblique
 * grids, a reflection, a planted swap, a fold only the star tetrahedra see, a sine field) and a
 * smooth random field split into slabs of 3 slices (the halo), with a mask; and the same statistics
 * summed per row on the device (jacobian-stats-on-device.ts); WebGPU (lavapipe here).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { useWebgpu } from './webgpu-fixture.ts';
import { fieldFromAffine, type Field } from '../../main/engine/register/field/field.ts';
import { JACOBIAN_VARIANTS, jacobianDeterminant } from '../../main/engine/register/field/jacobian.ts';
import {
  jacobianOnDevice,
  jacobianSlab,
  jacobianSummaryOnDevice,
} from '../../main/engine/register/device/jacobian-on-device.ts';
import { JacobianStats } from '../../main/engine/register/device/jacobian-stats-on-device.ts';
import { maskOnDevice } from '../../main/engine/register/device/mask-on-device.ts';
import * as tf from '@tensorflow/tfjs-core';
import { makeVolume, type Volume } from '../../main/engine/volume/volume.ts';
import { A1, affineOf, centeredGrid, fieldOf, leftHanded, plantedSwap, rotation, starFold } from './field-fixtures.ts';

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
  if (!(await useWebgpu(t, false))) return;
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
      // the statistics summed per row on the device (jacobian-stats-on-device.ts, as the cascade's warp does)
      const mask = o.mask ? maskOnDevice(o.mask) : null;
      const stats = new JacobianStats(field, mask);
      const U = tf.tensor1d(field.data as Float32Array);
      const J = jacobianSlab(U, 3, field, 0, 0, field.data.length / 3);
      try {
        await stats.add(J, 0, field.size[2]);
      } finally {
        tf.dispose([U, J]);
        stats.dispose();
        mask?.dispose();
      }
      const sum = stats.result();
      assert.equal(sum.voxels, host.voxels, `${name}: row sums, voxels`);
      assert.equal(sum.folded, host.folded, `${name}: row sums, folded`);
      for (const v of JACOBIAN_VARIANTS)
        assert.equal(sum.nonPositive[v], host.nonPositive[v], `${name}: row sums, ${v}`);
      for (const k of ['mean', 'std', 'min', 'max'] as const)
        assert.ok(Math.abs(sum[k] - host[k]) < 1e-5, `${name}: row sums, ${k} ${sum[k]} vs ${host[k]}`);
      // the same through jacobianSummaryOnDevice (the deform stage's fold check), with its slabs
      const summary = await jacobianSummaryOnDevice(field, o);
      assert.equal(summary.voxels, host.voxels, `${name}: summary, voxels`);
      assert.equal(summary.folded, host.folded, `${name}: summary, folded`);
      assert.equal(summary.foldedPercent, host.foldedPercent, `${name}: summary, folded %`);
      for (const k of ['mean', 'std', 'min', 'max'] as const)
        assert.ok(Math.abs(summary[k] - host[k]) < 1e-5, `${name}: summary, ${k} ${summary[k]} vs ${host[k]}`);
    }
    assert.ok(jacobianDeterminant(w).folded > 0, 'the wavy field folds somewhere (the test sees folds)');
  } finally {
    await initTfBackend({ backend: 'cpu', gradients: false });
  }
});
