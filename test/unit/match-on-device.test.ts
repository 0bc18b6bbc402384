// Embedding and matching that stay on the tfjs device (sam/device/): the network input made on the
// device equals the CPU resampling (RAS-flipped real CT, and the same anatomy stored with permuted
// axes); device embeddings (tiled) equal embedVolume's; device matching equals matchPoints (locations,
// scores, similarity map, cycle check) on a pair related by a known translation; and the same on
// WebGPU (Dawn on lavapipe here) against the CPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { EXAMPLE_CT, exampleCt2mm, tinyEngine } from './embed-fixtures.ts';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { useWebgpu } from './webgpu-fixture.ts';
import { getSamConfig } from '../../main/engine/sam/config.ts';
import { embedVolume, networkGrid, type EmbeddedVolume } from '../../main/engine/sam/embed-volume.ts';
import { matchPoints, type PointMatch } from '../../main/engine/sam/match.ts';
import { createWeights, disposeWeights } from '../../main/engine/sam/network.ts';
import { networkInputOnDevice } from '../../main/engine/sam/device/network-input.ts';
import {
  embedVolumeOnDevice,
  toDevice,
  toHost,
  type DeviceEmbedded,
} from '../../main/engine/sam/device/embed-on-device.ts';
import { matchPointsOnDevice } from '../../main/engine/sam/device/match-on-device.ts';
import { cropIndex } from '../../main/engine/volume/crop.ts';
import { indexToWorld, worldToIndex } from '../../main/engine/volume/geometry.ts';
import { normalizeForNetwork } from '../../main/engine/volume/intensity.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { resample } from '../../main/engine/volume/resample.ts';
import { makeVolume, type Mat3, type Vec3, type Volume } from '../../main/engine/volume/volume.ts';
import { createRng } from '../../main/engine/train/rng.ts';

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let n = 0; n < a.length; n++) m = Math.max(m, Math.abs(a[n] - b[n]));
  return m;
};

/** The same anatomy with its i and k axes swapped in storage (direction columns swapped to match). */
function swapIK(v: Volume): Volume {
  const [ni, nj, nk] = v.size;
  const data = new Float32Array(ni * nj * nk);
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++) data[k + nk * (j + nj * i)] = v.data[i + ni * (j + nj * k)];
  const d = v.direction;
  const direction = [d[2], d[1], d[0], d[5], d[4], d[3], d[8], d[7], d[6]] as Mat3;
  return makeVolume({
    size: [nk, nj, ni],
    spacing: [v.spacing[2], v.spacing[1], v.spacing[0]],
    origin: v.origin,
    direction,
    data,
    meta: v.meta,
  });
}

test('network input on the device equals the CPU resampling (RAS-flipped CT; permuted storage)', async (t) => {
  await initTfBackend({ backend: 'cpu', gradients: false });
  const ct = await readVolume(EXAMPLE_CT);
  assert.deepEqual(ct.direction, [-1, 0, 0, 0, -1, 0, 0, 0, 1], 'fixture: stored RAS-flipped');
  const grid = networkGrid(ct, 2);
  const cpu = normalizeForNetwork(resample(ct, grid, { fill: -1024, outputType: 'float32' })).data;
  const dev = networkInputOnDevice(ct, grid);
  assert.deepEqual(dev.shape, [grid.size[2], grid.size[1], grid.size[0]]);
  const d1 = maxDiff((await dev.data()) as Float32Array, cpu);
  dev.dispose();
  // the same world image stored with i and k swapped: the same network input on the same grid
  const swapped = networkInputOnDevice(swapIK(ct), grid);
  const d2 = maxDiff((await swapped.data()) as Float32Array, cpu);
  swapped.dispose();
  // an oblique direction takes the CPU path: identical by construction, checked for the shape only
  const th = 0.3;
  const oblique = {
    ...ct,
    direction: [Math.cos(th), Math.sin(th), 0, -Math.sin(th), Math.cos(th), 0, 0, 0, 1] as Mat3,
  };
  const og = networkGrid(oblique, 2);
  const o = networkInputOnDevice(oblique, og);
  assert.deepEqual(o.shape, [og.size[2], og.size[1], og.size[0]]);
  o.dispose();
  t.diagnostic(`max |device - CPU|: ${d1.toExponential(2)} (flipped), ${d2.toExponential(2)} (permuted), input units`);
  // the network input spans about -50..205: 1e-3 is float32 rounding of the interpolation
  assert.ok(d1 < 1e-3, `flipped: ${d1}`);
  assert.ok(d2 < 1e-3, `permuted: ${d2}`);
  // not vacuous: the grid really resamples (3 mm -> 2 mm) and the fill value appears
  assert.notDeepEqual(grid.size, ct.size);
});

interface Pair {
  a: Volume;
  b: Volume;
  ha: EmbeddedVolume;
  hb: EmbeddedVolume;
}

const SHIFT: Vec3 = [6, -10, 14];
let pair: Promise<Pair> | undefined;

/** Two overlapping blocks of the 2 mm CT, the query moved by SHIFT (as match-translation.test.ts). */
function getPair(): Promise<Pair> {
  pair ??= (async () => {
    const ct = await exampleCt2mm();
    const a = cropIndex(ct, [24, 0, 0], [152, 112, 112]);
    const b0 = cropIndex(ct, [24, 0, 48], [152, 112, 112]);
    const b = { ...b0, origin: b0.origin.map((v, i) => v + SHIFT[i]) as Vec3 };
    const engine = await tinyEngine(3);
    return { a, b, ha: await embedVolume(a, engine), hb: await embedVolume(b, engine) };
  })();
  return pair;
}

function bodyPoints(p: Pair, n: number, seed: number): Vec3[] {
  const rng = createRng(seed);
  const out: Vec3[] = [];
  while (out.length < n) {
    const ijk: Vec3 = [rng.int(4, 60), rng.int(4, 52), rng.int(35, 55)];
    const w = indexToWorld(p.ha.local, ijk);
    const i = worldToIndex(p.a, w).map(Math.round);
    if (p.a.data[i[0] + p.a.size[0] * (i[1] + p.a.size[1] * i[2])] > -200)
      out.push(w.map((x, a) => x + 0.7 * (rng.next() - 0.5) * (a + 1)) as Vec3);
  }
  return out;
}

/** Device matches equal the CPU matcher's: same voxel, scores within float32 rounding. */
function compareMatches(cpu: PointMatch[], dev: PointMatch[], what: string): { same: number; scoreDiff: number } {
  assert.equal(dev.length, cpu.length);
  let same = 0;
  let scoreDiff = 0;
  cpu.forEach((c, n) => {
    const d = dev[n];
    const dist = Math.hypot(...(c.location.map((x, a) => x - d.location[a]) as Vec3));
    scoreDiff = Math.max(scoreDiff, Math.abs(c.score - d.score), Math.abs(c.globalScore - d.globalScore));
    if (dist < 1e-3) same++;
    // a different voxel only where two scores tie within rounding
    else assert.ok(Math.abs(c.score - d.score) < 1e-5, `${what} point ${n}: ${c.location} vs ${d.location}`);
    assert.equal(d.inTemplate, c.inTemplate);
    assert.equal(d.accepted, c.accepted, `${what} point ${n}: accepted`);
  });
  assert.ok(scoreDiff < 1e-5, `${what}: scores differ by ${scoreDiff}`);
  assert.ok(same >= cpu.length - 1, `${what}: ${cpu.length - same} of ${cpu.length} points elsewhere`);
  return { same, scoreDiff };
}

test('device embedding (tiled) equals embedVolume; device matching equals matchPoints (tfjs cpu)', async (t) => {
  const p = await getPair();
  const config = getSamConfig('tiny');
  const weights = createWeights(config, 3);
  const tiles: number[] = [];
  const da = await embedVolumeOnDevice(
    p.a,
    { config, weights },
    { tile: [48, 64, 64], onProgress: (q) => tiles.push(q.tiles) },
  );
  const db = await embedVolumeOnDevice(p.b, { config, weights });
  try {
    assert.ok(tiles[0] > 1, `${tiles[0]} tiles`);
    const ha = await toHost(da);
    for (const k of ['global', 'local'] as const) {
      assert.deepEqual(ha[k].size, p.ha[k].size);
      assert.deepEqual(ha[k].origin, p.ha[k].origin);
      assert.deepEqual(ha[k].spacing, p.ha[k].spacing);
      const d = maxDiff(ha[k].data as Float32Array, p.ha[k].data as Float32Array);
      t.diagnostic(`${k}: max |device (${tiles[0]} tiles) - embedVolume| = ${d.toExponential(2)}`);
      // the device interpolates the input in float32 (the CPU resampler in float64): ~1e-5 differences
      assert.ok(d < 1e-4, `${k} differs by ${d}`);
    }
    // the matcher alone, on the very embeddings the CPU matcher reads
    const ua = toDevice(p.ha);
    const ub = toDevice(p.hb);
    const pts = bodyPoints(p, 60, 2);
    for (const opts of [{ topK: 5 }, { topK: Infinity }, { topK: 3, cycleCheck: true, cycleThresholdMm: 6 }]) {
      const cpu = await matchPoints(p.ha, p.hb, pts, { ...opts, returnMap: 7 });
      const dev = await matchPointsOnDevice(ua, ub, pts, { ...opts, returnMap: 7, maxBlockBytes: 4e6 });
      const r = compareMatches(cpu, dev, JSON.stringify(opts));
      t.diagnostic(
        `${JSON.stringify(opts)}: ${r.same}/${pts.length} same location, max score diff ${r.scoreDiff.toExponential(2)}`,
      );
      const dm = maxDiff(dev[7].map!.data, cpu[7].map!.data);
      assert.ok(dm < 1e-5, `map differs by ${dm}`);
      if (opts.cycleCheck) {
        cpu.forEach((c, n) => assert.ok(Math.abs(c.cycleErrorMm! - dev[n].cycleErrorMm!) < 1e-3));
        const acc = dev.filter((m) => m.accepted).length;
        t.diagnostic(`cycle check: ${acc}/${pts.length} accepted on both`);
      }
    }
    ua.dispose();
    ub.dispose();
    // on the device's own embeddings: the translation is found (the tiny random network is only good enough at the exhaustive search)
    const ex = await matchPointsOnDevice(da, db, pts, { topK: Infinity });
    const err = ex.map((m, n) => Math.max(...m.location.map((x, a) => Math.abs(x - pts[n][a] - SHIFT[a]))));
    const within = err.filter((e) => e <= 4).length;
    t.diagnostic(`exhaustive: ${within}/${pts.length} within one local voxel (4 mm) of the truth`);
    assert.ok(within >= 0.8 * pts.length);
    await assert.rejects(
      () => matchPointsOnDevice(da, { ...db, local: { ...db.local, components: 7 } }, pts),
      /channel counts/,
    );
    // a device whose buffers cannot hold a whole level: a clear refusal naming the volume, not garbage
    const levelBytes = da.local.data.size * 4;
    await assert.rejects(
      () => embedVolumeOnDevice(p.a, { config, weights }, { maxTensorBytes: levelBytes - 4 }),
      (e: Error) =>
        /local embedding \(\d+x\d+x\d+ x 8\) needs [\d.]+ MB in one buffer; this device allows/.test(e.message),
    );
  } finally {
    da.dispose();
    db.dispose();
    disposeWeights(weights);
  }
});

test('WebGPU: device embedding and matching equal the CPU engine and matcher', async (t) => {
  const p = await getPair();
  const config = getSamConfig('tiny');
  const weights = createWeights(config, 3);
  let da: DeviceEmbedded | undefined;
  let db: DeviceEmbedded | undefined;
  try {
    if (!(await useWebgpu(t, false))) return;
    const gw = tf.tidy(() =>
      Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, tf.tensor(v.dataSync(), v.shape)])),
    );
    try {
      const t0 = performance.now();
      da = await embedVolumeOnDevice(p.a, { config, weights: gw });
      db = await embedVolumeOnDevice(p.b, { config, weights: gw });
      const ha = await toHost(da);
      for (const k of ['global', 'local'] as const) {
        const d = maxDiff(ha[k].data as Float32Array, p.ha[k].data as Float32Array);
        t.diagnostic(`${k}: max |WebGPU - CPU| = ${d.toExponential(2)}`);
        assert.ok(d < 1e-4, `${k} differs by ${d}`);
      }
      const pts = bodyPoints(p, 40, 4);
      const t1 = performance.now();
      const dev = await matchPointsOnDevice(da, db, pts, { topK: 5 });
      const t2 = performance.now();
      const cpu = await matchPoints(p.ha, p.hb, pts, { topK: 5 });
      // WebGPU's float32 sums differ from the CPU's by more than the CPU backend's: 1e-4 on scores
      let same = 0;
      cpu.forEach((c, n) => {
        const d = dev[n];
        if (Math.hypot(...(c.location.map((x, a) => x - d.location[a]) as Vec3)) < 1e-2) same++;
        assert.ok(Math.abs(c.score - d.score) < 1e-4, `point ${n}: score ${d.score} vs ${c.score}`);
      });
      t.diagnostic(
        `embed 2 volumes ${((t1 - t0) / 1000).toFixed(1)} s, match ${pts.length} points ${((t2 - t1) / 1000).toFixed(2)} s ` +
          `(lavapipe); ${same}/${pts.length} at the CPU's location`,
      );
      assert.ok(same >= pts.length - 2);
      // the windows searched and the matches refined in place (window-argmax-wgsl.ts, refine-wgsl.ts:
      // the default here) = gathered, read back and refined on the host (float64), with the default
      // 20 candidates and the cycle check (its backward matching too), 300 points
      const many = bodyPoints(p, 300, 9);
      const opts = { cycleCheck: true, cycleThresholdMm: 6 };
      const inPlace = await matchPointsOnDevice(da, db, many, opts);
      const gathered = await matchPointsOnDevice(da, db, many, { ...opts, windowSearch: 'gather' });
      let identical = 0;
      let far = 0;
      let sameAccepted = 0;
      inPlace.forEach((m, n) => {
        const g = gathered[n];
        assert.ok(Math.abs(m.score - g.score) < 1e-5, `point ${n}: score ${m.score} vs ${g.score}`);
        const d = Math.hypot(...(m.location.map((x, a) => x - g.location[a]) as Vec3));
        if (d === 0) identical++;
        // a float32 tie can send the search another way: by at most a step, rarely
        if (d > db!.local.spacing[0] / 8) far++;
        if (m.accepted === g.accepted) sameAccepted++;
      });
      t.diagnostic(
        `in place vs gathered + host refinement: ${identical}/${many.length} identical locations, ${far} more than ` +
          `1/8 voxel apart, ${sameAccepted} with the same cycle-check verdict (${inPlace.filter((m) => m.accepted).length} accepted)`,
      );
      assert.ok(identical >= many.length * 0.97, `only ${identical} identical`);
      assert.ok(far <= 2, `${far} refined more than 1/8 voxel apart`);
      assert.ok(sameAccepted >= many.length - 2, `${many.length - sameAccepted} verdicts differ`);
    } finally {
      da?.dispose();
      db?.dispose();
      tf.dispose(Object.values(gw));
    }
  } finally {
    disposeWeights(weights);
    await initTfBackend({ backend: 'cpu', gradients: false });
  }
});
