/**
 * The embeddings' L2 normalisation on WebGPU (sam/l2-normalise-wgsl.ts): one dispatch forward and one
 * for the gradient, against the tfjs ops network.ts uses elsewhere (values and the gradient of a
 * weighted sum), with a row of zeros (the clamp) and channel counts of the small and paper heads.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { l2NormaliseRowsWgsl } from '../../main/engine/sam/l2-normalise-wgsl.ts';
import { createRng } from '../../main/engine/train/rng.ts';
import { useWebgpu } from './webgpu-fixture.ts';

/** network.ts's tfjs-op normalisation. */
function byOps(x2: tf.Tensor2D): tf.Tensor2D {
  const c = x2.shape[1];
  const inv = tf.rsqrt(tf.maximum(tf.sum(tf.square(x2), -1, true), 1e-12));
  return tf.mul(x2, tf.matMul(inv, tf.ones([1, c]))) as tf.Tensor2D;
}

test('WebGPU: L2 normalisation and its gradient in one dispatch each = the tfjs ops', async (t) => {
  if (!(await useWebgpu(t))) return;
  try {
    for (const [rows, c] of [
      [1000, 16],
      [77, 128],
      [3, 1],
    ]) {
      const r = createRng(rows * c);
      const v = Float32Array.from({ length: rows * c }, () => (r.next() - 0.5) * 3);
      v.fill(0, c, 2 * c); // row 1 all zeros: the clamp
      const w = Float32Array.from({ length: rows * c }, () => r.next() - 0.5);
      const x = tf.tensor2d(v, [rows, c]);
      const wt = tf.tensor2d(w, [rows, c]);
      const loss = (f: (x: tf.Tensor2D) => tf.Tensor2D) => (xx: tf.Tensor) => tf.sum(tf.mul(f(xx as tf.Tensor2D), wt));
      const [yw, yo] = [l2NormaliseRowsWgsl(x), byOps(x)];
      const [gw, go] = [tf.grad(loss(l2NormaliseRowsWgsl))(x), tf.grad(loss(byOps))(x)];
      const [a, b, ga, gb] = await Promise.all([yw.data(), yo.data(), gw.data(), go.data()]);
      tf.dispose([x, wt, yw, yo, gw, go]);
      for (let i = 0; i < a.length; i++) {
        assert.ok(Math.abs(a[i] - b[i]) < 1e-6, `${rows}x${c} value ${i}: ${a[i]} vs ${b[i]}`);
        assert.ok(
          Math.abs(ga[i] - gb[i]) < 1e-5 * (1 + Math.abs(gb[i])),
          `${rows}x${c} grad ${i}: ${ga[i]} vs ${gb[i]}`,
        );
      }
      // the zero row: y = 0, dL/dx = w * 1e6 (r at the clamp)
      for (let k = 0; k < c; k++) assert.equal(a[c + k], 0);
    }
  } finally {
    await initTfBackend({ backend: 'cpu' });
  }
});
