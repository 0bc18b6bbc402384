/**
 * The conv3d weight gradient by per-tap matrix products (sam/conv3d-filter-grad.ts) and by the WGSL
 * kernel (sam/conv3d-filter-grad-wgsl.ts, both variants) against tfjs' built-in
 * Conv3DBackpropFilterV2 kernel (the reference) and a float64 sum, for the network's kernel shapes,
 * strides and 'same'/'valid' padding; conv3dTapGrad's value and both gradients against tf.conv3d's;
 * and the SAM network's weight gradients with the WGSL kernel against the built-in one. On the CPU
 * backend, and on WebGPU where an adapter exists (lavapipe in CI).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { useWebgpu } from './webgpu-fixture.ts';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { conv3dFilterGradByTaps, conv3dTapGrad, type Vec3 } from '../../main/engine/sam/conv3d-filter-grad.ts';
import { conv3dFilterGradWgsl, planFilterGrad } from '../../main/engine/sam/conv3d-filter-grad-wgsl.ts';
import { getSamConfig } from '../../main/engine/sam/config.ts';
import {
  conv3dTrainable,
  createWeights,
  disposeWeights,
  filterGradientMethod,
  forward,
  setFilterGradientMode,
} from '../../main/engine/sam/network.ts';
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

/*
 * Shapes for the WGSL kernel: sizes that are no multiple of anything, so every tile of M (taps x
 * Cin, tiles of 16-64 rows), N (Cout, 16-64 columns) and the split-K chunks (>= 256 voxels) is
 * partial somewhere; Cin and Cout multiples of 4 (vec4 loads) and not; the stems of 'paper' (3x7x7,
 * 1->16) and 'small' (4x6x6 stride 2, 'valid' on a padded input); strides (1,1,1), (1,2,2), (2,2,2);
 * batch 2.
 */
const WGSL_CASES: Case[] = [
  { x: [2, 5, 13, 11, 1], k: [3, 7, 7], cout: 16, strides: [1, 1, 1], pad: 'same' },
  { x: [2, 9, 20, 18, 1], k: [4, 6, 6], cout: 16, strides: [2, 2, 2], pad: 'valid' },
  { x: [2, 7, 17, 19, 16], k: [1, 3, 3], cout: 32, strides: [1, 1, 1], pad: 'same' },
  { x: [2, 7, 13, 12, 3], k: [3, 3, 3], cout: 5, strides: [2, 2, 2], pad: 'same' },
  { x: [1, 6, 15, 13, 3], k: [1, 3, 3], cout: 3, strides: [1, 2, 2], pad: 'same' },
  { x: [2, 5, 14, 13, 16], k: [3, 3, 3], cout: 32, strides: [1, 2, 2], pad: 'same' },
  { x: [1, 5, 7, 6, 20], k: [3, 3, 3], cout: 72, strides: [1, 1, 1], pad: 'same' },
  { x: [2, 3, 5, 4, 8], k: [3, 3, 3], cout: 130, strides: [1, 1, 1], pad: 'same' },
  { x: [1, 6, 9, 9, 2], k: [3, 3, 3], cout: 3, strides: [1, 1, 1], pad: 'valid' },
  { x: [2, 5, 6, 7, 4], k: [1, 1, 1], cout: 6, strides: [1, 1, 1], pad: 'same' },
];

test('the WGSL weight-gradient kernel equals the reference kernel and float64 (webgpu)', async (t) => {
  if (!(await useWebgpu(t))) return;
  const v = async (x: tf.Tensor) => await x.data();
  const splits = new Set<number>();
  for (const [n, c] of WGSL_CASES.entries()) {
    const x = random(c.x, 40 + n) as tf.Tensor5D;
    const fs = [...c.k, c.x[4], c.cout] as Case['x'];
    const w = random(fs, 50 + n) as tf.Tensor5D;
    const y = tf.conv3d(x, w, c.strides, c.pad);
    const dy = random(y.shape, 60 + n) as tf.Tensor5D;
    const ref = tf.grad((wt: tf.Tensor) => tf.sum(tf.mul(tf.conv3d(x, wt as tf.Tensor5D, c.strides, c.pad), dy)))(w);
    const ref64 = await reference64(x, dy, c);
    // float32 sums of K products of random sign: the rounding error, relative to the largest |dW|,
    // grows like sqrt(K) eps (eps = 6e-8); measured up to 3.3e-8 sqrt(K) (1.7e-6 at K = 4522) here,
    // against tfjs' kernel and float64 alike; the bound is 3e-7 sqrt(K)
    const K = dy.shape[0] * dy.shape[1] * dy.shape[2] * dy.shape[3];
    const tol = 3e-7 * Math.sqrt(K);
    splits.add(planFilterGrad({ M: fs[0] * fs[1] * fs[2] * fs[3], N: c.cout, K }).splits);
    // 'staged' compiles one pipeline per geometry (1-3 s each on lavapipe): four cases cover its paths
    for (const variant of [0, 2, 3, 7].includes(n) ? (['direct', 'staged'] as const) : (['direct'] as const)) {
      const mine = conv3dFilterGradWgsl(x, dy, fs, c.strides, c.pad, variant);
      assert.deepEqual(mine.shape, fs);
      const got = await v(mine);
      const e = maxRelError(got, await v(ref));
      const e64 = maxRelError(got, ref64);
      assert.ok(e < tol, `${variant} case ${n}: vs tfjs' kernel max relative error ${e} (bound ${tol})`);
      assert.ok(e64 < tol, `${variant} case ${n}: vs float64 max relative error ${e64} (bound ${tol})`);
      mine.dispose();
    }
    tf.dispose([x, w, y, dy, ref]);
  }
  // the cases cover one chunk and several (split-K with the second pass)
  assert.ok(splits.has(1) && [...splits].some((s) => s > 4), `splits ${[...splits]}`);
  await initTfBackend({ backend: 'cpu' });
});

test("weight-gradient mode 'wgsl': conv3dTrainable and the SAM network's gradients equal mode 'builtin' (webgpu)", async (t) => {
  if (!(await useWebgpu(t))) return;
  const v = async (x: tf.Tensor) => await x.data();
  try {
    setFilterGradientMode('auto');
    assert.equal(filterGradientMethod(), 'wgsl', "'auto' on webgpu");
    // one conv: value, input and filter gradients
    const x = random([2, 5, 9, 8, 4], 70) as tf.Tensor5D;
    const w = random([3, 3, 3, 4, 8], 71) as tf.Tensor5D;
    const dy = random([2, 5, 5, 4, 8], 72) as tf.Tensor5D;
    const loss = (xt: tf.Tensor, wt: tf.Tensor) =>
      tf.sum(tf.mul(conv3dTrainable(xt as tf.Tensor5D, wt as tf.Tensor5D, [1, 2, 2], 'same'), dy));
    const grads: Record<string, tf.Tensor[]> = {};
    for (const mode of ['builtin', 'wgsl'] as const) {
      setFilterGradientMode(mode);
      grads[mode] = tf.grads(loss)([x, w]);
    }
    assert.ok(maxRelError(await v(grads.wgsl[0]), await v(grads.builtin[0])) < 1e-6, 'input gradient');
    assert.ok(maxRelError(await v(grads.wgsl[1]), await v(grads.builtin[1])) < 1e-5, 'filter gradient');
    tf.dispose([x, w, dy, ...grads.builtin, ...grads.wgsl]);

    // the tiny network: gradients of a loss on both embeddings with respect to every weight
    const cfg = getSamConfig('tiny');
    const weights = createWeights(cfg, 7);
    const names = Object.keys(weights);
    const input = tf.mul(random([1, 8, 24, 24, 1], 73), 3) as tf.Tensor5D;
    const probe = forward(weights, input, cfg);
    const pl = random(probe.local.shape, 74);
    const pg = random(probe.global.shape, 75);
    tf.dispose([probe.local, probe.global]);
    const netGrads: Record<string, Float32Array[]> = {};
    for (const mode of ['builtin', 'wgsl'] as const) {
      setFilterGradientMode(mode);
      const gs = tf.grads((...ws: tf.Tensor[]) => {
        const o = forward(Object.fromEntries(names.map((n, i) => [n, ws[i]])), input, cfg);
        return tf.add(tf.sum(tf.mul(o.local, pl)), tf.sum(tf.mul(o.global, pg)));
      })(names.map((n) => weights[n]));
      netGrads[mode] = await Promise.all(gs.map(async (g) => (await g.data()) as Float32Array));
      tf.dispose(gs);
    }
    for (const [i, n] of names.entries()) {
      const e = maxRelError(netGrads.wgsl[i], netGrads.builtin[i]);
      assert.ok(e < 1e-4, `gradient of ${n}: max relative error ${e}`);
    }
    tf.dispose([input, pl, pg]);
    disposeWeights(weights);
  } finally {
    setFilterGradientMode('auto');
    await initTfBackend({ backend: 'cpu' });
  }
});

test('the WGSL weight gradient needs the webgpu backend', async () => {
  await initTfBackend({ backend: 'cpu' });
  const x = tf.zeros([1, 2, 2, 2, 1]) as tf.Tensor5D;
  assert.throws(() => conv3dFilterGradWgsl(x, x, [1, 1, 1, 1, 1], [1, 1, 1], 'same'), /needs the webgpu backend/);
  try {
    setFilterGradientMode('wgsl');
    assert.throws(() => filterGradientMethod(), /'wgsl' needs the webgpu backend/);
    setFilterGradientMode('auto');
    assert.equal(filterGradientMethod(), 'builtin', "'auto' on cpu");
  } finally {
    setFilterGradientMode('auto');
    x.dispose();
  }
});
