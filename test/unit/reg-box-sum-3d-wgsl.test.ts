// The deform stage's box sums and means in one WGSL dispatch (register/device/deform-wgsl.ts
// boxSum3dWgsl) against the three axis passes (boxSum3Wgsl): the same float32 numbers bit for bit, on
// grids with size-1 and size-2 axes, radius 1 and 2, sums and means, several channels; on WebGPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { useWebgpu } from './webgpu-fixture.ts';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { boxSum3dWgsl, boxSum3Wgsl } from '../../main/engine/register/device/deform-wgsl.ts';
import { createRng } from '../../main/engine/train/rng.ts';

test('WebGPU: the box sum and mean in one dispatch = the three axis passes, bit for bit', async (t) => {
  if (!(await useWebgpu(t, false))) return;
  try {
    const rng = createRng(8);
    let compared = 0;
    for (const shape of [
      [5, 6, 7, 3],
      [1, 4, 9, 1],
      [6, 1, 2, 4],
      [3, 8, 1, 2],
    ] as [number, number, number, number][]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = tf.tensor4d(
        Float32Array.from({ length: n }, () => rng.uniform(-3, 3) * 10 ** rng.int(-2, 3)),
        shape,
      );
      for (const r of [1, 2])
        for (const mean of [false, true]) {
          const a = boxSum3dWgsl(x, r, mean);
          const b = boxSum3Wgsl(x, r, mean);
          const da = (await a.data()) as Float32Array;
          const db = (await b.data()) as Float32Array;
          tf.dispose([a, b]);
          const differ = da.findIndex((v, i) => !Object.is(v, db[i]));
          assert.equal(differ, -1, `${shape} r ${r} mean ${mean}: element ${differ}: ${da[differ]} vs ${db[differ]}`);
          compared += n;
        }
      x.dispose();
    }
    t.diagnostic(`${compared} values identical`);
  } finally {
    await initTfBackend({ backend: 'cpu', gradients: false });
  }
});
