/**
 * The per-channel sum of the convolutions' bias gradient (sam/channel-sum-wgsl.ts): one WGSL
 * dispatch on WebGPU against a float64 sum, for channel counts and voxel counts that are and are not
 * multiples of the workgroup; the CPU backend's fallback against the same reference.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { sumPerChannel } from '../../main/engine/sam/channel-sum-wgsl.ts';
import { createRng } from '../../main/engine/train/rng.ts';
import { useWebgpu } from './webgpu-fixture.ts';

async function check(what: string): Promise<void> {
  for (const shape of [
    [2, 3, 5, 7, 16],
    [1, 1, 1, 1, 3],
    [4, 8, 24, 24, 128],
    [1000, 5],
  ]) {
    const r = createRng(shape.reduce((a, b) => a * b));
    const v = Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => r.next() - 0.5);
    const c = shape[shape.length - 1];
    const want = new Float64Array(c);
    v.forEach((x, i) => (want[i % c] += x));
    const x = tf.tensor(v, shape);
    const got = sumPerChannel(x);
    const g = await got.data();
    tf.dispose([x, got]);
    assert.equal(g.length, c);
    const voxels = v.length / c;
    for (let k = 0; k < c; k++)
      assert.ok(Math.abs(g[k] - want[k]) < 1e-6 * voxels, `${what} ${shape}: channel ${k} ${g[k]} vs ${want[k]}`);
  }
}

test('per-channel sums: tfjs CPU backend = float64', async () => {
  await initTfBackend({ backend: 'cpu' });
  await check('cpu');
});

test('WebGPU: per-channel sums in one dispatch = float64', async (t) => {
  if (!(await useWebgpu(t, false))) return;
  try {
    await check('webgpu');
  } finally {
    await initTfBackend({ backend: 'cpu' });
  }
});
