/**
 * ReLU's gradient on WebGPU in one dispatch (sam/relu-wgsl.ts) against tfjs' ReLU and its own
 * gradient (Step, Cast, Multiply): the values and the gradient of a weighted sum, on a rank-5 tensor
 * with zeros (gradient 0 at 0, as tfjs' Step), a size past one workgroup's multiple, and 1 element.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { reluWgsl } from '../../main/engine/sam/relu-wgsl.ts';
import { createRng } from '../../main/engine/train/rng.ts';
import { useWebgpu } from './webgpu-fixture.ts';

test('WebGPU: ReLU with its gradient in one dispatch = tfjs ReLU and its gradient', async (t) => {
  if (!(await useWebgpu(t))) return;
  try {
    for (const shape of [
      [2, 3, 5, 7, 33],
      [1, 1, 1, 1, 1],
    ]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const r = createRng(n);
      const v = Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 0 : (r.next() - 0.5) * 3));
      const w = Float32Array.from({ length: n }, () => r.next() - 0.5);
      const x = tf.tensor5d(v, shape as [number, number, number, number, number]);
      const wt = tf.tensor(w, shape);
      const loss = (f: (x: tf.Tensor5D) => tf.Tensor) => (xx: tf.Tensor) => tf.sum(tf.mul(f(xx as tf.Tensor5D), wt));
      const [yw, yo] = [reluWgsl(x), tf.relu(x)];
      const [gw, go] = [tf.grad(loss(reluWgsl))(x), tf.grad(loss((a) => tf.relu(a)))(x)];
      assert.deepEqual(gw.shape, shape);
      const [a, b, ga, gb] = await Promise.all([yw.data(), yo.data(), gw.data(), go.data()]);
      tf.dispose([x, wt, yw, yo, gw, go]);
      assert.deepEqual(a, b);
      assert.deepEqual(ga, gb);
      for (let i = 0; i < n; i++) assert.equal(ga[i], v[i] > 0 ? w[i] : w[i] * 0, `${shape} grad ${i}`);
    }
  } finally {
    await initTfBackend({ backend: 'cpu' });
  }
});
