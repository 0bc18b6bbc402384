// SAM embedding network: configurations, output geometry, normalisation, initialisation,
// gradients (finite differences), translation and mirror equivariance, cost model, backend choice.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import {
  getSamConfig,
  levelStrides,
  outputStrides,
  validateSamConfig,
  SAM_CONFIG_NAMES,
  type SamConfig,
  type Vec3,
} from '../../main/engine/sam/config.ts';
import {
  createWeights,
  disposeWeights,
  embeddingVoxelCentre,
  forward,
  outputGeometry,
  weightSpecs,
  type SamWeights,
} from '../../main/engine/sam/network.ts';
import { forwardCost, formatCost } from '../../main/engine/sam/flops.ts';

before(async () => {
  const r = await initTfBackend({ backend: 'cpu' });
  assert.equal(r.backend, 'cpu');
  assert.ok(r.gradients, r.gradientsReason);
});

const tiny = getSamConfig('tiny');
/** A reproducible normalised-CT-like input in [-50, 150]. */
const input = (shape: Vec3, seed = 7) => tf.randomUniform([1, ...shape, 1], -50, 150, 'float32', seed) as tf.Tensor5D;

test('named configurations validate and share the official level strides', () => {
  for (const name of SAM_CONFIG_NAMES) {
    const c = getSamConfig(name);
    validateSamConfig(c);
    assert.deepEqual(levelStrides(c), [
      [2, 2, 2],
      [2, 4, 4],
      [2, 8, 8],
      [4, 16, 16],
    ]);
    assert.deepEqual(outputStrides(c), { local: [2, 2, 2], global: [4, 16, 16], total: [4, 16, 16] });
  }
  assert.equal(getSamConfig('paper').embedDim, 128);
  assert.equal(getSamConfig('small').embedDim, 128);
  assert.throws(() => getSamConfig('huge'), /SAM configuration 'huge': unknown/);
});

test('validation names the configuration and the problem', () => {
  const bad = (edit: (c: SamConfig) => void, re: RegExp) => {
    const c = getSamConfig('small');
    edit(c);
    assert.throws(() => validateSamConfig(c), re);
  };
  bad((c) => (c.stages[2].kernel = [2, 3, 3]), /'small'.*stages\[2\]\.kernel.*odd/);
  bad((c) => (c.stem.kernel = [3, 6, 6]), /stem\.kernel minus stem\.stride/);
  bad((c) => (c.local.out[1].channels = 64), /local\.out must end with embedDim \(128\)/);
  bad((c) => (c.stages[1].down = [1, 3, 3]), /powers of two/);
  bad((c) => (c.local.levels = 5), /exceeds the number of stages/);
  bad((c) => (c.local.widths = [16, 32]), /one width per local level/);
});

test('tiny: output shapes, strides, unit norms, no leaked tensors', () => {
  const w = createWeights(tiny, 1);
  for (const size of [
    [8, 32, 48],
    [7, 30, 33],
  ] as Vec3[]) {
    const x = input(size);
    const before = tf.memory().numTensors;
    const o = forward(w, x, tiny);
    assert.equal(tf.memory().numTensors, before + 2);
    const geo = outputGeometry(tiny, size);
    assert.deepEqual(o.local.shape, [1, ...size.map((n) => Math.ceil(n / 2)), 8]);
    assert.deepEqual(o.global.shape, [1, Math.ceil(size[0] / 4), Math.ceil(size[1] / 16), Math.ceil(size[2] / 16), 8]);
    assert.deepEqual(o.local.shape.slice(1, 4), geo.local);
    assert.deepEqual(
      [o.localStride, o.globalStride],
      [
        [2, 2, 2],
        [4, 16, 16],
      ],
    );
    for (const e of [o.local, o.global]) {
      const n = tf.tidy(() => tf.sqrt(tf.sum(tf.square(e), -1)).dataSync());
      for (const v of n) assert.ok(Math.abs(v - 1) < 1e-5, `norm ${v}`);
    }
    tf.dispose([x, o.local, o.global]);
  }
  disposeWeights(w);
});

test('inputs not a multiple of the total stride: padded with air at the high end, outputs cropped', () => {
  const w = createWeights(tiny, 2);
  const x = input([7, 30, 33], 3);
  const o = forward(w, x, tiny);
  const xp = tf.pad(
    x,
    [
      [0, 0],
      [0, 1],
      [0, 2],
      [0, 15],
      [0, 0],
    ],
    tiny.padValue,
  ) as tf.Tensor5D;
  const op = forward(w, xp, tiny);
  const crop = (t: tf.Tensor5D, s: number[]) => tf.slice(t, [0, 0, 0, 0, 0], [-1, s[1], s[2], s[3], -1]);
  assert.deepEqual(o.local.dataSync(), crop(op.local, o.local.shape).dataSync());
  assert.deepEqual(o.global.dataSync(), crop(op.global, o.global.shape).dataSync());
  assert.deepEqual(embeddingVoxelCentre([0, 0, 0], [2, 2, 2]), [0.5, 0.5, 0.5]);
  assert.deepEqual(embeddingVoxelCentre([1, 2, 3], [4, 16, 16]), [5.5, 39.5, 55.5]);
  assert.deepEqual(outputGeometry(tiny, [7, 30, 33]).padded, [8, 32, 48]);
  tf.dispose([x, xp, o.local, o.global, op.local, op.global]);
  disposeWeights(w);
});

test('small: one forward on a small input gives 128-channel unit embeddings', () => {
  const c = getSamConfig('small');
  const w = createWeights(c, 0);
  const x = input([8, 32, 32]);
  const o = forward(w, x, c);
  assert.deepEqual(o.local.shape, [1, 4, 16, 16, 128]);
  assert.deepEqual(o.global.shape, [1, 2, 2, 2, 128]);
  const n = tf.tidy(() => tf.sqrt(tf.sum(tf.square(o.local), -1)).dataSync());
  for (const v of n) assert.ok(Math.abs(v - 1) < 1e-5);
  tf.dispose([x, o.local, o.global]);
  disposeWeights(w);
});

test('initialisation is deterministic under a seed, He-scaled, gains 1 and biases 0', () => {
  const c = getSamConfig('small');
  const a = createWeights(c, 5);
  const b = createWeights(c, 5);
  const d = createWeights(c, 6);
  for (const s of weightSpecs(c)) assert.deepEqual(a[s.name].dataSync(), b[s.name].dataSync(), s.name);
  assert.notDeepEqual(a['s3.b0.conv2.w'].dataSync(), d['s3.b0.conv2.w'].dataSync());
  const k = a['s3.b0.conv2.w'].dataSync() as Float32Array; // 27 * 64 * 64 values, fan-in 27 * 64
  const std = Math.sqrt(k.reduce((s, v) => s + v * v, 0) / k.length);
  assert.ok(Math.abs(std / Math.sqrt(2 / (27 * 64)) - 1) < 0.02, `std ${std}`);
  assert.ok(a['s3.b0.conv2.g'].dataSync().every((v) => v === 1));
  assert.ok(a['s3.b0.conv2.b'].dataSync().every((v) => v === 0));
  [a, b, d].forEach(disposeWeights);
});

test('differentiable end to end: tf.grads matches central finite differences (tiny)', () => {
  // The smallest input (one global voxel) keeps the number of ReLU / max-pool kinks crossed by the
  // finite steps low: with float32 and h = 3e-4 agreement is then within a few percent.
  const w = createWeights(tiny, 3);
  const x = input([4, 16, 16]);
  const names = weightSpecs(tiny).map((s) => s.name);
  const o0 = forward(w, x, tiny);
  const rl = tf.randomNormal(o0.local.shape, 0, 1, 'float32', 1);
  const rg = tf.randomNormal(o0.global.shape, 0, 1, 'float32', 2);
  const loss = (ws: SamWeights) =>
    tf.tidy(() => {
      const o = forward(ws, x, tiny);
      return tf.add(tf.sum(tf.mul(o.local, rl)), tf.sum(tf.mul(o.global, rg))) as tf.Scalar;
    });
  const grads = tf.grads((...ts: tf.Tensor[]) => loss(Object.fromEntries(names.map((n, i) => [n, ts[i]]))))(
    names.map((n) => w[n]),
  );
  // every weight receives a gradient
  grads.forEach((g, i) => assert.ok(tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]) > 0, `no gradient for ${names[i]}`));
  const h = 3e-4;
  const probes: [string, number][] = [
    ['stem.w', 5],
    ['stem.b', 1],
    ['s1.b0.conv1.w', 3],
    ['s2.b1.conv2.g', 1],
    ['s3.b0.short.w', 2],
    ['s4.b0.conv2.w', 7],
    ['local.lat1.w', 0],
    ['local.td1.b', 2],
    ['local.out0.w', 4],
    ['global.out1.w', 11],
  ];
  for (const [name, idx] of probes) {
    const base = w[name].dataSync();
    const at = (delta: number) => {
      const v = Float32Array.from(base);
      v[idx] += delta;
      const t = tf.tensor(v, w[name].shape);
      const r = loss({ ...w, [name]: t }).dataSync()[0];
      t.dispose();
      return r;
    };
    const fd = (at(h) - at(-h)) / (2 * h);
    const ad = grads[names.indexOf(name)].dataSync()[idx];
    assert.ok(
      Math.abs(ad - fd) <= 0.05 * Math.max(Math.abs(ad), Math.abs(fd)) + 0.02,
      `${name}[${idx}]: grad ${ad} vs fd ${fd}`,
    );
  }
  tf.dispose([x, o0.local, o0.global, rl, rg, ...grads]);
  disposeWeights(w);
});

/** Max |a - b| per column along x (axis 3) of [1, z, y, x, c] tensors, b shifted by `shift` columns. */
function columnErrors(a: tf.Tensor5D, b: tf.Tensor5D, shift: number): number[] {
  const n = a.shape[3] - shift;
  return tf.tidy(() => {
    const d = tf.abs(
      tf.sub(tf.slice(a, [0, 0, 0, 0, 0], [-1, -1, -1, n, -1]), tf.slice(b, [0, 0, 0, shift, 0], [-1, -1, -1, n, -1])),
    );
    return Array.from(tf.max(d, [0, 1, 2, 4]).dataSync());
  });
}

test('translation equivariance: shifting the input by the total stride shifts the outputs exactly', () => {
  const w = createWeights(tiny, 4);
  const W = 320;
  const S = 16; // total stride along x
  const v = input([8, 32, W + S], 9);
  const a = tf.slice(v, [0, 0, 0, S, 0], [-1, -1, -1, W, -1]) as tf.Tensor5D; // a(x) = v(x + S)
  const b = tf.slice(v, [0, 0, 0, 0, 0], [-1, -1, -1, W, -1]) as tf.Tensor5D; // b(x) = v(x)
  const oa = forward(w, a, tiny);
  const ob = forward(w, b, tiny);
  // away from the x borders (middle third), local shifts by S/2 voxels and global by 1, exactly
  const mid = (e: number[]) => e.slice(Math.floor(e.length / 3), Math.ceil((2 * e.length) / 3));
  const local = columnErrors(oa.local, ob.local, S / oa.localStride[2]);
  const global = columnErrors(oa.global, ob.global, S / oa.globalStride[2]);
  assert.ok(Math.max(...mid(local)) < 1e-6, `local ${mid(local)}`);
  assert.ok(Math.max(...mid(global)) < 1e-6, `global ${mid(global)}`);
  assert.ok(Math.max(...local) > 1e-3, 'borders differ (the test would be vacuous otherwise)');
  tf.dispose([v, a, b, oa.local, oa.global, ob.local, ob.global]);
  disposeWeights(w);
});

test('embeddings are centred on their stride blocks: mirrored input and kernels give mirrored outputs', () => {
  const w = createWeights(tiny, 5);
  const m: SamWeights = {};
  for (const [k, t] of Object.entries(w)) m[k] = k.endsWith('.w') ? tf.reverse(t, [0, 1, 2]) : t;
  const x = input([8, 32, 48], 11);
  const o = forward(w, x, tiny);
  const xr = tf.reverse(x, [1, 2, 3]) as tf.Tensor5D;
  const r = forward(m, xr, tiny);
  for (const [p, q] of [
    [o.local, r.local],
    [o.global, r.global],
  ]) {
    const err = tf.tidy(() => tf.max(tf.abs(tf.sub(p, tf.reverse(q, [1, 2, 3])))).dataSync()[0]);
    assert.ok(err < 1e-5, `mirror error ${err}`);
  }
  tf.dispose([x, xr, o.local, o.global, r.local, r.global]);
  for (const k of Object.keys(m)) if (k.endsWith('.w')) m[k].dispose();
  disposeWeights(w);
});

test('cost model: hand count, paper reported, small within the 0.4 TFLOP budget', (t) => {
  const small = getSamConfig('small');
  const vol: Vec3 = [144, 256, 256];
  const c = forwardCost(small, vol);
  const l = c.layers.find((x) => x.name === 's3.b0.conv2')!;
  // 3x3x3 conv 64 -> 64 at stride (2, 8, 8): 72 x 32 x 32 outputs, 2 FLOP per multiply-add
  assert.equal(l.flops, 2 * 27 * 64 * 64 * (72 * 32 * 32));
  assert.equal(l.flops, 16_307_453_952);
  const stem = c.layers[0]; // 4x6x6 stride 2, 1 -> 16 channels
  assert.equal(stem.flops, 2 * 144 * 16 * 72 * 128 * 128);
  assert.ok(c.flops <= 0.4e12, `small costs ${c.flops / 1e12} TFLOP`);
  const paper = forwardCost(getSamConfig('paper'), vol);
  const patch = forwardCost(small, [32, 96, 96]);
  assert.ok(paper.flops > 3e12 && paper.flops < 4e12);
  // non-multiples are costed on the padded grid
  assert.deepEqual(forwardCost(small, [143, 250, 241]).padded, [144, 256, 256]);
  assert.equal(forwardCost(small, [32, 96, 96], 2).flops, 2 * patch.flops);
  t.diagnostic(`paper ${(paper.flops / 1e12).toFixed(3)} TFLOP, ${paper.params} params on 144x256x256`);
  t.diagnostic(
    `small ${(c.flops / 1e12).toFixed(3)} TFLOP on 144x256x256, ${(patch.flops / 1e9).toFixed(2)} GFLOP on 32x96x96`,
  );
  assert.match(formatCost(c), /total 0\.107 TFLOP/);
});

test('tfjs backend: cpu by name, auto falls back with reasons, unknown names refused', async () => {
  const auto = await initTfBackend({ backend: 'auto' });
  assert.ok(auto.attempts.at(-1)!.ok);
  for (const a of auto.attempts.slice(0, -1)) assert.ok(a.reason && a.reason.length > 0);
  const cpu = await initTfBackend({ backend: 'cpu' });
  assert.equal(cpu.backend, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  await assert.rejects(initTfBackend({ backend: 'gpu' as never }), /unknown/);
});
