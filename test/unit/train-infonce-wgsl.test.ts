/**
 * The WGSL InfoNCE (train/infonce-wgsl.ts, the loss on WebGPU) against a float64 hand computation
 * and finite differences on a hand-made batch (missing, repeated and shared negatives, a pair
 * without positives), and against the tfjs-ops loss on the same device for a batch mined from
 * 128-channel embeddings at the default negative counts.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { samInfoNceLoss, setInfoNceMode, type PairSelection } from '../../main/engine/train/infonce.ts';
import { mineSamBatch } from '../../main/engine/train/negatives.ts';
import { findPositives, type EmbeddingStrides } from '../../main/engine/train/patch-pairs.ts';
import { createRng } from '../../main/engine/train/rng.ts';
import { IDENTITY3, makeVolume } from '../../main/engine/volume/volume.ts';
import type { Geometry } from '../../main/engine/volume/geometry.ts';
import { checkAgainstFiniteDifferences, handCase, handSam, handSum, randomUnit } from '../infonce-reference.ts';
import { useWebgpu } from './webgpu-fixture.ts';

interface Evaluated {
  terms: number[];
  local: Float32Array;
  global: Float32Array;
}

async function evaluate(local: tf.Tensor, global: tf.Tensor, sels: PairSelection[]): Promise<Evaluated> {
  const termsT: tf.Tensor[] = [];
  const [gl, gg] = tf.grads((l: tf.Tensor, g: tf.Tensor) => {
    const t = samInfoNceLoss({ local: l, global: g }, sels);
    termsT.push(...[t.total, t.localAB, t.localBA, t.globalAB, t.globalBA].map((x) => tf.keep(x)));
    return t.total;
  })([local, global]);
  const out = {
    terms: await Promise.all(termsT.map(async (x) => (await x.data())[0])),
    local: (await gl.data()) as Float32Array,
    global: (await gg.data()) as Float32Array,
  };
  tf.dispose([...termsT, gl, gg]);
  return out;
}

test('WebGPU: the WGSL InfoNCE equals a float64 hand computation and its finite differences', async (t) => {
  if (!(await useWebgpu(t))) return;
  setInfoNceMode('wgsl');
  try {
    const { sels, localShape, globalShape, c } = handCase();
    const local = randomUnit(localShape, 4);
    const global = randomUnit(globalShape, 5);
    const before = tf.memory().numTensors;
    const lt = tf.tensor(Float32Array.from(local), localShape);
    const gt = tf.tensor(Float32Array.from(global), globalShape);
    const r = await evaluate(lt, gt, sels);
    tf.dispose([lt, gt]);
    assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
    const want = [
      handSam(local, global, c, sels, 0.5),
      handSum(local, c, sels[0].local.ab, 0.5) / 2,
      handSum(local, c, sels[0].local.ba, 0.5) / 2,
      handSum(global, c, sels[0].global.ab, 0.5),
      handSum(global, c, sels[0].global.ba, 0.5),
    ];
    r.terms.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-5, `term ${i}: ${v} vs ${want[i]}`));
    checkAgainstFiniteDifferences(local, global, c, sels, r.local, r.global);
    // rows of the pair without positives, and unused rows: exact zeros
    for (let i = 12 * c; i < 24 * c; i++) assert.equal(r.local[i], 0);
    // only the pair without positives: zero loss, zero gradient
    const l2 = tf.tensor(Float32Array.from(local), localShape);
    const g2 = tf.tensor(Float32Array.from(global), globalShape);
    const z = await evaluate(l2, g2, [sels[1]]);
    tf.dispose([l2, g2]);
    assert.deepEqual(z.terms, [0, 0, 0, 0, 0]);
    assert.ok(z.local.every((v) => v === 0) && z.global.every((v) => v === 0));
  } finally {
    setInfoNceMode('auto');
    await initTfBackend({ backend: 'cpu' });
  }
});

test('WebGPU: the WGSL InfoNCE equals the tfjs-ops loss on a mined batch of 128-channel embeddings', async (t) => {
  if (!(await useWebgpu(t))) return;
  try {
    // two pairs of patches overlapping by known shifts, 128 channels, default-sized negative sets
    const strides: EmbeddingStrides = { local: [2, 2, 2], global: [2, 8, 8] };
    const mask = makeVolume({
      size: [120, 120, 60],
      spacing: [2, 2, 2],
      origin: [-40, -40, -40],
      data: new Uint8Array(120 * 120 * 60).fill(1),
    });
    const a: Geometry = { size: [48, 48, 16], spacing: [2, 2, 2], origin: [0, 0, 0], direction: IDENTITY3 };
    const pairs = [
      [3, -4, 2],
      [-6, 8, -2],
    ].map((s) => {
      const b: Geometry = { ...a, origin: s as [number, number, number] };
      return {
        a: { geometry: a },
        b: { geometry: b },
        positives: findPositives(a, b, mask, createRng(9), { strides }),
      };
    });
    const unit = (shape: number[], seed: number) =>
      tf.tidy(() => {
        const x = tf.randomNormal(shape, 0, 1, 'float32', seed);
        return tf.div(x, tf.norm(x, 'euclidean', -1, true));
      });
    const local = unit([4, 8, 24, 24, 128], 1);
    const global = unit([4, 8, 6, 6, 128], 2);
    const sels = await mineSamBatch({ local, global }, pairs, createRng(3));
    const n = sels.reduce((s, p) => s + p.local.ab.query.length + p.global.ab.query.length, 0);
    assert.ok(n > 100, `${n} positives`);
    assert.ok(sels[0].global.ab.shared.length > 0 && sels[0].local.ab.perQuery > 100);
    setInfoNceMode('wgsl');
    const w = await evaluate(local, global, sels);
    setInfoNceMode('tfops');
    const o = await evaluate(local, global, sels);
    tf.dispose([local, global]);
    w.terms.forEach((v, i) =>
      assert.ok(Math.abs(v - o.terms[i]) < 1e-5 * Math.abs(o.terms[i]), `term ${i}: ${v} vs ${o.terms[i]}`),
    );
    for (const k of ['local', 'global'] as const) {
      let scale = 0;
      let diff = 0;
      for (let i = 0; i < o[k].length; i++) {
        scale = Math.max(scale, Math.abs(o[k][i]));
        diff = Math.max(diff, Math.abs(w[k][i] - o[k][i]));
      }
      t.diagnostic(`${k}: max |WGSL - tfjs ops| ${diff.toExponential(2)} of ${scale.toExponential(2)}`);
      assert.ok(scale > 0 && diff < 1e-4 * scale, `${k} gradient differs by ${diff} (largest ${scale})`);
    }
    t.diagnostic(`terms ${w.terms.map((v) => v.toFixed(5)).join(' ')}`);
  } finally {
    setInfoNceMode('auto');
    await initTfBackend({ backend: 'cpu' });
  }
});

test('WebGPU: more queries than one row of workgroups (1,500 > 1,024): the WGSL InfoNCE still equals the tfjs ops', async (t) => {
  if (!(await useWebgpu(t))) return;
  try {
    const rows = 3000;
    const c = 8;
    const r = createRng(12);
    const nq = 1500;
    const ab = {
      query: Int32Array.from({ length: nq }, () => r.int(0, rows - 1)),
      key: Int32Array.from({ length: nq }, () => r.int(0, rows - 1)),
      negatives: Int32Array.from({ length: nq * 3 }, (_, n) => (n % 7 === 0 ? -1 : r.int(0, rows - 1))),
      perQuery: 3,
      shared: Int32Array.from([5, 17]),
    };
    const none = {
      query: new Int32Array(0),
      key: new Int32Array(0),
      negatives: new Int32Array(0),
      perQuery: 0,
      shared: new Int32Array(0),
    };
    const sels: PairSelection[] = [{ local: { ab, ba: none }, global: { ab: none, ba: none } }];
    const local = tf.tensor(Float32Array.from(randomUnit([1, 1, 1, rows, c], 8)), [1, 1, 1, rows, c]);
    const global = tf.zeros([1, 1, 1, 2, c]);
    setInfoNceMode('wgsl');
    const w = await evaluate(local, global, sels);
    setInfoNceMode('tfops');
    const o = await evaluate(local, global, sels);
    tf.dispose([local, global]);
    assert.ok(Math.abs(w.terms[0] - o.terms[0]) < 1e-5 * o.terms[0], `${w.terms[0]} vs ${o.terms[0]}`);
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < o.local.length; i++) {
      diff = Math.max(diff, Math.abs(w.local[i] - o.local[i]));
      scale = Math.max(scale, Math.abs(o.local[i]));
    }
    assert.ok(scale > 0 && diff < 1e-4 * scale, `gradient differs by ${diff} of ${scale}`);
  } finally {
    setInfoNceMode('auto');
    await initTfBackend({ backend: 'cpu' });
  }
});
