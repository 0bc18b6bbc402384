/**
 * The cascade's stage checks on the GPU (register/device/map-ncc-on-device.ts) equal the host's
 * (map-ncc.ts) on a real CT pair of different voxel sizes, through maps that leave part of the fixed
 * body outside the moving image: the smoothed 4 mm images, the samples through each map, where they
 * fall inside, and the NCC and local NCC (Dawn on lavapipe here).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { useWebgpu } from './webgpu-fixture.ts';
import {
  lnccOfSamples,
  lnccThroughMaps,
  movingThroughMaps,
  nccOfSamples,
  nccThroughMaps,
  smoothedPair,
} from '../../main/engine/register/map-ncc.ts';
import {
  lnccThroughMapsOnDevice,
  movingThroughMapsOnDevice,
  smoothedPairOnDevice,
} from '../../main/engine/register/device/map-ncc-on-device.ts';
import { StageChecks } from '../../main/engine/register/stage-checks.ts';
import { zeroField } from '../../main/engine/register/field/field.ts';
import type { Affine3x4 } from '../../main/engine/register/affine-fit.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import { gridWithSpacing, resample } from '../../main/engine/volume/resample.ts';
import { dataPath } from '../helpers.ts';

const LUNG = dataPath('elastix/Testing/Data/3DCT_lung_baseline_small.mha');

test('stage checks on the GPU equal the host ones (smoothed pair, samples, inside, NCC, LNCC)', async (t) => {
  if (!(await useWebgpu(t, false))) return;
  const fixed = await readVolume(LUNG);
  // the moving image: the same CT at 1.5 x 2 x 3 mm (another smoothing radius per axis)
  const moving = resample(fixed, gridWithSpacing(fixed, [1.5, 2, 3]), { fill: -1024 });
  const mask = bodyMask(fixed);
  // a 4 degree rotation about z and a 12 mm shift along x: the fixed body's edge leaves the moving image
  const c = Math.cos((4 * Math.PI) / 180);
  const s = Math.sin((4 * Math.PI) / 180);
  const affine: Affine3x4 = [c, -s, 0, 12, s, c, 0, -3, 0, 0, 1, 2];
  const bump = zeroField({ size: [6, 6, 8], spacing: [30, 30, 30], origin: fixed.origin, direction: fixed.direction });
  for (let q = 0; q < bump.data.length; q++) bump.data[q] = Math.sin(q) * 3;
  const maps = [[], [bump]];

  const tensorsBefore = tf.memory().numTensors;
  const host = smoothedPair(fixed, moving, mask);
  const dev = await smoothedPairOnDevice(fixed, moving, mask);
  assert.ok(dev, 'the pair fits the device');
  for (const k of ['fixed', 'moving'] as const) {
    assert.deepEqual(dev[k].size, host[k].size);
    let d = 0;
    for (let v = 0; v < host[k].data.length; v++) d = Math.max(d, Math.abs(host[k].data[v] - dev[k].data[v]));
    assert.ok(d < 1e-4, `${k}: smoothed images differ by ${d}`);
  }
  assert.deepEqual(dev.mask, host.mask);

  const a = movingThroughMaps(host, affine, maps);
  const b = await movingThroughMapsOnDevice(host, affine, maps);
  assert.ok(b);
  const N = host.fixed.data.length;
  let out = 0;
  let differ = 0;
  let d = 0;
  for (let v = 0; v < N; v++) {
    if (!a.inside[v]) out++;
    if (a.inside[v] !== b.inside[v]) differ++;
    else if (a.inside[v]) for (let m = 0; m < maps.length; m++) d = Math.max(d, Math.abs(a.J[m][v] - b.J[m][v]));
  }
  assert.ok(out > N / 50 && out < N / 2, `${out} of ${N} points outside the moving image (the test wants some)`);
  assert.ok(differ <= N * 1e-4, `inside differs at ${differ} points`);
  assert.ok(d < 1e-4, `samples differ by ${d}`);

  const nccHost = nccThroughMaps(host, affine, maps);
  const lnccHost = lnccThroughMaps(host, affine, maps);
  const nccDev = nccOfSamples(host, b);
  const lnccDev = lnccOfSamples(host, b);
  // the local NCC with its sums on the device (float32)
  const lnccSums = await lnccThroughMapsOnDevice(host, affine, maps);
  assert.ok(lnccSums);
  for (let m = 0; m < maps.length; m++) {
    assert.ok(Math.abs(nccHost[m] - nccDev[m]) < 1e-5, `NCC ${nccHost} vs ${nccDev}`);
    assert.ok(Math.abs(lnccHost[m] - lnccDev[m]) < 1e-4, `LNCC ${lnccHost} vs ${lnccDev}`);
    assert.ok(Math.abs(lnccHost[m] - lnccSums[m]) < 1e-4, `LNCC ${lnccHost} vs ${lnccSums} (sums on the device)`);
  }
  assert.ok(nccHost[1] < nccHost[0] && nccDev[1] < nccDev[0], 'the bump makes it worse');
  assert.ok(lnccSums[1] < lnccSums[0], 'the bump makes it worse');
  console.log(
    `NCC host ${nccHost.map((x) => x.toFixed(6))}, GPU ${nccDev.map((x) => x.toFixed(6))}; LNCC host ${lnccHost.map((x) => x.toFixed(6))}, GPU ${lnccSums.map((x) => x.toFixed(6))}`,
  );

  // the cascade's entry point, on the device
  const checks = new StageChecks(fixed, moving, mask, affine, {});
  const viaChecks = await checks.lncc(maps);
  for (let m = 0; m < maps.length; m++) assert.ok(Math.abs(viaChecks[m] - lnccHost[m]) < 1e-4);
  assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor left on the device');
});
