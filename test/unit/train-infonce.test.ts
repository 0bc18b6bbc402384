import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { makeVolume, IDENTITY3 } from '../../main/engine/volume/volume.ts';
import type { Geometry } from '../../main/engine/volume/geometry.ts';
import {
  infoNce,
  samInfoNceLoss,
  type DirectionSelection,
  type PairSelection,
} from '../../main/engine/train/infonce.ts';
import { findPositives, type EmbeddingStrides } from '../../main/engine/train/patch-pairs.ts';
import { mineSamBatch } from '../../main/engine/train/negatives.ts';
import { createRng } from '../../main/engine/train/rng.ts';
import { I, checkAgainstFiniteDifferences, handCase, handSam, handSum, randomUnit } from '../infonce-reference.ts';

await tf.setBackend('cpu');

test('InfoNCE equals a float64 hand computation', async () => {
  const emb = randomUnit([12, 3], 1);
  const sel: DirectionSelection = {
    query: I(0, 1, 2),
    key: I(3, 4, 5),
    negatives: I(6, 7, -1, 8, 8, 9, 10, 11, 0),
    perQuery: 3,
    shared: I(4, 11),
  };
  for (const tau of [0.5, 0.1, 1]) {
    const got = tf.tidy(() => infoNce(tf.tensor2d(Float32Array.from(emb), [12, 3]), sel, tau).dataSync()[0]);
    const want = handSum(emb, 3, sel, tau) / 3;
    assert.ok(Math.abs(got - want) < 1e-5 * Math.max(1, want), `tau ${tau}: ${got} vs ${want}`);
  }
  // A query whose only candidates are missing: loss 0 (log 1), not a comparison with itself.
  const lone: DirectionSelection = { query: I(0), key: I(3), negatives: I(-1, -1), perQuery: 2, shared: I() };
  assert.ok(Math.abs(tf.tidy(() => infoNce(tf.tensor2d(Float32Array.from(emb), [12, 3]), lone).dataSync()[0])) < 1e-7);

  const { sels, localShape, globalShape, c } = handCase();
  const local = randomUnit(localShape, 2);
  const global = randomUnit(globalShape, 3);
  const terms = tf.tidy(() => {
    const t = samInfoNceLoss(
      {
        local: tf.tensor(Float32Array.from(local), localShape),
        global: tf.tensor(Float32Array.from(global), globalShape),
      },
      sels,
    );
    return [t.total, t.localAB, t.localBA, t.globalAB, t.globalBA].map((x) => x.dataSync()[0]);
  });
  const want = [
    handSam(local, global, c, sels, 0.5),
    handSum(local, c, sels[0].local.ab, 0.5) / 2,
    handSum(local, c, sels[0].local.ba, 0.5) / 2,
    handSum(global, c, sels[0].global.ab, 0.5),
    handSum(global, c, sels[0].global.ba, 0.5),
  ];
  terms.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-5, `term ${i}: ${v} vs ${want[i]}`));
  assert.ok(Math.abs(terms[0] - (terms[1] + terms[2] + terms[3] + terms[4])) < 1e-5);
});

test('the gradient w.r.t. the embeddings matches finite differences', async () => {
  const { sels, localShape, globalShape, c } = handCase();
  const local = randomUnit(localShape, 4);
  const global = randomUnit(globalShape, 5);
  const before = tf.memory().numTensors;
  const [gl, gg] = tf.tidy(() => {
    const f = (l: tf.Tensor, g: tf.Tensor) => samInfoNceLoss({ local: l, global: g }, sels).total;
    return tf
      .grads(f)([tf.tensor(Float32Array.from(local), localShape), tf.tensor(Float32Array.from(global), globalShape)])
      .map((t) => t.dataSync());
  });
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
  checkAgainstFiniteDifferences(local, global, c, sels, gl, gg);
  // The rows of pair 1 (no positives) and unused rows get exactly zero.
  for (let i = 12 * c; i < 24 * c; i++) assert.equal(gl[i], 0);
  // infoNce alone has the same gradient as its hand computation
  const sel = sels[0].global.ab;
  const g1 = tf.tidy(() =>
    tf
      .grad((e: tf.Tensor) => infoNce(e as tf.Tensor2D, sel, 0.3))(tf.tensor2d(Float32Array.from(global), [8, c]))
      .dataSync(),
  );
  const h = 1e-6;
  for (let i = 0; i < global.length; i++) {
    const keep = global[i];
    global[i] = keep + h;
    const up = handSum(global, c, sel, 0.3);
    global[i] = keep - h;
    const down = handSum(global, c, sel, 0.3);
    global[i] = keep;
    assert.ok(Math.abs((up - down) / (2 * h) - g1[i]) < 2e-5);
  }
});

test('a pair without overlap has no positives and contributes zero loss (no self-comparison)', async () => {
  const strides: EmbeddingStrides = { local: [2, 2, 2], global: [2, 8, 8] };
  const mask = makeVolume({
    size: [80, 40, 40],
    spacing: [2, 2, 2],
    origin: [-20, -20, -20],
    data: new Uint8Array(80 * 40 * 40).fill(1),
  });
  const a: Geometry = { size: [16, 16, 8], spacing: [2, 2, 2], origin: [0, 0, 0], direction: IDENTITY3 };
  const apart: Geometry = { ...a, origin: [70, 0, 0] };
  const near: Geometry = { ...a, origin: [3, 2, -1] };
  const rng = createRng(1);
  const none = findPositives(a, apart, mask, rng, { strides, nPos: 5 });
  const some = findPositives(a, near, mask, rng, { strides, nPos: 5 });
  assert.equal(none.local.a.length + none.global.a.length, 0);
  assert.ok(some.local.a.length > 0);
  const unit = (shape: number[], seed: number) =>
    tf.tidy(() => {
      const t = tf.randomNormal(shape, 0, 1, 'float32', seed);
      return tf.div(t, tf.norm(t, 'euclidean', -1, true));
    });
  const local = unit([4, 4, 8, 8, 8], 1);
  const global = unit([4, 4, 2, 2, 8], 2);
  const pairs = [
    { a: { geometry: a }, b: { geometry: apart }, positives: none },
    { a: { geometry: a }, b: { geometry: near }, positives: some },
  ];
  const sels = await mineSamBatch({ local, global }, pairs, createRng(2), {
    nCand: 100,
    nNeg: 20,
    globalCand: 10,
    globalNeg: 5,
    nRand: 10,
  });
  for (const d of [sels[0].local.ab, sels[0].local.ba, sels[0].global.ab, sels[0].global.ba])
    assert.equal(d.query.length, 0);
  const value = (s: PairSelection[]) => tf.tidy(() => samInfoNceLoss({ local, global }, s).total.dataSync()[0]);
  // The empty pair changes nothing: the loss is that of the other pair alone.
  assert.ok(Math.abs(value(sels) - value([sels[1]])) < 1e-6);
  assert.ok(value(sels) > 0);
  // Only the empty pair: zero loss and zero gradient.
  const [dl, dg] = tf.tidy(() =>
    tf
      .grads((l: tf.Tensor, g: tf.Tensor) => samInfoNceLoss({ local: l, global: g }, [sels[0]]).total)([local, global])
      .map((t) => t.dataSync()),
  );
  assert.equal(value([sels[0]]), 0);
  assert.ok(dl.every((x) => x === 0) && dg.every((x) => x === 0));
  tf.dispose([local, global]);
});
