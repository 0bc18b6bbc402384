/**
 * The WGSL top-k (train/top-k-wgsl.ts) against tf.topk on the same WebGPU device and against a sort
 * in JS: rows with -Infinity (the mining's exclusions), exact ties across the k-th place, negative
 * values, n not a multiple of the workgroup, k a power of two or not, k = 1 and k = n.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { topkRows, topkRowsMaskedPackedWgsl, topkRowsMaskedWgsl } from '../../main/engine/train/top-k-wgsl.ts';
import { useWebgpu } from './webgpu-fixture.ts';

function matrix(rows: number, n: number, seed: number): Float32Array {
  let s = seed;
  const rnd = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const v = new Float32Array(rows * n);
  for (let i = 0; i < v.length; i++) {
    const u = rnd();
    // a quarter excluded, some values from a small set (exact ties), the rest continuous, both signs
    v[i] = u < 0.25 ? -Infinity : u < 0.4 ? Math.round(rnd() * 4) / 4 - 0.5 : rnd() * 2 - 1;
  }
  return v;
}

/** Reference: stable sort of each row by value descending (ties: lower index first). */
function reference(v: Float32Array, rows: number, n: number, k: number) {
  const idx: number[] = [];
  const val: number[] = [];
  for (let r = 0; r < rows; r++) {
    const order = [...Array(n).keys()].sort((a, b) => v[r * n + b] - v[r * n + a] || a - b);
    for (const i of order.slice(0, k)) {
      idx.push(i);
      val.push(v[r * n + i]);
    }
  }
  return { idx, val };
}

test('WebGPU: top-k of rows by the WGSL program equals tf.topk and a JS sort', async (t) => {
  if (!(await useWebgpu(t, false))) return;
  try {
    const cases: [number, number, number][] = [
      [3, 1000, 37],
      [5, 4099, 2034],
      [2, 576, 284],
      [4, 300, 1],
      [2, 300, 300],
      [1, 70000, 512],
    ];
    for (const [rows, n, k] of cases) {
      const v = matrix(rows, n, rows * n + k);
      const x = tf.tensor2d(v, [rows, n]);
      const ours = topkRows(x, k);
      const theirs = tf.topk(x, k, true);
      const [oi, ov, ti, tv] = await Promise.all([
        ours.indices.data(),
        ours.values.data(),
        theirs.indices.data(),
        theirs.values.data(),
      ]);
      tf.dispose([x, ours.values, ours.indices, theirs.values, theirs.indices]);
      const ref = reference(v, rows, n, k);
      assert.deepEqual([...oi], ref.idx, `rows ${rows}, n ${n}, k ${k}: indices`);
      assert.deepEqual([...ov], ref.val, `rows ${rows}, n ${n}, k ${k}: values`);
      // tfjs' kernel: the same values; the same indices except where its bitonic network orders ties otherwise
      assert.deepEqual([...ov], [...tv], `rows ${rows}, n ${n}, k ${k}: values vs tf.topk`);
      let sameIndex = 0;
      for (let i = 0; i < oi.length; i++) if (oi[i] === ti[i]) sameIndex++;
      assert.ok(sameIndex / oi.length > 0.5, `indices vs tf.topk: ${sameIndex} of ${oi.length} equal`);
    }
  } finally {
    await initTfBackend({ backend: 'cpu' });
  }
});

test('WebGPU: the top-k with the radius mask read in place equals the top-k of the masked matrix', async (t) => {
  if (!(await useWebgpu(t, false))) return;
  try {
    const rows = 6;
    const n = 5000;
    const k = 700;
    const v = matrix(rows, n, 77).map((x) => (Number.isFinite(x) ? x : 0.1));
    let s = 5;
    const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648), s / 2147483648);
    const cw = Float32Array.from({ length: n * 3 }, () => (rnd() - 0.5) * 120);
    const rw = Float32Array.from({ length: rows * 3 }, () => (rnd() - 0.5) * 60);
    const within = 30 * 30;
    // the reference masks in float64; no candidate lies within rounding of the radius
    const masked = Float32Array.from(v);
    for (let r = 0; r < rows; r++)
      for (let i = 0; i < n; i++) {
        const d = [0, 1, 2].reduce((a, c) => a + (rw[3 * r + c] - cw[3 * i + c]) ** 2, 0);
        if (Math.abs(d - within) < 0.5) cw[3 * i] += 2; // nudge off the boundary (all rows see it moved)
      }
    let inside = 0;
    for (let r = 0; r < rows; r++)
      for (let i = 0; i < n; i++) {
        const d = [0, 1, 2].reduce((a, c) => a + (rw[3 * r + c] - cw[3 * i + c]) ** 2, 0);
        if (d < within) {
          masked[r * n + i] = -Infinity;
          inside++;
        }
      }
    assert.ok(inside > 100, `${inside} candidates inside the radius`);
    const x = tf.tensor2d(v, [rows, n]);
    const ours = topkRowsMaskedWgsl(x, k, { rowWorld: rw, candidateWorld: cw, within })!;
    const oi = await ours.data();
    // the packed form: the same indices in rows of `stride` (-1 past k), then their unmasked values' bits
    const p = topkRowsMaskedPackedWgsl(x, k, { rowWorld: rw, candidateWorld: cw, within })!;
    const stride = 2 ** Math.ceil(Math.log2(k));
    assert.equal(p.stride, stride);
    assert.deepEqual(p.packed.shape, [2 * rows, stride]);
    const bits = (await p.packed.data()) as Int32Array;
    const vals = new Float32Array(bits.buffer, bits.byteOffset + 4 * rows * stride, rows * stride);
    tf.dispose([x, ours, p.packed]);
    assert.deepEqual([...oi], reference(masked, rows, n, k).idx);
    for (let r = 0; r < rows; r++)
      for (let j = 0; j < stride; j++) {
        const idx = bits[r * stride + j];
        if (j < k) {
          assert.equal(idx, oi[r * k + j], `row ${r} slot ${j}`);
          assert.equal(vals[r * stride + j], v[r * n + idx], `row ${r} slot ${j} value`);
        } else {
          assert.equal(idx, -1);
          assert.equal(bits[(rows + r) * stride + j], 0);
        }
      }
  } finally {
    await initTfBackend({ backend: 'cpu' });
  }
});
