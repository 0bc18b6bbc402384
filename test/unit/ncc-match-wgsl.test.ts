/**
 * NCC template matching on WebGPU (register/device/ncc-on-device.ts, ncc-match-wgsl.ts) against the
 * host's nccMatch (bench/ncc-match.ts, float64) on a pair made from the real TotalSegmentator abdomen
 * CT by a known rotation, scale and shift, the moving image resampled onto an oblique grid (its
 * world-to-index map has off-diagonal terms, so a swapped axis or sign would show): the refinement's
 * options and the coarse stage's wider search, starts a few mm off the truth, one start far outside
 * the moving image (no window position: score -Infinity on both) and one not finite (not searched).
 * Then a moving image that lives only on the device (deviceOnlyVolume) gives the same answers and
 * refuses to be read on the host, and a template too large for the workgroup's memory is matched on
 * the host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { useWebgpu } from './webgpu-fixture.ts';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { rigidExamplePair } from './ct-pair-fixtures.ts';
import { rotation } from './field-fixtures.ts';
import { nccMatch, type NccMatch, type NccOptions } from '../../main/engine/bench/ncc-match.ts';
import { NccOnDevice } from '../../main/engine/register/device/ncc-on-device.ts';
import { DeviceImages, deviceOnlyVolume } from '../../main/engine/compute/device-images.ts';
import { gridPointsInMask } from '../../main/engine/register/grid-points.ts';
import { gridWithSpacing, resample } from '../../main/engine/volume/resample.ts';
import { indexToWorld } from '../../main/engine/volume/geometry.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import type { Vec3, Volume } from '../../main/engine/volume/volume.ts';
import { rng } from '../helpers.ts';

async function pairOf() {
  const pair = await rigidExamplePair();
  // the moving image on an oblique, anisotropic grid, as float32 (what both matchers read)
  // (its central three quarters per axis: the search levels span the oblique box's LPS bounding box,
  // which must fit lavapipe's 128 MB buffers)
  const full = gridWithSpacing(pair.moving, [2.5, 3, 3.5], rotation([1, 2, 3], (20 * Math.PI) / 180));
  const size = full.size.map((n) => Math.round(0.75 * n)) as Vec3;
  const grid = { ...full, size, origin: indexToWorld(full, full.size.map((n, a) => (n - size[a]) / 2) as Vec3) };
  const moving = resample(pair.moving, grid, { fill: -1024, outputType: 'float32' });
  return { fixed: pair.fixed, moving, truth: pair.truth };
}

const dist = (a: Vec3, b: Vec3) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

/**
 * The device's answers against the host's: the same verdict where the host has no score, and for
 * the rest the same location (0.01 mm) and score (1e-4) but for a few points: float32 against float64
 * (positions that score equal to rounding may climb apart), and the levels' resampling, which
 * samples within 1e-3 voxel of the moving image's faces where the host's fills (resample-on-device.ts).
 */
function compare(label: string, dev: NccMatch[], host: NccMatch[], t: { diagnostic: (m: string) => void }) {
  assert.equal(dev.length, host.length);
  const d: number[] = [];
  let same = 0;
  let worstScore = 0;
  dev.forEach((m, n) => {
    const h = host[n];
    if (!Number.isFinite(h.score)) {
      // not searched (NaN) or no window position (-Infinity): the same verdict
      assert.ok(Object.is(m.score, h.score), `${label} point ${n}: score ${m.score}, host ${h.score}`);
      if (Number.isNaN(h.score)) assert.ok(m.location.every(Number.isNaN), `${label} point ${n}: not searched`);
      return;
    }
    const e = dist(m.location, h.location);
    d.push(e);
    worstScore = Math.max(worstScore, Math.abs(m.score - h.score));
    if (e < 0.01 && Math.abs(m.score - h.score) < 1e-4) same++;
  });
  d.sort((a, b) => a - b);
  const share = same / d.length;
  t.diagnostic(
    `${label}: ${d.length} points, ${(100 * share).toFixed(1)} % the same (0.01 mm, 1e-4); location ` +
      `vs host median ${d[d.length >> 1].toExponential(1)} mm, p95 ${d[Math.floor(0.95 * d.length)].toFixed(3)}, ` +
      `max ${d[d.length - 1].toFixed(2)} mm; largest score difference ${worstScore.toFixed(4)}`,
  );
  assert.ok(share >= 0.95, `${label}: ${(100 * share).toFixed(1)} % the same`);
  assert.ok(d[Math.floor(0.95 * d.length)] < 0.05, `${label}: p95 difference ${d[Math.floor(0.95 * d.length)]} mm`);
}

test('WebGPU NCC matching = the host nccMatch on a real CT pair with an oblique moving grid', async (t) => {
  if (!(await useWebgpu(t, false))) return;
  const before = tf.memory().numTensors;
  const dev = new NccOnDevice();
  try {
    const pair = await pairOf();
    const points = gridPointsInMask(bodyMask(pair.fixed), { spacingMm: 21, marginMm: 6 }).slice(0, 180);
    assert.ok(points.length >= 120, `${points.length} points`);
    const r = rng(3);
    // starts 1-5 mm off the truth in a random direction; one far outside, one not finite
    const initial = points.map((p) => {
      const q = pair.truth(p);
      const v: Vec3 = [r() - 0.5, r() - 0.5, r() - 0.5];
      const s = (1 + 4 * r()) / Math.hypot(...v);
      return q.map((x, a) => x + s * v[a]) as Vec3;
    });
    initial[5] = [1e4, 1e4, 1e4];
    initial[9] = [NaN, 0, 0];
    const refine: NccOptions = {
      templateRadiusMm: 12,
      searchRadiusMm: 8,
      coarseSpacingMm: 4,
      fineSpacingMm: 2,
      initial,
    };
    const host = nccMatch(pair.fixed, pair.moving, points, refine);
    assert.equal(host[5].score, -Infinity);
    const onDevice = await dev.match(pair.fixed, pair.moving, points, refine);
    compare('refinement (8 mm)', onDevice, host, t);
    // as right as the host's: the share within 2 mm of the truth (points outside the cropped moving
    // image cannot be found by either)
    const closeShare = (ms: NccMatch[]) => {
      const err = ms.flatMap((m, n) => (Number.isFinite(m.score) ? [dist(m.location, pair.truth(points[n]))] : []));
      return err.filter((e) => e < 2).length / err.length;
    };
    const [cd, ch] = [closeShare(onDevice), closeShare(host)];
    t.diagnostic(`within 2 mm of the truth: device ${(100 * cd).toFixed(1)} %, host ${(100 * ch).toFixed(1)} %`);
    assert.ok(cd > 0.4 && Math.abs(cd - ch) < 0.02, `within 2 mm: device ${cd}, host ${ch}`);
    // SAM-coarse's search: +-16 mm
    const wide = { ...refine, searchRadiusMm: 16 };
    compare(
      'coarse stage (16 mm)',
      await dev.match(pair.fixed, pair.moving, points, wide),
      nccMatch(pair.fixed, pair.moving, points, wide),
      t,
    );
    assert.equal(dev.hostCalls, 0);

    // a moving image on the device only: the same answers; its voxels cannot be read on the host
    const images = new DeviceImages();
    try {
      const only = deviceOnlyVolume(
        pair.moving,
        tf.tensor1d(pair.moving.data as Float32Array),
        images,
        'the test image',
      );
      assert.throws(() => (only as Volume).data, /the test image exists only on the GPU/);
      const onlyDev = new NccOnDevice(images);
      try {
        const a = await onlyDev.match(pair.fixed, only, points.slice(0, 40), {
          ...refine,
          initial: initial.slice(0, 40),
        });
        a.forEach((m, n) => {
          assert.ok(Object.is(m.score, onDevice[n].score) || Math.abs(m.score - onDevice[n].score) === 0, `point ${n}`);
          assert.deepEqual(m.location, onDevice[n].location);
        });
      } finally {
        onlyDev.dispose();
      }
    } finally {
      images.dispose();
    }

    // a 16 mm template at 2 mm (17^3 voxels) does not fit the workgroup: matched on the host
    const big = {
      templateRadiusMm: 16,
      searchRadiusMm: 4,
      coarseSpacingMm: 6,
      fineSpacingMm: 2,
      initial: initial.slice(0, 6),
    };
    const b = await dev.match(pair.fixed, pair.moving, points.slice(0, 6), big);
    assert.equal(dev.hostCalls, 1);
    assert.deepEqual(b, nccMatch(pair.fixed, pair.moving, points.slice(0, 6), big));
  } finally {
    dev.dispose();
    assert.equal(tf.memory().numTensors, before, 'no tensor left on the device');
    await initTfBackend({ backend: 'cpu' });
  }
});
