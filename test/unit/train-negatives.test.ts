import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { Geometry } from '../../main/engine/volume/geometry.ts';
import { makeVolume, IDENTITY3, type Vec3 } from '../../main/engine/volume/volume.ts';
import {
  embeddingGrid,
  findPositives,
  gridWorldPositions,
  type EmbeddingStrides,
  type PositivePairs,
} from '../../main/engine/train/patch-pairs.ts';
import {
  mineSamBatch,
  sampleOtherPatchVoxels,
  selectHardNegatives,
  upsampleMapsToLocal,
  upsampleToLocal,
  type MiningPair,
} from '../../main/engine/train/negatives.ts';
import { createRng } from '../../main/engine/train/rng.ts';

await tf.setBackend('cpu');

const dist = (w: ArrayLike<number>, i: number, p: ArrayLike<number>): number =>
  Math.hypot(w[3 * i] - p[0], w[3 * i + 1] - p[1], w[3 * i + 2] - p[2]);

test('excluded candidates are never selected, even when they are the most similar', async () => {
  const n = 200;
  const world = new Float32Array(n * 3);
  const scores = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    world[3 * i] = i; // 1 mm apart on a line
    // inside the 20 mm ball around x = 50: similarity 1 (the best); outside: negative
    scores[i] = Math.abs(i - 50) < 20 ? 1 : -1 + 0.001 * i;
  }
  const req = async (nCand: number, nNeg: number) => {
    const t = tf.tensor2d(scores, [1, n]);
    try {
      const r = await selectHardNegatives({
        scores: t,
        queryWorld: [50, 0, 0],
        candidateWorld: world,
        radiusMm: 20,
        exclude: { indices: Int32Array.from([199, 0]), perQuery: 2 },
        nCand,
        nNeg,
        rng: createRng(1),
      });
      return r.indices;
    } finally {
      t.dispose();
    }
  };
  const all = await req(n, n);
  const picked = [...all].filter((v) => v >= 0);
  // 39 voxels closer than 20 mm (31..69; 30 and 70 are at exactly 20 mm and allowed), 2 explicit
  assert.equal(picked.length, n - 39 - 2);
  assert.equal(new Set(picked).size, picked.length);
  for (const v of picked) {
    assert.ok(dist(world, v, [50, 0, 0]) >= 20, `candidate ${v} is inside the radius`);
    assert.ok(v !== 0 && v !== 199);
  }
  assert.ok(picked.includes(30) && picked.includes(70));
  // The hardest remaining ones are the top: with nCand = nNeg = 5 they are 194..198.
  assert.deepEqual(
    [...(await req(5, 5))].sort((a, b) => a - b),
    [194, 195, 196, 197, 198],
  );
  // Fewer candidates than asked: padded with -1.
  const few = (
    await selectHardNegatives({
      scores: tf.tensor2d([[0.5, 0.9, 0.2]]),
      queryWorld: [0, 0, 0],
      candidateWorld: [0, 0, 0, 30, 0, 0, 40, 0, 0],
      radiusMm: 5,
      nCand: 10,
      nNeg: 4,
      rng: createRng(2),
    })
  ).indices;
  assert.deepEqual([...few].filter((v) => v >= 0).sort(), [1, 2]);
  assert.equal([...few].filter((v) => v < 0).length, 2);
});

test('n_neg are drawn at random from the top n_cand', async () => {
  const n = 300;
  const s = createRng(5);
  const scores = Float32Array.from({ length: 2 * n }, () => s.next());
  const world = Float32Array.from({ length: n * 3 }, (_, i) => (i % 3 === 0 ? 100 + i : 0));
  const run = async (seed: number) =>
    (
      await selectHardNegatives({
        scores: tf.tensor2d(scores, [2, n]),
        queryWorld: [0, 0, 0, 0, 0, 0],
        candidateWorld: world,
        radiusMm: 1,
        nCand: 20,
        nNeg: 5,
        rng: createRng(seed),
      })
    ).indices;
  const a = await run(1);
  for (let q = 0; q < 2; q++) {
    const row = scores.slice(q * n, (q + 1) * n);
    const top = [...row.keys()].sort((x, y) => row[y] - row[x]).slice(0, 20);
    const got = [...a.slice(q * 5, q * 5 + 5)];
    assert.equal(new Set(got).size, 5);
    for (const v of got) assert.ok(top.includes(v), `${v} not in the top 20`);
  }
  assert.deepEqual(await run(1), a, 'deterministic under a seed');
  assert.notDeepEqual(await run(2), a, 'another seed draws others');
});

test('global upsampling to the local grid is trilinear on the embedding-voxel centres', async () => {
  const patch: Geometry = { size: [16, 24, 8], spacing: [1.5, 1.5, 1.5], origin: [3, -2, 7], direction: IDENTITY3 };
  const gGrid = embeddingGrid(patch, [4, 8, 8]); // (x, y, z) = (2, 3, 2)
  const lGrid = embeddingGrid(patch, [2, 2, 2]); // (8, 12, 4)
  const c = 3;
  const r = createRng(3);
  const g = Float32Array.from({ length: 2 * 3 * 2 * c }, () => r.next() - 0.5);
  const up = tf.tidy(() => upsampleToLocal(tf.tensor4d(g, [2, 3, 2, c]), gGrid, lGrid).dataSync());
  // The per-map version (channels first) gives the same numbers.
  const maps = tf.tidy(() =>
    upsampleMapsToLocal(
      tf.transpose(tf.tensor4d(g, [2, 3, 2, c]), [3, 0, 1, 2]) as tf.Tensor4D,
      gGrid,
      lGrid,
    ).dataSync(),
  );
  for (let v = 0; v < 8 * 12 * 4; v++)
    for (let ch = 0; ch < c; ch++) assert.ok(Math.abs(maps[ch * 384 + v] - up[v * c + ch]) < 1e-6);
  // Expected: local voxel centre at input index (o + 0.5) * 2 - 0.5, global index (x + 0.5) / s - 0.5, clamped.
  const coord = (o: number, sl: number, sg: number, n: number) =>
    Math.min(Math.max(((o + 0.5) * sl) / sg - 0.5, 0), n - 1);
  const at = (x: number, y: number, z: number, ch: number) => g[((z * 3 + y) * 2 + x) * c + ch];
  const lin = (t: number, n: number): [number, number, number] => {
    const i0 = Math.min(Math.floor(t), Math.max(n - 2, 0));
    return [i0, Math.min(i0 + 1, n - 1), t - i0];
  };
  for (let z = 0; z < 4; z++)
    for (let y = 0; y < 12; y++)
      for (let x = 0; x < 8; x++) {
        const [x0, x1, fx] = lin(coord(x, 2, 8, 2), 2);
        const [y0, y1, fy] = lin(coord(y, 2, 8, 3), 3);
        const [z0, z1, fz] = lin(coord(z, 2, 4, 2), 2);
        for (let ch = 0; ch < c; ch++) {
          let e = 0;
          for (const [zi, wz] of [
            [z0, 1 - fz],
            [z1, fz],
          ])
            for (const [yi, wy] of [
              [y0, 1 - fy],
              [y1, fy],
            ])
              for (const [xi, wx] of [
                [x0, 1 - fx],
                [x1, fx],
              ])
                e += wz * wy * wx * at(xi, yi, zi, ch);
          const got = up[((z * 12 + y) * 8 + x) * c + ch];
          assert.ok(Math.abs(got - e) < 1e-5, `(${x},${y},${z},${ch}) ${got} vs ${e}`);
        }
      }
});

/** A line of 8 local voxels (1 mm) and 2 global voxels per patch; A and B on the same grid. */
function linePair(): { pair: MiningPair; strides: EmbeddingStrides } {
  const strides: EmbeddingStrides = { local: [1, 1, 1], global: [1, 1, 4] };
  const g: Geometry = { size: [8, 1, 1], spacing: [1, 1, 1], origin: [0, 0, 0], direction: IDENTITY3 };
  const one = (a: number, b: number) => ({ a: Int32Array.of(a), b: Int32Array.of(b), world: Float64Array.of(0, 0, 0) });
  const positives: PositivePairs = { strides, local: one(0, 0), global: one(0, 0) };
  return { pair: { a: { geometry: g }, b: { geometry: g }, positives }, strides };
}

test('local candidates are ranked by local similarity plus the upsampled global similarity', async () => {
  const { pair } = linePair();
  const e = (...v: number[]) => v;
  const minus = e(-1, 0, 0, 0);
  // Patch A: the query (voxel 0) is e0; voxel 3 has local similarity 0.5, voxel 6 has 0.6.
  const A = [e(1, 0, 0, 0), minus, minus, e(0.5, Math.sqrt(0.75), 0, 0), minus, minus, e(0.6, 0.8, 0, 0), minus];
  const B = [e(1, 0, 0, 0), minus, minus, minus, minus, minus, minus, minus];
  const local = tf.tensor5d([...A, ...B].flat(), [2, 1, 1, 8, 4]);
  // Global: voxel 0 (local 0..3) is e2 in both patches, voxel 1 (local 4..7) e3.
  const global = tf.tensor5d([e(0, 0, 1, 0), e(0, 0, 0, 1), e(0, 0, 1, 0), e(0, 0, 0, 1)].flat(), [2, 1, 1, 2, 4]);
  // Upsampled global similarity with the query's (e2): voxel 3 -> 0.625 / |(0.625, 0.375)| = 0.857,
  // voxel 6 -> 0. So voxel 3 ranks first (1.357), voxel 6 second (0.6), though 6 is more similar locally.
  const opts = { radiusMm: 2.5, nRand: 0 };
  const top1 = (await mineSamBatch({ local, global }, [pair], createRng(1), { ...opts, nCand: 1, nNeg: 1 }))[0];
  assert.deepEqual([...top1.local.ab.negatives], [3]);
  assert.deepEqual([...top1.local.ab.query], [0]);
  assert.deepEqual([...top1.local.ab.key], [8]);
  const top2 = (await mineSamBatch({ local, global }, [pair], createRng(1), { ...opts, nCand: 2, nNeg: 2 }))[0];
  assert.deepEqual(
    [...top2.local.ab.negatives].sort((a, b) => a - b),
    [3, 6],
  );
  // Without the global part (all global embeddings equal), voxel 6 would be first.
  const flat = tf.tensor5d(
    Array(4)
      .fill(e(0, 0, 1, 0))
      .flat(),
    [2, 1, 1, 2, 4],
  );
  const localOnly = (
    await mineSamBatch({ local, global: flat }, [pair], createRng(1), { ...opts, nCand: 1, nNeg: 1 })
  )[0];
  assert.deepEqual([...localOnly.local.ab.negatives], [6]);
  tf.dispose([local, global, flat]);
});

/** Small random patch pairs (identity, 2 mm), B shifted by a few mm, with real positives. */
function smallBatch(pairs: number, seed: number) {
  const strides: EmbeddingStrides = { local: [2, 2, 2], global: [2, 8, 8] };
  const mask = makeVolume({
    size: [40, 40, 40],
    spacing: [2, 2, 2],
    origin: [-20, -20, -20],
    data: new Uint8Array(40 ** 3).fill(1),
  });
  const rng = createRng(seed);
  const out: MiningPair[] = [];
  for (let p = 0; p < pairs; p++) {
    const a: Geometry = { size: [16, 16, 8], spacing: [2, 2, 2], origin: [0, 0, 0], direction: IDENTITY3 };
    const b: Geometry = { ...a, origin: [4 + p, 2, -2] as Vec3, spacing: [2.2, 2.2, 2.2] };
    out.push({
      a: { geometry: a },
      b: { geometry: b },
      positives: findPositives(a, b, mask, rng, { strides, nPos: 6 }),
    });
  }
  const unit = (shape: number[]) =>
    tf.tidy(() => {
      const t = tf.randomNormal(shape, 0, 1, 'float32', seed);
      return tf.div(t, tf.norm(t, 'euclidean', -1, true));
    });
  return { pairs: out, local: unit([2 * pairs, 4, 8, 8, 8]), global: unit([2 * pairs, 4, 2, 2, 8]) };
}

test('mined local negatives stay outside the radius when the excluded voxels are the most similar', async () => {
  const { pairs } = smallBatch(1, 4);
  const pos = pairs[0].positives;
  assert.ok(pos.local.a.length > 0);
  const one = {
    ...pos,
    local: { a: pos.local.a.slice(0, 1), b: pos.local.b.slice(0, 1), world: pos.local.world.slice(0, 3) },
  };
  const la = embeddingGrid(pairs[0].a.geometry, pos.strides.local);
  const lb = embeddingGrid(pairs[0].b.geometry, pos.strides.local);
  const world = [...gridWorldPositions(la), ...gridWorldPositions(lb)];
  const p = one.local.world;
  const data: number[] = [];
  for (let v = 0; v < world.length / 3; v++)
    data.push(...(dist(world, v, p) < 20 ? [1, 0, 0, 0, 0, 0, 0, 0] : [-1, 0, 0, 0, 0, 0, 0, 0]));
  const local = tf.tensor5d(data, [2, 4, 8, 8, 8]);
  const global = tf.tidy(() => tf.div(tf.ones([2, 4, 2, 2, 8]), Math.sqrt(8)));
  const sel = (
    await mineSamBatch({ local, global }, [{ ...pairs[0], positives: one }], createRng(1), {
      nCand: 2000,
      nNeg: 2000,
      radiusMm: 20,
    })
  )[0];
  const inside = world.length / 3 - [...Array(world.length / 3).keys()].filter((v) => dist(world, v, p) >= 20).length;
  assert.ok(inside > 10);
  for (const d of [sel.local.ab, sel.local.ba]) {
    const picked = [...d.negatives].filter((v) => v >= 0);
    assert.equal(picked.length, world.length / 3 - inside);
    for (const v of picked) assert.ok(dist(world, v, p) >= 20, `voxel ${v} at ${dist(world, v, p)} mm`);
    assert.ok(!picked.includes(d.query[0]) && !picked.includes(d.key[0]));
  }
  tf.dispose([local, global]);
});

test('n_rand negatives come from other patches of the batch only; mining is deterministic under a seed', async () => {
  const rows = sampleOtherPatchVoxels(6, 50, [2, 3], 120, createRng(1));
  assert.equal(rows.length, 120);
  assert.equal(new Set(rows).size, 120);
  for (const r of rows) assert.ok(r < 100 || r >= 200);
  assert.equal(sampleOtherPatchVoxels(2, 50, [0, 1], 10, createRng(1)).length, 0);
  assert.equal(sampleOtherPatchVoxels(4, 5, [0, 1], 100, createRng(1)).length, 10);

  const { pairs, local, global } = smallBatch(3, 7);
  const vg = 4 * 2 * 2;
  const opts = { nRand: 20, nCand: 50, nNeg: 10, globalCand: 10, globalNeg: 5 };
  const sel = await mineSamBatch({ local, global }, pairs, createRng(9), opts);
  for (let p = 0; p < 3; p++) {
    for (const d of [sel[p].global.ab, sel[p].global.ba]) {
      assert.equal(d.shared.length, 20);
      for (const r of d.shared)
        assert.ok(r < 2 * p * vg || r >= (2 * p + 2) * vg, `pair ${p}: shared row ${r} is its own`);
      for (const r of d.negatives)
        assert.ok(r < 0 || (r >= 2 * p * vg && r < (2 * p + 2) * vg), 'hard negatives from the pair');
    }
    const vl = 4 * 8 * 8;
    for (const d of [sel[p].local.ab, sel[p].local.ba]) {
      assert.equal(d.negatives.length, d.query.length * 10);
      for (const r of d.negatives) assert.ok(r >= 2 * p * vl && r < (2 * p + 2) * vl);
    }
    assert.ok(sel[p].local.ab.query.length > 0);
  }
  const again = await mineSamBatch({ local, global }, pairs, createRng(9), opts);
  assert.deepEqual(again, sel);
  tf.dispose([local, global]);
});
