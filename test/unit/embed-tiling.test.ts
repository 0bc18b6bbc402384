// Whole-volume embedding: tiled equals untiled (margins from the receptive field), geometry of the
// embedding grids, float16 storage, tile planning, cancellation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exampleCt2mm, tinyEngine } from './embed-fixtures.ts';
import {
  bytesPerInputVoxel,
  embedVolume,
  embeddingFloat32,
  halfTable,
  largestTensorBytesPerVoxel,
  planTiles,
  receptiveRadius,
  toHalf,
  type EmbeddedVolume,
} from '../../main/engine/sam/embed-volume.ts';
import { getSamConfig, type Vec3 } from '../../main/engine/sam/config.ts';
import { cropIndex } from '../../main/engine/volume/crop.ts';
import { indexToWorld } from '../../main/engine/volume/geometry.ts';
import { CancelledError } from '../../main/engine/errors.ts';

const maxDiff = (a: Float32Array, b: Float32Array) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let n = 0; n < a.length; n++) m = Math.max(m, Math.abs(a[n] - b[n]));
  return m;
};

test('tiled equals untiled; margins below the receptive field make seams', async (t) => {
  const ct = await exampleCt2mm();
  // 160 x 48 x 48 (x, y, z) voxels of 2 mm: tiles along z and x (the receptive field is widest in-plane)
  const vol = cropIndex(ct, [12, 50, 60], [172, 98, 108]);
  const engine = await tinyEngine(3);
  const t0 = performance.now();
  const whole = await embedVolume(vol, engine, { tile: [48, 48, 160] });
  const t1 = performance.now();
  const progress: number[] = [];
  const tile: Vec3 = [16, 48, 64];
  const tiled = await embedVolume(vol, engine, { tile, onProgress: (p) => progress.push(p.tile / p.tiles) });
  const t2 = performance.now();
  t.diagnostic(`untiled ${(t1 - t0).toFixed(0)} ms, ${progress.length} tiles ${(t2 - t1).toFixed(0)} ms`);
  assert.equal(progress.length, 9);
  assert.equal(progress.at(-1), 1);
  for (const k of ['global', 'local'] as const) {
    assert.deepEqual(tiled[k].size, whole[k].size);
    const d = maxDiff(tiled[k].data as Float32Array, whole[k].data as Float32Array);
    t.diagnostic(`${k}: max |tiled - untiled| = ${d}`);
    assert.ok(d <= 1e-5, `${k} differs by ${d}`);
  }
  // the same tiles with no margin differ at the seams: the comparison above is not vacuous
  const bare = await embedVolume(vol, engine, { tile, margin: [0, 0, 0] });
  assert.ok(maxDiff(bare.local.data as Float32Array, whole.local.data as Float32Array) > 1e-3);
  assert.ok(maxDiff(bare.global.data as Float32Array, whole.global.data as Float32Array) > 1e-3);

  // geometry: LPS grid, 2 mm * stride spacing, voxel 0 centred on its stride block of the input grid
  const checkGeometry = (e: EmbeddedVolume) => {
    assert.deepEqual(e.local.direction, [1, 0, 0, 0, 1, 0, 0, 0, 1]);
    assert.deepEqual(e.local.spacing, [4, 4, 4]);
    assert.deepEqual(e.global.spacing, [32, 32, 8]);
    assert.deepEqual(e.global.size, [10, 3, 12]);
    assert.deepEqual(e.local.size, [80, 24, 24]);
    assert.equal(e.local.components, 8);
    const o = indexToWorld(vol, [7.5, 7.5, 1.5]); // (s - 1) / 2 with s = (16, 16, 4) in (x, y, z)
    e.global.origin.forEach((v, a) => assert.ok(Math.abs(v - o[a]) < 1e-9));
    const ol = indexToWorld(vol, [0.5, 0.5, 0.5]);
    e.local.origin.forEach((v, a) => assert.ok(Math.abs(v - ol[a]) < 1e-9));
  };
  checkGeometry(whole);
  checkGeometry(tiled);

  // float16 storage: same values within half precision
  const half = await embedVolume(vol, engine, { tile: [48, 48, 160], fp16: true });
  assert.equal(half.local.storage, 'float16');
  assert.ok(half.local.data instanceof Uint16Array);
  assert.ok(maxDiff(embeddingFloat32(half.local), whole.local.data as Float32Array) < 1e-3);
  assert.ok(maxDiff(embeddingFloat32(half.global), whole.global.data as Float32Array) < 1e-3);
});

test('float16 conversion rounds to nearest even and round-trips every half value', () => {
  const table = halfTable();
  for (let h = 0; h < 65536; h++) {
    const v = table[h];
    if (Number.isNaN(v)) continue;
    assert.equal(toHalf(v), h, `half ${h.toString(16)} (${v})`);
  }
  assert.equal(toHalf(1), 0x3c00);
  assert.equal(toHalf(-2), 0xc000);
  assert.equal(toHalf(65504), 0x7bff);
  assert.equal(toHalf(1e6), 0x7c00);
  assert.equal(toHalf(1 + 2 ** -11), 0x3c00); // tie -> even
  assert.equal(toHalf(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(toHalf(2 ** -25), 0); // tie with 0 -> even
  assert.equal(toHalf(2 ** -24), 1);
});

test('tile planning: aligned tiles cover the volume once; the default fits the memory budget', () => {
  const small = getSamConfig('small');
  const r = receptiveRadius(small);
  assert.deepEqual(r.global, [18.5, 85.5, 85.5]);
  assert.deepEqual(r.local, [9.5, 50.5, 50.5]);
  const size: [number, number, number] = [141, 250, 250];
  const tiles = planTiles(small, size, { maxTileBytes: 2.5e9 });
  const covered = new Uint8Array(size[0]);
  for (const t of tiles) {
    for (let a = 0; a < 3; a++) {
      assert.equal(t.inStart[a] % [4, 16, 16][a], 0);
      assert.equal(t.start[a] % [4, 16, 16][a], 0);
      assert.ok(t.inStart[a] === 0 || t.start[a] - t.inStart[a] >= Math.ceil(r.global[a]));
      assert.ok(t.inEnd[a] === size[a] || t.inEnd[a] - t.end[a] >= Math.ceil(r.global[a]));
    }
    if (t.start[1] === 0 && t.start[2] === 0) for (let z = t.start[0]; z < t.end[0]; z++) covered[z]++;
  }
  assert.ok(covered.every((c) => c === 1));
  assert.ok(tiles.length > 1);
  const biggest = Math.max(...tiles.map((t) => [0, 1, 2].reduce((v, a) => v * (t.inEnd[a] - t.inStart[a]), 1)));
  assert.ok(biggest * bytesPerInputVoxel(small) <= 2.5e9);
  // an explicit tile is rounded up to the total stride
  const p = planTiles(small, [30, 40, 40], { tile: [5, 20, 40] });
  assert.deepEqual(p[0].end, [8, 32, 40]);
  // a device that caps one buffer (WebGPU: 128 MB on lavapipe, GBs on desktop GPUs): every tile's
  // largest tensor fits it
  const cap = 512 * 2 ** 20;
  const capped = planTiles(small, size, { maxTileBytes: 64e9, maxTensorBytes: cap });
  const uncapped = planTiles(small, size, { maxTileBytes: 64e9 });
  assert.equal(uncapped.length, 1);
  assert.ok(capped.length > 1, `${capped.length} tiles`);
  for (const t of capped) {
    const voxels = [0, 1, 2].reduce((v, a) => v * (t.inEnd[a] - t.inStart[a]), 1);
    assert.ok(voxels * largestTensorBytesPerVoxel(small) <= cap, `tile of ${voxels} voxels`);
  }
});

test('embedding is cancellable between tiles and refuses non-CT input', async () => {
  const ct = await exampleCt2mm();
  const vol = cropIndex(ct, [0, 40, 60], [64, 104, 76]);
  const engine = await tinyEngine(3);
  const ac = new AbortController();
  await assert.rejects(
    embedVolume(vol, engine, { tile: [4, 64, 64], onProgress: () => ac.abort(), signal: ac.signal }),
    CancelledError,
  );
  const mr = { ...vol, data: new Float32Array(vol.data.length).fill(300) };
  await assert.rejects(embedVolume(mr, engine), /not a CT in Hounsfield units/);
});

test('a device whose buffers are too small for one tile is refused by name, never run', async () => {
  const ct = await exampleCt2mm();
  const vol = cropIndex(ct, [0, 40, 60], [64, 104, 76]);
  const engine = await tinyEngine(3);
  const tiny = engine.config;
  const tiles = planTiles(tiny, [vol.size[2], vol.size[1], vol.size[0]], { maxTileBytes: 64e9 });
  const voxels = Math.max(...tiles.map((t) => [0, 1, 2].reduce((v, a) => v * (t.inEnd[a] - t.inStart[a]), 1)));
  // a cap below the smallest tile that keeps its receptive-field margins
  await assert.rejects(
    () => embedVolume({ ...vol, meta: { ...vol.meta, source: 'crop.nii.gz' } }, engine, { maxTensorBytes: 1000 }),
    /crop\.nii\.gz: one tile of the 'tiny' network needs a [\d.]+ MB tensor; this device holds at most 0 MB in one buffer/,
  );
  // a cap that one whole tile fits: the embedding runs
  const e = await embedVolume(vol, engine, { maxTensorBytes: voxels * largestTensorBytesPerVoxel(tiny) + 1 });
  assert.ok(e.local.data.length > 0);
});
