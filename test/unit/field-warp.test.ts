import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  indexToWorld,
  worldToIndex,
  worldToIndexMatrix,
  type Affine3x4,
  type Geometry,
} from '../../main/engine/volume/geometry.ts';
import { makeVolume, type Vec3 } from '../../main/engine/volume/volume.ts';
import { resample } from '../../main/engine/volume/resample.ts';
import { InputError } from '../../main/engine/errors.ts';
import { fieldFromAffine, zeroField } from '../../main/engine/register/field/field.ts';
import { warpVolume, warpWithAffine } from '../../main/engine/register/field/warp.ts';
import { A1, ap, centeredGrid, fieldOf, rotation, worldImage } from './field-fixtures.ts';

/** A linear function of world position: trilinear warping must reproduce f(A x) exactly. */
const f = (p: Vec3): number => 3 * p[0] - 2 * p[1] + 0.5 * p[2] + 7;

const moving = worldImage(centeredGrid([30, 28, 24], [1.1, 0.9, 1.6], rotation([1, 2, 3], 0.3)), f);
const fixed: Geometry = centeredGrid([16, 14, 12], [1.5, 1.3, 2.1], rotation([-1, 0.5, 2], 0.4), [1, -1, 0.5]);

test('warping with the field of an affine equals warpWithAffine and f(A x) on oblique, anisotropic grids', () => {
  const byField = warpVolume(moving, fieldFromAffine(fixed, A1), { fill: NaN });
  const byAffine = warpWithAffine(moving, fixed, A1, { fill: NaN });
  assert.deepEqual(byField.size, fixed.size);
  assert.deepEqual(byField.direction, fixed.direction);
  let n = 0;
  let checked = 0;
  let band = 0;
  for (let k = 0; k < 12; k++)
    for (let j = 0; j < 14; j++)
      for (let i = 0; i < 16; i++, n++) {
        // inside the voxel-centre hull f(A x); within half a voxel beyond it f at the nearest hull point
        // (the border values); beyond the physical extent the fill
        const c = worldToIndex(moving, ap(A1, indexToWorld(fixed, [i, j, k])));
        const inExtent = c.every((v, a) => v >= -0.5 && v <= moving.size[a] - 0.5);
        const clamped = c.map((v, a) => Math.min(moving.size[a] - 1, Math.max(0, v))) as Vec3;
        const want = f(indexToWorld(moving, clamped));
        const a = byAffine.data[n];
        const b = byField.data[n];
        if (!inExtent) {
          assert.ok(Number.isNaN(a) && Number.isNaN(b), `(${i},${j},${k}) outside: fill`);
          continue;
        }
        if (clamped.some((v, a) => v !== c[a])) band++;
        checked++;
        assert.ok(Math.abs(a - want) < 1e-9, `affine (${i},${j},${k}) ${a} vs ${want}`);
        assert.ok(Math.abs(b - want) < 1e-4, `field (${i},${j},${k}) ${b} vs ${want}`); // float32 field
      }
  assert.ok(checked > 0.8 * 16 * 14 * 12, `most voxels map inside the moving volume (${checked})`);
  assert.ok(band > 0, 'some voxels map into the half voxel beyond the outermost centres');
});

test('a field of one voxel step along i reads the next voxel (sign and orientation, oblique grid)', () => {
  const g = centeredGrid([6, 5, 4], [1.3, 0.7, 2.2], rotation([2, -1, 1], 0.7));
  const data = Float32Array.from({ length: 6 * 5 * 4 }, (_, n) => n * 1.5);
  const img = makeVolume({ ...g, data });
  const step: Vec3 = [g.direction[0] * g.spacing[0], g.direction[3] * g.spacing[0], g.direction[6] * g.spacing[0]];
  for (const interpolation of ['linear', 'nearest'] as const) {
    const out = warpVolume(
      img,
      fieldOf(g, () => step),
      { interpolation, fill: -1 },
    );
    for (let n = 0; n < data.length; n++) {
      const i = n % 6;
      assert.ok(Math.abs(out.data[n] - (i < 5 ? data[n + 1] : -1)) < 1e-4, `${interpolation} voxel ${n}`);
    }
  }
});

test('warping with a zero field equals resampling onto the fixed grid inside the moving hull (int16 kept)', () => {
  const src = makeVolume({
    ...centeredGrid([20, 18, 10], [1, 1.2, 2], rotation([0, 0, 1], 0.2)),
    data: Int16Array.from({ length: 20 * 18 * 10 }, (_, n) => ((n * 7919) % 2000) - 1000),
  });
  for (const interpolation of ['linear', 'nearest'] as const) {
    const a = warpVolume(src, zeroField(fixed), { interpolation, fill: -1024 });
    const b = resample(src, fixed, { interpolation, fill: -1024 });
    assert.ok(a.data instanceof Int16Array);
    let diff = 0;
    // (resample fills the half voxel beyond the outermost centres, the warp gives the border values there)
    const m = worldToIndexMatrix(src);
    for (let n = 0; n < a.data.length; n++) {
      const [ni, nj] = fixed.size;
      const x = indexToWorld(fixed, [n % ni, Math.floor(n / ni) % nj, Math.floor(n / (ni * nj))]);
      const c = [0, 1, 2].map((r) => m[4 * r] * x[0] + m[4 * r + 1] * x[1] + m[4 * r + 2] * x[2] + m[4 * r + 3]);
      if (interpolation === 'linear' && c.some((v, q) => v < 0 || v > src.size[q] - 1)) continue;
      diff = Math.max(diff, Math.abs(a.data[n] - b.data[n]));
    }
    assert.ok(diff <= 1, `${interpolation}: max difference ${diff}`); // rounding of .5 only
  }
});

test('nearest warping of labels only yields existing labels', () => {
  const g = centeredGrid([20, 20, 10], [1, 1, 1.5], rotation([1, 1, 0], 0.3));
  const labels = makeVolume({
    ...g,
    data: Uint8Array.from({ length: 20 * 20 * 10 }, (_, n) => (n % 7 === 0 ? 5 : n % 3)),
  });
  const u = fieldOf(g, (p) => [2.3 * Math.sin(p[1] / 4), 1.7 * Math.cos(p[2] / 3), 1.1 * Math.sin(p[0] / 5)]);
  const out = warpVolume(labels, u, { interpolation: 'nearest' });
  assert.ok(out.data instanceof Uint8Array);
  const allowed = new Set([0, 1, 2, 5]);
  const seen = new Set<number>();
  for (const x of out.data) {
    assert.ok(allowed.has(x), `label ${x}`);
    seen.add(x);
  }
  assert.equal(seen.size, 4);
  const fixedLabels = warpWithAffine(labels, g, A1, { interpolation: 'nearest', fill: 0 });
  for (const x of fixedLabels.data) assert.ok(allowed.has(x));
});

test('a scalar volume is refused as a displacement field', () => {
  assert.throws(() => warpVolume(moving, moving), InputError);
});

test('a warp within half a voxel of the identity keeps the outermost slices (no fill at the faces)', () => {
  const img = makeVolume({
    ...centeredGrid([12, 10, 8], [1, 1.2, 3], rotation([1, 0, 2], 0.3)),
    data: Int16Array.from({ length: 12 * 10 * 8 }, (_, n) => 100 + (n % 37)),
  });
  // 0.05 mm out along every axis: outside the voxel-centre hull at three faces, inside the extent
  const shift: Affine3x4 = [1, 0, 0, 0.05, 0, 1, 0, 0.05, 0, 0, 1, 0.05];
  const out = warpWithAffine(img, img, shift, { fill: -1024 });
  assert.ok(
    Array.from(out.data).every((v) => v >= 100),
    'no voxel filled',
  );
  // a whole voxel out: the faces are filled
  const far = warpWithAffine(img, img, [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3.1], { fill: -1024 });
  assert.ok(
    Array.from(far.data).some((v) => v === -1024),
    'beyond the extent: filled',
  );
});

test('warpWithAffine on a real CT (int16 and float32): every voxel equals trilinearAt in its extent rule', async () => {
  const { readVolume } = await import('../../main/engine/volume/io/index.ts');
  const { dataPath } = await import('../helpers.ts');
  const { trilinearAt } = await import('../../main/engine/volume/interpolate.ts');
  const { gridToGridAffine } = await import('../../main/engine/register/field/field.ts');
  const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct_sm.nii.gz'));
  const asFloat = makeVolume({ ...ct, data: Float32Array.from(ct.data), meta: ct.meta });
  // rotation, scale and a shift that moves part of the grid off the image and into its half-voxel band
  const A = [0.93, 0.12, 0.02, 7.3, -0.1, 1.08, 0.05, -4.1, 0.01, -0.04, 0.97, 2.6] as Parameters<
    typeof warpWithAffine
  >[2];
  for (const moving of [ct, asFloat]) {
    const w = warpWithAffine(moving, ct, A, { fill: -1024 });
    assert.equal(w.data.constructor, moving.data.constructor);
    const m = gridToGridAffine(ct, moving, A);
    const v = [0];
    let outside = 0;
    // (the index steps along a row as the warp takes them: one addition a voxel)
    for (let k = 0, q = 0; k < ct.size[2]; k++)
      for (let j = 0; j < ct.size[1]; j++) {
        let x = m[1] * j + m[2] * k + m[3];
        let y = m[5] * j + m[6] * k + m[7];
        let z = m[9] * j + m[10] * k + m[11];
        for (let i = 0; i < ct.size[0]; i++, q++, x += m[0], y += m[4], z += m[8]) {
          let want = -1024;
          if (trilinearAt(moving.data, moving.size, 1, x, y, z, 'extent', v)) want = v[0];
          else outside++;
          if (moving === ct) want = Math.max(-32768, Math.min(32767, Math.round(want)));
          else want = Math.fround(want);
          if (w.data[q] !== want) assert.fail(`voxel ${i},${j},${k}: ${w.data[q]} vs ${want}`);
        }
      }
    assert.ok(outside > 0 && outside < w.data.length / 2, `${outside} voxels outside`);
  }
});
