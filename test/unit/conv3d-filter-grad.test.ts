/**
 * The conv3d weight gradient by per-tap matrix products (sam/conv3d-filter-grad.ts) against tfjs'
 * built-in Conv3DBackpropFilterV2 kernel (the reference) and a float64 sum, for the network's kernel
 * shapes, strides and 'same'/'valid' padding; and conv3dTapGrad's value and both gradients against
 * tf.conv3d's. On the CPU backend, and on WebGPU where an adapter exists (lavapipe in CI).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { conv3dFilterGradByTaps, conv3dTapGrad, type Vec3 } from '../../main/engine/sam/conv3d-filter-grad.ts';
import { createRng } from '../../main/engine/train/rng.ts';

interface Case {
  x: [number, number, number, number, number];
  k: Vec3;
  cout: number;
  strides: Vec3;
  pad: 'same' | 'valid';
}

const CASES: Case[] = [
  { x: [2, 6, 9, 8, 3], k: [3, 3, 3], cout: 4, strides: [1, 1, 1], pad: 'same' },
  { x: [1, 5, 11, 10, 2], k: [1, 3, 3], cout: 3, strides: [1, 1, 1], pad: 'same' },
  { x: [2, 7, 13, 12, 2], k: [3, 3, 3], cout: 5, strides: [2, 2, 2], pad: 'same' },
  { x: [1, 4, 15, 14, 1], k: [3, 7, 7], cout: 4, strides: [1, 1, 1], pad: 'same' },
  { x: [1, 6, 12, 12, 3], k: [1, 3, 3], cout: 2, strides: [1, 2, 2], pad: 'same' },
  { x: [1, 6, 9, 9, 2], k: [3, 3, 3], cout: 3, strides: [1, 1, 1], pad: 'valid' },
  { x: [2, 5, 6, 7, 4], k: [1, 1, 1], cout: 6, strides: [1, 1, 1], pad: 'same' },
];

function random(shape: number[], seed: number): tf.Tensor {
  const rng = createRng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => rng.uniform(-1, 1)),
    shape,
  );
}

/** float64 dW by the definition, from the padding tfjs reports. */
async function reference64(x: tf.Tensor5D, dy: tf.Tensor5D, c: Case): Promise<Float64Array> {
  const info = tf.backend_util.computeConv3DInfo(x.shape, [...c.k, c.x[4], c.cout], c.strides, 1, c.pad);
  const xv = await x.data();
  const dv = await dy.data();
  const [B, D, H, W, Ci] = x.shape;
  const [, Do, Ho, Wo, Co] = dy.shape;
  const out = new Float64Array(c.k[0] * c.k[1] * c.k[2] * Ci * Co);
  for (let a = 0; a < c.k[0]; a++)
    for (let bb = 0; bb < c.k[1]; bb++)
      for (let cc = 0; cc < c.k[2]; cc++)
        for (let b = 0; b < B; b++)
          for (let z = 0; z < Do; z++)
            for (let y = 0; y < Ho; y++)
              for (let xx = 0; xx < Wo; xx++) {
                const iz = z * c.strides[0] + a - info.padInfo.front;
                const iy = y * c.strides[1] + bb - info.padInfo.top;
                const ix = xx * c.strides[2] + cc - info.padInfo.left;
                if (iz < 0 || iz >= D || iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                for (let ci = 0; ci < Ci; ci++) {
                  const xval = xv[(((b * D + iz) * H + iy) * W + ix) * Ci + ci];
                  for (let co = 0; co < Co; co++)
                    out[(((a * c.k[1] + bb) * c.k[2] + cc) * Ci + ci) * Co + co] +=
                      xval * dv[(((b * Do + z) * Ho + y) * Wo + xx) * Co + co];
                }
              }
  return out;
}

function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

async function checkBackend(backend: 'cpu' | 'webgpu'): Promise<void> {
  const v = async (t: tf.Tensor) => await t.data();
  for (const [n, c] of CASES.entries()) {
    const x = random(c.x, 10 + n) as tf.Tensor5D;
    const w = random([...c.k, c.x[4], c.cout], 20 + n) as tf.Tensor5D;
    const y = tf.conv3d(x, w, c.strides, c.pad);
    const dy = random(y.shape, 30 + n) as tf.Tensor5D;
    const mine = conv3dFilterGradByTaps(x, dy, w.shape as Case['x'], c.strides, c.pad);
    // the reference kernel, through tf.grad of tf.conv3d
    const ref = tf.grad((wt: tf.Tensor) => tf.sum(tf.mul(tf.conv3d(x, wt as tf.Tensor5D, c.strides, c.pad), dy)))(w);
    assert.deepEqual(mine.shape, ref.shape);
    const e = maxRelError(await v(mine), await v(ref));
    const e64 = maxRelError(await v(mine), await reference64(x, dy, c));
    assert.ok(e < 1e-5, `${backend} case ${n}: vs tfjs' kernel max relative error ${e}`);
    assert.ok(e64 < 1e-5, `${backend} case ${n}: vs float64 max relative error ${e64}`);
    // conv3dTapGrad: same value, same input and filter gradients as tf.conv3d
    type Conv = (a: tf.Tensor5D, b: tf.Tensor5D) => tf.Tensor5D;
    const loss = (f: Conv) => (xt: tf.Tensor, wt: tf.Tensor) =>
      tf.sum(tf.mul(f(xt as tf.Tensor5D, wt as tf.Tensor5D), dy));
    const [gx1, gw1] = tf.grads(loss((a, b) => tf.conv3d(a, b, c.strides, c.pad)))([x, w]);
    const [gx2, gw2] = tf.grads(loss((a, b) => conv3dTapGrad(a, b, c.strides, c.pad)))([x, w]);
    const y2 = conv3dTapGrad(x, w, c.strides, c.pad);
    assert.ok(maxRelError(await v(y2), await v(y)) === 0);
    assert.ok(maxRelError(await v(gx2), await v(gx1)) < 1e-6, `${backend} case ${n}: input gradient`);
    assert.ok(maxRelError(await v(gw2), await v(gw1)) < 1e-5, `${backend} case ${n}: filter gradient`);
    tf.dispose([x, w, y, y2, dy, mine, ref, gx1, gw1, gx2, gw2]);
  }
}

test('conv3d weight gradient by taps equals the reference kernel and float64 (cpu)', async () => {
  await initTfBackend({ backend: 'cpu' });
  await checkBackend('cpu');
});

test('conv3d weight gradient by taps equals the reference kernel (webgpu)', async (t) => {
  const r = await initTfBackend({ backend: 'webgpu' }).catch((e: Error) => e);
  if (r instanceof Error || r.backend !== 'webgpu') {
    if (process.env.CI) assert.fail(`no WebGPU adapter in CI: ${r instanceof Error ? r.message : r.backend}`);
    t.skip('no WebGPU adapter');
    return;
  }
  await checkBackend('webgpu');
  await initTfBackend({ backend: 'cpu' });
});
