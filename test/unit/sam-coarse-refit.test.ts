/**
 * SAM-coarse's affine refit (sam-coarse.ts refitAffine): on a real CT pair related by a known affine
 * alone, the stage is handed that affine with a 3 degree rotation error (what the affine stage can
 * leave under large motion). The control grid's smoothness term shrinks a linear correction; refitted
 * first, the linear part is recovered whole and the stage's map lands on the truth.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSyntheticPair, insideGrid } from '../../main/engine/bench/synthetic-pair.ts';
import { bodyPoints, tre } from '../../main/engine/bench/reg-metrics.ts';
import {
  affineApply,
  affineCompose,
  affineFromParts,
  fitAffineLeastSquares,
} from '../../main/engine/register/affine-fit.ts';
import { refitAffineOf, samCoarse } from '../../main/engine/register/sam-coarse.ts';
import { sampleField } from '../../main/engine/register/field/field.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';
import { dataPath } from '../helpers.ts';

test('SAM-coarse refits the linear part the affine left: a 3 degree rotation error recovered', async () => {
  const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
  const pair = makeSyntheticPair(ct, {
    seed: 4,
    spacingMm: 4,
    maxRotationDeg: 8,
    maxTranslationMm: 10,
    bumps: 0,
    noiseHu: 10,
  });
  const mask = bodyMask(pair.fixed);
  const points = bodyPoints(mask, 5).filter((p) => insideGrid(pair.moving, pair.truth(p), 8));
  assert.ok(points.length > 200, `${points.length} points`);
  // the truth is affine (no bumps): its matrix from the points, exactly
  const truth = fitAffineLeastSquares(points, points.map(pair.truth));
  if (typeof truth === 'string') throw new Error(truth);
  const centre = points.reduce((c, p) => c.map((x, a) => x + p[a] / points.length) as Vec3, [0, 0, 0] as Vec3);
  const given = affineCompose(truth, affineFromParts({ rotationDeg: [3, 0, 0], centre }));
  const before = tre((p) => affineApply(given, p), pair.truth, points);
  const run = async (refitAffine: boolean) => {
    const r = await samCoarse(pair.fixed, pair.moving, given, { kind: 'ncc' }, mask, { gridMm: 12, refitAffine });
    const map = (p: Vec3): Vec3 => {
      const a = affineApply(given, p);
      const v = sampleField(r.grid, p);
      return [a[0] + v[0], a[1] + v[1], a[2] + v[2]];
    };
    return { r, error: tre(map, pair.truth, points) };
  };
  const [refit, plain] = [await run(true), await run(false)];
  console.log(
    `TRE with the 3 degree error ${before.mean.toFixed(2)} mm; coarse with the refit ${refit.error.mean.toFixed(2)} ` +
      `(p95 ${refit.error.p95.toFixed(2)}), without ${plain.error.mean.toFixed(2)} (p95 ${plain.error.p95.toFixed(2)}); ` +
      `${refit.r.stats.kept} kept pairs`,
  );
  assert.ok(before.mean > 3, `the error is real: ${before.mean} mm`);
  // the refitted affine is the truth within a fraction of the 4 mm voxels, and so is the stage's map
  const refitted = tre((p) => affineApply(refit.r.refitAffine!, p), pair.truth, points);
  assert.ok(refitted.mean < 0.5, `refitted affine ${refitted.mean} mm from the truth`);
  assert.ok(refit.error.mean < 0.5, `coarse with the refit ${refit.error.mean} mm`);
  assert.ok(refit.error.mean < 0.7 * plain.error.mean, `${refit.error.mean} vs ${plain.error.mean} without`);
  assert.equal(plain.r.refitAffine, undefined);
});

test('the refit is not used where it is no patient-to-patient transform or moves the image far from the affine', () => {
  const fixed = {
    size: [100, 100, 50] as Vec3,
    spacing: [2, 2, 2] as Vec3,
    origin: [-100, -100, -50] as Vec3,
    direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] as [number, number, number, number, number, number, number, number, number],
  };
  const A = affineFromParts({ rotationDeg: [0, 0, 0] });
  const pts: Vec3[] = [];
  for (let x = -60; x <= 60; x += 20)
    for (let y = -60; y <= 60; y += 20) for (let z = -30; z <= 30; z += 20) pts.push([x, y, z]);
  const pairs = (B: ReturnType<typeof affineFromParts>) =>
    pts.map((p) => ({
      fixed: p,
      moving: affineApply(B, p),
      score: 1,
      cycleErrorMm: 0,
      kept: true,
      residualMm: NaN,
      inlier: false,
    }));
  // 2 degrees about the body centre: a correction the stage makes
  const small = refitAffineOf(pairs(affineFromParts({ rotationDeg: [2, 0, 0] })), A, fixed, 32);
  assert.ok('matrix' in small, JSON.stringify(small));
  // 20 degrees: the image's corners move ~60 mm
  const far = refitAffineOf(pairs(affineFromParts({ rotationDeg: [0, 0, 20] })), A, fixed, 32);
  assert.ok('rejected' in far && /moves a corner/.test(far.rejected), JSON.stringify(far));
  // a mirror
  const mirror = refitAffineOf(pairs(affineFromParts({ scales: [-1, 1, 1] })), A, fixed, 1000);
  assert.ok('rejected' in mirror && /mirror/.test(mirror.rejected), JSON.stringify(mirror));
  // all pairs in one plane: no affine
  const flat = refitAffineOf(
    pairs(A).filter((p) => p.fixed[2] === -10),
    A,
    fixed,
    32,
  );
  assert.ok('rejected' in flat, JSON.stringify(flat));
});
