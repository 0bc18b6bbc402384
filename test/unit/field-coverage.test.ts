// Where a warp has moving data (register/field/coverage.ts) and the workstation's display copy of a
// warped image that marks the rest (workstation/display-voxels.ts), and the renderer's difference
// composite that shows it as "no data" rather than as a 1000 HU error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { movingCoverage } from '../../main/engine/register/field/coverage.ts';
import { warpVolume } from '../../main/engine/register/field/warp.ts';
import { DISPLAY_NO_DATA, warpedDisplayVoxels } from '../../main/engine/workstation/display-voxels.ts';
import { makeVolume } from '../../main/engine/volume/volume.ts';
import { differenceVoxels } from '../../renderer/views/composite.ts';
import { DIFFERENCE_NO_DATA } from '../../renderer/views/color-maps.ts';
import { orientationLabels } from '../../renderer/views/view-geometry.ts';
import { centeredGrid, fieldOf, leftHanded, rotation } from './field-fixtures.ts';

test('coverage: the fixed voxels the warp fills from the moving image, on oblique grids with a smooth field', () => {
  // moving smaller than fixed and shifted, left-handed and oblique: part of the fixed grid maps outside
  const moving = centeredGrid([20, 18, 12], [1.3, 1.1, 2], leftHanded(rotation([1, -2, 1], 0.35)), [6, -4, 3]);
  const fixed = centeredGrid([30, 26, 20], [1.2, 1.2, 1.5], rotation([0, 1, 2], -0.2));
  const field = fieldOf(fixed, (p) => [
    2 + 3 * Math.sin(p[1] / 9),
    -1 + 2 * Math.cos(p[2] / 7),
    0.5 * Math.sin(p[0] / 5),
  ]);
  const cov = movingCoverage(field, moving);
  // the warp of an all-ones moving image with fill 0 is the reference (the warp's own outside rule)
  const ones = makeVolume({ ...moving, data: new Float32Array(20 * 18 * 12).fill(1) });
  const w = warpVolume(ones, field, { fill: 0 });
  let inside = 0;
  let differ = 0;
  for (let n = 0; n < cov.length; n++) {
    inside += cov[n];
    if (cov[n] !== (w.data[n] > 0 ? 1 : 0)) differ++;
  }
  assert.equal(differ, 0);
  assert.ok(inside > 0.05 * cov.length && inside < 0.6 * cov.length, `${inside} of ${cov.length} covered`);
});

test('warped display copy: no data marked, the volume untouched; the difference shows it apart', () => {
  const g = centeredGrid([4, 2, 1], [1, 1, 1], rotation([0, 0, 1], 0));
  const data = Int16Array.of(-1024, 40, -32768, 3000, 0, 0, 5, 7);
  const warped = makeVolume({ ...g, data });
  const cov = Uint8Array.of(1, 1, 1, 0, 0, 1, 1, 1);
  const d = warpedDisplayVoxels(warped, cov);
  assert.deepEqual([...d], [-1024, 40, -32767, DISPLAY_NO_DATA, DISPLAY_NO_DATA, 0, 5, 7]);
  assert.equal(data[3], 3000, 'the warped volume itself is not written');
  const fixed = Int16Array.of(-1000, 40, 0, 40, -1024, 10, 5, 1007);
  assert.deepEqual(
    [...differenceVoxels(fixed, d)],
    [24, 0, 32767, DIFFERENCE_NO_DATA, DIFFERENCE_NO_DATA, 10, 0, 1000],
  );
  assert.throws(() => warpedDisplayVoxels(warped, new Uint8Array(3)), /not on the warped grid/);
});

test('orientation labels: radiological axial and coronal (patient right on the left), sagittal anterior left', () => {
  assert.deepEqual(orientationLabels('axial'), { left: 'R', right: 'L', top: 'A', bottom: 'P' });
  assert.deepEqual(orientationLabels('coronal'), { left: 'R', right: 'L', top: 'S', bottom: 'I' });
  assert.deepEqual(orientationLabels('sagittal'), { left: 'A', right: 'P', top: 'S', bottom: 'I' });
});
