// Review session (review/session.ts) on a known-affine pair from real CT (6 mm, no model): readout,
// overlays, field statistics and report from one place; a refit that drops planted outliers moves
// the transform to the truth and, applied, replaces field, warped image and caches; deformable
// results refuse to have their affine replaced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import { affineApply } from '../../main/engine/register/affine-fit.ts';
import { fieldFromAffine } from '../../main/engine/register/field/field.ts';
import { samAffineFromPairs } from '../../main/engine/register/sam-affine.ts';
import { ReviewSession } from '../../main/engine/review/session.ts';
import { indexToWorld } from '../../main/engine/volume/geometry.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';
import { rng } from '../helpers.ts';
import { EXAMPLE_CT } from './embed-fixtures.ts';

test('review session: refit without planted outliers, applied, moves the transform to the truth', async (t) => {
  const ct = await readVolume(EXAMPLE_CT);
  const pair = makeSyntheticPair(ct, { seed: 3, bumps: 0, maxDeformationMm: 0, noiseHu: 5, spacingMm: 6 });

  const r = rng(5);
  const cands = [];
  const planted: number[] = [];
  for (let n = 0; n < 400; n++) {
    const x = indexToWorld(pair.fixed, [5 + r() * 50, 5 + r() * 40, 5 + r() * 45]);
    const y = pair.truth(x).map((v) => v + 4 * (r() - 0.5)) as Vec3;
    if (x[2] > 300 && n % 2 === 0) {
      y[0] += 4; // consistent error in the upper part: inside the robust fit's inlier band
      planted.push(n);
    }
    cands.push({ fixed: x, moving: y, score: 0.9, accepted: true });
  }
  const fit = samAffineFromPairs(cands);
  const s = new ReviewSession(pair.fixed, pair.moving, {
    dir: 'memory',
    warped: null,
    field: fieldFromAffine(pair.fixed, fit.affine),
    fieldSource: 'displacement.nii.gz',
    affine: fit.affine,
    pairs: fit.pairs,
    qa: { stages: ['affine'] },
    files: [],
  });
  const probe = indexToWorld(pair.fixed, [30, 25, 40]);
  /** RMS error of the session's transform (through the readout) over points of the fixed grid. */
  const err = () => {
    let sum = 0;
    let n = 0;
    for (let k = 5; k < 55; k += 10)
      for (let j = 5; j < 45; j += 10)
        for (let i = 5; i < 55; i += 10) {
          const ro = s.readout(indexToWorld(pair.fixed, [i, j, k]));
          const q = pair.truth(ro.point);
          sum += ro.mappedPoint.reduce((acc, v, a) => acc + (v - q[a]) ** 2, 0);
          n++;
        }
    return Math.sqrt(sum / n);
  };
  const before = err();
  const stats0 = s.fieldStats();
  assert.equal(s.fieldStats(), stats0, 'cached');
  assert.equal(s.confidence(), null);
  await assert.rejects(s.track(probe), /needs the SAM embeddings/);
  const refit = s.refit({ exclude: planted });
  s.applyRefit(refit);
  const after = err();
  t.diagnostic(
    `${planted.length} biased pairs; transform RMS error ${before.toFixed(3)} mm -> ${after.toFixed(3)} mm after the refit`,
  );
  assert.ok(planted.length > 30);
  assert.ok(after < before / 2 && after < 0.5, `${before} -> ${after}`);
  assert.notEqual(s.fieldStats(), stats0, 'caches recomputed after a refit');
  // the readout follows the new affine; the warped image exists now
  const ro = s.readout(probe);
  const want = affineApply(refit.affine, ro.point);
  for (let a = 0; a < 3; a++) assert.ok(Math.abs(ro.mappedPoint[a] - want[a]) < 1e-3);
  assert.ok(ro.warpedHu !== null && Math.abs(ro.warpedHu - ro.movingHu) <= 1);
  // overlays and the report from the session
  assert.ok(s.glyphs({ orientation: 'coronal', every: 4, bodyOnly: true }).glyphs.length > 10);
  assert.ok(s.gridLines({ orientation: 'sagittal', every: 10 }).lines.length > 4);
  const out = s.report(null, { images: false });
  assert.equal(out.report.jacobian.folded, 0);
  assert.equal(out.report.residuals!.pairs, 400);
  assert.equal(out.fieldStats, s.fieldStats());
  // a deformable result cannot have its affine replaced
  const d = new ReviewSession(pair.fixed, pair.moving, {
    ...s.result,
    fieldSource: 'displacement.nii.gz',
    qa: { stages: ['affine', 'deform'] },
  });
  assert.throws(() => d.applyRefit(refit), /re-run sam register/);
});
