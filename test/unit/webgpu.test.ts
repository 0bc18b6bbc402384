/**
 * The GPU code path (tfjs WebGPU through Dawn, the `webgpu` npm package) against the CPU backend.
 * On machines without a GPU it runs on Mesa's lavapipe (`npm run setup:test` installs it; CI does).
 * Without any WebGPU adapter the test is skipped locally and fails in CI (CI=true).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { getSamConfig } from '../../main/engine/sam/config.ts';
import { createWeights, disposeWeights, forward } from '../../main/engine/sam/network.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { prepareCt, samplePatchPair } from '../../main/engine/train/patch-pairs.ts';
import { mineSamBatch } from '../../main/engine/train/negatives.ts';
import { samInfoNceLoss } from '../../main/engine/train/infonce.ts';
import { createRng } from '../../main/engine/train/rng.ts';
import { dataPath } from '../helpers.ts';

interface StepResult {
  local: Float32Array;
  global: Float32Array;
  loss: number;
  grads: Float32Array[];
}

/** One training step of the tiny network on a real patch pair: embeddings, loss and gradients. */
async function step(backend: 'webgpu' | 'cpu'): Promise<StepResult> {
  const choice = await initTfBackend({ backend });
  assert.equal(choice.backend, backend);
  const cfg = getSamConfig('tiny');
  const ct = prepareCt(await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz')));
  const pair = samplePatchPair(ct, createRng(11), { patchSize: [32, 32, 16] });
  const buf = new Float32Array(2 * 32 * 32 * 16);
  buf.set(pair.a.image.data, 0);
  buf.set(pair.b.image.data, 32 * 32 * 16);
  const x = tf.tensor5d(buf, [2, 16, 32, 32, 1]);
  const w = createWeights(cfg, 3);
  const names = Object.keys(w);
  const out = forward(w, x, cfg);
  const local = (await out.local.data()) as Float32Array;
  const global = (await out.global.data()) as Float32Array;
  out.local.dispose();
  out.global.dispose();
  // as the training loop does: mine on the current embeddings, then differentiate the loss
  const first = forward(w, x, cfg);
  const sel = await mineSamBatch({ local: first.local, global: first.global }, [pair], createRng(5));
  tf.dispose([first.local, first.global]);
  const { value, grads } = tf.valueAndGrads((...ws: tf.Tensor[]) => {
    const o = forward(Object.fromEntries(names.map((n, k) => [n, ws[k]])), x, cfg);
    return samInfoNceLoss({ local: o.local, global: o.global }, sel).total;
  })(names.map((n) => w[n]));
  const result = {
    local,
    global,
    loss: (await value.data())[0],
    grads: await Promise.all(grads.map(async (g) => (await g.data()) as Float32Array)),
  };
  tf.dispose([value, ...grads, x]);
  disposeWeights(w);
  return result;
}

test("WebGPU (Dawn) gives the CPU backend's embeddings, loss and gradients for a training step on real CT", async (t) => {
  let gpu: StepResult;
  try {
    gpu = await step('webgpu');
  } catch (e) {
    if (process.env.CI || process.env.SAM_DEBUG) throw e;
    t.skip(`no WebGPU adapter here (${(e as Error).message}); run 'npm run setup:test' to install lavapipe`);
    return;
  }
  const cpu = await step('cpu');
  const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, n) => Math.max(m, Math.abs(v - b[n])), 0);
  assert.ok(maxDiff(gpu.local, cpu.local) < 1e-4, `local embeddings differ by ${maxDiff(gpu.local, cpu.local)}`);
  assert.ok(maxDiff(gpu.global, cpu.global) < 1e-4, `global embeddings differ by ${maxDiff(gpu.global, cpu.global)}`);
  assert.ok(Math.abs(gpu.loss - cpu.loss) < 1e-3 * Math.abs(cpu.loss), `loss ${gpu.loss} vs ${cpu.loss}`);
  for (let k = 0; k < cpu.grads.length; k++) {
    const scale = Math.max(1e-6, ...cpu.grads[k].map(Math.abs));
    assert.ok(maxDiff(gpu.grads[k], cpu.grads[k]) / scale < 1e-2, `gradient ${k} differs`);
  }
});
