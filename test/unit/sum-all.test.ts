/**
 * compute/sum-all.ts: a whole-tensor sum in two reductions (rows, then their sums) equals the float64
 * sum on tfjs' CPU backend and on WebGPU (lavapipe here), for a size that is not a multiple of the row
 * count, and its gradient is ones (it sits inside the deform stage's differentiated loss).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { sumAll } from '../../main/engine/compute/sum-all.ts';
import { useWebgpu } from './webgpu-fixture.ts';

const N = 1_000_003;
const values = Float32Array.from({ length: N }, (_, q) => Math.sin(q * 0.37) + 0.25);
const exact = values.reduce((a, b) => a + b, 0);

async function check(backend: string): Promise<void> {
  const before = tf.memory().numTensors;
  const x = tf.tensor1d(values);
  const s = tf.tidy(() => sumAll(tf.reshape(x, [N, 1])));
  const got = (await s.data())[0];
  assert.ok(Math.abs(got - exact) <= 1e-5 * Math.abs(exact) + 1e-3, `${backend}: ${got} vs ${exact}`);
  // the gradient of the sum is ones
  const g = tf.grad((t: tf.Tensor) => sumAll(t))(x);
  const gd = await g.data();
  assert.ok(
    gd.every((v) => v === 1),
    `${backend}: gradient`,
  );
  tf.dispose([x, s, g]);
  assert.equal(tf.memory().numTensors, before, `${backend}: no tensor left`);
  // small tensors: tf.sum itself
  const small = tf.tensor1d([1, 2, 3.5]);
  assert.equal((await sumAll(small).data())[0], 6.5);
  small.dispose();
}

test('sumAll equals the float64 sum, with a gradient of ones (CPU backend)', async () => {
  await initTfBackend({ backend: 'cpu', gradients: true });
  await check('cpu');
});

test('sumAll equals the float64 sum on WebGPU', async (t) => {
  if (!(await useWebgpu(t))) return;
  try {
    await check('webgpu');
  } finally {
    await initTfBackend({ backend: 'cpu', gradients: false });
  }
});
