/**
 * The cascade uses a later stage's correction only when it makes the images agree better
 * (register/map-ncc.ts): SAM-coarse by the smoothed images' NCC, the deform stage by a local NCC
 * without the objective's reward for contrast. A scan registered to itself then stays the affine
 * (the GE tilted head used to come back with Jacobians of 0.71-1.26: coarse fitted its matches'
 * noise, the deform stage raised its objective by adding contrast).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registerVolumes } from '../../main/engine/register/cascade.ts';
import { lnccThroughMaps, nccThroughMaps, smoothedPair } from '../../main/engine/register/map-ncc.ts';
import { zeroField } from '../../main/engine/register/field/field.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import { dataPath } from '../helpers.ts';

const LUNG = dataPath('elastix/Testing/Data/3DCT_lung_baseline_small.mha');
const IDENTITY = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0] as const;

test('on a scan and itself the identity map scores highest: NCC and the unbiased LNCC', async () => {
  const ct = await readVolume(LUNG);
  const pair = smoothedPair(ct, ct, bodyMask(ct));
  // a smooth 2 mm bump of displacement on a coarse grid
  const bump = zeroField({ size: [6, 6, 6], spacing: [40, 40, 40], origin: ct.origin, direction: ct.direction });
  for (let q = 0; q < bump.data.length; q += 3) bump.data[q] = (q / 3) % 2 ? 2 : -2;
  const ncc = nccThroughMaps(pair, [...IDENTITY], [[], [bump]]);
  const lncc = lnccThroughMaps(pair, [...IDENTITY], [[], [bump]]);
  assert.ok(Math.abs(ncc[0] - 1) < 1e-9, `identity NCC ${ncc[0]}`);
  assert.ok(ncc[1] < ncc[0], `${ncc}`);
  assert.ok(lncc[1] < lncc[0], `${lncc}`);
  assert.ok(lncc[0] > 0.5 && lncc[0] < 1, `${lncc[0]}`);
});

test('a scan registered to itself through the whole cascade comes back as its affine: coarse and deform not used', async () => {
  const ct = await readVolume(LUNG);
  const r = await registerVolumes(ct, ct, { stages: ['affine', 'coarse', 'deform'], matcher: 'ncc', gridMm: 16 });
  assert.equal(r.coarse?.stats.used, false, JSON.stringify(r.coarse?.stats));
  assert.ok(r.deform && (r.deform.stats.used === false || !r.deform.stats.kept), JSON.stringify(r.deform?.stats));
  const det = (r.qa.affine as { decomposition: { determinant: number } }).decomposition.determinant;
  const j = r.qa.jacobian;
  assert.ok(Math.abs(j.min - det) < 1e-4 && Math.abs(j.max - det) < 1e-4, `Jacobian ${j.min}..${j.max}, affine ${det}`);
});
