// Affine fitting (register/affine-fit.ts): exact recovery from noise-free pairs, accuracy with 1 mm
// noise, robustness of IRLS and RANSAC to 30% and 40% gross outliers (where plain least squares
// fails), refusal of degenerate point sets, and the 3x4 helpers (apply, invert, compose, decompose).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  affineApply,
  affineCompose,
  affineDecompose,
  affineFromParts,
  affineInvert,
  fitAffineLeastSquares,
  fitAffineRobust,
  type Affine3x4,
  type FitMethod,
} from '../../main/engine/register/affine-fit.ts';
import { createRng, type Rng } from '../../main/engine/train/rng.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';

/** Rotation ~15 degrees, scales up to 15%, shear, ~30 mm shift, about a body-like centre. */
const TRUTH = affineFromParts({
  rotationDeg: [9, -8, 9],
  scales: [1.15, 0.87, 1.08],
  shear: [0.06, -0.04, 0.05],
  translation: [30, -22, 18],
  centre: [10, -40, 150],
});

const gauss = (rng: Rng) => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());

/** n points in a 300 x 220 x 400 mm body-sized box. */
function cloud(n: number, seed: number): Vec3[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => [rng.uniform(-140, 160), rng.uniform(-150, 70), rng.uniform(-50, 350)]);
}

/** A 7 x 7 x 7 grid of test points over the same box: where the fitted transform is judged. */
const TEST_GRID: Vec3[] = [];
for (let i = 0; i < 7; i++)
  for (let j = 0; j < 7; j++)
    for (let k = 0; k < 7; k++) TEST_GRID.push([-140 + 50 * i, -150 + (220 / 6) * j, -50 + (400 / 6) * k]);

/** RMS distance between two transforms over TEST_GRID, mm. */
function rmsError(a: Affine3x4, b: Affine3x4): number {
  let s = 0;
  for (const p of TEST_GRID) {
    const x = affineApply(a, p);
    const y = affineApply(b, p);
    s += (x[0] - y[0]) ** 2 + (x[1] - y[1]) ** 2 + (x[2] - y[2]) ** 2;
  }
  return Math.sqrt(s / TEST_GRID.length);
}

/**
 * Moving points: truth + Gaussian noise (sd per axis), a share of them replaced by gross outliers:
 * 'random' 20 to 150 mm off the truth in a random direction; 'consistent' all matched 40 mm up the
 * body (the wrong vertebra: outliers that agree with each other, the hard case for M-estimators).
 */
function pairs(n: number, noiseMm: number, outlierShare: number, seed: number, kind = 'random') {
  const rng = createRng(seed + 1000);
  const fixed = cloud(n, seed);
  const outlier = new Set(rng.sample(n, Math.round(n * outlierShare)));
  const moving = fixed.map((p, i): Vec3 => {
    const y = affineApply(TRUTH, p);
    if (outlier.has(i) && kind === 'consistent')
      return affineApply(TRUTH, [p[0], p[1], p[2] + 40]).map((v) => v + noiseMm * gauss(rng)) as Vec3;
    if (outlier.has(i)) {
      // a wrong match: 20 to 150 mm away from the truth in a random direction
      const d = [gauss(rng), gauss(rng), gauss(rng)];
      const dn = Math.hypot(...d);
      const len = rng.uniform(20, 150);
      return y.map((v, a) => v + (d[a] / dn) * len) as Vec3;
    }
    return y.map((v) => v + noiseMm * gauss(rng)) as Vec3;
  });
  return { fixed, moving, outlier };
}

test('noise-free pairs of a known affine: recovered exactly (1e-9) by every method', () => {
  const { fixed, moving } = pairs(60, 0, 0, 1);
  for (const method of ['lsq', 'irls', 'ransac', 'ransac+irls'] as FitMethod[]) {
    const r = fitAffineRobust(fixed, moving, { method });
    for (let k = 0; k < 12; k++) assert.ok(Math.abs(r.matrix[k] - TRUTH[k]) < 1e-9, `${method} [${k}]`);
    assert.ok(r.inliers.every(Boolean), method);
    assert.ok(r.rmsMm < 1e-9 && Math.max(...r.residuals) < 1e-9, `${method} rms ${r.rmsMm}`);
  }
  // the decomposition gives back the parts
  const d = affineDecompose(TRUTH);
  const close = (a: number[], b: number[], tol: number) => a.every((v, i) => Math.abs(v - b[i]) < tol);
  assert.ok(close(d.rotationDeg, [9, -8, 9], 1e-9), `${d.rotationDeg}`);
  assert.ok(close(d.scales, [1.15, 0.87, 1.08], 1e-12));
  assert.ok(close(d.shear, [0.06, -0.04, 0.05], 1e-12));
  assert.ok(d.rotationAngleDeg > 12 && d.rotationAngleDeg < 16 && !d.reflection);
});

test('with 1 mm noise the fitted transform is well within 0.5 mm RMS of the truth', (t) => {
  const { fixed, moving } = pairs(300, 1, 0, 2);
  for (const method of ['lsq', 'irls', 'ransac+irls'] as FitMethod[]) {
    const r = fitAffineRobust(fixed, moving, { method });
    const e = rmsError(r.matrix, TRUTH);
    t.diagnostic(`${method}: transform RMS error ${e.toFixed(3)} mm, residual RMS ${r.rmsMm.toFixed(2)} mm`);
    assert.ok(e < 0.25, `${method}: ${e}`);
    assert.ok(r.rmsMm > 1.3 && r.rmsMm < 2.2, `${method}: residual RMS ${r.rmsMm} (3D noise ~1.73 mm)`);
  }
});

for (const [share, kind] of [
  [0.3, 'random'],
  [0.4, 'random'],
  [0.4, 'consistent'],
] as const) {
  test(`${share * 100}% ${kind} gross outliers: IRLS and RANSAC recover the transform, least squares does not`, (t) => {
    const { fixed, moving, outlier } = pairs(400, 1, share, 3, kind);
    const lsq = fitAffineRobust(fixed, moving, { method: 'lsq' });
    const lsqErr = rmsError(lsq.matrix, TRUTH);
    t.diagnostic(`lsq: ${lsqErr.toFixed(2)} mm`);
    assert.ok(lsqErr > 2, `plain least squares should fail: ${lsqErr}`);
    for (const method of ['irls', 'ransac', 'ransac+irls'] as FitMethod[]) {
      const t0 = performance.now();
      const r = fitAffineRobust(fixed, moving, { method });
      const e = rmsError(r.matrix, TRUTH);
      const wrong = r.inliers.filter((v, i) => v === outlier.has(i)).length;
      t.diagnostic(
        `${method}: ${e.toFixed(3)} mm, ${r.inliers.filter(Boolean).length} inliers (${wrong} misclassified), ` +
          `${r.iterations} IRLS iterations, ${r.samples} samples, ${(performance.now() - t0).toFixed(0)} ms`,
      );
      assert.ok(e < 0.5, `${method}: ${e}`);
      // outliers at 20+ mm are never inliers; true inliers (1 mm noise) almost always are
      assert.ok(
        r.inliers.every((v, i) => !(v && outlier.has(i))),
        method,
      );
      assert.ok(wrong <= 3, `${method}: ${wrong} pairs misclassified`);
    }
  });
}

test('degenerate point sets are refused with a clear error', () => {
  const rng = createRng(5);
  const plane: Vec3[] = Array.from({ length: 50 }, () => [rng.uniform(-100, 100), rng.uniform(-100, 100), 42]);
  const tilted: Vec3[] = plane.map(([x, y]) => [x, y, 0.3 * x - 0.2 * y + 5]);
  const line: Vec3[] = Array.from({ length: 50 }, () => rng.uniform(-100, 100)).map((s) => [s, 2 * s + 1, -s]);
  const same: Vec3[] = Array.from({ length: 10 }, () => [1, 2, 3]);
  const to = (ps: Vec3[]) => ps.map((p) => affineApply(TRUTH, p));
  for (const method of ['lsq', 'irls', 'ransac', 'ransac+irls'] as FitMethod[]) {
    assert.throws(() => fitAffineRobust(plane, to(plane), { method }), /coplanar/);
    assert.throws(() => fitAffineRobust(tilted, to(tilted), { method }), /coplanar/);
    assert.throws(() => fitAffineRobust(line, to(line), { method }), /collinear/);
    assert.throws(() => fitAffineRobust(same, to(same), { method }), /coincide/);
    assert.throws(() => fitAffineRobust(plane.slice(0, 3), to(plane.slice(0, 3)), { method }), /at least 4/);
  }
  assert.throws(() => fitAffineLeastSquares(plane, to(plane).slice(1)), /49 moving points/);
  // weights that leave only a plane are refused too
  const mixed = [...plane, ...cloud(5, 9)];
  const w = mixed.map((_, i) => (i < plane.length ? 1 : 0));
  assert.throws(() => fitAffineLeastSquares(mixed, to(mixed), w), /coplanar/);
  assert.doesNotThrow(() => fitAffineLeastSquares(mixed, to(mixed)));
});

test('apply, invert, compose', () => {
  const inv = affineInvert(TRUTH);
  const id = affineCompose(inv, TRUTH);
  [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0].forEach((v, k) => assert.ok(Math.abs(id[k] - v) < 1e-12, `${k}`));
  const p: Vec3 = [12, -30, 80];
  const q = affineApply(TRUTH, p);
  const back = affineApply(inv, q);
  assert.ok(Math.hypot(...back.map((v, a) => v - p[a])) < 1e-10);
  const shift = affineFromParts({ translation: [1, 2, 3] });
  const both = affineApply(affineCompose(shift, TRUTH), p);
  assert.ok(Math.hypot(...both.map((v, a) => v - q[a] - [1, 2, 3][a])) < 1e-12);
  assert.throws(() => affineInvert([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), /singular/);
  // a reflection shows as a negative z scale
  const flip = affineCompose(affineFromParts({ scales: [1, 1, -1] }), TRUTH);
  assert.ok(affineDecompose(flip).reflection && affineDecompose(flip).determinant < 0);
});
