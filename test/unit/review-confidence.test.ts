// Confidence map (review/confidence.ts) on a deformed synthetic pair from real CT with the shipped
// model: after the best affine-only registration the map is clearly worse than with the TRUE field,
// and it flags the voxels the affine maps far off; its summaries equal a direct computation
// (body, thirds, octants, per organ of the TotalSegmentator label map).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { confidenceMap, DEFAULT_CONFIDENCE_THRESHOLD, bodyRegions } from '../../main/engine/review/confidence.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { resample } from '../../main/engine/volume/resample.ts';
import { indexToWorld } from '../../main/engine/volume/geometry.ts';
import { samSimilarityAt } from '../../main/engine/review/readout.ts';
import { sampleField } from '../../main/engine/register/field/field.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';
import { dataPath } from '../helpers.ts';
import { deformedSetup } from './review-fixtures.ts';

test('confidence: affine-only registration scores clearly worse than the true field and is flagged where it is off', async (t) => {
  const s = await deformedSetup();
  const thr = DEFAULT_CONFIDENCE_THRESHOLD;
  const truth = confidenceMap(s.pair.fixed, s.embeddings, s.truthField, { mask: s.mask });
  const affine = confidenceMap(s.pair.fixed, s.embeddings, s.affineField, { mask: s.mask });
  const fmt = (x: number) => x.toFixed(3);
  t.diagnostic(
    `body mean similarity: true field ${fmt(truth.summary.body.meanSimilarity)} (${truth.summary.body.percentBelow.toFixed(2)}% below ${thr}), ` +
      `affine only ${fmt(affine.summary.body.meanSimilarity)} (${affine.summary.body.percentBelow.toFixed(2)}% below)`,
  );
  t.diagnostic(
    `thirds (mean / % below): true ${truth.summary.thirds.map((r) => `${fmt(r.meanSimilarity)}/${r.percentBelow.toFixed(1)}`).join(' ')}; ` +
      `affine ${affine.summary.thirds.map((r) => `${fmt(r.meanSimilarity)}/${r.percentBelow.toFixed(1)}`).join(' ')}`,
  );
  assert.ok(truth.summary.body.meanSimilarity > affine.summary.body.meanSimilarity + 0.015);
  assert.ok(affine.summary.body.percentBelow > 3 * truth.summary.body.percentBelow);
  // the worst third of the affine is flagged, the same third under the true field is not
  const worst = affine.summary.thirds.reduce((a, b) => (b.percentBelow > a.percentBelow ? b : a));
  const same = truth.summary.thirds.find((r) => r.name === worst.name)!;
  t.diagnostic(
    `worst third (${worst.name}): affine ${worst.percentBelow.toFixed(1)}% below, true field ${same.percentBelow.toFixed(1)}%`,
  );
  assert.ok(worst.percentBelow > 5 && same.percentBelow < 2);
  // voxel level: where the affine is > 8 mm off the truth, most voxels are flagged; the true field there is not
  const d = s.truthField.data;
  const a = s.affineField.data;
  let far = 0;
  let flaggedAffine = 0;
  let flaggedTruth = 0;
  for (let n = 0; n < s.mask.data.length; n++) {
    if (!s.mask.data[n] || !Number.isFinite(affine.map.data[n]) || !Number.isFinite(truth.map.data[n])) continue;
    const e = Math.hypot(d[3 * n] - a[3 * n], d[3 * n + 1] - a[3 * n + 1], d[3 * n + 2] - a[3 * n + 2]);
    if (e <= 8) continue;
    far++;
    if (affine.map.data[n] < thr) flaggedAffine++;
    if (truth.map.data[n] < thr) flaggedTruth++;
  }
  t.diagnostic(
    `${far} body voxels > 8 mm off under the affine: ${((100 * flaggedAffine) / far).toFixed(1)}% flagged (affine), ` +
      `${((100 * flaggedTruth) / far).toFixed(1)}% (true field)`,
  );
  assert.ok(far > 5000);
  assert.ok(flaggedAffine / far > 0.5 && flaggedTruth / far < 0.1);
  // lowMask marks exactly the body voxels below the threshold
  for (let n = 0; n < s.mask.data.length; n += 101)
    assert.equal(affine.lowMask.data[n], s.mask.data[n] && affine.map.data[n] < thr ? 1 : 0);
  // the grid value is the readout's SAM similarity at the same points
  const g = affine.grid;
  for (const ijk of [
    [20, 20, 20],
    [45, 38, 40],
    [60, 30, 70],
  ] as Vec3[]) {
    const x = indexToWorld(g, ijk);
    const v = g.data[ijk[0] + g.size[0] * (ijk[1] + g.size[1] * ijk[2])];
    if (!Number.isFinite(v)) continue;
    const uu = sampleField(s.affineField, x);
    const direct = samSimilarityAt(s.embeddings, x, [x[0] + uu[0], x[1] + uu[1], x[2] + uu[2]]);
    assert.ok(Math.abs(direct - v) < 1e-4, `${direct} vs ${v}`);
  }
});

test('confidence summaries equal a direct computation (body, thirds, octants, organs)', async () => {
  const s = await deformedSetup();
  const labels = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_seg.nii.gz'));
  const thr = 0.7;
  const c = confidenceMap(s.pair.fixed, s.embeddings, s.affineField, { mask: s.mask, labels, threshold: thr });
  const lab = resample(labels, s.pair.fixed, { interpolation: 'nearest', fill: 0 });
  const { third, octant } = bodyRegions(s.mask);
  const direct = (keep: (n: number) => boolean) => {
    let n0 = 0;
    let sum = 0;
    let low = 0;
    for (let n = 0; n < c.map.data.length; n++) {
      const v = c.map.data[n];
      if (!s.mask.data[n] || !Number.isFinite(v) || !keep(n)) continue;
      n0++;
      sum += v;
      if (v < thr) low++;
    }
    return { voxels: n0, mean: sum / n0, below: (100 * low) / n0 };
  };
  const same = (r: { voxels: number; meanSimilarity: number; percentBelow: number }, e: ReturnType<typeof direct>) => {
    assert.equal(r.voxels, e.voxels);
    assert.ok(Math.abs(r.meanSimilarity - e.mean) < 1e-9, `${r.meanSimilarity} vs ${e.mean}`);
    assert.ok(Math.abs(r.percentBelow - e.below) < 1e-9);
  };
  same(
    c.summary.body,
    direct(() => true),
  );
  c.summary.thirds.forEach((r, i) =>
    same(
      r,
      direct((n) => third[n] === i),
    ),
  );
  c.summary.octants.forEach((r, i) =>
    same(
      r,
      direct((n) => octant[n] === i),
    ),
  );
  // thirds and octants partition the body
  assert.equal(
    c.summary.thirds.reduce((x, r) => x + r.voxels, 0),
    c.summary.body.voxels,
  );
  assert.equal(
    c.summary.octants.reduce((x, r) => x + r.voxels, 0),
    c.summary.body.voxels,
  );
  // organs: the label map covers the inferior 30 slices; each label's numbers as computed directly
  assert.ok(c.summary.labels.length > 20, `${c.summary.labels.length} labels`);
  for (const r of c.summary.labels)
    same(
      r,
      direct((n) => lab.data[n] === r.label),
    );
  // the thirds follow the superior axis: the superior third's voxels lie above the inferior third's
  const zOf = (n: number) =>
    indexToWorld(s.pair.fixed, [n % 122, Math.floor(n / 122) % 101, Math.floor(n / (122 * 101))])[2];
  let supMin = Infinity;
  let infMax = -Infinity;
  for (let n = 0; n < third.length; n += 37) {
    if (third[n] === 0) supMin = Math.min(supMin, zOf(n));
    if (third[n] === 2) infMax = Math.max(infMax, zOf(n));
  }
  assert.ok(supMin > infMax);
});
