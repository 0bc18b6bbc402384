/**
 * The cascade with its SAM embeddings on the GPU (deviceModel on tfjs' WebGPU backend): the deform
 * stage's reduced features made on the device equal the host's, and the whole cascade (embedding,
 * matching, affine, coarse, deform, warp on the device) agrees with the host cascade on the same
 * real CT pair and the same weights (Dawn on lavapipe here).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { useWebgpu } from './webgpu-fixture.ts';
import { createTfjsEngine } from '../../main/engine/compute/tfjs-engine.ts';
import { embeddingFeatures } from '../../main/engine/register/deform/embedding-features.ts';
import { embeddingFeaturesOnDevice } from '../../main/engine/register/device/embedding-features-on-device.ts';
import { registerVolumes, type Stage } from '../../main/engine/register/cascade.ts';
import { makeSyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import { bodyPoints, tre } from '../../main/engine/bench/reg-metrics.ts';
import { embedVolume } from '../../main/engine/sam/embed-volume.ts';
import { toDevice } from '../../main/engine/sam/device/embed-on-device.ts';
import { loadWeights } from '../../main/engine/sam/weights-file.ts';
import { disposeWeights } from '../../main/engine/sam/network.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import { gridWithSpacing, resample } from '../../main/engine/volume/resample.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { indexToWorld } from '../../main/engine/volume/geometry.ts';
import { EXAMPLE_CT, tinyEngine } from './embed-fixtures.ts';
import { withData, type Volume } from '../../main/engine/volume/volume.ts';

/**
 * A 200 x 152 x 60 mm block of the chest/abdomen CT at 2 mm (the network grid), from one side of the
 * body (air in it, as the CT check and the body mask want) to past the middle: small enough for tfjs'
 * CPU backend and lavapipe's 128 MB buffers, large enough for the cascade's grids.
 */
async function ctBlock(): Promise<Volume> {
  const ct = await readVolume(EXAMPLE_CT);
  const full = gridWithSpacing(ct, [2, 2, 2]);
  const size: [number, number, number] = [100, 76, 30];
  const start = full.size.map((n, a) => (a === 0 ? 0 : (n - 1) / 2 - (size[a] - 1) / 2)) as [number, number, number];
  return resample(ct, { ...full, size, origin: indexToWorld(full, start) }, { fill: -1024 });
}

test('reduced SAM features made on the device equal the host ones', async () => {
  const engine = await tinyEngine(5);
  const v = await ctBlock();
  const a = await embedVolume(v, engine);
  const b = await embedVolume(resample(v, gridWithSpacing(v, [2.5, 2.5, 2.5]), { fill: -1024 }), engine);
  const host = embeddingFeatures({ fixed: a, moving: b });
  const dev = { fixed: toDevice(a), moving: toDevice(b) };
  try {
    const onDevice = await embeddingFeaturesOnDevice(dev);
    for (const k of ['fixed', 'moving'] as const) {
      assert.deepEqual(onDevice[k].size, host[k].size);
      assert.equal(onDevice[k].components, 8);
      let d = 0;
      for (let q = 0; q < host[k].data.length; q++) d = Math.max(d, Math.abs(host[k].data[q] - onDevice[k].data[q]));
      assert.ok(d < 1e-4, `${k}: reduced features differ by ${d}`);
    }
  } finally {
    dev.fixed.dispose();
    dev.moving.dispose();
    await engine.dispose();
  }
});

test('WebGPU: the cascade with embeddings, matching, features, deform and warp on the device agrees with the host cascade', async (t) => {
  const { config, weights } = loadWeights('resources/sam-small.samw');
  const small = await ctBlock();
  const pair = makeSyntheticPair(small, {
    seed: 7,
    maxRotationDeg: 5,
    maxScale: 0.04,
    maxTranslationMm: 6,
    maxDeformationMm: 5,
    fovKeep: [1, 1],
    fovKeepInPlane: [1, 1],
  });
  const options = {
    matcher: 'sam' as const,
    // SAM alone: every stage's matching on the device (the SAM-coarse matcher on the moving image
    // embedded again after the affine); refined by NCC the coarse stage would be NCC on the host
    refine: 'none' as const,
    stages: ['affine', 'coarse', 'deform'] as const,
    deform: { iterations: 6 },
    featureWeight: 0.5,
  };
  try {
    await initTfBackend({ backend: 'cpu', gradients: false });
    const cpuEngine = await createTfjsEngine({ config, weights });
    const host = await registerVolumes(pair.fixed, pair.moving, {
      ...options,
      stages: [...options.stages],
      engine: cpuEngine,
      deform: { ...options.deform, onDevice: false },
    });
    // without the feature term (and no network) the embeddings are not reduced at all
    const plain = await registerVolumes(pair.fixed, pair.moving, {
      ...options,
      stages: [...options.stages],
      engine: cpuEngine,
      featureWeight: 0,
      deform: { ...options.deform, onDevice: false },
    });
    assert.ok('features' in host.qa.secondsPerStage && !('features' in plain.qa.secondsPerStage));
    assert.notDeepEqual(plain.deform!.stats.lossEnd, host.deform!.stats.lossEnd, 'the feature term counted');
    if (!(await useWebgpu(t))) return;
    const gw = tf.tidy(() =>
      Object.fromEntries(Object.entries(weights).map(([k, w]) => [k, tf.tensor(w.dataSync(), w.shape)])),
    );
    try {
      const gpuEngine = await createTfjsEngine({ config, weights: gw });
      const tensorsBefore = tf.memory().numTensors;
      const dev = await registerVolumes(pair.fixed, pair.moving, {
        ...options,
        stages: [...options.stages],
        engine: gpuEngine,
        deviceModel: { config, weights: gw },
        deform: { ...options.deform, onDevice: true },
      });
      // (the images' voxels uploaded once for the whole cascade, disposed at its end)
      assert.equal(tf.memory().numTensors, tensorsBefore, 'the cascade leaves no tensor on the device');
      // the masks made meanwhile: on worker threads (this thread waits for them after the embedding)
      assert.ok('embedding (GPU)' in dev.qa.secondsPerStage, 'embedded on the device');
      assert.ok('masks (threads, waited for)' in dev.qa.secondsPerStage, 'masks on threads meanwhile');
      assert.ok(!('masks' in dev.qa.secondsPerStage), 'no separate mask stage');
      assert.equal(dev.qa.masksOnThreads, true);
      assert.equal(typeof dev.qa.masksSecondsDuringEmbedding, 'number');
      assert.ok('warp (GPU)' in dev.qa.secondsPerStage, 'warped on the device');
      assert.equal(dev.qa.coarseMatcher, 'sam');
      const mask = bodyMask(pair.fixed);
      const pts = bodyPoints(mask, 17);
      const [eh, ed] = [tre(host.field, pair.truth, pts), tre(dev.field, pair.truth, pts)];
      const sh = host.affine.stats;
      const sd = dev.affine.stats;
      t.diagnostic(
        `affine pairs kept ${sd.kept} (host ${sh.kept}), inliers ${sd.inliers} (${sh.inliers}); TRE mean ${ed.mean.toFixed(2)} mm ` +
          `(host ${eh.mean.toFixed(2)}), p95 ${ed.p95.toFixed(2)} (${eh.p95.toFixed(2)}); seconds ${JSON.stringify(dev.qa.secondsPerStage)}`,
      );
      assert.ok(Math.abs(sd.kept - sh.kept) <= Math.max(2, 0.02 * sh.kept), 'about the same confident pairs');
      assert.ok(Math.abs(ed.mean - eh.mean) < 0.1, `TRE ${ed.mean} vs ${eh.mean}`);
      assert.equal(dev.qa.jacobian.foldedPercent, host.qa.jacobian.foldedPercent);
      // the Jacobian's statistics from the warp's field on the device (jacobian-stats-on-device.ts)
      assert.ok('jacobian (GPU)' in dev.qa.secondsPerStage, 'Jacobian on the device');
      // the QA's NCC from the warp's dispatch (masked-ncc-on-device.ts): "before" is the same images
      const [nd, nh] = [dev.qa.nccInFixedBody, host.qa.nccInFixedBody];
      assert.ok(Math.abs(nd.before - nh.before) < 1e-4, `NCC before ${nd.before} vs ${nh.before}`);
      assert.ok(Math.abs(nd.after - nh.after) < 0.01, `NCC after ${nd.after} vs ${nh.after}`);
      // and where the moving image has data (overlap-ncc-on-device.ts, from the same dispatch)
      const [od, oh] = [dev.qa.nccWhereMovingHasData, host.qa.nccWhereMovingHasData];
      assert.ok(Math.abs(od.before - oh.before) < 1e-4, `overlap NCC before ${od.before} vs ${oh.before}`);
      assert.ok(Math.abs(od.beforePercent - oh.beforePercent) < 0.01, 'overlap share before');
      assert.ok(Math.abs(od.after - oh.after) < 0.01, `overlap NCC after ${od.after} vs ${oh.after}`);
      assert.ok(Math.abs(od.afterPercent - oh.afterPercent) < 0.5, 'overlap share after');
      assert.equal(dev.qa.jacobian.voxels, host.qa.jacobian.voxels);
      for (const k of ['mean', 'std', 'min', 'max'] as const)
        assert.ok(
          Math.abs(dev.qa.jacobian[k] - host.qa.jacobian[k]) < 0.01,
          `Jacobian ${k}: ${dev.qa.jacobian[k]} vs ${host.qa.jacobian[k]}`,
        );
      // the default, refined by NCC: the GPU's SAM matches refined by NCC on the GPU too
      // (device/ncc-on-device.ts), the coarse stage's NCC there as well (coarseMatcherOf), in its
      // aligned image made there; then the same with the NCC on the host's threads
      const opts = {
        matcher: 'sam' as const,
        stages: ['affine', 'coarse'] as Stage[],
        engine: gpuEngine,
        deviceModel: { config, weights: gw },
        deform: { onDevice: true },
      };
      const refined = await registerVolumes(pair.fixed, pair.moving, opts);
      assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor left on the device');
      assert.equal(refined.qa.refine, 'ncc');
      assert.equal(refined.qa.coarseMatcher, 'ncc');
      assert.equal(refined.qa.nccOn, 'gpu');
      assert.ok('embedding (GPU)' in refined.qa.secondsPerStage);
      const er = tre(refined.field, pair.truth, pts);
      t.diagnostic(
        `refined by NCC on the GPU, affine + coarse: TRE mean ${er.mean.toFixed(2)} mm, p95 ${er.p95.toFixed(2)}`,
      );
      assert.ok(er.mean < 1, `refined, affine + coarse: TRE ${er.mean} mm`);
      const onCpu = await registerVolumes(pair.fixed, pair.moving, { ...opts, nccOnDevice: false });
      assert.equal(onCpu.qa.nccOn, 'cpu');
      const ec = tre(onCpu.field, pair.truth, pts);
      t.diagnostic(`refined by NCC on the CPU: TRE mean ${ec.mean.toFixed(2)} mm, p95 ${ec.p95.toFixed(2)}`);
      // the same search in float32: the same pairs kept, the same fields to a few hundredths of a mm
      const kept = (r: typeof refined) => (r.qa.pairs as { kept: number }).kept;
      assert.equal(kept(refined), kept(onCpu));
      assert.ok(Math.abs(er.mean - ec.mean) < 0.02, `TRE ${er.mean} (GPU NCC) vs ${ec.mean} (CPU NCC)`);
      await gpuEngine.dispose();
    } finally {
      tf.dispose(Object.values(gw));
    }
    await cpuEngine.dispose();
  } finally {
    disposeWeights(weights);
    await initTfBackend({ backend: 'cpu' });
  }
});

test('WebGPU: a moving scan stored mirrored left to right is refused on the device path too', async (t) => {
  if (!(await useWebgpu(t, false))) return;
  // a 340 x 152 x 60 mm slab through the middle of the CT at 2 mm (both flanks: air on each side), and
  // the same slab with its rows reversed (stored mirrored, header unchanged): small enough for lavapipe
  const ct = await readVolume(EXAMPLE_CT);
  const full = gridWithSpacing(ct, [2, 2, 2]);
  const size: [number, number, number] = [170, 76, 30];
  const start = full.size.map((n, a) => (n - 1) / 2 - (size[a] - 1) / 2) as [number, number, number];
  const slab = resample(ct, { ...full, size, origin: indexToWorld(full, start) }, { fill: -1024 });
  const [ni, nj, nk] = size;
  const data = new Float32Array(slab.data.length);
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++) data[i + ni * (j + nj * k)] = slab.data[ni - 1 - i + ni * (j + nj * k)];
  const { config, weights } = loadWeights('resources/sam-small.samw');
  try {
    const engine = await createTfjsEngine({ config, weights });
    const tensorsBefore = tf.memory().numTensors;
    await assert.rejects(
      registerVolumes(slab, withData(slab, data), {
        stages: ['affine'],
        matcher: 'sam',
        refine: 'none',
        engine,
        deviceModel: { config, weights },
      }),
      /looks mirrored left to right/,
    );
    assert.equal(tf.memory().numTensors, tensorsBefore, 'the refused cascade leaves no tensor on the device');
  } finally {
    disposeWeights(weights);
  }
});
