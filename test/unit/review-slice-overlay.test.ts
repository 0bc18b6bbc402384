// The workstation's slice overlay (review/slice-overlay.ts): the slice through a world point, the
// glyphs and grid lines of field-stats.ts on it (counts, positions, thinned lines ending on the
// line's last voxel), rounding to 1 µm, and the checks of its arguments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arrowGlyphs, deformedGridLines } from '../../main/engine/review/field-stats.ts';
import { sliceOverlay, sliceThrough } from '../../main/engine/review/slice-overlay.ts';
import { zeroField } from '../../main/engine/register/field/field.ts';
import { indexToWorld } from '../../main/engine/volume/geometry.ts';
import type { Mat3, Vec3 } from '../../main/engine/volume/volume.ts';
import { rng } from '../helpers.ts';

const grid = {
  size: [20, 17, 9] as Vec3,
  spacing: [1.5, 2, 3] as Vec3,
  origin: [10, -20, 30] as Vec3,
  direction: [1, 0, 0, 0, 1, 0, 0, 0, -1] as Mat3, // k runs to the feet
};

function field() {
  const f = zeroField(grid);
  const r = rng(3);
  for (let n = 0; n < f.data.length; n++) f.data[n] = (r() - 0.5) * 4;
  return f;
}

test('slice overlay: the slice through a point, the engine glyphs and grid lines on it', () => {
  const f = field();
  const p = indexToWorld(grid, [7.2, 5.9, 3.4]);
  assert.equal(sliceThrough(f, 'axial', p), 3);
  assert.equal(sliceThrough(f, 'coronal', p), 6);
  assert.equal(sliceThrough(f, 'sagittal', p), 7);
  // outside the grid: clamped
  assert.equal(sliceThrough(f, 'axial', indexToWorld(grid, [0, 0, 40])), 8);
  for (const orientation of ['axial', 'coronal', 'sagittal'] as const) {
    const o = sliceOverlay(f, orientation, p, 4);
    const slice = sliceThrough(f, orientation, p);
    assert.equal(o.slice, slice);
    const g = arrowGlyphs(f, { orientation, slice, every: 4 });
    const l = deformedGridLines(f, { orientation, slice, every: 4 });
    assert.equal(o.glyphs.length, g.glyphs.length);
    assert.ok(o.glyphs.length > 0);
    o.glyphs.forEach((x, n) => {
      for (let a = 0; a < 3; a++) {
        assert.ok(Math.abs(x.position[a] - g.glyphs[n].position[a]) <= 5e-4);
        assert.ok(Math.abs(x.inPlane[a] - g.glyphs[n].inPlane[a]) <= 5e-4);
      }
      assert.ok(Math.abs(x.magnitudeMm - g.glyphs[n].magnitudeMm) <= 5e-4);
    });
    assert.equal(o.lines.length, l.lines.length);
    o.lines.forEach((flat, n) => {
      const pts = l.lines[n].points;
      assert.equal(flat.length % 3, 0);
      // thinned to every (4 / 4 =) 1 voxel here: all points; first and last always kept
      assert.equal(flat.length / 3, pts.length);
      assert.ok(Math.abs(flat[flat.length - 1] - pts[pts.length - 1][2]) <= 5e-4);
    });
  }
});

test('slice overlay: grid lines thinned to every/4 voxels keep the first and last points', () => {
  const f = field();
  const o = sliceOverlay(f, 'axial', indexToWorld(grid, [0, 0, 2]), 8);
  const l = deformedGridLines(f, { orientation: 'axial', slice: 2, every: 8 });
  o.lines.forEach((flat, n) => {
    const pts = l.lines[n].points;
    const expected = Math.ceil((pts.length - 1) / 2) + 1; // every 2nd voxel, and the last one
    assert.equal(flat.length / 3, expected);
    for (let a = 0; a < 3; a++) {
      assert.ok(Math.abs(flat[a] - pts[0][a]) <= 5e-4);
      assert.ok(Math.abs(flat[flat.length - 3 + a] - pts[pts.length - 1][a]) <= 5e-4);
    }
  });
  // rounded to 1 µm
  for (const x of o.lines[0]) assert.equal(Math.round(x * 1000) / 1000, x);
});

test('slice overlay: refuses bad spacing and orientation', () => {
  const f = field();
  assert.throws(() => sliceOverlay(f, 'axial', [0, 0, 0], 0), /every/);
  assert.throws(() => sliceOverlay(f, 'axial', [0, 0, 0], 2.5), /every/);
  assert.throws(() => sliceOverlay(f, 'oblique' as 'axial', [0, 0, 0], 4), /orientation/);
});
