import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dataPath } from '../helpers.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { makeVolume, type Mat3, type Vec3, type Volume } from '../../main/engine/volume/volume.ts';
import {
  fromColumns,
  indexToWorld,
  worldBounds,
  worldToIndex,
  type Geometry,
} from '../../main/engine/volume/geometry.ts';
import {
  embeddingGrid,
  findPositives,
  prepareCt,
  samplePatchGeometries,
  samplePatchPair,
  SAM_STRIDES,
  type PatchPair,
  type PositiveSet,
  type PreparedCt,
} from '../../main/engine/train/patch-pairs.ts';
import { createRng } from '../../main/engine/train/rng.ts';

const CT = dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz');
let prepared: Promise<PreparedCt> | undefined;
const realCt = (): Promise<PreparedCt> => (prepared ??= readVolume(CT).then((v) => prepareCt(v)));

/** Trilinear value of a volume at a world point (NaN outside). */
function valueAt(v: Volume, p: Vec3): number {
  const x = worldToIndex(v, p);
  const f = x.map(Math.floor);
  if (f.some((a, i) => a < 0 || a + 1 >= v.size[i])) return NaN;
  let s = 0;
  for (let c = 0; c < 8; c++) {
    let w = 1;
    const q = [0, 1, 2].map((i) => {
      const hi = (c >> i) & 1;
      const t = x[i] - f[i];
      w *= hi ? t : 1 - t;
      return f[i] + hi;
    });
    s += w * v.data[q[0] + v.size[0] * (q[1] + v.size[1] * q[2])];
  }
  return s;
}

function ijk(g: Geometry, v: number): Vec3 {
  return [v % g.size[0], Math.floor(v / g.size[0]) % g.size[1], Math.floor(v / (g.size[0] * g.size[1]))];
}

/** Every positive's world point lies within half a voxel (per axis) of its voxel centre in both patches. */
function checkHalfVoxel(a: Geometry, b: Geometry, set: PositiveSet, stride: [number, number, number]): void {
  const grids = [embeddingGrid(a, stride), embeddingGrid(b, stride)];
  for (let n = 0; n < set.a.length; n++) {
    const p: Vec3 = [set.world[3 * n], set.world[3 * n + 1], set.world[3 * n + 2]];
    for (const [g, v] of [
      [grids[0], set.a[n]],
      [grids[1], set.b[n]],
    ] as const) {
      const idx = worldToIndex(g, p);
      const vox = ijk(g, v);
      for (let ax = 0; ax < 3; ax++)
        assert.ok(
          Math.abs(idx[ax] - vox[ax]) <= 0.5 + 1e-6,
          `positive ${n} axis ${ax}: ${idx[ax]} vs voxel ${vox[ax]}`,
        );
    }
  }
}

/** Do the patch extents (voxel edges) overlap by at least a voxel? (same direction, identity here) */
function overlaps(a: Geometry, b: Geometry): boolean {
  const edges = (g: Geometry) =>
    worldBounds({ ...g, origin: indexToWorld(g, [-0.5, -0.5, -0.5]), size: g.size.map((n) => n + 1) as Vec3 });
  const [la, ha] = edges(a);
  const [lb, hb] = edges(b);
  return [0, 1, 2].every((ax) => Math.min(ha[ax], hb[ax]) - Math.max(la[ax], lb[ax]) >= 2 - 1e-6);
}

test('real CT: positives are the same world point in both patches, within half an embedding voxel, inside the body', async () => {
  const ct = await realCt();
  assert.deepEqual(ct.image.spacing, [2, 2, 2]);
  const rng = createRng(11);
  for (let n = 0; n < 3; n++) {
    const pair: PatchPair = samplePatchPair(ct, rng, { independentProbability: 0 });
    assert.deepEqual(pair.a.image.size, [96, 96, 32]);
    assert.equal(pair.a.image.data.length, 32 * 96 * 96);
    for (const x of [pair.a.image.data, pair.b.image.data])
      for (const v of x) assert.ok(v >= -50 - 1e-4 && v <= 205 + 1e-4);
    const { local, global } = pair.positives;
    assert.ok(local.a.length >= 50, `${local.a.length} local positives`);
    assert.ok(global.a.length >= 5, `${global.a.length} global positives`);
    checkHalfVoxel(pair.a.geometry, pair.b.geometry, local, SAM_STRIDES.local);
    checkHalfVoxel(pair.a.geometry, pair.b.geometry, global, SAM_STRIDES.global);
    // Inside the body, and the two patches show the same anatomy there (the geometry is right).
    const va: number[] = [];
    const vb: number[] = [];
    for (let i = 0; i < local.a.length; i++) {
      const p: Vec3 = [local.world[3 * i], local.world[3 * i + 1], local.world[3 * i + 2]];
      const m = worldToIndex(ct.mask, p).map(Math.round);
      assert.equal(ct.mask.data[m[0] + ct.mask.size[0] * (m[1] + ct.mask.size[1] * m[2])], 1);
      va.push(valueAt(pair.a.image, p));
      vb.push(valueAt(pair.b.image, p));
    }
    const ok = va.map((x, i) => Number.isFinite(x) && Number.isFinite(vb[i]));
    assert.ok(ok.filter(Boolean).length >= 40);
    const diff = va.filter((_, i) => ok[i]).map((x, i) => Math.abs(x - vb.filter((__, j) => ok[j])[i]));
    const shuffled = va
      .filter((_, i) => ok[i])
      .map((x, i, arr) => Math.abs(x - vb.filter((__, j) => ok[j])[(i + 17) % arr.length]));
    const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    assert.ok(
      med(diff) < 0.3 * med(shuffled) + 1,
      `median |A-B| at positives ${med(diff)} vs shuffled ${med(shuffled)}`,
    );
  }
});

test('real CT: scales vary in [0.8, 1.2], crop boxes inside the volume, and the patches overlap by the official rules', async () => {
  const ct = await realCt();
  const rng = createRng(3);
  const scales: number[] = [];
  let independent = 0;
  let overlapping = 0;
  const draws = 300;
  for (let n = 0; n < draws; n++) {
    const g = samplePatchGeometries(ct.image, rng);
    for (const s of [g.a, g.b]) {
      scales.push(s.scale);
      assert.ok(s.scale >= 0.8 && s.scale < 1.2);
      assert.ok(s.geometry.spacing.every((x) => Math.abs(x - 2 * s.scale) < 1e-9));
      for (let ax = 0; ax < 3; ax++) {
        assert.ok(s.cropStart[ax] >= 1 && s.cropStart[ax] + s.cropSize[ax] <= ct.image.size[ax] - 1);
        // the patch (96 s voxels of 2 mm) sits inside its crop box
        const lo = worldToIndex(ct.image, indexToWorld(s.geometry, [-0.5, -0.5, -0.5]))[ax];
        const hi = worldToIndex(ct.image, indexToWorld(s.geometry, s.geometry.size.map((v) => v - 0.5) as Vec3))[ax];
        assert.ok(lo >= s.cropStart[ax] - 0.5 - 1e-6 && hi <= s.cropStart[ax] + s.cropSize[ax] - 0.5 + 1e-6);
      }
    }
    assert.notEqual(g.a.scale, g.b.scale);
    if (g.independent) independent++;
    else assert.ok(overlaps(g.a.geometry, g.b.geometry), 'a seeded pair overlaps');
    if (overlaps(g.a.geometry, g.b.geometry)) overlapping++;
  }
  assert.ok(
    Math.min(...scales) < 0.82 && Math.max(...scales) > 1.18,
    `scales ${Math.min(...scales)}..${Math.max(...scales)}`,
  );
  assert.ok(independent > 0.1 * draws && independent < 0.3 * draws, `${independent} independent of ${draws}`);
  assert.ok(overlapping >= draws - independent);
});

test('a pair without overlap has no positives; positives with an oblique direction keep the half-voxel rule', () => {
  const mask = makeVolume({
    size: [60, 60, 60],
    spacing: [4, 4, 4],
    origin: [-120, -120, -120],
    data: new Uint8Array(60 ** 3).fill(1),
  });
  const c = Math.cos(0.3);
  const s = Math.sin(0.3);
  const dir: Mat3 = fromColumns([c, s, 0], [-s, c, 0], [0, 0, 1]);
  const a: Geometry = { size: [32, 32, 16], spacing: [2, 2, 2], origin: [-30, -30, -16], direction: dir };
  const far: Geometry = { ...a, origin: [60, 60, 40], spacing: [2.2, 2.2, 2.2] };
  const none = findPositives(a, far, mask, createRng(1), { strides: SAM_STRIDES });
  assert.equal(none.local.a.length, 0);
  assert.equal(none.global.a.length, 0);
  const near: Geometry = { ...a, origin: [-20, -25, -10], spacing: [1.7, 1.7, 1.7] };
  const pos = findPositives(a, near, mask, createRng(1), {
    nPos: 100,
    strides: { global: [4, 8, 8], local: [2, 2, 2] },
  });
  assert.equal(pos.local.a.length, 100);
  checkHalfVoxel(a, near, pos.local, [2, 2, 2]);
  checkHalfVoxel(a, near, pos.global, [4, 8, 8]);
  // Outside the body mask: no positives.
  const empty = makeVolume({ ...mask, data: new Uint8Array(60 ** 3) });
  assert.equal(findPositives(a, near, empty, createRng(1)).local.a.length, 0);
});

test('a synthetic RAS-stored phantom: same geometry rules after preparation, deterministic under a seed', () => {
  // 2.5 mm voxels stored R-A-S (direction diag(-1, -1, 1)): an ellipsoid body in air.
  const size: Vec3 = [90, 80, 40];
  const data = new Int16Array(size[0] * size[1] * size[2]).fill(-1000);
  for (let k = 0; k < size[2]; k++)
    for (let j = 0; j < size[1]; j++)
      for (let i = 0; i < size[0]; i++)
        if (((i - 45) / 38) ** 2 + ((j - 40) / 30) ** 2 <= 1)
          data[i + size[0] * (j + size[1] * k)] = 40 + ((i * 7 + j * 3 + k * 11) % 50);
  const vol = makeVolume({
    size,
    spacing: [2.5, 2.5, 2.5],
    origin: [100, 80, -50],
    direction: [-1, 0, 0, 0, -1, 0, 0, 0, 1],
    data,
  });
  const ct = prepareCt(vol);
  assert.deepEqual(ct.image.direction, [1, 0, 0, 0, 1, 0, 0, 0, 1]);
  const opts = { patchSize: [48, 48, 16] as Vec3, nPos: 40, independentProbability: 0 };
  const p1 = samplePatchPair(ct, createRng(5), opts);
  const p2 = samplePatchPair(ct, createRng(5), opts);
  assert.deepEqual(p1.a.geometry, p2.a.geometry);
  assert.deepEqual(p1.b.geometry, p2.b.geometry);
  assert.deepEqual(p1.positives, p2.positives);
  assert.deepEqual(p1.a.image.data, p2.a.image.data);
  assert.ok(p1.positives.local.a.length > 0);
  checkHalfVoxel(p1.a.geometry, p1.b.geometry, p1.positives.local, SAM_STRIDES.local);
  const p3 = samplePatchPair(ct, createRng(6), opts);
  assert.notDeepEqual(p1.a.geometry, p3.a.geometry);
});
