/** Which real volumes count as CT in HU: the CT-only stages refuse the others with a clear error. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { checkCt, countNonFinite, nonFiniteAsAir, requireCt } from '../../main/engine/volume/intensity.ts';
import { formatSummary, summarizeVolume } from '../../main/engine/volume/describe.ts';
import { makeVolume } from '../../main/engine/volume/volume.ts';
import { dataPath } from '../helpers.ts';

test('the MR volume is read, reported as not CT, and refused by requireCt with its file name', async () => {
  const file = dataPath('TotalSegmentator/tests/reference_files/example_mr_sm.nii.gz');
  const mr = await readVolume(file);
  assert.equal(checkCt(mr).ok, false);
  assert.throws(
    () => requireCt(mr),
    (e: Error) => e.message.startsWith(`${file}: not a CT in Hounsfield units`),
  );
});

test('real CTs in HU pass the CT check; the windowed LIDC2 copy and the raw-valued head series do not', async () => {
  for (const p of [
    'TotalSegmentator/tests/reference_files/example_ct.nii.gz',
    'elastix/Testing/Data/3DCT_lung_baseline_small.mha',
    'TotalSegmentator/tests/reference_files/example_ct_dicom',
  ]) {
    const v = await readVolume(dataPath(p));
    assert.ok(checkCt(v).ok, `${p}: ${checkCt(v).reason}`);
  }
  // The Slicer head series says CT but stores raw values (air near 0, RescaleIntercept 0).
  const head = await readVolume(dataPath('Slicer/Testing/Data/Input/CTHeadAxialDicom'));
  assert.equal(head.meta.modality, 'CT');
  assert.match(checkCt(head).reason, /modality is CT but only .*% of voxels lie in the air range/);
  assert.match(checkCt(head).reason, /not rescaled to HU \(a missing RescaleIntercept\?\)/);
  // a CT in HU with almost no air (one slice of tissue): the message says so, not RescaleIntercept
  const slab = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
  const tissue = { ...slab, data: Int16Array.from(slab.data, (v, n) => (n === 0 ? -896 : Math.max(40, v))) };
  assert.match(checkCt(tissue).reason, /lowest value -896: the field of view holds almost no air/);
  // an MR (no modality in NIfTI): nothing near air, said as "not a CT", not as a tight crop
  const mr = checkCt(await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_mr_sm.nii.gz')));
  assert.equal(mr.ok, false);
  assert.match(mr.reason, /not a CT \(MR, PET/);
  assert.doesNotMatch(mr.reason, /tight crop/);
  const lidc = await readVolume(dataPath('vtk-js/Data/volume/LIDC2.vti'));
  assert.equal(checkCt(lidc).ok, false, 'uint8 0..255 is not HU');
  assert.doesNotMatch(checkCt(lidc).reason, /label map/, 'a windowed image is not a label map');
  // label maps and masks say so (not 'RescaleIntercept?')
  for (const p of [
    'TotalSegmentator/tests/reference_files/example_seg.nii.gz',
    'ITKElastix/examples/data/CT_3D_lung_fixed_mask.mha',
  ]) {
    const r = checkCt(await readVolume(dataPath(p)));
    assert.equal(r.ok, false);
    assert.match(r.reason, /distinct integer values in 0\.\.\d+: a label map or mask, not an image/, p);
  }
});

test('NaN or infinite voxels: counted (sam info), read as air by the registration, the input untouched', () => {
  const data = Float32Array.from({ length: 1000 }, (_, n) => (n % 3 ? -1000 : 40));
  data[5] = NaN;
  data[6] = Infinity;
  data[7] = -Infinity;
  const v = makeVolume({ size: [10, 10, 10], spacing: [1, 1, 1], origin: [0, 0, 0], data });
  assert.equal(countNonFinite(v), 3);
  assert.match(
    formatSummary(summarizeVolume(v)),
    /3 voxels NaN or infinite \(registration reads them as air, -1024 HU\)/,
  );
  const r = nonFiniteAsAir(v);
  assert.equal(r.count, 3);
  assert.deepEqual(Array.from(r.volume.data.slice(5, 8)), [-1024, -1024, -1024]);
  assert.ok(Number.isNaN(v.data[5]), 'the input keeps its values');
  const clean = makeVolume({ size: [10, 10, 10], spacing: [1, 1, 1], origin: [0, 0, 0], data: new Int16Array(1000) });
  assert.equal(nonFiniteAsAir(clean).volume, clean);
});

test('a single slice is refused by the registration with its file and axis, before any work', async () => {
  const { registerVolumes } = await import('../../main/engine/register/cascade.ts');
  const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
  const [ni, nj] = ct.size;
  const slice = makeVolume({
    size: [ni, nj, 1],
    spacing: ct.spacing,
    origin: ct.origin,
    direction: ct.direction,
    data: ct.data.slice(50 * ni * nj, 51 * ni * nj),
    meta: { warnings: [], source: 'slice.nii.gz' },
  });
  await assert.rejects(
    registerVolumes(ct, slice, { matcher: 'ncc' }),
    /slice\.nii\.gz: is 1 voxel \(3\.0 mm\) along its k axis: registration needs a 3D volume/,
  );
});
