/**
 * The mining's local ranking score in WGSL (train/local-score-wgsl.ts) against the tfjs-ops scorer
 * (negatives.ts) on the same WebGPU device: patches of different scales (their own trilinear taps),
 * 128 channels; and the mined selections of a batch with either scorer.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { localScorerWgsl } from '../../main/engine/train/local-score-wgsl.ts';
import { mineSamBatch, tfOpsLocalScorer } from '../../main/engine/train/negatives.ts';
import { embeddingGrid, findPositives, type EmbeddingStrides } from '../../main/engine/train/patch-pairs.ts';
import { createRng } from '../../main/engine/train/rng.ts';
import { IDENTITY3, makeVolume } from '../../main/engine/volume/volume.ts';
import type { Geometry } from '../../main/engine/volume/geometry.ts';
import { useWebgpu } from './webgpu-fixture.ts';

const strides: EmbeddingStrides = { local: [2, 2, 2], global: [2, 8, 8] };
const unit = (shape: number[], seed: number) =>
  tf.tidy(() => {
    const x = tf.randomNormal(shape, 0, 1, 'float32', seed);
    return tf.div(x, tf.norm(x, 'euclidean', -1, true));
  });

test('WebGPU: the WGSL local ranking score equals the tfjs-ops one; mined selections agree', async (t) => {
  if (!(await useWebgpu(t))) return;
  try {
    // patch A at 2 mm, patch B at 2.3 mm and shifted: different taps per patch
    const a: Geometry = { size: [48, 48, 16], spacing: [2, 2, 2], origin: [0, 0, 0], direction: IDENTITY3 };
    const b: Geometry = { ...a, spacing: [2.3, 2.3, 2.3], origin: [-5, 3, -2] };
    const grids = [a, b].map((g) => ({
      local: embeddingGrid(g, strides.local),
      global: embeddingGrid(g, strides.global),
    }));
    const vl = grids[0].local.size.reduce((x, y) => x * y);
    const vg = grids[0].global.size.reduce((x, y) => x * y);
    const [gx, gy, gz] = grids[0].global.size;
    const local = unit([2, ...grids[0].local.size.slice().reverse(), 128], 1);
    const global = unit([2, gz, gy, gx, 128], 2);
    const cl = tf.reshape(local, [2 * vl, 128]) as tf.Tensor2D;
    const cg = tf.reshape(global, [2 * vg, 128]) as tf.Tensor2D;
    const queries = tf.tensor1d([0, 5, 777, vl - 1, vl, vl + 4321, 2 * vl - 1], 'int32');
    const wgsl = localScorerWgsl(cl, cg, grids);
    assert.ok(wgsl, 'the WGSL scorer applies on WebGPU');
    const ours = wgsl.score(queries);
    const theirs = tf.tidy(() => tfOpsLocalScorer(cl, cg, grids, vl, vg, [gz, gy, gx], 128)(queries));
    const [o, w] = [await ours.data(), await theirs.data()];
    let diff = 0;
    for (let i = 0; i < o.length; i++) diff = Math.max(diff, Math.abs(o[i] - w[i]));
    t.diagnostic(`max |WGSL - tfjs ops| ${diff.toExponential(2)} over ${o.length} scores`);
    assert.ok(diff < 2e-5, `scores differ by ${diff}`);
    tf.dispose([ours, theirs, queries]);

    // a mined batch: the same selections with either scorer (ties within rounding aside)
    const mask = makeVolume({
      size: [120, 120, 60],
      spacing: [2, 2, 2],
      origin: [-40, -40, -40],
      data: new Uint8Array(120 * 120 * 60).fill(1),
    });
    const pairs = [
      { a: { geometry: a }, b: { geometry: b }, positives: findPositives(a, b, mask, createRng(9), { strides }) },
    ];
    const mine = async () => mineSamBatch({ local, global }, pairs, createRng(4));
    const fused = await mine();
    process.env.SAM_MINING = 'tfops';
    const ops = await mine();
    delete process.env.SAM_MINING;
    const same = (x: Int32Array, y: Int32Array) => x.filter((v, i) => v === y[i]).length / Math.max(1, x.length);
    for (const d of ['ab', 'ba'] as const) {
      const f = fused[0].local[d].negatives;
      assert.ok(f.length > 1000);
      const share = same(f, ops[0].local[d].negatives);
      t.diagnostic(`local ${d}: ${(100 * share).toFixed(2)}% of the drawn negatives identical`);
      assert.ok(share > 0.99, `local ${d}: ${share}`);
    }
    tf.dispose([local, global]);
  } finally {
    delete process.env.SAM_MINING;
    await initTfBackend({ backend: 'cpu' });
  }
});
