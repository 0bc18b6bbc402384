// A moving scan stored mirrored left to right is refused, not registered (register/mirror-check.ts):
// the mirrored geometry puts every voxel at its mirror image; a real CT registered against its own
// left-right mirror (the same geometry, the voxel rows reversed) is refused with the two fits' numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkNotMirrored, mirroredLeftRight } from '../../main/engine/register/mirror-check.ts';
import { registerVolumes } from '../../main/engine/register/cascade.ts';
import { indexToWorld } from '../../main/engine/volume/geometry.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { withData, type Vec3 } from '../../main/engine/volume/volume.ts';
import { openModel } from '../../main/cli/commands/match.ts';
import { dataPath } from '../helpers.ts';

test('mirroredLeftRight: each voxel at its mirror image about the centre along x, y and z kept', async () => {
  const ct = await readVolume(dataPath('TotalSegmentator', 'tests', 'reference_files', 'example_ct.nii.gz'));
  const m = mirroredLeftRight(ct);
  assert.equal(m.data, ct.data, 'the same voxels');
  const c = indexToWorld(ct, ct.size.map((n) => (n - 1) / 2) as Vec3);
  for (const idx of [
    [0, 0, 0],
    [10, 50, 7],
    [121, 100, 111],
  ] as Vec3[]) {
    const p = indexToWorld(ct, idx);
    const q = indexToWorld(m, idx);
    assert.ok(
      Math.abs(q[0] - (2 * c[0] - p[0])) < 1e-9 && Math.abs(q[1] - p[1]) < 1e-9 && Math.abs(q[2] - p[2]) < 1e-9,
    );
  }
});

test('checkNotMirrored: tried only above the residual limit; refuses a far better mirrored fit only', async () => {
  let tried = 0;
  const fit = (r: { rmsMm: number; inliers: number } | null) => async () => (tried++, r);
  assert.deepEqual(await checkNotMirrored({ rmsMm: 1.2, inliers: 300 }, fit({ rmsMm: 0.5, inliers: 400 }), 'm'), {
    checked: false,
  });
  assert.equal(tried, 0, 'a good fit is not questioned');
  await assert.rejects(
    checkNotMirrored({ rmsMm: 10.2, inliers: 104 }, fit({ rmsMm: 0.6, inliers: 300 }), 'moving.nii.gz'),
    /moving\.nii\.gz: looks mirrored left to right: .* 0\.6 mm \(300 inlier pairs\) against 10\.2 mm \(104\)/,
  );
  // a large rotation fits badly either way: registered
  const r = await checkNotMirrored({ rmsMm: 12.9, inliers: 38 }, fit({ rmsMm: 11, inliers: 20 }), 'm');
  assert.equal(r.checked, true);
  assert.deepEqual(await checkNotMirrored({ rmsMm: 12.9, inliers: 38 }, fit(null), 'm'), { checked: true });
});

test('a real CT against its left-right mirror is refused by the cascade (shipped model, ONNX Runtime)', async () => {
  const ct = await readVolume(dataPath('TotalSegmentator', 'tests', 'reference_files', 'example_ct.nii.gz'));
  // stored mirrored: the rows reversed along the index axis that runs left-right, the header unchanged
  const [ni, nj, nk] = ct.size;
  const data = new Float32Array(ct.data.length);
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++) data[i + ni * (j + nj * k)] = ct.data[ni - 1 - i + ni * (j + nj * k)];
  const mirrored = withData(ct, data);
  const { engine } = await openModel({ weightsFile: 'resources/sam-small.samw' }, 'onnx');
  try {
    await assert.rejects(
      registerVolumes(ct, mirrored, { stages: ['affine'], matcher: 'sam', engine }),
      /looks mirrored left to right/,
    );
  } finally {
    await engine.dispose();
  }
});
