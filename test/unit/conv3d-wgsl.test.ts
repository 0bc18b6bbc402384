/**
 * The WGSL conv3d forward program (sam/conv3d-wgsl.ts) against tf.conv3d on the CPU backend and a
 * float64 sum, over the network's kernel shapes (1x1x1, 1x3x3, 3x3x3, the 4x6x6 / 3x7x7 / 3x4x4
 * stems with Cin = 1 and their strides), channel counts that are and are not multiples of 4 and of
 * the tiles, odd spatial sizes, batch 2, 'same' and 'valid'; its gradients against tf.conv3d's; and
 * the whole tiny and small networks with it against the built-in Conv3D (embeddings and weight
 * gradients). Needs a WebGPU adapter (lavapipe here and in CI): skipped without one locally, a
 * failure in CI (CI=true).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { conv3dFilterGradByTaps } from '../../main/engine/sam/conv3d-filter-grad.ts';
import {
  flipSwapFilter,
  chooseTiles,
  conv3dWgsl,
  defaultVariant,
  conv3dWgslForward,
  setConv3dWgslTiles,
  type Vec3,
} from '../../main/engine/sam/conv3d-wgsl.ts';
import { getSamConfig } from '../../main/engine/sam/config.ts';
import { createWeights, disposeWeights, forward, setConvForwardMode } from '../../main/engine/sam/network.ts';
import { createRng } from '../../main/engine/train/rng.ts';

interface Case {
  what: string;
  x: [number, number, number, number, number];
  k: Vec3;
  cout: number;
  strides: Vec3;
  pad: 'same' | 'valid';
}

const CASES: Case[] = [
  {
    what: '3x3x3, 3->5 (not multiples of 4)',
    x: [1, 7, 9, 11, 3],
    k: [3, 3, 3],
    cout: 5,
    strides: [1, 1, 1],
    pad: 'same',
  },
  { what: '1x3x3, 16->32, batch 2', x: [2, 5, 13, 11, 16], k: [1, 3, 3], cout: 32, strides: [1, 1, 1], pad: 'same' },
  { what: '3x3x3, 64->64', x: [1, 6, 9, 7, 64], k: [3, 3, 3], cout: 64, strides: [1, 1, 1], pad: 'same' },
  { what: '1x1x1, 32->128, batch 2', x: [2, 3, 7, 5, 32], k: [1, 1, 1], cout: 128, strides: [1, 1, 1], pad: 'same' },
  {
    what: 'small stem 4x6x6, 1->16, stride 2',
    x: [1, 10, 14, 16, 1],
    k: [4, 6, 6],
    cout: 16,
    strides: [2, 2, 2],
    pad: 'valid',
  },
  { what: 'paper stem 3x7x7, 1->64', x: [1, 5, 13, 15, 1], k: [3, 7, 7], cout: 64, strides: [1, 1, 1], pad: 'same' },
  {
    what: 'tiny stem 3x4x4, 1->4, stride 1,2,2',
    x: [2, 6, 12, 14, 1],
    k: [3, 4, 4],
    cout: 4,
    strides: [1, 2, 2],
    pad: 'valid',
  },
  {
    what: '3x3x3, 16->8, stride 2, same',
    x: [1, 7, 9, 11, 16],
    k: [3, 3, 3],
    cout: 8,
    strides: [2, 2, 2],
    pad: 'same',
  },
  { what: '3x3x3, 32->16, valid', x: [1, 6, 9, 10, 32], k: [3, 3, 3], cout: 16, strides: [1, 1, 1], pad: 'valid' },
  {
    what: '1x3x3, 16->6 (tap mode, Cout not a multiple of 4)',
    x: [1, 4, 9, 9, 16],
    k: [1, 3, 3],
    cout: 6,
    strides: [1, 1, 1],
    pad: 'same',
  },
  { what: '3x3x3, 6->8 (tiny head)', x: [2, 5, 7, 6, 6], k: [3, 3, 3], cout: 8, strides: [1, 1, 1], pad: 'same' },
  { what: '3x3x3, 128->128', x: [1, 3, 5, 4, 128], k: [3, 3, 3], cout: 128, strides: [1, 1, 1], pad: 'same' },
];

function randomValues(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** float64 conv3d by the definition, from the padding tfjs reports. */
function reference64(xv: Float32Array, wv: Float32Array, c: Case): Float64Array {
  const info = tf.backend_util.computeConv3DInfo(c.x, [...c.k, c.x[4], c.cout], c.strides, 1, c.pad);
  const [B, D, H, W, Ci] = c.x;
  const [Do, Ho, Wo, Co] = [info.outDepth, info.outHeight, info.outWidth, c.cout];
  const out = new Float64Array(B * Do * Ho * Wo * Co);
  for (let b = 0; b < B; b++)
    for (let z = 0; z < Do; z++)
      for (let y = 0; y < Ho; y++)
        for (let xx = 0; xx < Wo; xx++) {
          const o = (((b * Do + z) * Ho + y) * Wo + xx) * Co;
          for (let a = 0; a < c.k[0]; a++)
            for (let bb = 0; bb < c.k[1]; bb++)
              for (let cc = 0; cc < c.k[2]; cc++) {
                const iz = z * c.strides[0] + a - info.padInfo.front;
                const iy = y * c.strides[1] + bb - info.padInfo.top;
                const ix = xx * c.strides[2] + cc - info.padInfo.left;
                if (iz < 0 || iz >= D || iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                for (let ci = 0; ci < Ci; ci++) {
                  const xval = xv[(((b * D + iz) * H + iy) * W + ix) * Ci + ci];
                  const wrow = (((a * c.k[1] + bb) * c.k[2] + cc) * Ci + ci) * Co;
                  for (let co = 0; co < Co; co++) out[o + co] += xval * wv[wrow + co];
                }
              }
        }
  return out;
}

function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / (den || 1);
}

/** Switch to WebGPU, or skip (fail in CI) without an adapter. */
async function webgpuOrSkip(t: { skip: (m: string) => void }): Promise<boolean> {
  const r = await initTfBackend({ backend: 'webgpu' }).catch((e: Error) => e);
  if (r instanceof Error || r.backend !== 'webgpu') {
    if (process.env.CI) assert.fail(`no WebGPU adapter in CI: ${r instanceof Error ? r.message : r.backend}`);
    t.skip('no WebGPU adapter');
    return false;
  }
  return true;
}

test('conv3dWgsl needs the webgpu backend and says so; its variant follows the adapter', async () => {
  await initTfBackend({ backend: 'cpu' });
  const x = tf.zeros([1, 2, 2, 2, 1]) as tf.Tensor5D;
  const w = tf.zeros([1, 1, 1, 1, 1]) as tf.Tensor5D;
  assert.throws(() => conv3dWgsl(x, w, [1, 1, 1], 'same'), /needs the tfjs 'webgpu' backend.*'cpu'/);
  tf.dispose([x, w]);
  // the variant by adapter: direct on a CPU rasteriser (lavapipe's tfjs adapter info), staged on a GPU
  assert.equal(defaultVariant({ adapterInfo: { vendor: 'mesa', architecture: 'software' } }), 'direct');
  assert.equal(defaultVariant({ adapterInfo: { vendor: 'nvidia', architecture: 'hopper' } }), 'staged');
});

test('conv3dWgsl (both variants) equals tf.conv3d on the CPU backend and a float64 sum (webgpu)', async (t) => {
  if (!(await webgpuOrSkip(t))) return;
  const VARIANTS = ['staged', 'direct'] as const;
  const modes = new Set<string>();
  const results: { c: Case; variant: string; gpu: Float32Array; xv: Float32Array; wv: Float32Array }[] = [];
  try {
    for (const [n, c] of CASES.entries()) {
      const xv = randomValues(size(c.x), 10 + n);
      const wv = randomValues(size([...c.k, c.x[4], c.cout]), 20 + n);
      const x = tf.tensor5d(xv, c.x);
      const w = tf.tensor5d(wv, [...c.k, c.x[4], c.cout]);
      const info = tf.backend_util.computeConv3DInfo(c.x, w.shape, c.strides, 1, c.pad);
      for (const variant of VARIANTS) {
        modes.add(`${variant} ${chooseTiles(c.x[4], c.cout, variant).mode}`);
        setConv3dWgslTiles({ variant });
        const y = conv3dWgslForward(x, w, c.strides, c.pad);
        assert.deepEqual(y.shape, info.outShape, c.what);
        const gpu = (await y.data()) as Float32Array;
        // other tiles (4x4 register blocks, 64- and 32-voxel tiles; 'flat' for every Cin; the voxel
        // tiles wrapped onto a second dispatch dimension, with surplus workgroups) give the same values
        const otherTiles = [0, 2, 4, 9].includes(n)
          ? [
              { tm: 64, rm: 4, cn: 1 },
              { mode: 'flat' as const, tn: 32 },
              { tm: 32, rm: 4, maxWorkgroupsY: 3 },
            ]
          : [];
        for (const tiles of otherTiles) {
          setConv3dWgslTiles({ variant, ...tiles });
          const y2 = conv3dWgslForward(x, w, c.strides, c.pad);
          const e = maxRelError(await y2.data(), gpu);
          assert.ok(e < 1e-6, `${c.what}: ${variant} tiles ${JSON.stringify(tiles)} differ by ${e}`);
          y2.dispose();
        }
        results.push({ c, variant, gpu, xv, wv });
        y.dispose();
      }
      tf.dispose([x, w]);
    }
  } finally {
    setConv3dWgslTiles({});
  }
  const covered = ['direct flat', 'direct tap', 'staged flat', 'staged tap'];
  assert.deepEqual([...modes].sort(), covered, 'both ways of walking K are covered, in both variants');
  await initTfBackend({ backend: 'cpu' });
  for (const { c, variant, gpu, xv, wv } of results) {
    const x = tf.tensor5d(xv, c.x);
    const w = tf.tensor5d(wv, [...c.k, c.x[4], c.cout]);
    const y = tf.conv3d(x, w, c.strides, c.pad);
    const eCpu = maxRelError(gpu, await y.data());
    const e64 = maxRelError(gpu, reference64(xv, wv, c));
    assert.ok(eCpu < 1e-5, `${c.what} (${variant}): vs tf.conv3d on cpu, max relative error ${eCpu}`);
    assert.ok(e64 < 1e-5, `${c.what} (${variant}): vs float64, max relative error ${e64}`);
    tf.dispose([x, w, y]);
  }
});

test("the input gradient's flipped, channel-swapped filter (one dispatch) equals reverse + transpose exactly (webgpu)", async (t) => {
  if (!(await webgpuOrSkip(t))) return;
  try {
    for (const shape of [
      [3, 3, 3, 16, 32],
      [1, 3, 3, 5, 7],
      [1, 1, 1, 4, 6],
      [3, 1, 3, 2, 129],
    ] as [number, number, number, number, number][]) {
      const [kd, kh, kw, cin, cout] = shape;
      const w = tf.tensor5d(randomValues(size(shape), 50 + cin), shape);
      const ours = flipSwapFilter(w);
      const want = tf.tidy(() => {
        const r = tf.reverse(tf.reshape(w, [kd, kh, kw, cin * cout]), [0, 1, 2]);
        return tf.reshape(tf.transpose(tf.reshape(r, [kd * kh * kw, cin, cout]), [0, 2, 1]), [kd, kh, kw, cout, cin]);
      });
      assert.deepEqual(ours.shape, [kd, kh, kw, cout, cin]);
      assert.deepEqual(Array.from(await ours.data()), Array.from(await want.data()), `${shape}`);
      // and by the definition, at one element: W'[a, b, c, o, i] = W[kd-1-a, kh-1-b, kw-1-c, i, o]
      const wv = await w.data();
      const ov = await ours.data();
      const [a, b, c, o, i] = [kd - 1, 0, kw - 1, cout - 1, 1];
      const at = (s: number[], v: number[]) => v.reduce((acc, x, n) => acc * s[n] + x, 0);
      assert.equal(ov[at([kd, kh, kw, cout, cin], [a, b, c, o, i])], wv[at(shape, [0, kh - 1, 0, i, o])]);
      tf.dispose([w, ours, want]);
    }
  } finally {
    await initTfBackend({ backend: 'cpu' });
  }
});

test("conv3dWgsl's input and filter gradients equal tf.conv3d's (webgpu)", async (t) => {
  if (!(await webgpuOrSkip(t))) return;
  try {
    for (const n of [0, 1, 4, 7]) {
      const c = CASES[n];
      const x = tf.tensor5d(randomValues(size(c.x), 10 + n), c.x);
      const w = tf.tensor5d(randomValues(size([...c.k, c.x[4], c.cout]), 20 + n), [...c.k, c.x[4], c.cout]);
      const info = tf.backend_util.computeConv3DInfo(c.x, w.shape, c.strides, 1, c.pad);
      const dy = tf.tensor5d(randomValues(size(info.outShape), 30 + n), info.outShape as Case['x']);
      type Conv = (a: tf.Tensor5D, b: tf.Tensor5D) => tf.Tensor5D;
      const loss = (f: Conv) => (xt: tf.Tensor, wt: tf.Tensor) =>
        tf.sum(tf.mul(f(xt as tf.Tensor5D, wt as tf.Tensor5D), dy));
      const [gx0, gw0] = tf.grads(loss((a, b) => tf.conv3d(a, b, c.strides, c.pad)))([x, w]);
      const [gx1, gw1] = tf.grads(loss((a, b) => conv3dWgsl(a, b, c.strides, c.pad)))([x, w]);
      const [gx2, gw2] = tf.grads(loss((a, b) => conv3dWgsl(a, b, c.strides, c.pad, conv3dFilterGradByTaps)))([x, w]);
      const v = async (g: tf.Tensor) => await g.data();
      assert.ok(maxRelError(await v(gx1), await v(gx0)) < 1e-6, `${c.what}: input gradient`);
      assert.ok(maxRelError(await v(gw1), await v(gw0)) < 1e-6, `${c.what}: filter gradient (built-in)`);
      assert.ok(maxRelError(await v(gx2), await v(gx0)) < 1e-6, `${c.what}: input gradient (taps)`);
      assert.ok(maxRelError(await v(gw2), await v(gw0)) < 1e-5, `${c.what}: filter gradient (taps)`);
      tf.dispose([x, w, dy, gx0, gw0, gx1, gw1, gx2, gw2]);
    }
  } finally {
    await initTfBackend({ backend: 'cpu' });
  }
});

test("conv3dWgsl's bias (in the forward dispatch) = adding it after, both variants and both modes; its gradients = tf ops' (webgpu)", async (t) => {
  if (!(await webgpuOrSkip(t))) return;
  try {
    for (const n of [0, 3, 4, 9]) {
      const c = CASES[n];
      const x = tf.tensor5d(randomValues(size(c.x), 10 + n), c.x);
      const w = tf.tensor5d(randomValues(size([...c.k, c.x[4], c.cout]), 20 + n), [...c.k, c.x[4], c.cout]);
      const b = tf.tensor1d(randomValues(c.cout, 40 + n));
      const info = tf.backend_util.computeConv3DInfo(c.x, w.shape, c.strides, 1, c.pad);
      const dy = tf.tensor5d(randomValues(size(info.outShape), 30 + n), info.outShape as Case['x']);
      for (const tiles of [{ variant: 'staged' as const }, { variant: 'direct' as const }, { mode: 'flat' as const }]) {
        setConv3dWgslTiles(tiles);
        const withBias = conv3dWgslForward(x, w, c.strides, c.pad, b);
        const after = tf.tidy(() =>
          tf.reshape(tf.add(tf.reshape(conv3dWgslForward(x, w, c.strides, c.pad), [-1, c.cout]), b), info.outShape),
        );
        assert.deepEqual(withBias.shape, info.outShape);
        assert.deepEqual(await withBias.data(), await after.data(), `${c.what} ${JSON.stringify(tiles)}: values`);
        tf.dispose([withBias, after]);
      }
      setConv3dWgslTiles({});
      const loss =
        (f: (a: tf.Tensor5D, k: tf.Tensor5D, bb: tf.Tensor) => tf.Tensor) =>
        (xt: tf.Tensor, wt: tf.Tensor, bt: tf.Tensor) =>
          tf.sum(tf.mul(f(xt as tf.Tensor5D, wt as tf.Tensor5D, bt), dy));
      // (the bias added as a rank-2 op: tfjs-webgpu's rank-5 broadcasting is unreliable)
      const byOps = (a: tf.Tensor5D, k: tf.Tensor5D, bb: tf.Tensor) =>
        tf.reshape(tf.add(tf.reshape(tf.conv3d(a, k, c.strides, c.pad), [-1, c.cout]), bb), info.outShape);
      const [gx0, gw0, gb0] = tf.grads(loss(byOps))([x, w, b]);
      const [gx1, gw1, gb1] = tf.grads(loss((a, k, bb) => conv3dWgsl(a, k, c.strides, c.pad, undefined, bb)))([
        x,
        w,
        b,
      ]);
      assert.deepEqual(gb1.shape, [c.cout]);
      assert.ok(maxRelError(await gx1.data(), await gx0.data()) < 1e-6, `${c.what}: input gradient`);
      assert.ok(maxRelError(await gw1.data(), await gw0.data()) < 1e-6, `${c.what}: filter gradient`);
      assert.ok(maxRelError(await gb1.data(), await gb0.data()) < 1e-5, `${c.what}: bias gradient`);
      tf.dispose([x, w, b, dy, gx0, gw0, gb0, gx1, gw1, gb1]);
    }
  } finally {
    setConv3dWgslTiles({});
    await initTfBackend({ backend: 'cpu' });
  }
});

/** Embeddings and all weight gradients of a random loss, with the forward convs built-in or WGSL. */
async function network(name: 'tiny' | 'small', size: Vec3, mode: 'builtin' | 'wgsl') {
  setConvForwardMode(mode);
  try {
    const cfg = getSamConfig(name);
    const w = createWeights(cfg, 4);
    const names = Object.keys(w);
    const x = tf.tensor5d(
      randomValues(2 * size[0] * size[1] * size[2], 5).map((v) => 2 * v),
      [2, ...size, 1],
    );
    const out = forward(w, x, cfg);
    const local = (await out.local.data()) as Float32Array;
    const global = (await out.global.data()) as Float32Array;
    const rl = tf.tensor(randomValues(out.local.size, 6), out.local.shape);
    const rg = tf.tensor(randomValues(out.global.size, 7), out.global.shape);
    tf.dispose([out.local, out.global]);
    const grads = tf.grads((...ws: tf.Tensor[]) => {
      const o = forward(Object.fromEntries(names.map((n, k) => [n, ws[k]])), x, cfg);
      return tf.add(tf.sum(tf.mul(o.local, rl)), tf.sum(tf.mul(o.global, rg)));
    })(names.map((n) => w[n]));
    const g = await Promise.all(grads.map(async (t) => (await t.data()) as Float32Array));
    tf.dispose([x, rl, rg, ...grads]);
    disposeWeights(w);
    return { local, global, grads: g, names };
  } finally {
    setConvForwardMode('auto');
  }
}

for (const [name, size] of [
  ['tiny', [16, 24, 20]],
  ['small', [16, 32, 32]],
] as const) {
  test(`the ${name} network with WGSL convolutions (both variants) gives the built-in embeddings and gradients (webgpu)`, async (t) => {
    if (!(await webgpuOrSkip(t))) return;
    try {
      const a = await network(name, [...size], 'builtin');
      for (const variant of ['direct', 'staged'] as const) {
        setConv3dWgslTiles({ variant });
        const b = await network(name, [...size], 'wgsl').finally(() => setConv3dWgslTiles({}));
        const maxDiff = (p: Float32Array, q: Float32Array) => p.reduce((m, v, i) => Math.max(m, Math.abs(v - q[i])), 0);
        const [dl, dg] = [maxDiff(b.local, a.local), maxDiff(b.global, a.global)];
        assert.ok(dl < 1e-4, `${variant}: local embeddings differ by ${dl}`);
        assert.ok(dg < 1e-4, `${variant}: global embeddings differ by ${dg}`);
        for (let k = 0; k < a.grads.length; k++) {
          const e = maxRelError(b.grads[k], a.grads[k]);
          assert.ok(e < 1e-3, `${variant}: gradient of ${a.names[k]} differs: max relative error ${e}`);
        }
      }
    } finally {
      await initTfBackend({ backend: 'cpu' });
    }
  });
}
