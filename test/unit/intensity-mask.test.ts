import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCt, clipIntensity, normalizeForNetwork, requireCt } from '../../main/engine/volume/intensity.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import { makeVolume, type Mat3 } from '../../main/engine/volume/volume.ts';

test('network normalisation matches the official SAM RescaleIntensity by hand', () => {
  const v = makeVolume({
    size: [5, 1, 1],
    spacing: [1, 1, 1],
    origin: [0, 0, 0],
    data: Int16Array.from([-3000, -1024, 0, 3071, 5000]),
  });
  const out = normalizeForNetwork(v);
  const expected = [-50, -50, (1024 / 4095) * 255 - 50, 205, 205];
  out.data.forEach((x, n) => assert.ok(Math.abs(x - expected[n]) < 1e-4, `${x} vs ${expected[n]}`));
});

test('clipIntensity keeps the voxel type', () => {
  const v = makeVolume({
    size: [3, 1, 1],
    spacing: [1, 1, 1],
    origin: [0, 0, 0],
    data: Int16Array.from([-2000, 5, 4000]),
  });
  const c = clipIntensity(v, -1024, 3071);
  assert.ok(c.data instanceof Int16Array);
  assert.deepEqual(Array.from(c.data), [-1024, 5, 3071]);
});

/**
 * A synthetic chest: an elliptic body (40 HU) with a lung (-850 HU) whose trachea reaches the
 * top slice, in air (-1000 HU), on a table (200 HU) 2 voxels below the body.
 */
function phantom() {
  const [ni, nj, nk] = [60, 50, 20];
  const data = new Int16Array(ni * nj * nk).fill(-1000);
  const at = (i: number, j: number, k: number) => i + ni * (j + nj * k);
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++) {
        const inBody = ((i - 30) / 25) ** 2 + ((j - 22) / 15) ** 2 <= 1;
        const inLung = ((i - 22) / 6) ** 2 + ((j - 22) / 6) ** 2 <= 1 && k > 3;
        const trachea = Math.abs(i - 30) <= 1 && Math.abs(j - 22) <= 1 && k >= 10;
        if (inBody) data[at(i, j, k)] = inLung || trachea ? -850 : 40;
        if (j >= 40 && j <= 42) data[at(i, j, k)] = 200; // table
      }
  // join the trachea to the lung
  for (let k = 10; k < nk; k++) for (let i = 22; i <= 30; i++) data[at(i, 22, k)] = -850;
  // the direction: i -> L, j -> P, k -> S (slices across k)
  return {
    vol: makeVolume({
      size: [ni, nj, nk],
      spacing: [1, 1, 1],
      origin: [0, 0, 0],
      direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] as Mat3,
      data,
    }),
    at,
  };
}

test('body mask: lung and trachea inside, table and air outside', () => {
  const { vol, at } = phantom();
  const m = bodyMask(vol, { openingMm: 1 });
  assert.equal(m.data[at(22, 22, 8)], 1, 'lung is inside');
  assert.equal(m.data[at(30, 22, 15)], 1, 'trachea is inside');
  assert.equal(m.data[at(30, 22, 19)], 1, 'trachea at the top slice is inside');
  assert.equal(m.data[at(30, 41, 10)], 0, 'table is outside');
  assert.equal(m.data[at(2, 2, 10)], 0, 'air is outside');
  assert.equal(m.data[at(50, 22, 10)], 1, 'soft tissue is inside');
});

test('body mask of a field of view that cuts through the lung: hull filling keeps the lung in, hole filling does not', () => {
  const { vol, at } = phantom();
  // crop the phantom through the lung (i < 20 removed): the lung now opens onto the volume edge
  const [ni, nj, nk] = vol.size;
  const w = ni - 20;
  const data = new Int16Array(w * nj * nk);
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++) for (let i = 0; i < w; i++) data[i + w * (j + nj * k)] = vol.data[at(i + 20, j, k)];
  const cropped = makeVolume({ size: [w, nj, nk], spacing: [1, 1, 1], origin: [20, 0, 0], data });
  const lungVoxel = 0 + w * (22 + nj * 8); // the lung at the cut edge
  assert.equal(bodyMask(cropped, { openingMm: 1 }).data[lungVoxel], 1);
  assert.equal(bodyMask(cropped, { openingMm: 1, fill: 'holes' }).data[lungVoxel], 0);
  assert.equal(bodyMask(cropped, { openingMm: 1 }).data[w - 1 + w * (2 + nj * 8)], 0, 'air outside the body stays out');
});

test('checkCt: real HU passes, all-positive intensities do not, and requireCt names the input', () => {
  const { vol } = phantom();
  assert.ok(checkCt(vol).ok);
  const mr = makeVolume({
    size: [10, 10, 10],
    spacing: [1, 1, 1],
    origin: [0, 0, 0],
    data: Float32Array.from({ length: 1000 }, (_, n) => n % 400),
  });
  assert.equal(checkCt(mr).ok, false);
  assert.throws(() => requireCt(mr, 'scan.nii.gz'), /scan\.nii\.gz: not a CT/);
  const dicomMr = { ...vol, meta: { ...vol.meta, modality: 'MR' } };
  assert.match(checkCt(dicomMr).reason, /modality is MR/);
});
