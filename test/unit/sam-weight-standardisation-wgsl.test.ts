/**
 * The WGSL weight standardisation (sam/weight-standardisation-wgsl.ts) against the same formula in
 * tfjs ops on the same WebGPU device (values and both gradients, through tf.grads) and its forward
 * against a float64 hand computation; fan-ins below, at and above the workgroup's 256 threads.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { standardisedKernelWgsl } from '../../main/engine/sam/weight-standardisation-wgsl.ts';
import { useWebgpu } from './webgpu-fixture.ts';

function values(seed: number, n: number, offset = 0): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5 + offset;
  });
}

/** The formula in tfjs ops (as network.ts' effectiveKernel computes it elsewhere). */
function byOps(k: tf.Tensor5D, g: tf.Tensor, scale: number): tf.Tensor5D {
  const cout = k.shape[4];
  const k2 = tf.reshape(k, [-1, cout]);
  const d = tf.sub(k2, tf.mean(k2, 0, true));
  const s = tf.mul(g, tf.rsqrt(tf.add(tf.sum(tf.square(d), 0), 1e-4)));
  return tf.reshape(tf.mul(d, tf.mul(s, scale)), k.shape);
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const largest = (a: ArrayLike<number>) => Math.max(...Array.from(a, Math.abs));

test('WebGPU: weight standardisation in WGSL equals tfjs ops (values and gradients) and float64', async (t) => {
  if (!(await useWebgpu(t))) return;
  try {
    for (const shape of [
      [1, 3, 3, 4, 8],
      [3, 3, 3, 16, 32],
      [1, 1, 1, 300, 5],
    ] as [number, number, number, number, number][]) {
      const n = shape.reduce((a, b) => a * b);
      const cout = shape[4];
      const fanIn = n / cout;
      const k = tf.tensor5d(values(n, n, 0.1), shape);
      const g = tf.tensor1d(values(cout, cout, 1));
      const r = tf.tensor5d(values(7, n), shape);
      const scale = 1.7;
      const loss = (f: typeof byOps) => (kk: tf.Tensor, gg: tf.Tensor) =>
        tf.sum(tf.mul(f(kk as tf.Tensor5D, gg, scale), r)) as tf.Scalar;
      const [ours, ref] = [standardisedKernelWgsl(k, g, scale), byOps(k, g, scale)];
      const [go, gr] = [tf.grads(loss(standardisedKernelWgsl)), tf.grads(loss(byOps))].map((f) => f([k, g]));
      const [vo, vr, dko, dkr, dgo, dgr] = await Promise.all(
        [ours, ref, go[0], gr[0], go[1], gr[1]].map(async (x) => (await x.data()) as Float32Array),
      );
      const what = `kernel ${shape.join('x')}`;
      assert.ok(maxAbs(vo, vr) < 1e-6 * largest(vr), `${what}: values differ by ${maxAbs(vo, vr)}`);
      assert.ok(maxAbs(dko, dkr) < 1e-5 * largest(dkr), `${what}: dW differs by ${maxAbs(dko, dkr)}`);
      assert.ok(maxAbs(dgo, dgr) < 1e-5 * largest(dgr), `${what}: dg differs by ${maxAbs(dgo, dgr)}`);
      // float64 forward of output channel cout - 1
      const kv = values(n, n, 0.1);
      const gv = values(cout, cout, 1);
      const c = cout - 1;
      let mean = 0;
      for (let f = 0; f < fanIn; f++) mean += kv[f * cout + c] / fanIn;
      let q = 0;
      for (let f = 0; f < fanIn; f++) q += (kv[f * cout + c] - mean) ** 2;
      for (let f = 0; f < fanIn; f += 7) {
        const want = (scale * gv[c] * (kv[f * cout + c] - mean)) / Math.sqrt(q + 1e-4);
        assert.ok(Math.abs(vo[f * cout + c] - want) < 2e-6 * Math.abs(want) + 1e-7, `${what}: float64 at ${f}`);
      }
      tf.dispose([k, g, r, ours, ref, ...go, ...gr]);
    }
  } finally {
    await initTfBackend({ backend: 'cpu' });
  }
});
