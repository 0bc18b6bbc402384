// The matcher's window search in WGSL (sam/device/window-argmax-wgsl.ts) against a plain scan written
// here from match.ts's rule: candidates in rank order, each window k, then j, then i, score
// (global + local) / 2, the first maximum kept. Hand-made embeddings with planted exact ties (the
// same row at several voxels, in overlapping and in separate windows), a candidate list cut short by
// -1, windows clipped at the grid's faces; on WebGPU (Dawn on lavapipe here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { useWebgpu } from './webgpu-fixture.ts';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { windowArgmaxWgsl } from '../../main/engine/sam/device/window-argmax-wgsl.ts';
import { createRng } from '../../main/engine/train/rng.ts';

const normalise = (rows: Float32Array, c: number) => {
  for (let r = 0; r < rows.length / c; r++) {
    let s = 0;
    for (let m = 0; m < c; m++) s += rows[r * c + m] ** 2;
    for (let m = 0; m < c; m++) rows[r * c + m] /= Math.sqrt(s);
  }
  return rows;
};

test('WebGPU window search = the first maximum of a plain scan (planted ties, clipped windows, short lists)', async (t) => {
  if (!(await useWebgpu(t, false))) return;
  try {
    const rng = createRng(5);
    const L = [9, 7, 6];
    const Vl = L[0] * L[1] * L[2];
    const Vg = 12;
    const C = 8;
    const CL = 12;
    const P = 70;
    const K = 4;
    const gn = normalise(
      Float32Array.from({ length: Vl * C }, () => rng.uniform(-1, 1)),
      C,
    );
    const ql = normalise(
      Float32Array.from({ length: Vl * CL }, () => rng.uniform(-1, 1)),
      CL,
    );
    const tg = normalise(
      Float32Array.from({ length: P * C }, () => rng.uniform(-1, 1)),
      C,
    );
    const tl = normalise(
      Float32Array.from({ length: P * CL }, () => rng.uniform(-1, 1)),
      CL,
    );
    // boxes: random, some clipped to a face (lo 0 or hi at the last voxel), some a single voxel
    const boxes = new Int32Array(Vg * 6);
    for (let g = 0; g < Vg; g++)
      for (let a = 0; a < 3; a++) {
        const lo = g % 3 === 0 ? 0 : Math.floor(rng.uniform(0, 1) * L[a]);
        const hi = g % 4 === 0 ? L[a] - 1 : Math.min(L[a] - 1, lo + Math.floor(rng.uniform(0, 1) * 4));
        boxes[g * 6 + a] = lo;
        boxes[g * 6 + 3 + a] = g === 5 ? lo : hi;
      }
    const voxelsOf = (g: number) => {
      const out: number[] = [];
      for (let k = boxes[g * 6 + 2]; k <= boxes[g * 6 + 5]; k++)
        for (let j = boxes[g * 6 + 1]; j <= boxes[g * 6 + 4]; j++)
          for (let i = boxes[g * 6]; i <= boxes[g * 6 + 3]; i++) out.push(i + L[0] * (j + L[1] * k));
      return out;
    };
    const cand = new Int32Array(P * K);
    for (let p = 0; p < P; p++) {
      for (let q = 0; q < K; q++) cand[p * K + q] = Math.floor(rng.uniform(0, 1) * Vg);
      if (p % 7 === 3) cand[p * K + 2] = -1; // a list cut short
    }
    // planted ties: for every second point, the template rows copied from a voxel of its last
    // window, and that voxel's rows copied to a voxel of its first window (scanned earlier)
    for (let p = 0; p < P; p += 2) {
      const first = voxelsOf(cand[p * K]);
      const lastG = cand[p * K + K - 1] >= 0 ? cand[p * K + K - 1] : cand[p * K + 1];
      const last = voxelsOf(lastG);
      const src = last[Math.floor(rng.uniform(0, 1) * last.length)];
      const dst = first[Math.floor(rng.uniform(0, 1) * first.length)];
      if (src === dst) continue;
      gn.copyWithin(dst * C, src * C, src * C + C);
      ql.copyWithin(dst * CL, src * CL, src * CL + CL);
      tg.set(gn.subarray(src * C, src * C + C), p * C);
      tl.set(ql.subarray(src * CL, src * CL + CL), p * CL);
    }
    // reference scan: float32 dot products summed in channel order (the program's), then the first maximum
    const dot = (a: Float32Array, ao: number, b: Float32Array, bo: number, n: number) => {
      let s = 0;
      for (let m = 0; m < n; m++) s = Math.fround(s + Math.fround(a[ao + m] * b[bo + m]));
      return s;
    };
    const found = windowArgmaxWgsl(
      tf.tensor2d(gn, [Vl, C]),
      tf.tensor2d(ql, [Vl, CL]),
      tf.tensor2d(tg, [P, C]),
      tf.tensor2d(tl, [P, CL]),
      tf.tensor2d(cand, [P, K], 'int32'),
      tf.tensor2d(boxes, [Vg, 6], 'int32'),
      L,
    );
    const r = (await found.data()) as Float32Array;
    found.dispose();
    let ties = 0;
    for (let p = 0; p < P; p++) {
      let best = -Infinity;
      let bestV = -1;
      let hits = 0;
      const scores: number[] = [];
      for (let q = 0; q < K && cand[p * K + q] >= 0; q++)
        for (const v of voxelsOf(cand[p * K + q])) {
          const s = (dot(gn, v * C, tg, p * C, C) + dot(ql, v * CL, tl, p * CL, CL)) / 2;
          scores.push(s);
          if (s > best) {
            best = s;
            bestV = v;
          }
        }
      for (const s of scores) if (s === best) hits++;
      // the planted copy scores 1 at two voxels: the earlier (first window) must win
      if (hits > 1) ties++;
      assert.equal(r[4 * p], bestV, `point ${p}: voxel ${r[4 * p]} vs the scan's first maximum ${bestV}`);
      assert.ok(Math.abs(r[4 * p + 1] - best) < 1e-6, `point ${p}: score ${r[4 * p + 1]} vs ${best}`);
      assert.ok(Math.abs((r[4 * p + 2] + r[4 * p + 3]) / 2 - r[4 * p + 1]) < 1e-6, `point ${p}: terms`);
    }
    t.diagnostic(`${P} points, ${ties} with an exact tie at the maximum`);
    assert.ok(ties >= 20, `only ${ties} planted ties survived`);
  } finally {
    await initTfBackend({ backend: 'cpu', gradients: false });
  }
});
