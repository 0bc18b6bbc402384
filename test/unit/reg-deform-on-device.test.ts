/**
 * SAM-deform on the tfjs device (register/device/) against the host implementation (register/deform/):
 * box sums and their gradient, the loss terms and their gradient on an asymmetric grid sampled through
 * an oblique world -> index map, the optimiser's trajectory (both Adam variants), and samDeform on a
 * real CT pair with onDevice; on the tfjs CPU backend and on WebGPU (Dawn on lavapipe here). And the
 * cascade's field and warp on the device against stageField + warpVolume.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { useWebgpu } from './webgpu-fixture.ts';
import { boxSum } from '../../main/engine/register/deform/box-sum.ts';
import { deformLoss, type DeformProblem } from '../../main/engine/register/deform/deform-loss.ts';
import { hostDeformOptimiser } from '../../main/engine/register/deform/deform-optimiser.ts';
import { boxSumOnDevice } from '../../main/engine/register/device/box-sum-on-device.ts';
import {
  deformLossAndGradientOnDevice,
  deformTermsOnDevice,
  deviceProblem,
} from '../../main/engine/register/device/deform-loss-on-device.ts';
import { deviceDeformOptimiser } from '../../main/engine/register/device/deform-optimiser-on-device.ts';
import { bodyGrid, prepareImage, samDeform } from '../../main/engine/register/deform/sam-deform.ts';
import { prepareImageOnDevice } from '../../main/engine/register/device/prepare-on-device.ts';
import { pairResolution, smoothingRadii } from '../../main/engine/register/deform/pair-resolution.ts';
import { registerVolumes } from '../../main/engine/register/cascade.ts';
import { makeSyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import { zeroField, type Field } from '../../main/engine/register/field/field.ts';
import { warpVolume } from '../../main/engine/register/field/warp.ts';
import { stageField } from '../../main/engine/register/stage-field.ts';
import { cascadeWarpOnDevice, stageFieldOnDevice } from '../../main/engine/register/device/warp-on-device.ts';
import { maskedNcc } from '../../main/engine/register/masked-ncc.ts';
import { overlapNcc } from '../../main/engine/register/overlap-ncc.ts';
import { JACOBIAN_VARIANTS, jacobianDeterminant } from '../../main/engine/register/field/jacobian.ts';
import { resampleOnDevice } from '../../main/engine/register/device/resample-on-device.ts';
import { makeVolume } from '../../main/engine/volume/volume.ts';
import { gridWithSpacing, resample } from '../../main/engine/volume/resample.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import type { Affine3x4, Geometry } from '../../main/engine/volume/geometry.ts';
import { dataPath, rng } from '../helpers.ts';
import { blobProblem, blobs, smoothDeformationPair } from './deform-fixtures.ts';
import { deformGradientWgsl, fixedPack, STATE_STRIDE } from '../../main/engine/register/device/deform-gradient-wgsl.ts';
import { fixedWindows } from '../../main/engine/register/deform/local-ncc.ts';

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let q = 0; q < a.length; q++) m = Math.max(m, Math.abs(a[q]));
  return m;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let q = 0; q < a.length; q++) m = Math.max(m, Math.abs(a[q] - b[q]));
  return m;
}

// an oblique, anisotropic moving grid (rotation about z by 20 degrees, 2.5 x 2 x 3 mm), offset
function obliqueToIndex(): Affine3x4 {
  const c = Math.cos(0.35);
  const s = Math.sin(0.35);
  return [c / 2.5, s / 2.5, 0, 1.2, -s / 2, c / 2, 0, 2.1, 0, 0, 1 / 3, 0.7];
}

function asymmetricProblem(seed: number) {
  return blobProblem(rng(seed), [11, 9, 7], [13, 12, 8], obliqueToIndex());
}

/** Backends to compare against the host: 'cpu' always, 'webgpu' where an adapter exists (lavapipe here). */
async function withBackend(name: 'cpu' | 'webgpu', t: { skip(msg: string): void }, body: () => Promise<void>) {
  if (name === 'cpu') await initTfBackend({ backend: 'cpu' });
  else if (!(await useWebgpu(t))) return;
  try {
    await body();
  } finally {
    await initTfBackend({ backend: 'cpu' });
  }
}

test('device box sum equals the host box sum; its gradient is the box sum of the upstream gradient', async () => {
  await initTfBackend({ backend: 'cpu' });
  const r = rng(5);
  const size = [7, 5, 6];
  const x = Float32Array.from({ length: 7 * 5 * 6 * 2 }, () => r() - 0.5);
  const dy = Float32Array.from({ length: x.length }, () => r() - 0.5);
  const [out, grad] = tf.tidy(() => {
    const xt = tf.tensor4d(x, [6, 5, 7, 2]);
    const f = (v: tf.Tensor) => tf.sum(tf.mul(boxSumOnDevice(v as tf.Tensor4D, 2), tf.tensor4d(dy, [6, 5, 7, 2])));
    return [boxSumOnDevice(xt, 2).dataSync(), tf.grad(f)(xt).dataSync()];
  });
  for (let c = 0; c < 2; c++) {
    const pick = (a: ArrayLike<number>) => Float32Array.from({ length: a.length / 2 }, (_, v) => a[2 * v + c]);
    assert.ok(maxDiff(pick(out), boxSum(pick(x), size, 2)) < 1e-5);
    assert.ok(maxDiff(pick(grad), boxSum(pick(dy), size, 2)) < 1e-5);
  }
});

for (const backend of ['cpu', 'webgpu'] as const)
  test(`${backend}: device loss terms and gradient equal the host's (asymmetric grid, oblique moving grid)`, async (t) => {
    await withBackend(backend, t, async () => {
      const { problem, N } = asymmetricProblem(21);
      const r = rng(22);
      const w = Float32Array.from({ length: 3 * N }, () => 1.5 * (r() - 0.5));
      const hostGrad = new Float32Array(3 * N);
      const host = deformLoss(problem, w, hostGrad);
      const p = deviceProblem(problem);
      try {
        // (data(), not dataSync(): WebGPU reads back asynchronously)
        const termsT = tf.tidy(() => {
          const d = deformTermsOnDevice(p, tf.tensor2d(w, [N, 3]));
          return tf.stack([d.loss, d.similarity, d.feature, d.smoothness]);
        });
        const gradT = tf.tidy(() => deformLossAndGradientOnDevice(p, tf.tensor2d(w, [N, 3])).grad);
        const [terms, grad] = [await termsT.data(), await gradT.data()];
        tf.dispose([termsT, gradT]);
        const rel = maxDiff(grad, hostGrad) / maxAbs(hostGrad);
        t.diagnostic(
          `loss host ${host.loss.toFixed(6)} device ${terms[0].toFixed(6)}; gradient max difference ${rel.toExponential(2)} of its largest entry`,
        );
        [host.loss, host.similarity, host.feature, host.smoothness].forEach((h, q) =>
          assert.ok(Math.abs(h - terms[q]) < 1e-5 + 1e-4 * Math.abs(h), `term ${q}: host ${h} device ${terms[q]}`),
        );
        assert.ok(rel < 1e-3, `gradient differs by ${rel} of its largest entry`);
      } finally {
        p.dispose();
      }
    });
  });

test('WebGPU: the WGSL gradient equals the host gradient (oblique moving and feature grids, zero-weight centres)', async (t) => {
  await withBackend('webgpu', t, async () => {
    const { problem: base, N } = asymmetricProblem(23);
    const r = rng(24);
    // features on a third grid (rotated the other way, 3 x 2.5 x 2 mm, 4 channels); a slab of window
    // centres weighted 0 (outside the body)
    const c = Math.cos(-0.2);
    const s = Math.sin(-0.2);
    const fToIndex: Affine3x4 = [c / 3, s / 3, 0, 0.4, -s / 2.5, c / 2.5, 0, 1.3, 0, 0, 1 / 2, 0.2];
    const fSize = [9, 11, 12];
    const weight = new Float32Array(N).map((_, v) => (v % 11 < 3 ? 0 : 1));
    const problem: DeformProblem = {
      ...base,
      windows: fixedWindows(base.windows.I, base.size, 2, weight),
      features: {
        fixed: blobs(base.size, r, 4),
        moving: { data: blobs(fSize, r, 4), size: fSize, channels: 4, toIndex: fToIndex },
        weight: 0.7,
      },
    };
    // points beyond the moving image's faces too (clamped sampling, derivative zero there)
    const w = Float32Array.from({ length: 3 * N }, () => 6 * (r() - 0.5));
    const hostGrad = new Float32Array(3 * N);
    deformLoss(problem, w, hostGrad);
    const p = deviceProblem(problem);
    const pack = fixedPack(p);
    const state = tf.tensor1d(
      Float32Array.from({ length: STATE_STRIDE * N + 1 }, (_, q) =>
        q < STATE_STRIDE * N && q % STATE_STRIDE < 3 ? w[3 * Math.floor(q / STATE_STRIDE) + (q % STATE_STRIDE)] : 0,
      ),
    );
    try {
      const g = deformGradientWgsl(p, pack, state);
      const grad = await g.data();
      g.dispose();
      const rel = maxDiff(grad, hostGrad) / maxAbs(hostGrad);
      t.diagnostic(
        `WGSL gradient: max difference ${rel.toExponential(2)} of its largest entry (${maxAbs(hostGrad).toExponential(2)})`,
      );
      assert.ok(rel < 1e-4, `gradient differs by ${rel} of its largest entry`);
    } finally {
      tf.dispose([pack, state]);
      p.dispose();
    }
  });
});

for (const backend of ['cpu', 'webgpu'] as const)
  test(`${backend}: the device optimiser follows the host optimiser's trajectory (adam-global and adam)`, async (t) => {
    await withBackend(backend, t, async () => {
      const { problem, N } = asymmetricProblem(31);
      for (const optimizer of ['adam-global', 'adam'] as const) {
        const wh = new Float32Array(3 * N);
        const wd = new Float32Array(3 * N);
        const host = hostDeformOptimiser(problem, { optimizer });
        const dev = deviceDeformOptimiser(problem, { optimizer });
        try {
          const before = tf.memory().numTensors;
          await host.optimise(wh, 12, 0.3, 2, 'test');
          await dev.optimise(wd, 12, 0.3, 2, 'test');
          assert.equal(tf.memory().numTensors, before, 'the device optimiser leaks no tensors');
          const [eh, ed] = [await host.evaluate(wh), await dev.evaluate(wd)];
          const d = maxDiff(wh, wd);
          t.diagnostic(
            `${optimizer}: |w| up to ${maxAbs(wh).toFixed(3)} mm, host and device differ by ${d.toExponential(2)} mm; loss ${eh.loss.toFixed(5)} vs ${ed.loss.toFixed(5)}`,
          );
          assert.ok(maxAbs(wh) > 0.5, 'the optimisation moved');
          assert.ok(d < 2e-3, `w differs by ${d} mm`);
          assert.ok(Math.abs(eh.loss - ed.loss) < 1e-4 * Math.max(1, Math.abs(eh.loss)));
        } finally {
          host.dispose();
          dev.dispose();
        }
      }
    });
  });

test('WebGPU: samDeform onDevice equals the host run on a real CT pair', async (t) => {
  const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
  const pair = smoothDeformationPair(ct);
  const mask = bodyMask(pair.fixed);
  // 8 mm, one level, 15 iterations: lavapipe is a CPU
  const run = (onDevice: boolean) =>
    samDeform(pair.fixed, pair.moving, (g) => zeroField(g), mask, {
      spacingMm: 8,
      multilevel: false,
      iterations: 15,
      onDevice,
    });
  const host = await run(false);
  await withBackend('webgpu', t, async () => {
    const t0 = performance.now();
    const dev = await run(true);
    const seconds = (performance.now() - t0) / 1000;
    const diffs = host.field.data.map((v, q) => Math.abs(v - dev.field.data[q])).sort();
    const mean = diffs.reduce((a, b) => a + b, 0) / diffs.length;
    const p99 = diffs[Math.floor(0.99 * (diffs.length - 1))];
    t.diagnostic(
      `grid ${host.stats.grid.size.join('x')}, |w| up to ${maxAbs(host.field.data).toFixed(2)} mm; host - device: mean ` +
        `${mean.toExponential(2)}, p99 ${p99.toExponential(2)}, max ${diffs[diffs.length - 1].toExponential(2)} mm; ` +
        `LNCC ${host.stats.lnccEnd.toFixed(4)} vs ${dev.stats.lnccEnd.toFixed(4)}; device run ${seconds.toFixed(1)} s (lavapipe)`,
    );
    // float32 sums on the device against float64 on the host; the clipped steps amplify the
    // difference a little where a point crosses the moving image's border (derivative switched off)
    assert.ok(maxAbs(host.field.data) > 2);
    assert.ok(mean < 5e-3 && p99 < 0.05, `fields differ: mean ${mean} mm, p99 ${p99} mm`);
    assert.ok(Math.abs(host.stats.lnccEnd - dev.stats.lnccEnd) < 1e-3);
    assert.equal(dev.stats.foldedPercentOnGrid, host.stats.foldedPercentOnGrid);
  });
});

test('WebGPU: the cascade field and warp on the device equal stageField + warpVolume (oblique affine, two corrections)', async (t) => {
  const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
  const fixed = resample(ct, gridWithSpacing(ct, [2.5, 3, 3.5]), { fill: -1024 });
  const c = Math.cos(0.2);
  const s = Math.sin(0.2);
  const affine: Affine3x4 = [c, -s, 0.05, 7.3, s * 1.1, c, 0, -4.2, 0, 0.08, 0.95, 3.1];
  // two smooth corrections on their own grids (8 and 13 mm), larger than the fixed image's extent
  const correction = (mm: number, amp: number): Field => {
    const f = zeroField(gridWithSpacing(fixed, [mm, mm, mm]));
    const [ni, nj, nk] = f.size;
    for (let k = 0, q = 0; k < nk; k++)
      for (let j = 0; j < nj; j++)
        for (let i = 0; i < ni; i++, q += 3) {
          f.data[q] = amp * Math.sin(i / 3 + j / 5);
          f.data[q + 1] = amp * Math.cos(k / 4 - i / 7);
          f.data[q + 2] = 0.5 * amp * Math.sin(j / 2);
        }
    return f;
  };
  const corrections = [correction(8, 4), correction(13, 2.5)];
  await withBackend('webgpu', t, async () => {
    const dev = await cascadeWarpOnDevice(fixed, ct, affine, corrections, -1024, { unwarped: true });
    assert.ok(dev?.unwarped, 'fits the device');
    const field = stageField(fixed, affine, corrections);
    const warped = warpVolume(ct, field, { fill: -1024 });
    const fd = maxDiff(dev.field.data, field.data);
    // the QA's "before": the moving image on the fixed grid, no transform (float32 from both)
    // (both in the CT's voxel type, rounded: values at a rounding boundary may differ by 1)
    const before = resample(ct, fixed, { fill: -1024 });
    let bOff = 0;
    let bd = 0;
    for (let v = 0; v < before.data.length; v++) {
      const d = Math.abs(dev.unwarped.data[v] - before.data[v]);
      if (d > 1) bOff++;
      else bd = Math.max(bd, d);
    }
    let off = 0;
    let worst = 0;
    for (let v = 0; v < warped.data.length; v++) {
      const d = Math.abs(dev.warped.data[v] - warped.data[v]);
      if (d > 1) off++;
      else worst = Math.max(worst, d);
    }
    t.diagnostic(
      `${fixed.size.join('x')} voxels: field max |device - host| ${fd.toExponential(2)} mm; warped: ${off} voxels differ by > 1 HU, the rest by <= ${worst}; ` +
        `unwarped: ${bOff} by > 1 HU, the rest by <= ${bd}`,
    );
    assert.deepEqual(dev.field.size, fixed.size);
    assert.equal(dev.warped.data.constructor, warped.data.constructor);
    assert.ok(fd < 1e-3, `field differs by ${fd} mm`);
    assert.ok(off <= warped.data.length * 1e-4, `${off} warped voxels differ by more than 1 HU`);
    assert.equal(dev.unwarped.data.constructor, before.data.constructor);
    assert.ok(bOff <= before.data.length * 1e-4 && bd <= 1, `unwarped: ${bOff} voxels off, the rest by ${bd} HU`);
    // the QA's NCC on the device (masked-ncc-on-device.ts) against masked-ncc.ts on the host images,
    // in slabs of whole rows and with a mask that cuts rows; the unwarped image is then not read back
    const mask = makeVolume({
      ...fixed,
      components: 1,
      data: Uint8Array.from({ length: before.data.length }, (_, v) => (v % 7 < 5 && fixed.data[v] > -900 ? 1 : 0)),
    });
    const withNcc = await cascadeWarpOnDevice(fixed, ct, affine, corrections, -1024, {
      ncc: { fixed, mask, overlap: true },
      jacobian: { mask },
    });
    assert.ok(withNcc?.ncc && !withNcc.unwarped, 'NCC without the unwarped image');
    const want = {
      before: maskedNcc(fixed.data, before.data, mask.data),
      after: maskedNcc(fixed.data, warped.data, mask.data),
    };
    t.diagnostic(
      `NCC before ${withNcc.ncc.before.toFixed(7)} (host ${want.before.toFixed(7)}), after ${withNcc.ncc.after.toFixed(7)} (host ${want.after.toFixed(7)})`,
    );
    assert.ok(Math.abs(withNcc.ncc.before - want.before) < 1e-4, 'NCC before');
    assert.ok(Math.abs(withNcc.ncc.after - want.after) < 1e-4, 'NCC after');
    // where the moving image has data (overlap-ncc-on-device.ts against overlap-ncc.ts): the oblique
    // affine maps part of the fixed body out of the moving image's extent (before: all of it inside)
    const ov = overlapNcc(fixed, ct, field, warped, mask.data);
    const od = withNcc.overlap!;
    t.diagnostic(
      `overlap NCC before ${od.before.toFixed(7)} (host ${ov.before.toFixed(7)}) over ${od.beforePercent.toFixed(3)} % ` +
        `(${ov.beforePercent.toFixed(3)}), after ${od.after.toFixed(7)} (${ov.after.toFixed(7)}) over ` +
        `${od.afterPercent.toFixed(3)} % (${ov.afterPercent.toFixed(3)})`,
    );
    assert.ok(ov.afterPercent < 99, 'part of the body mapped outside the moving image');
    assert.ok(Math.abs(od.before - ov.before) < 1e-4 && Math.abs(od.after - ov.after) < 1e-4, 'overlap NCC');
    assert.ok(Math.abs(od.beforePercent - ov.beforePercent) < 0.01, 'overlap share before');
    assert.ok(Math.abs(od.afterPercent - ov.afterPercent) < 0.01, 'overlap share after');
    assert.deepEqual(withNcc.warped.data, dev.warped.data, 'the same warped image with four channels read');
    assert.deepEqual(withNcc.field.data, dev.field.data, 'the same field');
    // the Jacobian's statistics from the slab's own field on the device (one slab: jacobianSlab + row sums)
    const jh = jacobianDeterminant(field, { mask });
    const jd = withNcc.jacobian!;
    t.diagnostic(
      `Jacobian in the mask: mean ${jd.mean.toFixed(6)} (host ${jh.mean.toFixed(6)}), folded ${jd.folded} (${jh.folded})`,
    );
    assert.equal(jd.voxels, jh.voxels);
    assert.equal(jd.folded, jh.folded);
    for (const v of JACOBIAN_VARIANTS) assert.equal(jd.nonPositive[v], jh.nonPositive[v], `variant ${v}`);
    for (const k of ['mean', 'std', 'min', 'max'] as const) assert.ok(Math.abs(jd[k] - jh[k]) < 1e-4, `Jacobian ${k}`);
    // in slabs of 3 slices (each computed with a one-slice halo for the Jacobian): the same numbers
    const slabs = await cascadeWarpOnDevice(fixed, ct, affine, corrections, -1024, {
      ncc: { fixed, mask, overlap: true },
      jacobian: { mask },
      slabSlices: 3,
    });
    assert.deepEqual(slabs!.field.data, dev.field.data, 'slabs: the same field');
    assert.deepEqual(slabs!.warped.data, dev.warped.data, 'slabs: the same warped image');
    assert.deepEqual(slabs!.jacobian, jd, 'slabs: the same Jacobian statistics');
    assert.ok(
      Math.abs(slabs!.ncc!.after - withNcc.ncc.after) < 1e-6 &&
        Math.abs(slabs!.ncc!.before - withNcc.ncc.before) < 1e-6,
      'slabs: the same NCC',
    );
    assert.equal(slabs!.overlap!.afterPercent, od.afterPercent, 'slabs: the same overlap');
    assert.ok(Math.abs(slabs!.overlap!.after - od.after) < 1e-6, 'slabs: the same overlap NCC');
  });
});

test('WebGPU: the stage field and a multi-channel resample on the device equal stageField and resample', async (t) => {
  await withBackend('webgpu', t, async () => {
    const r = rng(51);
    // an oblique 4 mm grid partly outside the source (fill), a 5-channel source on a 3 x 2.5 x 3.5 mm grid
    const c = Math.cos(0.3);
    const s = Math.sin(0.3);
    const grid: Geometry = {
      size: [23, 19, 15],
      spacing: [4, 4, 4],
      origin: [-12, 5, -3],
      direction: [c, s, 0, -s, c, 0, 0, 0, 1],
    };
    const srcSize = [21, 25, 17];
    const source = makeVolume({
      size: srcSize as [number, number, number],
      spacing: [3, 2.5, 3.5],
      origin: [0, 0, 0],
      components: 5,
      data: blobs(srcSize, r, 5),
    });
    const host = resample(source, grid, { fill: 0, outputType: 'float32' }).data;
    const dev = await resampleOnDevice(source, grid, 0);
    assert.ok(dev);
    const filled = host.filter((x) => x === 0).length;
    const rd = maxDiff(dev, host);
    // a smooth correction on its own grid and an oblique affine: the map on `grid`
    const corr = zeroField({ ...grid, size: [9, 8, 7], spacing: [11, 11, 11] });
    corr.data.forEach((_, q) => (corr.data[q] = 3 * Math.sin(q / 7)));
    const affine: Affine3x4 = [c, -s, 0.05, 7.3, s * 1.1, c, 0, -4.2, 0, 0.08, 0.95, 3.1];
    const f = await stageFieldOnDevice(grid, affine, [corr]);
    assert.ok(f);
    const fd = maxDiff(f.data, stageField(grid, affine, [corr]).data);
    t.diagnostic(
      `resample: ${filled} of ${host.length} values filled, the rest within ${rd.toExponential(2)}; stage field within ${fd.toExponential(2)} mm`,
    );
    assert.ok(filled > 500 && filled < host.length - 500, 'part of the grid lies outside the source');
    assert.ok(rd < 1e-5, `resampled values differ by ${rd}`);
    assert.ok(fd < 1e-3, `stage field differs by ${fd} mm`);
  });
});

test('WebGPU: the cascade with the deform stage on the device matches the host cascade (real CT pair)', async (t) => {
  const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
  const small = resample(ct, gridWithSpacing(ct, [5, 5, 5]), { fill: -1024 });
  const pair = makeSyntheticPair(small, { seed: 7, maxDeformationMm: 8, fovKeep: [1, 1], fovKeepInPlane: [1, 1] });
  const run = (onDevice: boolean) =>
    registerVolumes(pair.fixed, pair.moving, {
      matcher: 'ncc',
      stages: ['affine', 'deform'],
      deform: { iterations: 8, onDevice },
    });
  const host = await run(false);
  await withBackend('webgpu', t, async () => {
    const dev = await run(true);
    assert.equal(dev.deform?.stats.optimisedOn, 'tfjs-webgpu');
    assert.ok('warp (GPU)' in dev.qa.secondsPerStage, 'the field and the warp were made on the device');
    const diffs = dev.field.data.map((v, q) => Math.abs(v - host.field.data[q])).sort();
    const mean = diffs.reduce((a, b) => a + b, 0) / diffs.length;
    const p99 = diffs[Math.floor(0.99 * (diffs.length - 1))];
    t.diagnostic(
      `field |device - host|: mean ${mean.toExponential(2)}, p99 ${p99.toExponential(2)}, max ` +
        `${diffs[diffs.length - 1].toExponential(2)} mm; folding ${dev.qa.jacobian.foldedPercent} %`,
    );
    // (float32 against float64, amplified by the clipped steps: see the samDeform test above)
    assert.ok(mean < 0.02 && p99 < 0.2, `fields differ: mean ${mean} mm, p99 ${p99} mm`);
    assert.equal(dev.qa.jacobian.foldedPercent, host.qa.jacobian.foldedPercent);
  });
});

test('WebGPU: the deform images prepared on the device equal prepareImage (real CT, both levels)', async (t) => {
  const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
  const mask = bodyMask(ct);
  await withBackend('webgpu', t, async () => {
    for (const s of [8, 4]) {
      const G = bodyGrid(gridWithSpacing(ct, [s, s, s]), mask, 4);
      const host = prepareImage(ct, G);
      const dev = await prepareImageOnDevice(ct, G);
      assert.ok(dev, 'fits the device');
      let off = 0;
      let worst = 0;
      for (let v = 0; v < host.length; v++) {
        const d = Math.abs(host[v] - dev[v]);
        if (d > 1e-3) off++;
        else worst = Math.max(worst, d);
      }
      t.diagnostic(
        `${s} mm, grid ${G.size.join('x')}: ${off} voxels differ (hull slack), the rest by <= ${worst.toExponential(2)}`,
      );
      assert.ok(worst < 1e-5, `prepared images differ by ${worst}`);
      assert.ok(off <= host.length * 1e-3, `${off} voxels differ`);
    }
    // a radius per axis (pair-resolution.ts): the CT against a scan of 1 x 1.5 x 7 mm voxels
    const other = { ...ct, spacing: [1, 1.5, 7] as [number, number, number] };
    const pair = pairResolution(ct, other);
    const G = bodyGrid(gridWithSpacing(ct, [4, 4, 4]), mask, 4);
    assert.deepEqual(smoothingRadii(ct, 4, pair), [0, 0, 1], 'a different radius per axis');
    const host = prepareImage(ct, G, 4, pair);
    const dev = await prepareImageOnDevice(ct, G, undefined, 4, pair);
    assert.ok(dev, 'fits the device');
    let off = 0;
    for (let v = 0; v < host.length; v++) if (Math.abs(host[v] - dev[v]) > 1e-5) off++;
    assert.ok(off <= host.length * 1e-3, `${off} voxels differ`);
  });
});

test('WebGPU: cancelling the deform stage on the device stops it and frees its tensors', async (t) => {
  const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
  const pair = smoothDeformationPair(ct);
  const mask = bodyMask(pair.fixed);
  await withBackend('webgpu', t, async () => {
    const before = tf.memory().numTensors;
    const controller = new AbortController();
    let seen = 0;
    await assert.rejects(
      samDeform(pair.fixed, pair.moving, (g) => zeroField(g), mask, {
        spacingMm: 8,
        iterations: 30,
        onDevice: true,
        signal: controller.signal,
        onProgress: (stage, done) => {
          seen = done;
          if (stage.includes('coarse level') && done === 5) controller.abort();
        },
      }),
      (e: Error) => e.name === 'CancelledError',
    );
    assert.equal(seen, 5, 'stopped at the next iteration');
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
  });
});
