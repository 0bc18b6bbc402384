// Residual refit (review/refit.ts): excluding planted outlier pairs moves the affine toward the
// truth; a refit equals fitting the remaining pairs directly; re-included pairs are fitted; the
// histogram counts every pair once; 2000 pairs refit (the time is printed: speed targets belong to
// benchmarks, not to unit tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refitAffine } from '../../main/engine/review/refit.ts';
import {
  affineApply,
  affineFromParts,
  fitAffineRobust,
  type Affine3x4,
} from '../../main/engine/register/affine-fit.ts';
import type { SamAffinePair } from '../../main/engine/register/sam-affine.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';
import { rng } from '../helpers.ts';

const TRUTH = affineFromParts({
  rotationDeg: [4, -3, 6],
  scales: [1.04, 0.97, 1.02],
  shear: [0.02, -0.01, 0.015],
  translation: [8, -12, 5],
  centre: [0, -150, 250],
});

/** 2000 pairs in a 300 x 250 x 300 mm box, 1 mm noise; planted: ids of the corrupted pairs. */
function makePairs(kind: 'bias' | 'gross', seed = 1): { pairs: SamAffinePair[]; planted: number[] } {
  const r = rng(seed);
  const g = () => (r() + r() + r() + r() - 2) * 1.7; // ~N(0, 1) mm
  const pairs: SamAffinePair[] = [];
  const planted: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const x: Vec3 = [-150 + 300 * r(), -275 + 250 * r(), 100 + 300 * r()];
    const y = affineApply(TRUTH, x).map((v) => v + g()) as Vec3;
    if (kind === 'bias' && x[0] > 60 && x[2] > 250) {
      // a consistent 4 mm error in one corner: inside any robust fit's inlier band
      y[2] += 4;
      planted.push(i);
    } else if (kind === 'gross' && r() < 0.2) {
      y[0] += 20 + 20 * r(); // wrong matches, all to one side
      y[1] += (r() - 0.5) * 40;
      planted.push(i);
    }
    pairs.push({ fixed: x, moving: y, score: 0.9, accepted: true, kept: true, residualMm: NaN, inlier: false });
  }
  return { pairs, planted };
}

/** RMS distance between two affines over a grid of the box. */
function affineErrorMm(a: Affine3x4, b: Affine3x4): number {
  let s = 0;
  let n = 0;
  for (let x = -150; x <= 150; x += 30)
    for (let y = -275; y <= -25; y += 25)
      for (let z = 100; z <= 400; z += 30) {
        const p = affineApply(a, [x, y, z]);
        const q = affineApply(b, [x, y, z]);
        s += (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 + (p[2] - q[2]) ** 2;
        n++;
      }
  return Math.sqrt(s / n);
}

test('refit: excluding planted biased pairs moves the robust fit toward the truth; equals a direct fit', (t) => {
  const { pairs, planted } = makePairs('bias');
  const before = refitAffine(pairs);
  const after = refitAffine(pairs, { exclude: planted });
  const eb = affineErrorMm(before.affine, TRUTH);
  const ea = affineErrorMm(after.affine, TRUTH);
  t.diagnostic(
    `${planted.length} biased pairs: error to the truth ${eb.toFixed(3)} mm with them, ${ea.toFixed(3)} mm without`,
  );
  assert.ok(planted.length > 100);
  assert.ok(ea < eb / 2 && ea < 0.3, `${ea} vs ${eb}`);
  // equals fitting the remaining pairs directly (same method and seed)
  const keep = pairs.filter((_, i) => !planted.includes(i));
  const direct = fitAffineRobust(
    keep.map((p) => p.fixed),
    keep.map((p) => p.moving),
    { method: 'ransac+irls' },
  );
  assert.deepEqual(after.affine, direct.matrix);
  assert.deepEqual(
    after.used,
    pairs.map((_, i) => i).filter((i) => !planted.includes(i)),
  );
  // residuals and flags of every pair under the new affine
  const resid = after.pairs.map((p) =>
    Math.hypot(...affineApply(after.affine, p.fixed).map((v, a) => v - p.moving[a])),
  );
  after.pairs.forEach((p, i) => assert.ok(Math.abs(p.residualMm - resid[i]) < 1e-9));
  for (const i of planted) assert.ok(!after.pairs[i].kept && !after.pairs[i].inlier);
  assert.equal(after.stats.inliers, after.pairs.filter((p) => p.inlier).length);
  // the histogram counts every pair once; excluded pairs in their own row
  const h = after.histogram;
  const total = (a: number[]) => a.reduce((x, y) => x + y, 0);
  assert.equal(total(h.fitted) + total(h.excluded), pairs.length);
  assert.equal(total(h.excluded), planted.length);
  assert.equal(total(h.inliers), after.stats.inliers);
  assert.equal(h.edgesMm.length, h.fitted.length + 1);
  // the excluded biased pairs now sit ~4 mm off: their histogram mass is above 2 mm
  const excludedLow = h.excluded.slice(0, 2).reduce((x, y) => x + y, 0);
  assert.ok(excludedLow < planted.length * 0.2);
});

test('refit: plain least squares pulled by gross outliers, fixed by excluding them; include re-adds pairs', () => {
  const { pairs, planted } = makePairs('gross', 2);
  const before = refitAffine(pairs, { method: 'lsq' });
  const after = refitAffine(pairs, { method: 'lsq', exclude: planted });
  const eb = affineErrorMm(before.affine, TRUTH);
  const ea = affineErrorMm(after.affine, TRUTH);
  assert.ok(eb > 1 && ea < 0.2, `${eb} -> ${ea}`);
  // pairs not kept by SAM-affine's filters are only fitted when included
  const dropped = pairs.map((p, i) => (planted.includes(i) ? { ...p, kept: false } : p));
  const base = refitAffine(dropped, { method: 'lsq' });
  assert.deepEqual(base.affine, after.affine);
  const re = refitAffine(dropped, { method: 'lsq', include: planted.slice(0, 5) });
  assert.equal(re.used.length, pairs.length - planted.length + 5);
  // exclusion wins over inclusion; out-of-range indices are refused
  const both = refitAffine(dropped, { method: 'lsq', include: [planted[0]], exclude: [planted[0]] });
  assert.deepEqual(both.affine, base.affine);
  assert.throws(() => refitAffine(pairs, { exclude: [2000] }), /pair index 2000/);
  assert.throws(() => refitAffine(pairs, { exclude: pairs.map((_, i) => i).slice(3) }), /only 3 pairs left/);
});

test('refit: 2000 pairs, every exclusion set refits to a finite affine (times printed)', (t) => {
  const { pairs, planted } = makePairs('gross', 3);
  refitAffine(pairs); // warm up
  const times: number[] = [];
  for (let k = 0; k < 5; k++) {
    const r = refitAffine(pairs, { exclude: planted.slice(0, 10 * k) });
    assert.ok(r.affine.every(Number.isFinite), `exclusion set ${k}: ${r.affine}`);
    times.push(r.ms);
  }
  t.diagnostic(`refit times (ms): ${times.map((x) => x.toFixed(1)).join(' ')}`);
});
