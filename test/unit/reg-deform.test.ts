/**
 * SAM-deform (register/deform): the exact gradient of its loss against central finite differences
 * (LNCC + feature term + diffusion, on a small random problem), the box sum's self-adjointness that the
 * LNCC gradient relies on, and the instance optimisation on a pair made from real CT by a known smooth
 * deformation: the error against the truth falls and no voxel folds. The deform images' preparation
 * (box means where the resampling reads them) equals the box mean of every voxel, resampled.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boxMean, boxMeanWhere, boxSum } from '../../main/engine/register/deform/box-sum.ts';
import { deformLoss } from '../../main/engine/register/deform/deform-loss.ts';
import { fixedWindows, lnccLoss } from '../../main/engine/register/deform/local-ncc.ts';
import { prepareImage, samDeform, weighFixedFaces } from '../../main/engine/register/deform/sam-deform.ts';
import {
  gridWithSpacing,
  linearScalarFootprint,
  resample,
  targetToSourceIndex,
} from '../../main/engine/volume/resample.ts';
import { makeVolume } from '../../main/engine/volume/volume.ts';
import { rotation } from './field-fixtures.ts';
import { bodyPoints, tre } from '../../main/engine/bench/reg-metrics.ts';
import { zeroField } from '../../main/engine/register/field/field.ts';
import { jacobianDeterminant } from '../../main/engine/register/field/jacobian.ts';
import { stageField } from '../../main/engine/register/stage-field.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import type { Affine3x4, Geometry } from '../../main/engine/volume/geometry.ts';
import { dataPath, rng } from '../helpers.ts';
import { blobProblem, smoothDeformationPair } from './deform-fixtures.ts';

test('box sum is its own adjoint (truncated windows): <B x, y> = <x, B y>', () => {
  const r = rng(3);
  const size = [7, 5, 6];
  const x = Float32Array.from({ length: 210 }, () => r());
  const y = Float32Array.from({ length: 210 }, () => r());
  const bx = boxSum(x, size, 2);
  const by = boxSum(y, size, 2);
  let a = 0;
  let b = 0;
  for (let v = 0; v < 210; v++) {
    a += bx[v] * y[v];
    b += x[v] * by[v];
  }
  assert.ok(Math.abs(a - b) < 1e-9 * Math.abs(a), `${a} vs ${b}`);
});

test('deform loss: analytic gradient matches central finite differences', () => {
  const r = rng(11);
  const { problem: p, n, N } = blobProblem(r);
  const w = Float32Array.from({ length: 3 * N }, () => 0.6 * (r() - 0.5));
  const grad = new Float32Array(3 * N);
  deformLoss(p, w, grad);
  const h = 1e-3;
  let checked = 0;
  let worst = 0;
  for (let t = 0; t < 40; t++) {
    // interior voxels, away from the clamped border
    const v =
      2 + Math.floor(r() * (n - 4)) + n * (2 + Math.floor(r() * (n - 4))) + n * n * (2 + Math.floor(r() * (n - 4)));
    const q = 3 * v + Math.floor(r() * 3);
    const w0 = w[q];
    w[q] = w0 + h;
    const lp = deformLoss(p, w).loss;
    w[q] = w0 - h;
    const lm = deformLoss(p, w).loss;
    w[q] = w0;
    const fd = (lp - lm) / (2 * h);
    const scale = Math.max(Math.abs(fd), Math.abs(grad[q]), 1e-6);
    const rel = Math.abs(fd - grad[q]) / scale;
    worst = Math.max(worst, rel);
    checked++;
    assert.ok(
      rel < 2e-2 || Math.abs(fd - grad[q]) < 1e-7,
      `component ${q}: analytic ${grad[q]} vs finite difference ${fd}`,
    );
  }
  console.log(`gradient check: ${checked} components, worst relative difference ${worst.toExponential(2)}`);
});

test('SAM-deform on real CT with a known smooth deformation: error falls, no folding', async () => {
  const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
  const pair = smoothDeformationPair(ct);
  const mask = bodyMask(pair.fixed);
  const identity: Affine3x4 = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0];
  const r = await samDeform(pair.fixed, pair.moving, (g) => zeroField(g), mask, { iterations: 40 });
  const field = stageField(pair.fixed, identity, [r.field]);
  // where the deformation is (|truth(x) - x| > 2 mm), and elsewhere
  const all = bodyPoints(mask, 23);
  const moved = (p: (typeof all)[number]) => Math.hypot(...pair.truth(p).map((t, a) => t - p[a])) > 2;
  const points = all.filter(moved);
  const still = all.filter((p) => !moved(p));
  const before = tre((p) => p, pair.truth, points);
  const after = tre(field, pair.truth, points);
  const elsewhere = tre(field, pair.truth, still);
  const jac = jacobianDeterminant(field, { mask });
  console.log(
    `SAM-deform alone: TRE mean ${before.mean.toFixed(2)} -> ${after.mean.toFixed(2)} mm, p95 ${before.p95.toFixed(2)} -> ` +
      `${after.p95.toFixed(2)} mm over ${points.length} points that move > 2 mm (elsewhere ${elsewhere.mean.toFixed(2)} mm); LNCC ${r.stats.lnccStart.toFixed(3)} -> ${r.stats.lnccEnd.toFixed(3)}; folding ${jac.foldedPercent} %`,
  );
  assert.ok(after.mean < 0.6 * before.mean, `TRE ${before.mean} -> ${after.mean}`);
  assert.ok(elsewhere.mean < 0.6, `TRE where nothing moves: ${elsewhere.mean}`);
  assert.ok(r.stats.lnccEnd > r.stats.lnccStart);
  assert.ok(r.stats.kept, 'the stage kept its field');
  assert.equal(jac.foldedPercent, 0);
});

test('local NCC: the damping on each variance, against a float64 window-by-window reference; less contrast bias than the VoxelMorph form', () => {
  // a blob image with flat regions (clipped air at -1, uniform tissue) and textured ones
  const size = [14, 11, 9];
  const N = size[0] * size[1] * size[2];
  const R = rng(7);
  const I = new Float32Array(N);
  for (let k = 0, v = 0; k < size[2]; k++)
    for (let j = 0; j < size[1]; j++)
      for (let i = 0; i < size[0]; i++, v++)
        I[v] = i < 4 ? -1 : i < 8 ? 0.05 + 1e-4 * R() : 0.2 * Math.sin(i + 2 * j) + 0.1 * R() + 0.01 * k;
  const f = fixedWindows(I, size, 2);
  // the reference: every truncated window summed directly; `form` picks the damping
  const reference = (J: Float32Array, form: 'each' | 'voxelmorph') => {
    let total = 0;
    for (let c = 0; c < N; c++) {
      const ci = c % size[0];
      const cj = Math.floor(c / size[0]) % size[1];
      const ck = Math.floor(c / (size[0] * size[1]));
      let n = 0;
      let sI = 0;
      let sJ = 0;
      let sII = 0;
      let sJJ = 0;
      let sIJ = 0;
      for (let k = Math.max(0, ck - 2); k <= Math.min(size[2] - 1, ck + 2); k++)
        for (let j = Math.max(0, cj - 2); j <= Math.min(size[1] - 1, cj + 2); j++)
          for (let i = Math.max(0, ci - 2); i <= Math.min(size[0] - 1, ci + 2); i++) {
            const v = i + size[0] * (j + size[1] * k);
            n++;
            sI += I[v];
            sJ += J[v];
            sII += I[v] * I[v];
            sJJ += J[v] * J[v];
            sIJ += I[v] * J[v];
          }
      const cross = sIJ - (sI * sJ) / n;
      const varI = sII - (sI * sI) / n;
      const varJ = sJJ - (sJ * sJ) / n;
      total += (cross * cross) / (form === 'each' ? (varI + f.eps) * (varJ + f.eps) : varI * varJ + f.eps);
    }
    return total / N;
  };
  for (const J of [I, I.map((x, v) => x + 0.02 * Math.sin(v))]) {
    const got = -lnccLoss(f, J);
    const want = reference(J, 'each');
    // (its products J², I J are float32)
    assert.ok(Math.abs(got - want) < 1e-7, `LNCC ${got} vs reference ${want}`);
  }
  // contrast: J = 3 I + 0.5 scores higher than J = I under both forms, less under this one (here, with
  // many flat windows, by 0.64; the reward is eps / v against eps / v^2 in a window of variance v)
  const brighter = I.map((x) => 3 * x + 0.5);
  const gain = (form: 'each' | 'voxelmorph') => reference(brighter, form) - reference(I, form);
  console.log(
    `LNCC gained by tripling the contrast of J: ${gain('each').toExponential(2)} (VoxelMorph's form ${gain('voxelmorph').toExponential(2)})`,
  );
  assert.ok(gain('each') < 0.8 * gain('voxelmorph'));
  // the gradient at J = I: small against the gradient a real difference makes
  const grad = new Float64Array(N);
  lnccLoss(f, I, grad);
  const gradJ = new Float64Array(N);
  lnccLoss(
    f,
    I.map((x, v) => x + 0.02 * Math.sin(v)),
    gradJ,
  );
  const maxAbs = (g: Float64Array) => g.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  console.log(
    `max |gradient| at J = I ${maxAbs(grad).toExponential(2)}, at J = I + noise ${maxAbs(gradJ).toExponential(2)}`,
  );
  assert.ok(maxAbs(grad) < 0.04 * maxAbs(gradJ), `gradient at J = I: ${maxAbs(grad)}`);
});

test('SAM-deform: a scan registered to itself keeps the identity', async () => {
  const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
  const mask = bodyMask(ct);
  const r = await samDeform(ct, ct, (g) => zeroField(g), mask, { spacingMm: 8, iterations: 15 });
  const maxW = r.field.data.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  console.log(
    `self-registration: kept ${r.stats.kept}, |w| up to ${maxW} mm, LNCC ${r.stats.lnccStart.toFixed(4)} -> ${r.stats.lnccEnd.toFixed(4)}`,
  );
  assert.equal(r.stats.kept, false);
  assert.equal(maxW, 0);
  assert.equal(r.stats.foldedPercentOnGrid, 0);
});

test('linearScalarFootprint: the voxels outside it do not change a resampling (oblique, anisotropic grids)', () => {
  const src = makeVolume({
    size: [23, 17, 11],
    spacing: [0.7, 0.9, 1.6],
    origin: [-8, -7, -9],
    direction: rotation([1, 2, 3], 0.3),
    data: Float32Array.from({ length: 23 * 17 * 11 }, (_, n) => Math.sin(n / 7) * 100),
  });
  const target: Geometry = {
    size: [9, 8, 7],
    spacing: [2.1, 1.9, 2.6],
    origin: [-9, -8, -10],
    direction: rotation([3, -1, 2], 0.5),
  };
  const read = linearScalarFootprint(src.size, targetToSourceIndex(target, src), target.size);
  const count = read.reduce((a, b) => a + b, 0);
  assert.ok(count > 100 && count < read.length / 2, `${count} of ${read.length} voxels read`);
  // NaN everywhere else: a read of one of them would show
  const poisoned = { ...src, data: src.data.map((v, n) => (read[n] ? v : NaN)) };
  const want = resample(src, target, { fill: -1 }).data;
  assert.deepEqual(resample(poisoned, target, { fill: -1 }).data, want);
  assert.ok(want.some((v) => v === -1) && want.some((v) => v !== -1), 'the target reaches outside the source too');
});

test('prepareImage equals the box mean of every voxel resampled (real CT; fine to coarse, both levels)', async () => {
  const ct = await readVolume(dataPath('TotalSegmentator', 'tests', 'reference_files', 'example_ct.nii.gz'));
  // a 1.5 mm version of the CT (the deform grids then read a fraction of its voxels)
  const fine = resample(ct, gridWithSpacing(ct, [1.5, 1.5, 1.5]), { outputType: 'float32' });
  for (const v of [ct, fine])
    for (const s of [4, 8]) {
      const grid = gridWithSpacing(v, [s, s, s]);
      const clipped = Float32Array.from(v.data, (x) => Math.max(-1000, Math.min(1000, x)) / 1000);
      const r = Math.max(0, Math.round(s / 2 / Math.min(...v.spacing)));
      const want = resample({ ...v, data: boxMean(clipped, v.size, r), components: 1 }, grid, {
        fill: -1,
        outputType: 'float32',
      }).data;
      assert.deepEqual(prepareImage(v, grid), want, `${v.spacing[0]} mm image on a ${s} mm grid`);
      const read = linearScalarFootprint(v.size, targetToSourceIndex(grid, v), grid.size);
      const means = boxMeanWhere(clipped, v.size, r, read);
      const all = boxMean(clipped, v.size, r);
      for (let q = 0; q < read.length; q++) if (read[q]) assert.equal(means[q], all[q]);
    }
});

test('boxMeanWhere with a radius per axis equals the brute-force box mean where needed (truncated windows)', () => {
  const size = [9, 7, 6];
  const N = 9 * 7 * 6;
  const r = rng(31);
  const data = Float32Array.from({ length: N }, () => r() * 2 - 1);
  const need = Uint8Array.from({ length: N }, () => (r() < 0.4 ? 1 : 0));
  const radii: [number, number, number] = [2, 0, 1];
  const got = boxMeanWhere(data, size, radii, need);
  for (let k = 0, v = 0; k < 6; k++)
    for (let j = 0; j < 7; j++)
      for (let i = 0; i < 9; i++, v++) {
        if (!need[v]) continue;
        let sum = 0;
        let n = 0;
        for (let c = Math.max(0, k - radii[2]); c <= Math.min(5, k + radii[2]); c++)
          for (let b = Math.max(0, j - radii[1]); b <= Math.min(6, j + radii[1]); b++)
            for (let a = Math.max(0, i - radii[0]); a <= Math.min(8, i + radii[0]); a++, n++)
              sum += data[a + 9 * (b + 7 * c)];
        assert.ok(Math.abs(got[v] - sum / n) < 1e-6, `voxel ${i},${j},${k}: ${got[v]} vs ${sum / n}`);
      }
});

test('a thick-slice scan against its thin original (no motion): the deform stage stays near the identity', async () => {
  // the example CT (3 mm) and the same CT as 9 mm slices (each the mean of three): the truth is w = 0.
  // Smoothing both by one radius in voxels (before pair-resolution.ts) blurred the thick one 9 mm x 3
  // along z against the thin one's 3 x 3 mm, and the stage answered the difference in blur with
  // |w| 0.53 mm mean, 4.2 mm max, Jacobians 0.54-1.84; now 0.19 / 3.1 mm, 0.79-1.40
  const ct = await readVolume(dataPath('TotalSegmentator', 'tests', 'reference_files', 'example_ct.nii.gz'));
  const [ni, nj, nk] = ct.size;
  const n = 3;
  const mk = Math.floor(nk / n);
  const data = new Float32Array(ni * nj * mk);
  for (let k = 0; k < mk; k++)
    for (let t = 0; t < n; t++)
      for (let q = 0; q < ni * nj; q++) data[k * ni * nj + q] += ct.data[(k * n + t) * ni * nj + q] / n;
  const d = ct.direction;
  const shift = ((n - 1) / 2) * ct.spacing[2];
  const thick = makeVolume({
    size: [ni, nj, mk],
    spacing: [ct.spacing[0], ct.spacing[1], ct.spacing[2] * n],
    origin: [ct.origin[0] + d[2] * shift, ct.origin[1] + d[5] * shift, ct.origin[2] + d[8] * shift],
    direction: ct.direction,
    data,
  });
  const mask = bodyMask(ct);
  const r = await samDeform(ct, thick, (g) => zeroField(g), mask, {});
  const onField = resample(mask, r.field, { interpolation: 'nearest', outputType: 'uint8' });
  const J = jacobianDeterminant(r.field, { mask: onField as never });
  let sum = 0;
  let count = 0;
  const w = r.field.data;
  for (let v = 0; v < w.length / 3; v++)
    if (onField.data[v]) {
      sum += Math.hypot(w[3 * v], w[3 * v + 1], w[3 * v + 2]);
      count++;
    }
  const mean = sum / count;
  assert.ok(mean < 0.3, `|w| mean ${mean.toFixed(3)} mm in the body`);
  assert.ok(J.min > 0.7 && J.max < 1.5, `Jacobian ${J.min.toFixed(3)}-${J.max.toFixed(3)}`);
});

test('weighFixedFaces: window centres within the margin of the fixed faces lose their weight, in world terms (oblique G)', () => {
  // a fixed image 2 mm x 3 mm x 2.5 mm, not at the origin; G rotated 20 degrees about z, 4 mm
  const fixed: Geometry = {
    size: [40, 30, 24],
    spacing: [2, 3, 2.5],
    origin: [-30, 12, 100],
    direction: [1, 0, 0, 0, 1, 0, 0, 0, 1],
  };
  const c = Math.cos((20 * Math.PI) / 180);
  const s = Math.sin((20 * Math.PI) / 180);
  const G: Geometry = {
    size: [25, 25, 18],
    spacing: [4, 4, 4],
    origin: [-40, 0, 95],
    direction: [c, -s, 0, s, c, 0, 0, 0, 1],
  };
  const n = G.size[0] * G.size[1] * G.size[2];
  const weight = new Float32Array(n).fill(1);
  weight[5] = 0; // a centre already out stays out
  weighFixedFaces(weight, G, fixed, 10);
  const lo = fixed.origin;
  const hi = [0, 1, 2].map((a) => fixed.origin[a] + (fixed.size[a] - 1) * fixed.spacing[a]);
  let kept = 0;
  for (let k = 0, v = 0; k < G.size[2]; k++)
    for (let j = 0; j < G.size[1]; j++)
      for (let i = 0; i < G.size[0]; i++, v++) {
        const x = [G.origin[0] + 4 * (c * i - s * j), G.origin[1] + 4 * (s * i + c * j), G.origin[2] + 4 * k];
        const inside = [0, 1, 2].every((a) => x[a] - lo[a] >= 10 && hi[a] - x[a] >= 10);
        assert.equal(weight[v], inside && v !== 5 ? 1 : 0, `voxel ${[i, j, k]} at ${x}`);
        if (weight[v]) kept++;
      }
  assert.ok(kept > 100 && kept < n / 2, `${kept} of ${n} kept`);
  // G on the fixed image's axes (the cascade's case: each axis's faces found once), a centre out already
  const Ga: Geometry = { size: [23, 27, 20], spacing: [4, 4, 4], origin: [-33, 7, 97], direction: fixed.direction };
  const wa = new Float32Array(Ga.size[0] * Ga.size[1] * Ga.size[2]).fill(1);
  wa[700] = 0;
  weighFixedFaces(wa, Ga, fixed, 10);
  let keptA = 0;
  for (let k = 0, v = 0; k < Ga.size[2]; k++)
    for (let j = 0; j < Ga.size[1]; j++)
      for (let i = 0; i < Ga.size[0]; i++, v++) {
        const x = [Ga.origin[0] + 4 * i, Ga.origin[1] + 4 * j, Ga.origin[2] + 4 * k];
        const inside = [0, 1, 2].every((a) => x[a] - lo[a] >= 10 && hi[a] - x[a] >= 10);
        assert.equal(wa[v], inside && v !== 700 ? 1 : 0, `axis-aligned: voxel ${[i, j, k]} at ${x}`);
        if (wa[v]) keptA++;
      }
  assert.ok(keptA > 100, `${keptA} kept (axis-aligned)`);
  // a short scan (12 slices of 2 mm: 22 mm) keeps its middle: along z the margin is a quarter of it
  const thin: Geometry = { ...fixed, size: [40, 30, 12], spacing: [2, 3, 2] };
  const Gz: Geometry = { size: [1, 1, 12], spacing: [2, 2, 2], origin: [10, 50, 100], direction: fixed.direction };
  const wz = new Float32Array(12).fill(1);
  weighFixedFaces(wz, Gz, thin, 10);
  assert.deepEqual([...wz], [0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
});
