// Synthetic registration pairs from a real CT: the truth is the exact inverse of the map the moving
// image was resampled with, intensities agree along it (fixed(x) ≈ moving(truth(x))), the pair is
// reproducible from its seed, the moving field of view is cropped; the NCC baseline finds points.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSyntheticPair, sampleLinear, insideGrid } from '../../main/engine/bench/synthetic-pair.ts';
import { nccMatch } from '../../main/engine/bench/ncc-match.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { applyAffine, indexToWorld, worldToIndexMatrix, worldBounds } from '../../main/engine/volume/geometry.ts';
import type { Vec3, Volume } from '../../main/engine/volume/volume.ts';
import { createRng } from '../../main/engine/train/rng.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import { gridPointsInMask } from '../../main/engine/register/grid-points.ts';
import { dataPath } from '../helpers.ts';
import { EXAMPLE_CT } from './embed-fixtures.ts';

const at = (v: Volume, p: Vec3) => sampleLinear(v, applyAffine(worldToIndexMatrix(v), p), NaN);

/** Points inside the fixed body (> -300 HU) whose truth lies inside the moving image, 10 mm in. */
function bodyPoints(pair: ReturnType<typeof makeSyntheticPair>, n: number, seed: number): Vec3[] {
  const rng = createRng(seed);
  const out: Vec3[] = [];
  const f = pair.fixed;
  for (let tries = 0; out.length < n && tries < 100000; tries++) {
    const p = indexToWorld(f, [
      rng.uniform(0, f.size[0] - 1),
      rng.uniform(0, f.size[1] - 1),
      rng.uniform(0, f.size[2] - 1),
    ]);
    if (at(f, p) > -300 && insideGrid(pair.moving, pair.truth(p), 10)) out.push(p);
  }
  return out;
}

test('synthetic pair: exact truth, intensities agree along it, reproducible, cropped field of view', async (t) => {
  const source = await readVolume(EXAMPLE_CT);
  const t0 = performance.now();
  const clean = makeSyntheticPair(source, { seed: 7, noiseHu: 0, spacingMm: 3 });
  t.diagnostic(`pair made in ${(performance.now() - t0).toFixed(0)} ms; moving ${clean.moving.size.join('x')}`);
  // the truth inverts the resampling map
  const pts = bodyPoints(clean, 300, 1);
  assert.equal(pts.length, 300);
  for (const p of pts) {
    const back = clean.movingToFixed(clean.truth(p));
    assert.ok(Math.hypot(...back.map((v, a) => v - p[a])) < 1e-6);
  }
  // it is not the identity: displacements of several mm
  const disp = pts.map((p) => Math.hypot(...clean.truth(p).map((v, a) => v - p[a])));
  t.diagnostic(
    `displacement: mean ${(disp.reduce((a, b) => a + b) / disp.length).toFixed(1)} mm, max ${Math.max(...disp).toFixed(1)}`,
  );
  assert.ok(Math.max(...disp) > 5);
  // fixed(x) ≈ moving(truth(x)); a wrong truth (3 mm off) is much worse
  const mad = (f: (p: Vec3) => Vec3) =>
    pts.reduce((s, p) => s + Math.abs(at(clean.fixed, p) - at(clean.moving, f(p))), 0) / pts.length;
  const good = mad(clean.truth);
  const off = mad((p) => clean.truth(p).map((v, a) => v + (a === 0 ? 3 : 0)) as Vec3);
  t.diagnostic(`mean |fixed - moving(truth)| ${good.toFixed(1)} HU; with the truth 3 mm off ${off.toFixed(1)} HU`);
  assert.ok(good < 25, `${good}`);
  assert.ok(off > 2 * good);
  // field of view: the moving image is cropped along z relative to the transformed fixed extent
  const [flo, fhi] = worldBounds(clean.fixed);
  const [mlo, mhi] = worldBounds(clean.moving);
  assert.ok(mhi[2] - mlo[2] < 0.92 * (fhi[2] - flo[2]));
  // same seed, same pair; noise is added and seeded
  const again = makeSyntheticPair(source, { seed: 7, noiseHu: 0, spacingMm: 3 });
  assert.deepEqual(again.moving.data, clean.moving.data);
  const noisy = makeSyntheticPair(source, { seed: 7, noiseHu: 20, spacingMm: 3 });
  const noise = noisy.fixed.data.reduce((s, v, n) => s + (v - clean.fixed.data[n]) ** 2, 0) / noisy.fixed.data.length;
  assert.ok(Math.abs(Math.sqrt(noise) - 20) < 1);
  assert.notDeepEqual(makeSyntheticPair(source, { seed: 8, noiseHu: 0, spacingMm: 3 }).params, clean.params);
});

test('synthetic pair with a thick-slice moving image: its slices are the mean of the anatomy over their thickness', async () => {
  const source = await readVolume(EXAMPLE_CT);
  const o = { seed: 7, noiseHu: 0, spacingMm: 3 };
  const thin = makeSyntheticPair(source, o);
  const thick = makeSyntheticPair(source, { ...o, movingSliceMm: 9 });
  assert.deepEqual(thick.params, thin.params, 'the same transform');
  assert.deepEqual(thick.moving.spacing, [3, 3, 9]);
  assert.deepEqual(thick.fixed.data, thin.fixed.data);
  // a voxel of the thick image: the mean over its 9 mm of the source seen through the same map
  const sw = worldToIndexMatrix(source);
  const m = thick.moving;
  const [i, j, k] = [Math.floor(m.size[0] / 2), Math.floor(m.size[1] / 2), Math.floor(m.size[2] / 2)];
  const slab = Math.max(1, Math.round((2 * 9) / Math.min(...source.spacing)));
  let sum = 0;
  for (let q = 0; q < slab; q++) {
    const p = indexToWorld(m, [i, j, k + (q + 0.5) / slab - 0.5]);
    sum += sampleLinear(source, applyAffine(sw, thick.movingToFixed(p)));
  }
  assert.ok(Math.abs(m.data[i + m.size[0] * (j + m.size[1] * k)] - sum / slab) < 1e-3);
  // and it is not the thin image's value at the slice centre (the slab blurs along z)
  const centre = sampleLinear(source, applyAffine(sw, thick.movingToFixed(indexToWorld(m, [i, j, k]))));
  let differ = 0;
  for (let q = 0; q < m.data.length; q += 97) {
    const ii = q % m.size[0];
    const jj = Math.floor(q / m.size[0]) % m.size[1];
    const kk = Math.floor(q / (m.size[0] * m.size[1]));
    const c = sampleLinear(source, applyAffine(sw, thick.movingToFixed(indexToWorld(m, [ii, jj, kk]))));
    if (Math.abs(c - m.data[q]) > 20) differ++;
  }
  assert.ok(
    Number.isFinite(centre) && differ > 50,
    `${differ} sampled voxels differ from their slice centres by > 20 HU`,
  );
});

test('NCC baseline: finds points of a synthetic pair within a few mm', async (t) => {
  const source = await readVolume(EXAMPLE_CT);
  const pair = makeSyntheticPair(source, { seed: 11, spacingMm: 3 });
  const pts = bodyPoints(pair, 30, 2);
  const t0 = performance.now();
  const m = nccMatch(pair.fixed, pair.moving, pts);
  t.diagnostic(`30 points in ${(performance.now() - t0).toFixed(0)} ms`);
  const errs = m.map((r, n) => Math.hypot(...r.location.map((v, a) => v - pair.truth(pts[n])[a])));
  const sorted = [...errs].sort((a, b) => a - b);
  t.diagnostic(`errors: median ${sorted[15].toFixed(1)} mm, within 10 mm ${errs.filter((e) => e <= 10).length}/30`);
  assert.ok(sorted[15] < 5);
  assert.ok(m.every((r) => r.score <= 1 + 1e-9));
});

test('NCC baseline: a scan matched with itself lands on the same points (refined off the search grid)', async (t) => {
  // 2.7 x 2.7 x 5 mm voxels, points between slices: the template and the 2 mm search grid do not line up
  const ct = await readVolume(dataPath('elastix/Testing/Data/3DCT_lung_baseline_small.mha'));
  const pts = gridPointsInMask(bodyMask(ct), { spacingMm: 16, maxPoints: 60 });
  const m = nccMatch(ct, ct, pts, { coarseSpacingMm: 6, fineSpacingMm: 2 });
  const off = m.map((r, n) => Math.hypot(...r.location.map((v, a) => v - pts[n][a]))).sort((a, b) => a - b);
  const median = off[off.length >> 1];
  t.diagnostic(
    `${pts.length} points: offset median ${median.toFixed(3)} mm, largest ${off[off.length - 1].toFixed(3)} mm`,
  );
  // (median 0.94 mm before the refinement; with the grid's best as the only start, a tenth over 5 mm)
  assert.ok(median < 0.05, `median offset ${median} mm`);
  assert.ok(off[off.length - 1] < 0.5, `largest offset ${off[off.length - 1]} mm`);
});
