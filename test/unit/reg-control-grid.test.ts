/**
 * The smooth control-grid fit of SAM-coarse (register/control-grid-fit.ts): scattered displacements
 * of a known smooth field, with a share of gross outliers, are fitted back closely; the outliers are
 * rejected by the Tukey rounds.
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
