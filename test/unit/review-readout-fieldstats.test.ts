// Voxel readout (review/readout.ts) and field statistics / overlays (review/field-stats.ts):
// the readout's Jacobian and folding equal the Jacobian map's at every voxel (borders included), its
// moving HU equals the warped image's, its SAM similarity is the cosine of the embeddings; the field
// statistics reuse field/jacobian.ts; glyphs and deformed grid lines lie in their slice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { voxelReadout } from '../../main/engine/review/readout.ts';
import { arrowGlyphs, deformedGridLines, fieldStatistics } from '../../main/engine/review/field-stats.ts';
import { slicePlane } from '../../main/engine/review/slice-plane.ts';
import { fieldFromAffine, zeroField } from '../../main/engine/register/field/field.ts';
import { jacobianDeterminant } from '../../main/engine/register/field/jacobian.ts';
import { warpVolume } from '../../main/engine/register/field/warp.ts';
import { affineDeterminant, affineFromParts } from '../../main/engine/register/affine-fit.ts';
import { toHalf, type EmbeddingVolume } from '../../main/engine/sam/embed-volume.ts';
import { confidenceGrid } from '../../main/engine/review/confidence.ts';
import { dot, indexToWorld, orthonormalize } from '../../main/engine/volume/geometry.ts';
import { makeVolume, type Mat3, type Vec3 } from '../../main/engine/volume/volume.ts';
import { rng } from '../helpers.ts';

const DIR = orthonormalize([0.98, -0.17, 0.05, 0.17, 0.98, -0.02, -0.05, 0.03, -1] as Mat3); // oblique, left-handed
const grid = { size: [9, 8, 7] as Vec3, spacing: [1.5, 2, 3] as Vec3, origin: [10, -20, 30] as Vec3, direction: DIR };

function noisyField(seed: number, amp: number) {
  const f = zeroField(grid);
  const r = rng(seed);
  for (let n = 0; n < f.data.length; n++) f.data[n] = (r() - 0.5) * amp;
  return f;
}

test('readout: Jacobian and folding equal the map at every voxel; moving HU equals the warped image', () => {
  const field = noisyField(1, 5); // rough enough to fold somewhere
  const map = jacobianDeterminant(field);
  assert.ok(map.folded > 0, 'the test field folds somewhere');
  const r = rng(2);
  const fixed = makeVolume({ ...grid, data: Float32Array.from({ length: 9 * 8 * 7 }, () => r() * 1000 - 500) });
  const moving = makeVolume({
    size: [14, 13, 12],
    spacing: [2, 2, 2.5],
    origin: [0, -30, 10],
    direction: DIR,
    data: Float32Array.from({ length: 14 * 13 * 12 }, () => r() * 2000 - 1000),
  });
  const warped = warpVolume(moving, field, { fill: NaN, outputType: 'float32' });
  let folded = 0;
  for (let k = 0, n = 0; k < 7; k++)
    for (let j = 0; j < 8; j++)
      for (let i = 0; i < 9; i++, n++) {
        // a point a little off the voxel centre snaps to it
        const p = indexToWorld(grid, [i + 0.3, j - 0.2, k + 0.4]);
        const ro = voxelReadout({ fixed, moving, field, warped }, p);
        assert.deepEqual(ro.index, [i, j, k]);
        assert.equal(ro.jacobian, map.det.data[n]);
        assert.equal(ro.folded, map.foldedMask.data[n] === 1);
        if (ro.folded) folded++;
        assert.equal(ro.fixedHu, fixed.data[n]);
        const want = warped.data[n];
        if (Number.isNaN(want)) assert.ok(Number.isNaN(ro.movingHu) && !ro.mappedInside);
        else assert.ok(Math.abs(ro.movingHu - want) < 1e-3, `${ro.movingHu} vs ${want}`);
        assert.equal(ro.warpedHu, want);
        for (let a = 0; a < 3; a++) assert.ok(Math.abs(ro.mappedPoint[a] - ro.point[a] - field.data[3 * n + a]) < 1e-9);
        assert.equal(ro.samSimilarity, null);
      }
  assert.equal(folded, map.folded);
  // outside the grid: clamped to the nearest voxel and flagged
  const far = voxelReadout({ fixed, moving, field }, indexToWorld(grid, [-3, 4, 4]));
  assert.equal(far.inside, false);
  assert.deepEqual(far.index, [0, 4, 4]);
});

test('readout: SAM similarity is the cosine of the fixed and moving local embeddings', () => {
  const C = 4;
  const r = rng(3);
  const emb = (seed: number): EmbeddingVolume => {
    void seed;
    const v = makeVolume({
      size: [6, 6, 6],
      spacing: [4, 4, 4],
      origin: [-10, -10, -10],
      components: C,
      data: Float32Array.from({ length: 216 * C }, () => r() - 0.5),
    });
    return { ...v, storage: 'float32', stride: [2, 2, 2] };
  };
  const fe = { global: emb(1), local: emb(2) };
  const me = { global: emb(3), local: emb(4) };
  const g = {
    size: [5, 5, 5] as Vec3,
    spacing: [2, 2, 2] as Vec3,
    origin: [-4, -4, -4] as Vec3,
    direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] as Mat3,
  };
  const fixed = makeVolume({ ...g, data: new Float32Array(125) });
  // a translation by exactly one embedding voxel along x: x + u lands on voxel centres
  const field = fieldFromAffine(g, [1, 0, 0, 4, 0, 1, 0, 0, 0, 0, 1, 0]);
  const ro = voxelReadout({ fixed, moving: fixed, field, embeddings: { fixed: fe, moving: me } }, [-2, -2, -2]);
  const at = (ev: EmbeddingVolume, ijk: Vec3) => {
    const o = C * (ijk[0] + 6 * (ijk[1] + 6 * ijk[2]));
    const v = Array.from(ev.data.subarray(o, o + C));
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  const a = at(fe.local, [2, 2, 2]);
  const b = at(me.local, [3, 2, 2]);
  const cos = a.reduce((s, x, c) => s + x * b[c], 0);
  assert.ok(Math.abs(ro.samSimilarity! - cos) < 1e-6, `${ro.samSimilarity} vs ${cos}`);
});

test('field statistics: affine field gives det(A) everywhere, no folds, |u| map; noisy field folds', () => {
  const A = affineFromParts({
    rotationDeg: [5, -4, 3],
    scales: [1.1, 0.9, 1.05],
    translation: [3, -2, 7],
    centre: [10, -10, 40],
  });
  const s = fieldStatistics(fieldFromAffine(grid, A));
  const det = affineDeterminant(A);
  for (const v of s.jacobian.det.data) assert.ok(Math.abs(v - det) < 1e-4);
  assert.equal(s.jacobian.folded, 0);
  const f = fieldFromAffine(grid, A);
  s.magnitude.data.forEach((m, n) =>
    assert.ok(Math.abs(m - Math.hypot(f.data[3 * n], f.data[3 * n + 1], f.data[3 * n + 2])) < 1e-4),
  );
  assert.equal(s.magnitudeStats.count, 9 * 8 * 7);
  const noisy = fieldStatistics(noisyField(1, 5));
  const ref = jacobianDeterminant(noisyField(1, 5));
  assert.equal(noisy.jacobian.folded, ref.folded);
  assert.deepEqual(noisy.jacobian.det.data, ref.det.data);
  assert.ok(noisy.jacobian.foldedPercent > 0);
});

test('overlays: glyphs every N voxels in the slice, in-plane vectors; deformed grid lines follow u in the plane', () => {
  const t: Vec3 = [3, -4, 5];
  const field = fieldFromAffine(grid, [1, 0, 0, t[0], 0, 1, 0, t[1], 0, 0, 1, t[2]]);
  for (const orientation of ['axial', 'coronal', 'sagittal'] as const) {
    const plane = slicePlane(grid, orientation);
    const g = arrowGlyphs(field, { orientation, every: 3 });
    assert.equal(g.slice, Math.floor((grid.size[plane.axis] - 1) / 2));
    const count = (n: number) => Math.ceil((n - 1) / 3);
    assert.equal(g.glyphs.length, count(grid.size[plane.rowAxis]) * count(grid.size[plane.colAxis]));
    for (const gl of g.glyphs) {
      assert.equal(gl.index[plane.axis], g.slice);
      assert.ok(Math.abs(dot(gl.inPlane, g.normal)) < 1e-5);
      for (let a = 0; a < 3; a++) assert.ok(Math.abs(gl.vector[a] - t[a]) < 1e-4);
      assert.deepEqual(gl.position, indexToWorld(grid, gl.index));
    }
    const lines = deformedGridLines(field, { orientation, slice: 1, every: 4 });
    for (const line of lines.lines) {
      assert.equal(line.points.length, grid.size[line.alongAxis]);
      const tIn = t.map((v, a) => v - dot(t, lines.normal) * lines.normal[a]);
      line.points.forEach((p, s) => {
        const ijk: Vec3 = [0, 0, 0];
        ijk[plane.axis] = 1;
        ijk[line.alongAxis] = s;
        ijk[3 - plane.axis - line.alongAxis] = line.at;
        const x = indexToWorld(grid, ijk);
        for (let a = 0; a < 3; a++) assert.ok(Math.abs(p[a] - x[a] - tIn[a]) < 1e-4);
      });
    }
  }
  // the axial plane of the z-flipped oblique grid cuts along index axis 2
  const ax = slicePlane(grid, 'axial');
  assert.equal(ax.axis, 2);
  assert.throws(() => arrowGlyphs(field, { orientation: 'axial', slice: 99 }), /outside/);
});

test('confidence grid: float16 embeddings give the float32 result (to half precision); values are cosines', () => {
  const C = 8;
  const r = rng(9);
  const mk = (): EmbeddingVolume => {
    const v = makeVolume({
      size: [7, 6, 5],
      spacing: [4, 4, 4],
      origin: [-12, -10, -8],
      components: C,
      data: Float32Array.from({ length: 210 * C }, () => r() - 0.5),
    });
    return { ...v, storage: 'float32', stride: [2, 2, 2] };
  };
  const half = (e: EmbeddingVolume): EmbeddingVolume => ({
    ...e,
    storage: 'float16',
    data: Uint16Array.from(e.data as Float32Array, (x) => toHalf(x)),
  });
  const fe = { global: mk(), local: mk() };
  const me = { global: mk(), local: mk() };
  const field = fieldFromAffine(
    { size: [10, 9, 8], spacing: [2.5, 2.5, 2.5], origin: [-12, -10, -8], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] },
    [1, 0, 0, 2, 0, 1, 0, -1, 0, 0, 1, 1.5],
  );
  const a = confidenceGrid({ fixed: fe, moving: me }, field);
  const b = confidenceGrid({ fixed: { global: fe.global, local: half(fe.local) }, moving: me }, field);
  let finite = 0;
  a.data.forEach((v, n) => {
    if (!Number.isFinite(v)) return assert.ok(Number.isNaN(b.data[n]));
    finite++;
    assert.ok(v >= -1 - 1e-5 && v <= 1 + 1e-5);
    assert.ok(Math.abs(v - b.data[n]) < 2e-3, `${v} vs ${b.data[n]}`);
  });
  assert.ok(finite > 100);
});
