import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCt, clipIntensity, normalizeForNetwork, requireCt } from '../../main/engine/volume/intensity.ts';
import { bodyMask, boxFilter, keepLargestComponent } from '../../main/engine/volume/mask.ts';
import { packAbove, unpack } from '../../main/engine/volume/bit-mask.ts';
import { rng } from '../helpers.ts';
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

/** Random masks: noise of density `p` (many small components, ties among them). */
function noiseMask(size: number[], r: () => number, p: number): Uint8Array {
  const m = new Uint8Array(size[0] * size[1] * size[2]);
  for (let v = 0; v < m.length; v++) m[v] = r() < p ? 1 : 0;
  return m;
}

const SIZES = [
  [17, 9, 6],
  [1, 5, 7],
  [6, 1, 4],
  [5, 4, 1],
  [2, 2, 2],
  [23, 3, 11],
  // rows of one, two and three 32-bit words (bit-mask.ts packs rows along i)
  [32, 3, 2],
  [33, 2, 3],
  [70, 4, 3],
];

test('boxFilter (bit-packed) equals a brute-force box erosion / dilation (windows clipped at the faces)', () => {
  const r = rng(41);
  for (const size of SIZES)
    for (const radii of [
      [1, 0, 0],
      [0, 2, 0],
      [0, 0, 1],
      [2, 1, 3],
      [4, 4, 0],
      [3, 0, 2],
      [7, 7, 7],
      // shifts across whole words along i
      [31, 0, 0],
      [32, 1, 0],
      [45, 0, 1],
    ])
      for (const op of ['min', 'max'] as const)
        for (const p of [0.3, 0.8]) {
          const m = noiseMask(size, r, p);
          const got = boxFilter(m, size, radii, op);
          const [ni, nj, nk] = size;
          for (let k = 0; k < nk; k++)
            for (let j = 0; j < nj; j++)
              for (let i = 0; i < ni; i++) {
                let all = 1;
                let any = 0;
                for (let c = Math.max(0, k - radii[2]); c <= Math.min(nk - 1, k + radii[2]); c++)
                  for (let b = Math.max(0, j - radii[1]); b <= Math.min(nj - 1, j + radii[1]); b++)
                    for (let a = Math.max(0, i - radii[0]); a <= Math.min(ni - 1, i + radii[0]); a++) {
                      const x = m[a + ni * (b + nj * c)];
                      all &= x;
                      any |= x;
                    }
                const want = op === 'min' ? all : any;
                assert.equal(got[i + ni * (j + nj * k)], want, `${op} ${radii} on ${size} at ${i},${j},${k}`);
              }
        }
});

test('keepLargestComponent equals a flood fill (6-connected, first component in scan order on a tie)', () => {
  const r = rng(42);
  const floodFill = (m: Uint8Array, size: number[]): Uint8Array => {
    const [ni, nj, nk] = size;
    const label = new Int32Array(m.length);
    let best = 0;
    let bestSize = 0;
    let next = 0;
    for (let p0 = 0; p0 < m.length; p0++) {
      if (!m[p0] || label[p0]) continue;
      label[p0] = ++next;
      const queue = [p0];
      for (let h = 0; h < queue.length; h++) {
        const p = queue[h];
        const i = p % ni;
        const j = Math.floor(p / ni) % nj;
        const k = Math.floor(p / (ni * nj));
        const nb: number[] = [];
        if (i > 0) nb.push(p - 1);
        if (i < ni - 1) nb.push(p + 1);
        if (j > 0) nb.push(p - ni);
        if (j < nj - 1) nb.push(p + ni);
        if (k > 0) nb.push(p - ni * nj);
        if (k < nk - 1) nb.push(p + ni * nj);
        for (const q of nb)
          if (m[q] && !label[q]) {
            label[q] = next;
            queue.push(q);
          }
      }
      if (queue.length > bestSize) {
        bestSize = queue.length;
        best = next;
      }
    }
    return Uint8Array.from(label, (l) => (l === best && best > 0 ? 1 : 0));
  };
  for (const size of [...SIZES, [30, 20, 10]])
    for (const p of [0.15, 0.3, 0.45, 0.6]) {
      const m = noiseMask(size, r, p);
      const want = floodFill(m, size);
      keepLargestComponent(m, size);
      assert.deepEqual(m, want, `density ${p} on ${size}`);
    }
  // two components of equal size: the first in scan order stays
  const tie = new Uint8Array(4 * 3 * 2);
  tie[0] = tie[1] = 1;
  tie[22] = tie[23] = 1;
  keepLargestComponent(tie, [4, 3, 2]);
  assert.deepEqual(
    [...tie.keys()].filter((v) => tie[v]),
    [0, 1],
  );
  const empty = new Uint8Array(8);
  keepLargestComponent(empty, [2, 2, 2]);
  assert.ok(empty.every((x) => x === 0));
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

test('packAbove / unpack: the first component above the threshold, rows across word boundaries', () => {
  const r = rng(43);
  for (const size of [
    [1, 3, 2],
    [31, 2, 2],
    [32, 2, 2],
    [65, 3, 2],
  ])
    for (const components of [1, 3]) {
      const n = size[0] * size[1] * size[2];
      const data = new Float32Array(n * components);
      for (let v = 0; v < data.length; v++) data[v] = r() * 2000 - 1000;
      // whole-word runs of ones and zeros as well as noise
      for (let v = 0; v < Math.min(n, 64); v++) data[v * components] = 500;
      const got = unpack(packAbove(data, size, -500.25, components));
      for (let v = 0; v < n; v++)
        assert.equal(got[v], data[v * components] > -500.25 ? 1 : 0, `${size} c${components} at ${v}`);
    }
});
