// The renderer's pure overlay helpers: colour maps (interpolation, clamping, CSS, nice scale ends,
// residual and magnitude scales), what the 2-D overlay shows (pairs in the slab, glyph spacing,
// scale bar, marker hits) and the spyglass's slice pixels (window/level, axes, orientation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  JACOBIAN_STOPS,
  colorAt,
  cssColor,
  cssGradient,
  magnitudeScaleMm,
  magnitudeStops,
  niceCeil,
  niceFloor,
  residualScaleMm,
} from '../../renderer/views/color-maps.ts';
import {
  glyphEvery,
  hitMarker,
  pairResidualScaleMm,
  pairsInSlab,
  scaleBar,
} from '../../renderer/views/overlay-geometry.ts';
import { sliceGreyPixels } from '../../renderer/views/slice-pixels.ts';
import type { AffinePair } from '../../main/engine/workstation/types.ts';

test('colour maps: linear between stops, clamped at the ends; CSS colours and gradients', () => {
  assert.deepEqual(colorAt(JACOBIAN_STOPS, 1000), [0.5, 0.5, 0.5]);
  assert.deepEqual(colorAt(JACOBIAN_STOPS, -50), [1, 0, 1]);
  assert.deepEqual(colorAt(JACOBIAN_STOPS, 99999), [1, 1, 0]);
  const mid = colorAt(JACOBIAN_STOPS, 750); // halfway between blue and grey
  assert.ok(Math.abs(mid[0] - 0.25) < 1e-12 && Math.abs(mid[1] - 0.4) < 1e-12 && Math.abs(mid[2] - 0.75) < 1e-12);
  assert.equal(cssColor([1, 0.5, 0]), 'rgb(255,128,0)');
  assert.equal(cssColor([2, -1, 0], 0.5), 'rgba(255,0,0,0.5)');
  const g = cssGradient(JACOBIAN_STOPS);
  assert.ok(g.startsWith('linear-gradient(to right, rgb(255,0,255) 0.0%'));
  assert.ok(g.endsWith('rgb(255,255,0) 100.0%)'));
});

test('colour maps: nice scale ends; the magnitude map holds mm x 10', () => {
  assert.deepEqual([0.7, 1, 1.2, 3, 7.4, 20, 51].map(niceCeil), [1, 1, 2, 5, 10, 20, 100]);
  assert.deepEqual([0.7, 1, 1.2, 3, 7.4, 20, 51].map(niceFloor), [0.5, 1, 1, 2, 5, 20, 50]);
  assert.equal(niceCeil(0), 1);
  assert.equal(magnitudeScaleMm(7.4), 10);
  assert.equal(magnitudeScaleMm(undefined), 10);
  const s = magnitudeStops(10);
  assert.equal(s[0][0], 0);
  assert.equal(s[s.length - 1][0], 100); // 10 mm = 100 in the int16 map
});

const pair = (index: number, fixed: number[], moving: number[], residualMm: number, inlier = true): AffinePair => ({
  index,
  fixed: fixed as [number, number, number],
  moving: moving as [number, number, number],
  score: 1,
  kept: true,
  residualMm,
  inlier,
});

test('residual scale: twice the 90th percentile of the inliers, outliers left out', () => {
  assert.equal(residualScaleMm([]), 1);
  assert.equal(residualScaleMm([0.1, 0.2]), 1); // at least 1 mm
  const r = Array.from({ length: 100 }, (_, i) => i / 40); // 0 .. 2.475 mm, p90 about 2.23
  assert.equal(residualScaleMm(r), 5);
  const pairs = r.map((x, i) => pair(i, [0, 0, 0], [0, 0, 0], x));
  pairs.push(pair(100, [0, 0, 0], [0, 0, 0], 55, false), pair(101, [0, 0, 0], [0, 0, 0], 58, false));
  assert.equal(pairResidualScaleMm(pairs), 5);
  assert.equal(pairResidualScaleMm(pairs.map((p) => ({ ...p, inlier: false }))), 5);
});

test('pairs in the slab: fixed or moving point within half the spacing of the slice, along the normal', () => {
  const pairs = [
    pair(0, [0, 0, 10], [0, 0, 11], 1),
    pair(1, [0, 0, 30], [0, 0, 14], 1), // moving inside only
    pair(2, [0, 0, -2.5], [5, 5, 40], 1), // fixed on the border: in
    pair(3, [0, 0, 23], [0, 0, -20], 1), // neither
  ];
  const s = pairsInSlab(pairs, 2, 10, 12.5);
  assert.deepEqual(
    s.map((p) => [p.pair.index, p.fixedIn, p.movingIn]),
    [
      [0, true, true],
      [1, false, true],
      [2, true, false],
    ],
  );
  assert.deepEqual(
    pairsInSlab(pairs, 0, 5, 0.5).map((p) => p.pair.index),
    [2],
  );
});

test('glyph spacing, scale bar and marker hits', () => {
  assert.equal(glyphEvery(4, 28), 7);
  assert.equal(glyphEvery(100, 28), 1);
  assert.equal(glyphEvery(0.01, 28), 512);
  assert.equal(glyphEvery(0, 28), 8);
  assert.deepEqual(scaleBar(2, 100), { mm: 50, px: 100 });
  assert.deepEqual(scaleBar(3, 100), { mm: 20, px: 60 });
  const markers = [
    { index: 4, at: [10, 10] as [number, number] },
    { index: 7, at: [14, 10] as [number, number] },
  ];
  assert.equal(hitMarker(markers, [11, 10], 7)?.index, 4);
  assert.equal(hitMarker(markers, [13, 11], 7)?.index, 7);
  assert.equal(hitMarker(markers, [30, 30], 7), null);
});

test('spyglass pixels: the slice across the two other index axes with the window/level mapping', () => {
  const size = [3, 2, 2] as const;
  const v = new Int16Array(12);
  for (let n = 0; n < 12; n++) v[n] = n * 100 - 600; // i fastest
  // window 1000 level 0: grey = (HU + 500) / 1000 * 255, clamped
  const k1 = sliceGreyPixels(v, size, 2, 1, 1000, 0);
  assert.equal(k1.width, 3);
  assert.equal(k1.height, 2);
  assert.deepEqual([k1.colAxis, k1.rowAxis], [0, 1]);
  // (Uint8ClampedArray clamps and rounds half to even, like the canvas pixels it fills)
  const grey = (hu: number) => Uint8ClampedArray.of(((hu + 500) / 1000) * 255)[0];
  const want = [6, 7, 8, 9, 10, 11].map((n) => grey(n * 100 - 600));
  assert.deepEqual(
    Array.from({ length: 6 }, (_, p) => k1.rgba[p * 4]),
    want,
  );
  assert.equal(k1.rgba[3], 255);
  // a sagittal-like slice (i fixed): columns along j, rows along k
  const i2 = sliceGreyPixels(v, size, 0, 2, 1000, 0);
  assert.deepEqual([i2.width, i2.height, i2.colAxis, i2.rowAxis], [2, 2, 1, 2]);
  assert.deepEqual(
    [0, 1, 2, 3].map((p) => i2.rgba[p * 4]),
    [2, 5, 8, 11].map((n) => grey(n * 100 - 600)),
  );
});
