/**
 * The cascade's folding statistics from its map on the GPU (register/device/jacobian-of-map-on-device.ts)
 * against the host's jacobianDeterminant of stageField(grid, affine, corrections): an oblique,
 * anisotropic fixed grid, an oblique affine, corrections on two other oblique grids (one smooth, one
 * that folds), with and without a mask, in one slab and in slabs of 3 slices; WebGPU (lavapipe here).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { useWebgpu } from './webgpu-fixture.ts';
import type { Field } from '../../main/engine/register/field/field.ts';
import { JACOBIAN_VARIANTS, jacobianDeterminant } from '../../main/engine/register/field/jacobian.ts';
import { stageField } from '../../main/engine/register/stage-field.ts';
import { jacobianOfMapOnDevice } from '../../main/engine/register/device/jacobian-of-map-on-device.ts';
import { makeVolume, type Volume } from '../../main/engine/volume/volume.ts';
import type { Affine3x4 } from '../../main/engine/volume/geometry.ts';
import { A1, centeredGrid, fieldOf, rotation } from './field-fixtures.ts';

test('WebGPU: Jacobian statistics of the cascade map equal the host on its field (every variant, mask, slabs)', async (t) => {
  if (!(await useWebgpu(t, false))) return;
  try {
    const grid = centeredGrid([23, 17, 11], [1.1, 0.9, 1.7], rotation([1, -2, 1], 0.35));
    const smooth = fieldOf(centeredGrid([9, 8, 7], [3.1, 2.7, 3.3], rotation([0, 1, 1], 0.5)), (p) => [
      0.8 * Math.sin(p[1] / 6),
      0.6 * Math.cos(p[0] / 7 + p[2] / 9),
      0.5 * Math.sin(p[2] / 5),
    ]);
    const folding = fieldOf(centeredGrid([14, 12, 9], [1.9, 1.6, 2.2], rotation([2, 1, -1], -0.3)), (p) => [
      3.5 * Math.sin(p[1] / 2.3) * Math.cos(p[2] / 3),
      2.8 * Math.cos(p[0] / 1.9 + p[2] / 4),
      2.2 * Math.sin(p[0] / 2.5 - p[1] / 3.3),
    ]);
    const mask = makeVolume({
      ...grid,
      components: 1,
      data: Uint8Array.from({ length: 23 * 17 * 11 }, (_, v) => (v % 5 ? 1 : 0)),
    });
    const A = A1 as unknown as Affine3x4;
    const cases: [string, Field[], { mask?: Volume; slabSlices?: number }][] = [
      ['affine only', [], {}],
      ['one smooth correction', [smooth], {}],
      ['two corrections, folding', [smooth, folding], {}],
      ['two corrections, folding, masked, slabs of 3 slices', [smooth, folding], { mask, slabSlices: 3 }],
    ];
    let sawFolds = false;
    for (const [name, corrections, o] of cases) {
      const host = jacobianDeterminant(stageField(grid, A, corrections), { mask: o.mask });
      const dev = await jacobianOfMapOnDevice(grid, A, corrections, o);
      assert.ok(dev, name);
      t.diagnostic(
        `${name}: folded ${dev.folded} (host ${host.folded}) of ${dev.voxels}; mean ${dev.mean.toFixed(6)} ` +
          `(host ${host.mean.toFixed(6)}), std ${dev.std.toFixed(6)} (${host.std.toFixed(6)}), ` +
          `min ${dev.min.toFixed(6)} (${host.min.toFixed(6)}), max ${dev.max.toFixed(6)} (${host.max.toFixed(6)})`,
      );
      sawFolds ||= host.folded > 0;
      assert.equal(dev.voxels, host.voxels, name);
      assert.equal(dev.folded, host.folded, name);
      assert.equal(dev.foldedPercent, host.foldedPercent, name);
      for (const v of JACOBIAN_VARIANTS) assert.equal(dev.nonPositive[v], host.nonPositive[v], `${name}: variant ${v}`);
      for (const k of ['mean', 'std', 'min', 'max'] as const)
        assert.ok(Math.abs(dev[k] - host[k]) < 1e-4, `${name}: ${k} ${dev[k]} vs ${host[k]}`);
    }
    assert.ok(sawFolds, 'the folding correction folds somewhere (the test sees folds)');
  } finally {
    await initTfBackend({ backend: 'cpu', gradients: false });
  }
});
