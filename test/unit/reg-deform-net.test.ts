/**
 * The SAM-deform network (register/deform-net/): shapes, the tfjs spatial transformer against
 * field/warp.ts on real CT, scaling and squaring against repeated composition (field/compose.ts),
 * every loss against the CPU implementations or a float64 reference, the network's gradient against
 * finite differences, and the network file's round trip. `sam train-reg` and the cascade with
 * --deform-net: test/unit/reg-deform-net-cli.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { getDeformNetConfig } from '../../main/engine/register/deform-net/config.ts';
import { integrateVelocity, warp, correlationVolume } from '../../main/engine/register/deform-net/layers.ts';
import { diffusion, featureDissimilarity, lncc, softDice } from '../../main/engine/register/deform-net/losses.ts';
import {
  createDeformWeights,
  deformForward,
  type DeformNetWeights,
} from '../../main/engine/register/deform-net/network.ts';
import { loadDeformNet, saveDeformNet } from '../../main/engine/register/deform-net/weights-file.ts';
import { voxelToWorld } from '../../main/engine/register/deform-net/inputs.ts';
import { createDeformOnnxRunner } from '../../main/engine/register/deform-net/onnx.ts';
import { fixedWindows, lnccLoss } from '../../main/engine/register/deform/local-ncc.ts';
import { deformLoss } from '../../main/engine/register/deform/deform-loss.ts';
import { warpVolume } from '../../main/engine/register/field/warp.ts';
import { composeFields } from '../../main/engine/register/field/compose.ts';
import type { Field } from '../../main/engine/register/field/field.ts';
import { worldToIndexMatrix, type Geometry } from '../../main/engine/volume/geometry.ts';
import { gridWithSpacing, resample } from '../../main/engine/volume/resample.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { makeVolume, type Vec3 } from '../../main/engine/volume/volume.ts';
import { dataPath, tempDir } from '../helpers.ts';

await initTfBackend({ backend: 'cpu' });

const LUNG = dataPath('elastix/Testing/Data/3DCT_lung_baseline_small.mha');

/** A smooth displacement in voxel units (channels di, dj, dk), NDHWC flat, amplitude `amp` voxels. */
function smoothField(size: Vec3, amp: number, phase = 0): Float32Array {
  const [ni, nj, nk] = size;
  const u = new Float32Array(ni * nj * nk * 3);
  for (let k = 0, q = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, q += 3) {
        u[q] = amp * Math.sin((2 * Math.PI * j) / nj + phase);
        u[q + 1] = amp * Math.cos((2 * Math.PI * k) / nk + 0.5 * phase);
        u[q + 2] = 0.7 * amp * Math.sin((2 * Math.PI * i) / ni + 1 + phase);
      }
  return u;
}

const t5 = (data: Float32Array, size: Vec3, c: number) => tf.tensor5d(data, [1, size[2], size[1], size[0], c]);

test('forward: shapes NDHWC, an untrained network starts near the identity', async () => {
  const config = getDeformNetConfig('small');
  const w = createDeformWeights(config, 1);
  const size: Vec3 = [16, 12, 8];
  const r = (c: number) => tf.randomNormal([1, 8, 12, 16, c], 0, 1, 'float32', 3) as tf.Tensor5D;
  const out = deformForward(w, { fixed: r(1), moving: r(1), correlation: r(27) }, config);
  assert.deepEqual(out.velocity.shape, [1, size[2], size[1], size[0], 3]);
  assert.deepEqual(out.displacement.shape, [1, size[2], size[1], size[0], 3]);
  const max = (await tf.max(tf.abs(out.displacement)).data())[0];
  assert.ok(max < 1e-2, `initial displacement ${max} voxels`);
  assert.throws(() =>
    deformForward(w, { fixed: r(1), moving: r(1), correlation: tf.zeros([1, 8, 12, 16, 8]) as tf.Tensor5D }, config),
  );
});

test('spatial transformer = field/warp.ts on real CT (trilinear, inside the image)', async () => {
  const ct = await readVolume(LUNG);
  const G = gridWithSpacing(ct, [4, 4, 4]);
  const img = resample(ct, G, { fill: -1024, outputType: 'float32' });
  const u = smoothField(G.size as Vec3, 2.5);
  const field = makeVolume({ ...G, components: 3, data: voxelToWorld(G, u), meta: {} });
  const ref = warpVolume(img, field, { fill: NaN, outputType: 'float32' }).data as Float32Array;
  const got = await warp(t5(img.data as Float32Array, G.size as Vec3, 1), t5(u, G.size as Vec3, 3)).data();
  let n = 0;
  let maxErr = 0;
  for (let v = 0; v < ref.length; v++)
    if (Number.isFinite(ref[v])) {
      n++;
      maxErr = Math.max(maxErr, Math.abs(ref[v] - got[v]));
    }
  assert.ok(n > 0.5 * ref.length, `${n} of ${ref.length} voxels inside`);
  console.log(`tfjs warp vs warp.ts: max difference ${maxErr.toExponential(2)} HU over ${n} voxels`);
  assert.ok(maxErr < 0.05, `max |tfjs warp - warp.ts| ${maxErr} HU`);
});

test('scaling and squaring = 7 compositions of v / 128 with itself (field/compose.ts)', async () => {
  const size: Vec3 = [12, 10, 8];
  const G: Geometry = { size, spacing: [4, 4, 4], origin: [0, 0, 0], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
  const v = smoothField(size, 3);
  const got = (await integrateVelocity(t5(v, size, 3), 7).data()) as Float32Array;
  // reference in mm: u <- u o (id + u) composed, border sampling (as the layer's clamped sampling)
  let u: Field = makeVolume({ ...G, components: 3, data: v.map((x) => (4 * x) / 128), meta: {} });
  for (let s = 0; s < 7; s++) u = composeFields({ first: u, second: u, outside: 'border' });
  let maxErr = 0;
  let maxU = 0;
  for (let q = 0; q < got.length; q++) {
    maxErr = Math.max(maxErr, Math.abs(4 * got[q] - u.data[q]));
    maxU = Math.max(maxU, Math.abs(u.data[q]));
  }
  console.log(
    `scaling and squaring vs composition: max |u| ${maxU.toFixed(2)} mm, max difference ${maxErr.toExponential(2)} mm`,
  );
  assert.ok(maxU > 5, `the field moves (${maxU} mm)`);
  assert.ok(maxErr < 1e-3, `max difference ${maxErr} mm`);
});

test('losses = the CPU implementations / float64 references', async () => {
  const ct = await readVolume(LUNG);
  const G = gridWithSpacing(ct, [4, 4, 4]);
  const size = G.size as Vec3;
  const N = size[0] * size[1] * size[2];
  const I = resample(ct, G, { fill: -1024, outputType: 'float32' }).data as Float32Array;
  for (let v = 0; v < N; v++) I[v] = Math.max(-1000, Math.min(1000, I[v])) / 1000;
  const J = new Float32Array(N).map((_, v) => I[(v + 7) % N] * 0.8 + 0.05 * Math.sin(v));
  const mask = new Float32Array(N).map((_, v) => (I[v] > -0.5 ? 1 : 0));
  // LNCC with window radius 2
  const ref = lnccLoss(fixedWindows(I, size, 2, mask), J);
  const got = (await lncc(t5(I, size, 1), t5(J, size, 1), 2, t5(mask, size, 1)).data())[0];
  assert.ok(Math.abs(got - ref) < 1e-4 * Math.abs(ref) + 1e-6, `LNCC ${got} vs ${ref}`);
  // diffusion = deform-loss.ts's smoothness term (u in mm there, voxel units here)
  const u = smoothField(size, 1.5);
  const uMm = u.map((x) => 4 * x);
  const problem = {
    size,
    spacing: [4, 4, 4],
    base: new Float32Array(3 * N),
    windows: fixedWindows(I, size, 1),
    moving: { data: I, size, channels: 1, toIndex: worldToIndexMatrix(G) },
    alpha: 5,
  };
  const refSmooth = deformLoss(problem, uMm).smoothness;
  const gotSmooth = (await diffusion(t5(u, size, 3), 5).data())[0];
  assert.ok(Math.abs(gotSmooth - refSmooth) < 1e-4 * refSmooth, `diffusion ${gotSmooth} vs ${refSmooth}`);
  // feature dissimilarity and soft Dice against float64 loops
  const C = 5;
  const f = new Float32Array(N * C).map((_, q) => Math.sin(q * 0.37));
  const g = new Float32Array(N * C).map((_, q) => Math.cos(q * 0.11));
  let cs = 0;
  let ms = 0;
  for (let v = 0; v < N; v++) {
    let d = 0;
    let a = 0;
    let b = 0;
    for (let c = 0; c < C; c++) {
      d += f[v * C + c] * g[v * C + c];
      a += f[v * C + c] ** 2;
      b += g[v * C + c] ** 2;
    }
    cs += (mask[v] * d) / Math.sqrt(a * b);
    ms += mask[v];
  }
  const gotF = (await featureDissimilarity(t5(f, size, C), t5(g, size, C), t5(mask, size, 1)).data())[0];
  assert.ok(Math.abs(gotF - (1 - cs / ms)) < 1e-4, `feature ${gotF} vs ${1 - cs / ms}`);
  const L = 3;
  const A = new Float32Array(N * L).map((_, q) => ((q * 7) % 5 === 0 ? 1 : 0));
  const B = new Float32Array(N * L).map((_, q) => Math.abs(Math.sin(q)));
  let dsum = 0;
  for (let l = 0; l < L; l++) {
    let ab = 0;
    let sa = 0;
    let sb = 0;
    for (let v = 0; v < N; v++) {
      ab += A[v * L + l] * B[v * L + l];
      sa += A[v * L + l];
      sb += B[v * L + l];
    }
    dsum += (2 * ab) / (sa + sb);
  }
  const gotD = (await softDice(t5(A, size, L), t5(B, size, L)).data())[0];
  assert.ok(Math.abs(gotD - (1 - dsum / L)) < 1e-4, `Dice ${gotD} vs ${1 - dsum / L}`);
  // the correlation volume: channel 13 (no displacement) is the dot product itself
  const corr = correlationVolume(f, g, size, C, 1);
  let d13 = 0;
  for (let c = 0; c < C; c++) d13 += f[40 * C + c] * g[40 * C + c];
  assert.ok(Math.abs(corr[40 * 27 + 13] - d13) < 1e-5);
});

test('gradient of the training loss = finite differences (tiny network, tiny volume)', async () => {
  const config = getDeformNetConfig('tiny');
  const w = createDeformWeights(config, 2);
  // a flow layer large enough that the displacement is about a voxel
  w['flow.w'].dispose();
  w['flow.w'] = tf.randomNormal(w['flow.w'].shape, 0, 0.3, 'float32', 9);
  const size: Vec3 = [8, 8, 8];
  const N = 512;
  const img = new Float32Array(N).map((_, v) => Math.sin(v * 0.3) * Math.cos(v * 0.07));
  const mov = new Float32Array(N).map((_, v) => Math.sin(v * 0.3 + 0.4) * Math.cos(v * 0.07));
  const corr = new Float32Array(N * 27).map((_, q) => Math.sin(q * 0.013));
  const input = { fixed: t5(img, size, 1), moving: t5(mov, size, 1), correlation: t5(corr, size, 27) };
  const names = Object.keys(w);
  const loss = (ws: DeformNetWeights) =>
    tf.tidy(() => {
      const o = deformForward(ws, input, config);
      return tf.add(
        lncc(input.fixed, warp(input.moving, o.displacement), 1),
        diffusion(o.displacement, 0.5),
      ) as tf.Scalar;
    });
  const name = 'flow.w';
  const g = tf.grad((x: tf.Tensor) => loss({ ...w, [name]: x }))(w[name]);
  const gv = await g.data();
  const base = await w[name].data();
  // the four entries with the largest gradient
  const order = [...gv.keys()].sort((a, b) => Math.abs(gv[b]) - Math.abs(gv[a])).slice(0, 4);
  for (const q of order) {
    const h = 2e-3;
    const at = (d: number) => {
      const v = Float32Array.from(base);
      v[q] += d;
      const t = tf.tensor(v, w[name].shape);
      const l = loss({ ...w, [name]: t }).dataSync()[0];
      t.dispose();
      return l;
    };
    const fd = (at(h) - at(-h)) / (2 * h);
    console.log(`flow.w[${q}]: analytic ${gv[q].toExponential(4)}, finite difference ${fd.toExponential(4)}`);
    assert.ok(
      Math.abs(fd - gv[q]) < 0.05 * Math.abs(gv[q]) + 1e-4,
      `entry ${q}: analytic ${gv[q]}, finite difference ${fd}`,
    );
  }
  // and a weight of the first layer (through the whole U-Net)
  const g2 = (await tf
    .grad((x: tf.Tensor) => loss({ ...w, 'stem.w': x }))(w['stem.w'])
    .data()) as Float32Array;
  assert.ok(
    g2.some((x) => x !== 0),
    'gradient reaches the first layer',
  );
  for (const t of names) w[t].dispose();
});

test('network file: round trip, and a corrupt file is refused with the file named', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const config = getDeformNetConfig('tiny');
    const w = createDeformWeights(config, 4);
    const p = join(dir, 'net.samw');
    await saveDeformNet(p, config, w, { note: 'test' });
    const r = loadDeformNet(p);
    assert.deepEqual(r.config, config);
    assert.equal(r.meta.note, 'test');
    for (const [n, t] of Object.entries(w)) assert.deepEqual(await r.weights[n].data(), await t.data(), n);
    const bytes = readFileSync(p);
    bytes[bytes.length - 3] ^= 0xff;
    writeFileSync(join(dir, 'bad.samw'), bytes);
    assert.throws(() => loadDeformNet(join(dir, 'bad.samw')), /bad\.samw.*CRC-32/);
  } finally {
    cleanup();
  }
});

test('ONNX Runtime velocity = tfjs velocity (small configuration, same weights)', async () => {
  const config = getDeformNetConfig('small');
  const w = createDeformWeights(config, 5);
  w['flow.w'].dispose();
  w['flow.w'] = tf.randomNormal(w['flow.w'].shape, 0, 0.1, 'float32', 2);
  const size: Vec3 = [16, 12, 8];
  const N = size[0] * size[1] * size[2];
  const x = new Float32Array(N * 29).map((_, q) => Math.sin(q * 0.173) + 0.3 * Math.cos(q * 0.011));
  const all = t5(x, size, 29);
  const input = {
    fixed: tf.slice(all, [0, 0, 0, 0, 0], [-1, -1, -1, -1, 1]) as tf.Tensor5D,
    moving: tf.slice(all, [0, 0, 0, 0, 1], [-1, -1, -1, -1, 1]) as tf.Tensor5D,
    correlation: tf.slice(all, [0, 0, 0, 0, 2], [-1, -1, -1, -1, 27]) as tf.Tensor5D,
  };
  const ref = await deformForward(w, input, config).velocity.data();
  const values = Object.fromEntries(Object.entries(w).map(([k, t]) => [k, t.dataSync() as Float32Array]));
  const got = await (await createDeformOnnxRunner(config, values))(x, size);
  let maxErr = 0;
  let maxV = 0;
  for (let q = 0; q < ref.length; q++) {
    maxErr = Math.max(maxErr, Math.abs(ref[q] - got[q]));
    maxV = Math.max(maxV, Math.abs(ref[q]));
  }
  console.log(`ONNX vs tfjs velocity: max |v| ${maxV.toFixed(3)}, max difference ${maxErr.toExponential(2)}`);
  assert.equal(got.length, ref.length);
  assert.ok(maxV > 0.01 && maxErr < 1e-4 * Math.max(1, maxV), `max difference ${maxErr}`);
});
