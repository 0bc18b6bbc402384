/**
 * SAM local embeddings as SAM-deform feature channels (register/deform/embedding-features.ts): the
 * projection keeps the grid, gives unit vectors of k channels, maps equal embeddings to equal features,
 * and keeps the similarity order of the embeddings (close embeddings stay closer than far ones).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { embeddingFeatures, principalComponents } from '../../main/engine/register/deform/embedding-features.ts';
import { halfTable, toHalf } from '../../main/engine/sam/embed-volume.ts';
import type { EmbeddedVolume, EmbeddingVolume } from '../../main/engine/sam/embed-volume.ts';
import { makeVolume, type Vec3 } from '../../main/engine/volume/volume.ts';
import { rng } from '../helpers.ts';

function embedding(data: Float32Array, size: Vec3, C: number): EmbeddingVolume {
  const v = makeVolume({ size, spacing: [4, 4, 4], origin: [1, 2, 3], components: C, data, meta: { warnings: [] } });
  return { ...v, storage: 'float32', stride: [2, 2, 2] };
}

test('embedding features: k unit channels on the same grid, equal in equal out, similarity order kept', () => {
  const r = rng(5);
  const size: Vec3 = [6, 5, 4];
  const n = 120;
  const C = 16;
  // embeddings varying smoothly along i in 3 main directions, plus small noise
  const data = new Float32Array(n * C);
  const dirs = [0, 1, 2].map(() => Array.from({ length: C }, () => r() - 0.5));
  for (let v = 0; v < n; v++) {
    const i = v % 6;
    const j = Math.floor(v / 6) % 5;
    for (let c = 0; c < C; c++)
      data[v * C + c] =
        Math.cos(i / 2) * dirs[0][c] + Math.sin(j / 2) * dirs[1][c] + 0.3 * dirs[2][c] + 0.01 * (r() - 0.5);
  }
  const e = embedding(data, size, C);
  const pair: { fixed: EmbeddedVolume; moving: EmbeddedVolume } = {
    fixed: { global: e, local: e },
    moving: { global: e, local: embedding(Float32Array.from(data), size, C) },
  };
  const f = embeddingFeatures(pair, 8);
  assert.equal(f.fixed.components, 8);
  assert.deepEqual(f.fixed.size, size);
  assert.deepEqual(f.fixed.origin, [1, 2, 3]);
  for (let v = 0; v < n; v++) {
    let s = 0;
    for (let c = 0; c < 8; c++) {
      s += f.fixed.data[v * 8 + c] ** 2;
      assert.ok(Math.abs(f.fixed.data[v * 8 + c] - f.moving.data[v * 8 + c]) < 1e-6);
    }
    assert.ok(Math.abs(s - 1) < 1e-4);
  }
  const dotAt = (a: number, b: number) => {
    let s = 0;
    for (let c = 0; c < 8; c++) s += f.fixed.data[a * 8 + c] * f.fixed.data[b * 8 + c];
    return s;
  };
  // voxel 0 (i = 0) is closer to voxel 1 (i = 1) than to voxel 5 (i = 5) in the embedding, and in the features
  assert.ok(dotAt(0, 1) > dotAt(0, 5));
});

test('embedding features equal a float64 projection on the principal axes (k = 8 fast path and k = 5; float32 and float16 storage)', () => {
  const r = rng(6);
  const size: Vec3 = [7, 5, 4];
  const n = 140;
  const C = 24;
  const data = new Float32Array(n * C).map(() => r() - 0.5);
  for (const storage of ['float32', 'float16'] as const) {
    const stored = storage === 'float32' ? data : Uint16Array.from(data, (x) => toHalf(x));
    const values = storage === 'float32' ? data : Float32Array.from(stored, (h) => halfTable()[h]);
    const e: EmbeddingVolume = { ...embedding(data, size, C), data: stored, storage };
    for (const k of [8, 5]) {
      const f = embeddingFeatures({ fixed: { global: e, local: e }, moving: { global: e, local: e } }, k);
      // the reference: (x - mean) . axis in float64, normalised, with the same axes (all 140 rows sampled)
      const pc = principalComponents(values, C, k);
      for (let v = 0; v < n; v++) {
        const d = pc.axes.map((a) => a.reduce((s, ac, c) => s + (values[v * C + c] - pc.mean[c]) * ac, 0));
        const norm = Math.hypot(...d);
        for (let q = 0; q < k; q++)
          assert.ok(
            Math.abs(f.fixed.data[v * k + q] - d[q] / norm) < 1e-5,
            `${storage} k ${k} voxel ${v} channel ${q}`,
          );
      }
    }
  }
});
