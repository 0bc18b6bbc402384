// Sub-voxel refinement on the continuous SAM score (sam/continuous-refine.ts): the block similarity
// from dot products and a Gram matrix equals interpolating the embeddings themselves (float64
// reference, float32 and float16 storage, blocks cut by the grid's edge, size-1 axes); the search
// never ends below the voxel it starts from and finds a point between voxel centres exactly when the
// query is the template.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  blockAround,
  blockSimilarity,
  hostBlock,
  refineContinuous,
  type LocalToGlobal,
} from '../../main/engine/sam/continuous-refine.ts';
import { toHalf, type EmbeddingVolume } from '../../main/engine/sam/embed-volume.ts';
import { makeVolume, type Vec3 } from '../../main/engine/volume/volume.ts';
import { rng } from '../helpers.ts';

const I3 = [1, 0, 0, 0, 1, 0, 0, 0, 1] as const;

/** A random unit-vector field on a grid (smooth enough to have interior maxima), float32 or float16. */
function field(size: Vec3, C: number, seed: number, fp16 = false): EmbeddingVolume {
  const r = rng(seed);
  const w = Array.from({ length: C }, () => [r() - 0.5, r() - 0.5, r() - 0.5, 6 * r()]);
  const n = size[0] * size[1] * size[2];
  const data = new Float32Array(n * C);
  for (let v = 0; v < n; v++) {
    const p = [v % size[0], Math.floor(v / size[0]) % size[1], Math.floor(v / (size[0] * size[1]))];
    let s = 0;
    for (let c = 0; c < C; c++) {
      const x = Math.cos(w[c][0] * p[0] + w[c][1] * p[1] + w[c][2] * p[2] + w[c][3]);
      data[v * C + c] = x;
      s += x * x;
    }
    for (let c = 0; c < C; c++) data[v * C + c] /= Math.sqrt(s);
  }
  const vol = makeVolume({ size, spacing: [4, 4, 4], origin: [0, 0, 0], direction: [...I3], components: C, data });
  const e = { ...vol, storage: 'float32' as const, stride: [2, 2, 2] as Vec3 };
  return fp16 ? { ...e, data: Uint16Array.from(data, toHalf), storage: 'float16' } : e;
}

/** float64 reference: the embedding trilinearly interpolated at a continuous index (clamped), normalised. */
function interpolated(e: EmbeddingVolume, pos: number[], half = false): Float64Array {
  const C = e.components;
  const out = new Float64Array(C);
  const i0: number[] = [];
  const f: number[] = [];
  for (let a = 0; a < 3; a++) {
    const x = Math.min(Math.max(pos[a], 0), e.size[a] - 1);
    i0[a] = Math.min(Math.floor(x), Math.max(e.size[a] - 2, 0));
    f[a] = e.size[a] > 1 ? x - i0[a] : 0;
  }
  const bits = new Float32Array(1);
  const fromHalf = (h: number) => {
    const s = h & 0x8000 ? -1 : 1;
    const ex = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    return ex === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (ex - 15);
  };
  for (let c8 = 0; c8 < 8; c8++) {
    const o = [c8 & 1, (c8 >> 1) & 1, c8 >> 2];
    const w = o.reduce((p, d, a) => p * (d ? f[a] : 1 - f[a]), 1);
    if (w === 0) continue;
    const ijk = o.map((d, a) => Math.min(i0[a] + d, e.size[a] - 1));
    const v = ijk[0] + e.size[0] * (ijk[1] + e.size[1] * ijk[2]);
    for (let c = 0; c < C; c++)
      out[c] += w * (half ? fromHalf(e.data[v * C + c]) : ((bits[0] = e.data[v * C + c]), bits[0]));
  }
  const n = Math.hypot(...out);
  return out.map((x) => x / n);
}

test('block similarity equals the cosine with the interpolated embedding (float32, float16, edges, size-1 axes)', () => {
  const r = rng(5);
  for (const [size, fp16] of [
    [[9, 7, 5], false],
    [[9, 7, 5], true],
    [[6, 1, 4], false],
    [[2, 5, 3], false],
  ] as [Vec3, boolean][]) {
    const e = field(size, 24, 3, fp16);
    for (let trial = 0; trial < 30; trial++) {
      const t = Float32Array.from({ length: 24 }, () => r() - 0.5);
      const tn = Math.hypot(...t);
      t.forEach((x, c) => (t[c] = x / tn));
      // a centre anywhere, the edges included; a position within one voxel of it
      const centre = size.map((n) => Math.floor(r() * n));
      const b = hostBlock(e, t, centre);
      const pos = centre.map((c, a) => Math.min(Math.max(c + 2 * r() - 1, 0), size[a] - 1));
      const ref = interpolated(e, pos, fp16);
      let want = 0;
      for (let c = 0; c < 24; c++) want += t[c] * ref[c];
      const got = blockSimilarity(b, pos);
      assert.ok(Math.abs(got - want) < 1e-6, `${size} fp16=${fp16} at ${pos}: ${got} vs ${want}`);
      // the eager Gram of a cached block (the global level's) gives the same
      const cached = blockSimilarity(hostBlock(e, t, centre, new Map()), pos);
      assert.ok(Math.abs(cached - want) < 1e-6, `cached block: ${cached} vs ${want}`);
    }
  }
  assert.deepEqual(blockAround([0, 3.4, 8], [9, 7, 9]), { base: [0, 2, 6], dims: [3, 3, 3] });
  assert.deepEqual(blockAround([1, 0, 0], [2, 1, 5]), { base: [0, 0, 0], dims: [2, 1, 3] });
});

test('refinement: never below its start; the template itself found between voxel centres', () => {
  const size: Vec3 = [12, 10, 8];
  const local = field(size, 32, 7);
  const global = field([3, 3, 8], 32, 9);
  // the global grid: same z, x and y four times coarser (centres aligned as embeddingGrid places them)
  const map: LocalToGlobal = { scale: [0.25, 0.25, 1], offset: [-0.375, -0.375, 0], size: [3, 3, 8] };
  const r = rng(1);
  let exact = 0;
  for (let trial = 0; trial < 40; trial++) {
    const p = [1 + 9 * r(), 1 + 7 * r(), 1 + 5 * r()];
    const tl = Float32Array.from(interpolated(local, p));
    const gp = p.map((x, a) => Math.min(Math.max(map.scale[a] * x + map.offset[a], 0), map.size[a] - 1));
    const tg = Float32Array.from(interpolated(global, gp));
    const bi = p.map(Math.round) as Vec3;
    const lb = hostBlock(local, tl, bi);
    const gb = hostBlock(global, tg, gp);
    const score = (q: number[]) =>
      (blockSimilarity(
        gb,
        q.map((x, a) => Math.min(Math.max(map.scale[a] * x + map.offset[a], 0), map.size[a] - 1)),
      ) +
        blockSimilarity(lb, q)) /
      2;
    const at = refineContinuous(bi, size, lb, gb, map);
    assert.ok(score(at) >= score(bi), `trial ${trial}: ${score(at)} < ${score(bi)}`);
    at.forEach((x, a) => assert.ok(Math.abs(x - bi[a]) <= 1 + 1e-12));
    if (Math.hypot(...at.map((x, a) => x - p[a])) < 0.05) exact++;
  }
  // the score's maximum is the point itself (cosine 1 for both levels): found to a fraction of the step
  assert.ok(exact >= 36, `${exact} of 40 within 0.05 voxel`);
});
