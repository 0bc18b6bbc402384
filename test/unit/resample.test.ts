import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gridWithSpacing, resample, resampleToSpacing } from '../../main/engine/volume/resample.ts';
import { indexToWorld, type Geometry } from '../../main/engine/volume/geometry.ts';
import { makeVolume, type Mat3, type Vec3 } from '../../main/engine/volume/volume.ts';
import { cropIndex, cropWorld } from '../../main/engine/volume/crop.ts';

/** A linear function of world position: trilinear interpolation must reproduce it exactly. */
const f = (p: Vec3): number => 3 * p[0] - 2 * p[1] + 0.5 * p[2] + 7;

function sampled(g: Geometry) {
  const data = new Float64Array(g.size[0] * g.size[1] * g.size[2]);
  let n = 0;
  for (let k = 0; k < g.size[2]; k++)
    for (let j = 0; j < g.size[1]; j++) for (let i = 0; i < g.size[0]; i++) data[n++] = f(indexToWorld(g, [i, j, k]));
  return makeVolume({ ...g, data });
}

const rot = (t: number): Mat3 => [Math.cos(t), -Math.sin(t), 0, Math.sin(t), Math.cos(t), 0, 0, 0, 1];

test('trilinear resampling reproduces a linear function of world position on an oblique target (float64 reference)', () => {
  const src = sampled({ size: [40, 36, 30], spacing: [1, 1.2, 2], origin: [-20, -20, -30], direction: rot(0.2) });
  const target: Geometry = {
    size: [12, 10, 8],
    spacing: [1.7, 1.3, 2.9],
    origin: [-8, -6, -15],
    direction: rot(-0.35),
  };
  const out = resample(src, target, { fill: NaN });
  let n = 0;
  let checked = 0;
  for (let k = 0; k < 8; k++)
    for (let j = 0; j < 10; j++)
      for (let i = 0; i < 12; i++, n++) {
        const v = out.data[n];
        if (Number.isNaN(v)) continue;
        checked++;
        const want = f(indexToWorld(target, [i, j, k]));
        assert.ok(Math.abs(v - want) < 1e-9, `(${i},${j},${k}) ${v} vs ${want}`);
      }
  assert.ok(checked > 800, `most target voxels lie inside the source (${checked})`);
});

test('resampling onto the own grid is the identity, int16 kept', () => {
  const data = Int16Array.from({ length: 5 * 4 * 3 }, (_, n) => n * 37 - 1000);
  const v = makeVolume({ size: [5, 4, 3], spacing: [1, 2, 3], origin: [1, 2, 3], direction: rot(0.5), data });
  for (const interpolation of ['linear', 'nearest'] as const) {
    const out = resample(v, v, { interpolation });
    assert.ok(out.data instanceof Int16Array);
    assert.deepEqual(Array.from(out.data), Array.from(data));
  }
});

test('a grid with the i axis reversed gives the data reversed along i (orientation check)', () => {
  const data = Int16Array.from({ length: 4 * 2 * 2 }, (_, n) => n);
  const v = makeVolume({ size: [4, 2, 2], spacing: [1, 1, 1], origin: [0, 0, 0], data });
  const flipped: Geometry = {
    size: [4, 2, 2],
    spacing: [1, 1, 1],
    origin: [3, 0, 0],
    direction: [-1, 0, 0, 0, 1, 0, 0, 0, 1],
  };
  const out = resample(v, flipped, { interpolation: 'nearest' });
  for (let k = 0; k < 2; k++)
    for (let j = 0; j < 2; j++)
      for (let i = 0; i < 4; i++) assert.equal(out.data[i + 4 * (j + 2 * k)], data[3 - i + 4 * (j + 2 * k)]);
});

test('nearest-neighbour resampling of labels only produces existing labels', () => {
  const data = Uint8Array.from({ length: 20 * 20 * 10 }, (_, n) => (n % 7 === 0 ? 5 : n % 3));
  const v = makeVolume({ size: [20, 20, 10], spacing: [1, 1, 1], origin: [0, 0, 0], data });
  const out = resample(
    v,
    { size: [13, 17, 9], spacing: [1.37, 1.1, 1.05], origin: [0.3, 0.2, 0.1], direction: rot(0.1) },
    { interpolation: 'nearest' },
  );
  const allowed = new Set([0, 1, 2, 5]);
  for (const x of out.data) assert.ok(allowed.has(x));
});

test('integer outputs are rounded and clamped; points outside get the fill value', () => {
  const v = makeVolume({ size: [2, 1, 1], spacing: [1, 1, 1], origin: [0, 0, 0], data: Int16Array.from([0, 3]) });
  const out = resample(
    v,
    { size: [4, 1, 1], spacing: [0.5, 1, 1], origin: [0, 0, 0], direction: rot(0) },
    { fill: -1024 },
  );
  assert.deepEqual(Array.from(out.data), [0, 2, 3, -1024]); // 1.5 rounds to 2
});

test('gridWithSpacing keeps the first voxel and covers the extent', () => {
  const g = gridWithSpacing(
    { size: [512, 512, 141], spacing: [0.977, 0.977, 2], origin: [1, 2, 3], direction: rot(0) },
    [2, 2, 2],
  );
  assert.deepEqual(g.size, [250, 250, 141]);
  assert.deepEqual(g.origin, [1, 2, 3]);
  const v = resampleToSpacing(
    sampled({ size: [9, 9, 9], spacing: [1, 1, 1], origin: [0, 0, 0], direction: rot(0) }),
    [2, 2, 2],
  );
  assert.deepEqual(v.size, [5, 5, 5]);
  assert.ok(Math.abs(v.data[4] - f([8, 0, 0])) < 1e-9);
});

test('cropping keeps world positions of the kept voxels', () => {
  const g: Geometry = { size: [10, 9, 8], spacing: [1, 2, 3], origin: [5, -5, 2], direction: rot(0.4) };
  const v = sampled(g);
  const c = cropIndex(v, [2, 3, 1], [7, 9, 5]);
  assert.deepEqual(c.size, [5, 6, 4]);
  for (const ijk of [
    [0, 0, 0],
    [4, 5, 3],
    [1, 2, 3],
  ] as Vec3[]) {
    const n = ijk[0] + 5 * (ijk[1] + 6 * ijk[2]);
    assert.ok(Math.abs(c.data[n] - f(indexToWorld(c, ijk))) < 1e-9);
  }
  const w = cropWorld(v, indexToWorld(g, [2, 3, 1]), indexToWorld(g, [6, 8, 4]));
  assert.deepEqual(w.size, [5, 6, 4]);
  assert.deepEqual(Array.from(w.data), Array.from(c.data));
  assert.throws(() => cropIndex(v, [20, 0, 0], [30, 1, 1]), /empty or outside/);
});
