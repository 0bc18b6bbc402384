/**
 * qa.json's NCC where the moving image has data (register/overlap-ncc.ts) against the whole-body NCC,
 * on a real CT and a crop of it (a shorter moving scan, the same anatomy at the same world points).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { overlapNcc } from '../../main/engine/register/overlap-ncc.ts';
import { maskedNcc } from '../../main/engine/register/masked-ncc.ts';
import { zeroField } from '../../main/engine/register/field/field.ts';
import { warpVolume } from '../../main/engine/register/field/warp.ts';
import { cropIndex } from '../../main/engine/volume/crop.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import { dataPath } from '../helpers.ts';

test('NCC where the moving image has data: 1 for a crop of the fixed scan, with the share it covers', async () => {
  const fixed = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
  const [ni, nj, nk] = fixed.size;
  // the lower 60 % of the slices: the same voxels at the same world points
  const kEnd = Math.round(0.6 * nk);
  const moving = cropIndex(fixed, [0, 0, 0], [ni, nj, kEnd]);
  const field = zeroField(fixed);
  const warped = warpVolume(moving, field, { fill: -1024 });
  const mask = bodyMask(fixed).data as Uint8Array;
  const o = overlapNcc(fixed, moving, field, warped, mask, 1);
  const whole = maskedNcc(fixed.data, warped.data, mask);
  // the share of body voxels in the covered slices (the extent reaches half a slice beyond the last)
  let body = 0;
  let covered = 0;
  for (let v = 0; v < mask.length; v++)
    if (mask[v]) {
      body++;
      if (Math.floor(v / (ni * nj)) < kEnd) covered++;
    }
  console.log(
    `whole body NCC ${whole.toFixed(3)}; where the moving image has data ${o.before.toFixed(6)} / ${o.after.toFixed(6)} over ${o.afterPercent.toFixed(1)} % (expected ${((100 * covered) / body).toFixed(1)} %)`,
  );
  assert.ok(Math.abs(o.after - 1) < 1e-9 && Math.abs(o.before - 1) < 1e-9);
  assert.ok(Math.abs(o.afterPercent - (100 * covered) / body) < 1e-9);
  assert.equal(o.beforePercent, o.afterPercent);
  assert.ok(whole < 0.9, `the whole-body NCC counts the uncovered voxels: ${whole}`);
  // a shift moves the overlap: a field of +20 mm along z sends points beyond the crop's top
  const shifted = zeroField(fixed);
  for (let v = 0; v < shifted.data.length; v += 3) shifted.data[v + 2] = 20 * Math.sign(fixed.direction[8] || 1);
  const s = overlapNcc(fixed, moving, shifted, warpVolume(moving, shifted, { fill: -1024 }), mask, 2);
  assert.ok(s.afterPercent !== s.beforePercent);
  assert.ok(s.after < 0.99, `a 20 mm shift decorrelates: ${s.after}`);
});
