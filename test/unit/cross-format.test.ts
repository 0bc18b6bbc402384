/**
 * Geometry checked against independent facts: the same scan stored in two formats, a label map
 * on the grid of its CT, and landmarks (world mm) inside the body.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { bodyMask } from '../../main/engine/volume/mask.ts';
import { indexToWorld, worldToIndex } from '../../main/engine/volume/geometry.ts';
import { resample } from '../../main/engine/volume/resample.ts';
import { parsePoints } from '../../main/engine/volume/points.ts';
import { dataPath } from '../helpers.ts';

test('the Slicer CTHeadAxialDicom series and vtk.js headsq.vti are the same scan: voxels, size and spacing agree', async () => {
  const dicom = await readVolume(dataPath('Slicer/Testing/Data/Input/CTHeadAxialDicom'));
  const vti = await readVolume(dataPath('vtk-js/Data/volume/headsq.vti'));
  assert.deepEqual(dicom.size, [64, 64, 93]);
  assert.deepEqual(vti.size, dicom.size);
  for (let a = 0; a < 3; a++) assert.ok(Math.abs(vti.spacing[a] - dicom.spacing[a]) < 1e-6);
  assert.ok(dicom.data instanceof Int16Array && vti.data instanceof Int16Array, 'int16 kept by both readers');
  // The vtk.js copy stores the rows and the slices in reverse order (and carries a 30 degree
  // rotation about z in its index.json, a vtk.js demo of oriented images, with origin 0): voxel
  // (i, j, k) of the DICOM series is voxel (i, 63 - j, 92 - k) of the vtk.js data set, exactly.
  const [ni, nj, nk] = dicom.size;
  let mismatches = 0;
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++)
        if (dicom.data[i + ni * (j + nj * k)] !== vti.data[i + ni * (nj - 1 - j + nj * (nk - 1 - k))]) mismatches++;
  assert.equal(mismatches, 0);
  // The DICOM geometry is the patient's: axial slices, first voxel at the first slice's
  // ImagePositionPatient (0, 0, 0), slices 1.5 mm apart going superior.
  assert.deepEqual(dicom.direction, [1, 0, 0, 0, 1, 0, 0, 0, 1]);
  assert.deepEqual(dicom.origin, [0, 0, 0]);
  assert.ok(Math.abs(vti.direction[0] - Math.cos(Math.PI / 6)) < 1e-3 && Math.abs(vti.direction[3] - 0.5) < 1e-3);
});

test('the TotalSegmentator JPEG 2000 DICOM series and example_seg_dicom.nii.gz lie on the same grid', async () => {
  const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct_dicom'));
  const seg = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_seg_dicom.nii.gz'));
  assert.deepEqual(ct.size, [512, 512, 20]);
  assert.deepEqual(seg.size, ct.size);
  // The same lattice of voxel centres: every corner of the CT grid is a voxel centre of the label
  // grid (integer index, within 0.01 voxel), and the spacings agree. dcm2niix wrote the label map
  // with the row axis reversed, so the index orders differ, not the points.
  for (let c = 0; c < 8; c++) {
    const corner = indexToWorld(ct, [c & 1 ? 511 : 0, c & 2 ? 511 : 0, c & 4 ? 19 : 0]);
    const ijk = worldToIndex(seg, corner);
    for (let a = 0; a < 3; a++) {
      assert.ok(Math.abs(ijk[a] - Math.round(ijk[a])) < 0.01, `corner ${c} axis ${a}: ${ijk[a]}`);
      assert.ok(Math.round(ijk[a]) >= 0 && Math.round(ijk[a]) < seg.size[a]);
    }
  }
  for (let a = 0; a < 3; a++) assert.ok(Math.abs(seg.spacing[a] - ct.spacing[a]) < 1e-4);
  // In world space the labels sit on the body: few labelled voxels are air.
  const onCt = resample(seg, ct, { interpolation: 'nearest' });
  let labelled = 0;
  let inAir = 0;
  for (let n = 0; n < onCt.data.length; n++)
    if (onCt.data[n] > 0) {
      labelled++;
      if (ct.data[n] < -900) inAir++;
    }
  assert.ok(labelled > 10000, `labels present (${labelled})`);
  assert.ok(inAir / labelled < 0.03, `labels over air: ${((100 * inAir) / labelled).toFixed(1)}%`);
});

test('the elastix landmarks (world mm) inside the field of view of 3DCT_lung_baseline_small.mha all fall inside its body mask', async () => {
  // The 'small' image is a crop of one side of the chest (x from -152.5 to 0.5 mm): the landmarks of
  // the other lung lie outside its field of view, so only those inside it are checked.
  const ct = await readVolume(dataPath('elastix/Testing/Data/3DCT_lung_baseline_small.mha'));
  const mask = bodyMask(ct);
  const file = dataPath('elastix/Testing/Data/3DCT_lung_baseline_landmarks.txt');
  const lm = parsePoints(readFileSync(file, 'utf8'), file);
  assert.equal(lm.kind, 'world');
  assert.equal(lm.points.length, 100);
  const outside: string[] = [];
  let inFov = 0;
  for (const p of lm.points) {
    const [i, j, k] = worldToIndex(ct, p).map(Math.round);
    if (!(i >= 0 && j >= 0 && k >= 0 && i < ct.size[0] && j < ct.size[1] && k < ct.size[2])) continue;
    inFov++;
    if (!mask.data[i + ct.size[0] * (j + ct.size[1] * k)]) outside.push(p.join(' '));
  }
  assert.equal(inFov, 51, 'landmarks of one lung are in the field of view');
  assert.deepEqual(outside, []);
  // Orientation check: the same landmarks read as RAS instead of LPS mostly leave the field of view.
  let mirroredInFov = 0;
  for (const p of lm.points) {
    const [i, j, k] = worldToIndex(ct, [-p[0], -p[1], p[2]]).map(Math.round);
    if (i >= 0 && j >= 0 && k >= 0 && i < ct.size[0] && j < ct.size[1] && k < ct.size[2]) mirroredInFov++;
  }
  assert.ok(mirroredInFov < 51, `RAS-read landmarks in field of view: ${mirroredInFov}`);
  // The mask is a body, not the whole box: the corners of the field of view are air.
  const inside = mask.data.reduce((s, x) => s + x, 0) / mask.data.length;
  assert.ok(inside > 0.5 && inside < 0.95, `body fraction ${inside}`);
  assert.equal(mask.data[0], 0);
});
