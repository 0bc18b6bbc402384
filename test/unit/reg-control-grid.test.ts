/**
 * The smooth control-grid fit of SAM-coarse (register/control-grid-fit.ts): scattered displacements
 * of a known smooth field, with a share of gross outliers, are fitted back closely; the outliers are
 * rejected by the Tukey rounds; points of weight 0 are only measured.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitControlGrid } from '../../main/engine/register/control-grid-fit.ts';
import { sampleField } from '../../main/engine/register/field/field.ts';
import type { Vec3 } from '../../main/engine/volume/volume.ts';
import { rng } from '../helpers.ts';

const truth = (p: Vec3): Vec3 => [
  6 * Math.exp(-((p[0] - 60) ** 2 + (p[1] - 40) ** 2 + (p[2] - 50) ** 2) / (2 * 45 ** 2)),
  -4 * Math.exp(-((p[0] - 120) ** 2 + (p[1] - 100) ** 2 + (p[2] - 80) ** 2) / (2 * 50 ** 2)),
  3 + 0.01 * p[0],
];

test('control grid fit: smooth field recovered from scattered points with 10% outliers', () => {
  const r = rng(7);
  const points: Vec3[] = [];
  const disp: Vec3[] = [];
  for (let n = 0; n < 600; n++) {
    const p: Vec3 = [r() * 180, r() * 150, r() * 140];
    points.push(p);
    const d = truth(p);
    if (n % 10 === 0) disp.push([d[0] + 30 * (r() - 0.5), d[1] + 30 * (r() - 0.5), d[2] + 30]);
    else disp.push([d[0] + 0.3 * (r() - 0.5), d[1] + 0.3 * (r() - 0.5), d[2] + 0.3 * (r() - 0.5)]);
  }
  const fit = fitControlGrid(points, disp, {
    spacingMm: 20,
    bounds: [
      [0, 0, 0],
      [180, 150, 140],
    ],
  });
  assert.equal(fit.grid.components, 3);
  let err = 0;
  let m = 0;
  for (let n = 0; n < 200; n++) {
    const p: Vec3 = [20 + r() * 140, 20 + r() * 110, 20 + r() * 100];
    const u = sampleField(fit.grid, p);
    const t = truth(p);
    err += Math.hypot(u[0] - t[0], u[1] - t[1], u[2] - t[2]);
    m++;
  }
  const mean = err / m;
  console.log(`control grid fit: mean error ${mean.toFixed(3)} mm inside the points' hull`);
  assert.ok(mean < 0.5, `mean error ${mean} mm`);
  const outlierWeights = points.map((_, n) => fit.weight[n]).filter((_, n) => n % 10 === 0);
  assert.ok(outlierWeights.filter((w) => w === 0).length >= 0.9 * outlierWeights.length, 'outliers rejected');
});

/** Dense float64 solve of A x = b (Gaussian elimination with partial pivoting). */
function solveDense(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[piv][c])) piv = r;
    [m[c], m[piv]] = [m[piv], m[c]];
    for (let r = c + 1; r < n; r++) {
      const f = m[r][c] / m[c][c];
      for (let k = c; k <= n; k++) m[r][k] -= f * m[c][k];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r][n];
    for (let k = r + 1; k < n; k++) s -= m[r][k] * x[k];
    x[r] = s / m[r][r];
  }
  return x;
}

test('control grid fit without reweighting = the dense float64 solution of its normal equations', () => {
  // 5x4x3 nodes every 10 mm (the box [0,20]x[0,10]x[0,0] plus one node of margin), 40 weighted points;
  // the three components differ in scale, and the third is zero (its solve must stay at zero)
  const r = rng(3);
  const h = 10;
  const lo: Vec3 = [-h, -h, -h];
  const size: Vec3 = [5, 4, 3];
  const points: Vec3[] = [];
  const disp: Vec3[] = [];
  const weights: number[] = [];
  for (let n = 0; n < 40; n++) {
    points.push([r() * 20, r() * 10, r() * 0.001]);
    disp.push([5 * (r() - 0.5), 0.01 * (r() - 0.5), 0]);
    weights.push(0.2 + r());
  }
  const smoothness = 0.3;
  const fit = fitControlGrid(points, disp, {
    spacingMm: h,
    smoothness,
    irls: 0,
    weights,
    bounds: [
      [0, 0, 0],
      [20, 10, 0],
    ],
  });
  assert.deepEqual(fit.grid.size, size);
  assert.deepEqual(fit.grid.origin, lo);
  const nodes = size[0] * size[1] * size[2];
  const lambda = smoothness * Math.max(1, points.length / nodes);
  const a = Array.from({ length: nodes }, () => new Array<number>(nodes).fill(0));
  const b = [0, 1, 2].map(() => new Array<number>(nodes).fill(0));
  const id = (i: number, j: number, k: number) => i + size[0] * (j + size[1] * k);
  points.forEach((p, q) => {
    const c = p.map((x, ax) => (x - lo[ax]) / h);
    const i0 = c.map(Math.floor);
    const st: [number, number][] = [];
    for (let k = 0; k < 8; k++) {
      const o = [k & 1, (k >> 1) & 1, (k >> 2) & 1];
      let wt = 1;
      for (let ax = 0; ax < 3; ax++) wt *= o[ax] ? c[ax] - i0[ax] : 1 - (c[ax] - i0[ax]);
      st.push([id(i0[0] + o[0], i0[1] + o[1], i0[2] + o[2]), wt]);
    }
    for (const [u, wu] of st) {
      for (const [v, wv] of st) a[u][v] += weights[q] * wu * wv;
      for (let m = 0; m < 3; m++) b[m][u] += weights[q] * wu * disp[q][m];
    }
  });
  for (let k = 0; k < size[2]; k++)
    for (let j = 0; j < size[1]; j++)
      for (let i = 0; i < size[0]; i++) {
        const u = id(i, j, k);
        a[u][u] += 1e-6 * lambda;
        for (const v of [
          i + 1 < size[0] ? id(i + 1, j, k) : -1,
          j + 1 < size[1] ? id(i, j + 1, k) : -1,
          k + 1 < size[2] ? id(i, j, k + 1) : -1,
        ])
          if (v >= 0) {
            a[u][u] += lambda;
            a[v][v] += lambda;
            a[u][v] -= lambda;
            a[v][u] -= lambda;
          }
      }
  for (let m = 0; m < 3; m++) {
    const x = solveDense(a, b[m]);
    const scale = Math.max(...x.map(Math.abs), 1e-30);
    let worst = 0;
    for (let v = 0; v < nodes; v++) worst = Math.max(worst, Math.abs(fit.grid.data[3 * v + m] - x[v]));
    console.log(`component ${m}: max |CG - dense| ${worst.toExponential(2)} (largest node ${scale.toExponential(2)})`);
    if (m === 2) assert.equal(worst, 0);
    else assert.ok(worst < 1e-3 * scale, `component ${m}: ${worst} vs ${scale}`);
  }
  const res = points.map((p, q) => {
    const u = sampleField(fit.grid, p);
    return Math.hypot(u[0] - disp[q][0], u[1] - disp[q][1], u[2] - disp[q][2]);
  });
  res.forEach((e, q) => assert.ok(Math.abs(e - fit.residualMm[q]) < 1e-5, `residual of point ${q}`));
});

/** n points in a 200 x 180 x 150 mm box with their displacements. */
function scattered(seed: number, n: number, displacement: (p: Vec3, r: () => number) => Vec3) {
  const r = rng(seed);
  const points: Vec3[] = [];
  const d: Vec3[] = [];
  for (let q = 0; q < n; q++) {
    const p: Vec3 = [r() * 200, r() * 180, r() * 150];
    points.push(p);
    d.push(displacement(p, r));
  }
  return { points, d };
}

test('control grid fit: points of weight 0 do not count (the fit equals the fit without them) and get residuals', () => {
  const { points, d } = scattered(6, 200, (p, r) => truth(p).map((v) => v + (r() - 0.5)) as Vec3);
  const bounds: [Vec3, Vec3] = [
    [0, 0, 0],
    [200, 180, 150],
  ];
  const weights = points.map((_, n) => (n % 3 === 0 ? 0 : 1));
  const withZeros = fitControlGrid(points, d, { spacingMm: 24, bounds, weights });
  const kept = points.map((_, n) => n).filter((n) => n % 3 !== 0);
  const without = fitControlGrid(
    kept.map((n) => points[n]),
    kept.map((n) => d[n]),
    { spacingMm: 24, bounds },
  );
  let diff = 0;
  for (let v = 0; v < without.grid.data.length; v++)
    diff = Math.max(diff, Math.abs(without.grid.data[v] - withZeros.grid.data[v]));
  assert.ok(diff < 1e-4, `largest node difference ${diff} mm`);
  // a held-out point's residual is its distance from the fitted field
  for (const n of [0, 3, 6]) assert.ok(withZeros.residualMm[n] > 0 && withZeros.weight[n] === 0);
  assert.throws(
    () => fitControlGrid(points, d, { spacingMm: 24, weights: points.map(() => 0) }),
    /no point with a positive weight/,
  );
});
