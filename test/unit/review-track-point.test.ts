// Point tracking (review/track-point.ts) with the shipped trained model on a pair made from real CT
// by a known affine: the median accepted match lands within one local embedding voxel (4 mm) of the
// truth (with this small model, ~60% within 4 mm, ~85% within 8 mm); with the registration's transform given, `mapped` is that transform's point and
// `distanceMm` its distance to the match.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSyntheticPair, insideGrid, sampleLinear } from '../../main/engine/bench/synthetic-pair.ts';
import { openModel } from '../../main/cli/commands/match.ts';
import { fieldFromAffine } from '../../main/engine/register/field/field.ts';
import { embedVolume } from '../../main/engine/sam/embed-volume.ts';
import { trackPoint, trackPoints } from '../../main/engine/review/track-point.ts';
import { applyAffine, indexToWorld, worldToIndexMatrix } from '../../main/engine/volume/geometry.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';
import { createRng } from '../../main/engine/train/rng.ts';
import { EXAMPLE_CT } from './embed-fixtures.ts';
import { bestAffine } from './review-fixtures.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import { SHIPPED_MODEL } from './review-fixtures.ts';

test('track point: shipped model on a known-affine pair, matches within ~4 mm of the truth', async (t) => {
  const ct = await readVolume(EXAMPLE_CT);
  const pair = makeSyntheticPair(ct, { seed: 5, bumps: 0, maxDeformationMm: 0, noiseHu: 5 });
  const model = await openModel({ weightsFile: SHIPPED_MODEL }, 'onnx');
  let embeddings;
  try {
    embeddings = {
      fixed: await embedVolume(pair.fixed, model.engine),
      moving: await embedVolume(pair.moving, model.engine),
    };
  } finally {
    await model.engine.dispose();
  }
  // 60 points inside the fixed body whose truth lies 20 mm inside the moving image
  const rng = createRng(4);
  const f = pair.fixed;
  const toIdx = worldToIndexMatrix(f);
  const pts: Vec3[] = [];
  while (pts.length < 60) {
    const p = indexToWorld(f, [
      rng.uniform(0, f.size[0] - 1),
      rng.uniform(0, f.size[1] - 1),
      rng.uniform(0, f.size[2] - 1),
    ]);
    if (sampleLinear(f, applyAffine(toIdx, p)) > -200 && insideGrid(pair.moving, pair.truth(p), 20)) pts.push(p);
  }
  const affine = bestAffine(pair, bodyMask(f)); // the exact affine of the pair (no deformation)
  const field = fieldFromAffine(f, affine);
  const t0 = performance.now();
  const tracked = await trackPoints(embeddings, pts, { field, topK: 20 });
  t.diagnostic(`${pts.length} points tracked in ${(performance.now() - t0).toFixed(0)} ms`);
  const errs = tracked.map((r, n) => Math.hypot(...r.matched.map((v, a) => v - pair.truth(pts[n])[a])));
  const acc = tracked.map((r, n) => ({ r, e: errs[n] })).filter((x) => x.r.accepted);
  const sorted = acc.map((x) => x.e).sort((a, b) => a - b);
  const within4 = sorted.filter((e) => e <= 4).length;
  t.diagnostic(
    `accepted ${acc.length}/${pts.length}; error (mm) median ${sorted[Math.floor(sorted.length / 2)].toFixed(2)}, ` +
      `within 4 mm ${within4}/${acc.length}, within 8 mm ${sorted.filter((e) => e <= 8).length}/${acc.length}; ` +
      `mean score ${(acc.reduce((s, x) => s + x.r.score, 0) / acc.length).toFixed(3)}`,
  );
  // the shipped small model is moderately accurate (CPM@10 70% on real pairs): the median accepted
  // match is within one local embedding voxel, most within two
  assert.ok(acc.length >= 35);
  assert.ok(sorted[Math.floor(sorted.length / 2)] <= 4);
  assert.ok(within4 >= 0.55 * acc.length);
  assert.ok(sorted.filter((e) => e <= 8).length >= 0.8 * acc.length);
  // mapped = the field's point (the truth here); distance = |matched - mapped|
  tracked.forEach((r, n) => {
    const q = pair.truth(pts[n]);
    assert.ok(Math.hypot(...r.mapped!.map((v, a) => v - q[a])) < 1e-2);
    assert.ok(Math.abs(r.distanceMm! - errs[n]) < 1e-2);
    assert.ok(r.score <= 1 + 1e-5 && r.cycleErrorMm !== null);
  });
  // one point, with an affine instead of a field; and without any registration
  const one = await trackPoint(embeddings, pts[0], { affine, topK: 20 });
  assert.ok(
    Math.hypot(...one.matched.map((v, a) => v - tracked[0].matched[a])) < 1e-3,
    `${one.matched} vs ${tracked[0].matched}`,
  );
  assert.ok(Math.abs(one.distanceMm! - tracked[0].distanceMm!) < 1e-3);
  const bare = await trackPoint(embeddings, pts[0]);
  assert.equal(bare.mapped, null);
  assert.equal(bare.distanceMm, null);
  await assert.rejects(trackPoint(embeddings, [NaN, 0, 0]), /not a finite/);
});
