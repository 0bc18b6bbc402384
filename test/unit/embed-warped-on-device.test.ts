/**
 * SAM-coarse's re-embedding after the affine, kept on the device: the moving image warped through the
 * affine by affineWarpOnDevice equals the host's warpWithAffine (movingAfterAffine), and
 * embedVolumeOnDevice of an image given as device voxels equals the embedding of the same image as a
 * host volume, on a grid the network grid reads by a signed permutation (the RAS-flipped CT) and on an
 * oblique one (read back, resampled on the CPU). Real CT; tfjs CPU backend, and WebGPU (Dawn on
 * lavapipe here) for the warp program.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { EXAMPLE_CT } from './embed-fixtures.ts';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { useWebgpu } from './webgpu-fixture.ts';
import { getSamConfig } from '../../main/engine/sam/config.ts';
import { createWeights, disposeWeights } from '../../main/engine/sam/network.ts';
import { embedVolumeOnDevice, toHost } from '../../main/engine/sam/device/embed-on-device.ts';
import { affineWarpOnDevice } from '../../main/engine/register/device/warp-on-device.ts';
import { movingAfterAffine, movingAfterAffineGrid } from '../../main/engine/register/sam-coarse.ts';
import { warpWithAffine } from '../../main/engine/register/field/warp.ts';
import { cropIndex } from '../../main/engine/volume/crop.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { makeVolume, type Mat3, type Volume } from '../../main/engine/volume/volume.ts';
import type { Affine3x4 } from '../../main/engine/volume/geometry.ts';

// a rotation of 0.2 rad about z with some shear and scale, and a shift (mm): the benchmark's kind
const c = Math.cos(0.2);
const s = Math.sin(0.2);
const AFFINE: Affine3x4 = [1.05 * c, -s, 0.03, 6.5, s, 0.97 * c, 0, -9.2, 0, 0.06, 1.08, 4.1];

/** A fixed block of the CT (stored RAS-flipped, int32) and the whole CT as the moving image. */
async function images(): Promise<{ fixed: Volume; moving: Volume }> {
  const moving = await readVolume(EXAMPLE_CT);
  const fixed = cropIndex(moving, [20, 25, 40], [80, 75, 76]);
  assert.deepEqual(fixed.direction, [-1, 0, 0, 0, -1, 0, 0, 0, 1], 'fixture: RAS-flipped');
  return { fixed, moving };
}

async function embedBoth(
  moving: Volume,
  aligned: Volume,
  geometry: Volume,
  weights: Record<string, tf.Tensor>,
): Promise<number> {
  const config = getSamConfig('tiny');
  const voxels = tf.tensor1d(aligned.data as Float32Array);
  const fromDevice = await embedVolumeOnDevice(moving, { config, weights }, { image: { geometry, voxels } });
  const fromHost = await embedVolumeOnDevice(makeVolume({ ...geometry, components: 1, data: aligned.data }), {
    config,
    weights,
  });
  try {
    const a = await toHost(fromDevice);
    const b = await toHost(fromHost);
    let d = 0;
    for (const k of ['global', 'local'] as const) {
      assert.deepEqual(a[k].size, b[k].size);
      assert.deepEqual(a[k].origin, b[k].origin);
      for (let q = 0; q < a[k].data.length; q++) d = Math.max(d, Math.abs(a[k].data[q] - b[k].data[q]));
    }
    return d;
  } finally {
    voxels.dispose();
    fromDevice.dispose();
    fromHost.dispose();
  }
}

test('an image given as device voxels embeds as the same image given as a volume (flipped and oblique grids)', async (t) => {
  await initTfBackend({ backend: 'cpu', gradients: false });
  const { fixed, moving } = await images();
  const grid = movingAfterAffineGrid(fixed);
  const aligned = movingAfterAffine(fixed, moving, AFFINE);
  const f32 = makeVolume({ ...grid, components: 1, data: Float32Array.from(aligned.data) });
  const weights = createWeights(getSamConfig('tiny'), 4);
  try {
    // the flipped grid: the network grid reads it by a signed permutation, on the device
    const flipped = await embedBoth(moving, f32, f32, weights);
    // the same voxels on an oblique grid: read back and resampled on the CPU
    const th = 0.3;
    const oblique = makeVolume({
      ...f32,
      direction: [Math.cos(th), Math.sin(th), 0, -Math.sin(th), Math.cos(th), 0, 0, 0, 1] as Mat3,
    });
    const obl = await embedBoth(moving, f32, oblique, weights);
    t.diagnostic(
      `max |device voxels - host volume|: ${flipped.toExponential(2)} (flipped), ${obl.toExponential(2)} (oblique)`,
    );
    assert.equal(flipped, 0, 'flipped grid: the same numbers');
    assert.equal(obl, 0, 'oblique grid: the same numbers');
  } finally {
    disposeWeights(weights);
  }
});

test('WebGPU: the moving image warped through the affine on the device equals movingAfterAffine', async (t) => {
  const { fixed, moving } = await images();
  const grid = movingAfterAffineGrid(fixed);
  const host = movingAfterAffine(fixed, moving, AFFINE);
  try {
    if (!(await useWebgpu(t, false))) return;
    const dev = affineWarpOnDevice(moving, grid, AFFINE, -1024);
    assert.ok(dev, 'fits the device');
    const d = (await dev.data()) as Float32Array;
    dev.dispose();
    assert.equal(d.length, host.data.length);
    let off = 0;
    let worst = 0;
    let fill = 0;
    let fractional = 0;
    let differ = 0;
    for (let v = 0; v < d.length; v++) {
      const e = Math.abs(d[v] - host.data[v]);
      if (e > 1) off++;
      else worst = Math.max(worst, e);
      if (e > 0) differ++;
      if (host.data[v] === -1024) fill++;
      if (d[v] !== Math.round(d[v])) fractional++;
    }
    t.diagnostic(
      `${grid.size.join('x')} voxels: ${differ} differ, ${off} by > 1 HU, the rest by <= ${worst}; ${fill} at the fill value (host)`,
    );
    // float32 interpolation on the device: values within its reach of a .5 round apart
    assert.ok(differ <= d.length * 1e-3, `${differ} voxels differ`);
    // float32 positions on the device: a voxel within ~1e-4 mm of the moving image's faces may be
    // filled on one side and sampled on the other, and values at a rounding boundary differ by 1
    assert.ok(off <= d.length * 1e-4, `${off} voxels differ by more than 1 HU`);
    assert.equal(fractional, 0, 'rounded to the moving image integer type, as the host');
    // not vacuous: the affine moves voxels outside the moving image (the fill) and the image is not flat
    assert.ok(fill > 0 && fill < d.length / 2, `${fill} fill voxels`);
    // the host's rounding rule (Math.round: half up, also below zero), on exact halves: an int16 image
    // sampled half a voxel along i is the mean of two neighbours (odd sums: x.5 everywhere)
    const ints = makeVolume({
      size: [9, 4, 3],
      spacing: [1, 1, 1],
      origin: [0, 0, 0],
      // (even at even v, odd at odd v: every two neighbours along i sum to an odd number; both signs)
      data: Int16Array.from({ length: 108 }, (_, v) => (v % 2 ? 11 - 2 * (v % 13) : 6 * (v % 11) - 30)),
    });
    const half: Affine3x4 = [1, 0, 0, 0.5, 0, 1, 0, 0, 0, 0, 1, 0];
    const g = { ...ints, size: [8, 4, 3] as [number, number, number] };
    const hostHalf = warpWithAffine(ints, g, half, { fill: -1024 });
    const devHalf = affineWarpOnDevice(ints, g, half, -1024)!;
    const dh = (await devHalf.data()) as Float32Array;
    devHalf.dispose();
    let halves = 0;
    for (let v = 0; v < 96; v++) {
      const i = v % 8;
      const row = Math.floor(v / 8);
      if ((ints.data[9 * row + i] + ints.data[9 * row + i + 1]) % 2 !== 0) halves++;
    }
    assert.equal(halves, 96, 'every value an exact half');
    assert.deepEqual([...dh], [...hostHalf.data], 'exact halves rounded as the host rounds them');
  } finally {
    await initTfBackend({ backend: 'cpu', gradients: false });
  }
});
