// SAM-affine end to end (register/sam-affine.ts).
//
// 1. The FITTING PIPELINE, not SAM's accuracy: a synthetic pair from a real CT related by a known
//    affine only (bench/synthetic-pair.ts, no deformation), with a stand-in matcher that returns the
//    truth plus 1 mm noise for 60% of the grid points and wrong matches for the rest (30% confident
//    confident pairs are gross outliers; low-score and cycle-rejected ones too). Grid, filters, robust fit, residuals,
//    inliers, CSV, progress and cancellation are checked against the truth. (No trained SAM model
//    exists yet; a random-initialised network matches poorly, so it cannot test accuracy.)
// 2. The default SAM matcher's plumbing: a CT and the same CT moved by a known shift, whose
//    embeddings are the same up to that shift (one tiny random-init network run); samAffine with the
//    built-in matchPoints (cycle check on) recovers the shift. This checks template/query order and
//    geometry, not anatomical matching.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeSyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import { affineApply, affineDecompose, affineInvert, type Affine3x4 } from '../../main/engine/register/affine-fit.ts';
import {
  samAffine,
  samAffineFromPairs,
  writePairsCsv,
  type MatchedPoint,
  type SamAffineProgress,
} from '../../main/engine/register/sam-affine.ts';
import { embedVolume, type EmbeddedVolume } from '../../main/engine/sam/embed-volume.ts';
import { createRng } from '../../main/engine/train/rng.ts';
import { cropIndex } from '../../main/engine/volume/crop.ts';
import { worldToIndex } from '../../main/engine/volume/geometry.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';
import { EXAMPLE_CT, exampleCt2mm, tinyEngine } from './embed-fixtures.ts';
import { tempDir } from '../helpers.ts';

const dist = (a: Vec3, b: Vec3) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

/** RMS distance between two affines over points, mm. */
const rmsBetween = (a: Affine3x4, b: Affine3x4, pts: Vec3[]) =>
  Math.sqrt(pts.reduce((s, p) => s + dist(affineApply(a, p), affineApply(b, p)) ** 2, 0) / pts.length);

test('SAM-affine pipeline (stand-in matcher, NOT SAM accuracy): known affine recovered despite 30% outliers', async (t) => {
  const source = await readVolume(EXAMPLE_CT);
  const pair = makeSyntheticPair(source, {
    seed: 11,
    bumps: 0,
    spacingMm: 3,
    maxRotationDeg: 12,
    maxScale: 0.1,
    maxShear: 0.05,
    maxTranslationMm: 25,
  });
  // with no deformation the truth is the inverse of the resampling map y -> L (y - c) + c + t
  const { linear: L, centre: c, translation: tr } = pair.params;
  const m2f: Affine3x4 = [0, 1, 2].flatMap((r) => {
    const row = [L[r * 3], L[r * 3 + 1], L[r * 3 + 2]];
    return [...row, c[r] + tr[r] - (row[0] * c[0] + row[1] * c[1] + row[2] * c[2])];
  }) as Affine3x4;
  const truth = affineInvert(m2f);
  const d = affineDecompose(truth);
  t.diagnostic(
    `truth: rotation ${d.rotationAngleDeg.toFixed(1)} deg, scales ${d.scales.map((s) => s.toFixed(3))}, ` +
      `translation ${d.translation.map((x) => x.toFixed(1))} mm`,
  );
  const p0: Vec3 = [10, -20, 30];
  assert.ok(dist(affineApply(truth, p0), pair.truth(p0)) < 1e-6);

  const movingMask = bodyMask(pair.moving);
  const insideMoving = (y: Vec3) =>
    worldToIndex(pair.moving, y).every((v, a) => v >= 0 && v <= pair.moving.size[a] - 1);
  const rng = createRng(4);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const kind = new Map<string, string>();
  const match = async (pts: Vec3[]): Promise<MatchedPoint[]> =>
    pts.map((p) => {
      const y = affineApply(truth, p);
      const u = rng.next();
      let r: MatchedPoint;
      if (!insideMoving(y)) r = { location: [0, 0, 0], score: 0.9, accepted: false, cycleErrorMm: 40 };
      else if (u < 0.58)
        r = { location: y.map((v) => v + gauss()) as Vec3, score: 0.8 + 0.2 * rng.next(), accepted: true };
      else {
        // a wrong match 20 to 120 mm away, inside the moving image
        let w: Vec3;
        do {
          const dir = [gauss(), gauss(), gauss()];
          const len = rng.uniform(20, 120) / Math.hypot(...dir);
          w = y.map((v, a) => v + dir[a] * len) as Vec3;
        } while (!insideMoving(w));
        if (u < 0.9) r = { location: w, score: 0.75 + 0.2 * rng.next(), accepted: true };
        else if (u < 0.95) r = { location: w, score: 0.4, accepted: true };
        else r = { location: w, score: 0.9, accepted: false, cycleErrorMm: 35 };
      }
      kind.set(p.join(), u < 0.58 && r.accepted ? 'good' : 'bad');
      return r;
    });
  const progress: SamAffineProgress[] = [];
  const t0 = performance.now();
  const res = await samAffine(pair.fixed, pair.moving, null, {
    match,
    movingMask,
    chunk: 200,
    onProgress: (p) => progress.push(p),
  });
  const ms = performance.now() - t0;
  const s = res.stats;
  const badInliers = res.pairs.filter((p) => p.inlier && kind.get(p.fixed.join()) === 'bad').length;
  t.diagnostic(
    `${s.pairs} grid points, ${s.kept} kept, ${s.inliers} inliers (${badInliers} of them wrong matches), ` +
      `RMS ${s.rmsMm.toFixed(2)} mm, median ${s.medianResidualMm.toFixed(2)}, p95 ${s.p95ResidualMm.toFixed(2)} mm; ${ms.toFixed(0)} ms`,
  );
  // the transform, judged over the fixed body grid points: within 0.5 mm RMS of the truth
  const body = res.pairs.map((p) => p.fixed);
  const err = rmsBetween(res.affine, truth, body);
  t.diagnostic(`transform RMS error over the body: ${err.toFixed(3)} mm`);
  assert.ok(err < 0.5, `${err}`);
  // grid points: on the 16 mm lattice, in the fixed body; filters applied; wrong matches kept out
  assert.ok(s.pairs > 300, `${s.pairs}`);
  assert.ok(body.every((p) => p.every((v) => Math.abs(v / 16 - Math.round(v / 16)) < 1e-9)));
  assert.ok(res.pairs.every((p) => !p.kept || (p.accepted && p.score >= 0.7)));
  assert.ok(res.pairs.some((p) => p.accepted && p.score < 0.7) && res.pairs.some((p) => !p.accepted));
  const keptBad = res.pairs.filter((p) => p.kept && kind.get(p.fixed.join()) === 'bad').length;
  assert.ok(keptBad >= 0.3 * s.kept, `only ${keptBad} of ${s.kept} kept pairs are outliers`);
  assert.equal(badInliers, 0);
  assert.ok(s.inliers >= 0.9 * res.pairs.filter((p) => p.kept && kind.get(p.fixed.join()) === 'good').length);
  assert.ok(s.rmsMm > 1.2 && s.rmsMm < 2.2, `${s.rmsMm}`); // 1 mm per axis: ~1.7 mm in 3D
  for (const p of res.pairs)
    assert.ok(Math.abs(p.residualMm - dist(affineApply(res.affine, p.fixed), p.moving)) < 1e-9);
  // progress: grid, every chunk of matches, fit
  assert.deepEqual(
    progress.filter((p) => p.stage === 'match').map((p) => p.done),
    [...Array.from({ length: Math.ceil(s.pairs / 200) }, (_, i) => i * 200), s.pairs],
  );
  assert.deepEqual(progress.at(-1), { stage: 'fit', done: 1, total: 1 });
  // the same pairs through samAffineFromPairs give the same fit
  const again = samAffineFromPairs(res.pairs, { movingMask });
  assert.deepEqual(again.affine, res.affine);
  // CSV
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'pairs.csv');
    writePairsCsv(path, res.pairs);
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    assert.equal(
      lines[0],
      'fixed_x,fixed_y,fixed_z,moving_x,moving_y,moving_z,score,residual_mm,inlier,kept,cycle_error_mm',
    );
    assert.equal(lines.length, s.pairs + 1);
    const rows = lines.slice(1).map((l) => l.split(','));
    assert.equal(rows.filter((r) => r[8] === '1').length, s.inliers);
    assert.equal(rows.filter((r) => r[9] === '1').length, s.kept);
    assert.ok(Math.abs(Number(rows[0][7]) - res.pairs[0].residualMm) < 1e-4);
  } finally {
    cleanup();
  }
  // cancellation and too few confident pairs
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(samAffine(pair.fixed, pair.moving, null, { match, signal: ac.signal }), /cancelled/);
  await assert.rejects(
    samAffine(pair.fixed, pair.moving, null, { match, movingMask, minScore: 1.01 }),
    /points of the fixed body were matched with confidence/,
  );
  await assert.rejects(samAffine(pair.fixed, pair.moving, null, { movingMask }), /no embeddings/);
});

test('SAM-affine with the built-in SAM matcher (plumbing: identical embeddings up to a shift)', async (t) => {
  const ct = await exampleCt2mm();
  const fixed = cropIndex(ct, [40, 20, 60], [136, 116, 124]);
  const SHIFT: Vec3 = [7.3, -11.1, 5.2];
  const moving = { ...fixed, origin: fixed.origin.map((v, a) => v + SHIFT[a]) as Vec3 };
  const engine = await tinyEngine(3);
  const t0 = performance.now();
  const fe = await embedVolume(fixed, engine);
  const t1 = performance.now();
  const shifted = (e: EmbeddedVolume['global']) => ({ ...e, origin: e.origin.map((v, a) => v + SHIFT[a]) as Vec3 });
  const me: EmbeddedVolume = { global: shifted(fe.global), local: shifted(fe.local) };
  const res = await samAffine(fixed, moving, { fixed: fe, moving: me }, { gridMm: 24 });
  const s = res.stats;
  t.diagnostic(
    `embedding ${(t1 - t0).toFixed(0)} ms, samAffine ${(performance.now() - t1).toFixed(0)} ms: ${s.pairs} points, ` +
      `${s.kept} kept, ${s.inliers} inliers, RMS ${s.rmsMm.toFixed(2)} mm`,
  );
  const shift: Affine3x4 = [1, 0, 0, SHIFT[0], 0, 1, 0, SHIFT[1], 0, 0, 1, SHIFT[2]];
  const err = rmsBetween(
    res.affine,
    shift,
    res.pairs.map((p) => p.fixed),
  );
  t.diagnostic(`transform RMS error: ${err.toFixed(3)} mm`);
  // a random-initialised network matches even identical embeddings poorly (~60% within 4 mm): the
  // cycle check and the robust fit must cope
  assert.ok(s.pairs > 200 && s.kept >= 0.3 * s.pairs && s.inliers >= 0.7 * s.kept, `${s.inliers}/${s.kept}/${s.pairs}`);
  assert.ok(err < 1.5, `${err}`);
});

test('SAM-affine refuses an affine no two patients relate by (mirror, extreme scale, pairs that agree with no affine)', () => {
  const rng = createRng(5);
  const pts: Vec3[] = Array.from(
    { length: 200 },
    () => [rng.next() * 300 - 150, rng.next() * 250 - 125, rng.next() * 300] as Vec3,
  );
  const pairsBy = (map: (p: Vec3) => Vec3) =>
    pts.map((p) => ({ fixed: p, moving: map(p), score: 0.9, accepted: true }));
  // plausible: 10 degrees about z, 8 % larger, shifted
  const c = Math.cos(0.17);
  const s = Math.sin(0.17);
  const ok: Affine3x4 = [1.08 * c, -s, 0, 12, s, 1.08 * c, 0, -30, 0, 0, 0.95, 40];
  // a child against an adult (0.6), and a stretch of 1.45 and 0.7 along axes 45 degrees off the image's
  const diag = (a: number, b: number) => [(a + b) / 2, (a - b) / 2, 0, 0, (a - b) / 2, (a + b) / 2, 0, 0, 0, 0, 1, 0];
  for (const A of [ok, [0.6, 0, 0, 5, 0, 0.6, 0, 0, 0, 0, 0.6, -20], diag(1.45, 0.7)] as Affine3x4[]) {
    const r = samAffineFromPairs(pairsBy((p) => affineApply(A, p)));
    assert.ok(rmsBetween(r.affine, A, pts) < 1e-6);
  }
  const refused: [string, (p: Vec3) => Vec3, RegExp][] = [
    ['mirrored left-right', (p) => affineApply([-1, 0, 0, 5, 0, 1, 0, 0, 0, 0, 1, 0], p), /mirror/],
    [
      'a third of the size',
      (p) => affineApply([0.33, 0, 0, 0, 0, 0.33, 0, 0, 0, 0, 0.33, 0], p),
      /not a patient-to-patient transform \(principal stretches 0\.33, 0\.33, 0\.33/,
    ],
    [
      'stretched 3 to 1',
      (p) => affineApply([1.5, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 1, 0], p),
      /principal stretches 0\.50, 1\.00, 1\.50/,
    ],
    // unrelated images: matches scattered at random
    [
      'random matches',
      () => [rng.next() * 300, rng.next() * 300, rng.next() * 300] as Vec3,
      /residual RMS|principal stretches|mirror/,
    ],
  ];
  for (const [what, map, why] of refused)
    assert.throws(
      () => samAffineFromPairs(pairsBy(map)),
      (e: Error) => why.test(e.message),
      what,
    );
});
