/**
 * Writing derived CT series and reading them back: geometry (also oblique), voxels (int16
 * exactly, float within half a quantum), identity (patient and study kept, new series and
 * instance UIDs), and the derived-series attributes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readDicomSeries } from '../../main/engine/volume/io/dicom/read-series.ts';
import { listDicomSeries } from '../../main/engine/volume/io/dicom/scan.ts';
import { writeDicomSeries } from '../../main/engine/volume/io/dicom/write-series.ts';
import { withData, type Volume } from '../../main/engine/volume/volume.ts';
import { tempDir } from '../helpers.ts';
import { CTHEAD, GE, loadDicom } from './dicom-fixtures.ts';

function sameGeometry(a: Volume, b: Volume): void {
  assert.deepEqual(a.size, b.size);
  for (let n = 0; n < 3; n++) {
    assert.ok(Math.abs(a.spacing[n] - b.spacing[n]) < 1e-4, `spacing ${a.spacing} vs ${b.spacing}`);
    assert.ok(Math.abs(a.origin[n] - b.origin[n]) < 1e-4, `origin ${a.origin} vs ${b.origin}`);
  }
  for (let n = 0; n < 9; n++)
    assert.ok(Math.abs(a.direction[n] - b.direction[n]) < 1e-6, `direction ${a.direction} vs ${b.direction}`);
}

test('write then read: CTHead series exactly, patient and study kept, new series and instance UIDs', async () => {
  const { dir, cleanup } = tempDir('sam-dicom-write-');
  try {
    const src = await readDicomSeries(CTHEAD);
    const res = await writeDicomSeries(dir, src, { source: src, seriesDescription: 'SAM test: derived copy' });
    assert.equal(res.files.length, 93);
    assert.equal(readdirSync(dir).length, 93, 'no temporary files left');
    const back = await readDicomSeries(dir);
    sameGeometry(back, src);
    assert.ok(back.data instanceof Int16Array);
    assert.deepEqual(Buffer.from(back.data.buffer), Buffer.from(src.data.buffer));
    const a = back.meta.dicom!.attributes;
    const s = src.meta.dicom!.attributes;
    assert.equal(a.PatientID, s.PatientID);
    assert.deepEqual(a.PatientName, s.PatientName);
    assert.equal(a.StudyInstanceUID, s.StudyInstanceUID);
    assert.equal(back.meta.seriesInstanceUid, res.seriesInstanceUid);
    assert.notEqual(res.seriesInstanceUid, src.meta.seriesInstanceUid);
    assert.match(res.seriesInstanceUid, /^2\.25\.\d{1,39}$/);
    assert.equal(back.meta.description, 'SAM test: derived copy');
    assert.equal(back.meta.modality, 'CT');
    const one = loadDicom(res.files[0]);
    assert.equal(one.meta.TransferSyntaxUID, '1.2.840.10008.1.2.1');
    assert.deepEqual((one.ds.ImageType as string[]).slice(0, 2), ['DERIVED', 'SECONDARY']);
    const sops = new Set(res.files.map((f) => loadDicom(f).ds.SOPInstanceUID as string));
    assert.equal(sops.size, 93);
    for (const u of sops) assert.match(u, /^2\.25\.\d+$/);
    // a second derived series goes beside the first, overwriting nothing
    await writeDicomSeries(dir, src, { source: src, seriesDescription: 'second' });
    assert.equal(readdirSync(dir).length, 186);
    assert.equal((await listDicomSeries(dir)).length, 2);
  } finally {
    cleanup();
  }
});

test('write then read an oblique series (the resampled GE head): geometry within 1e-4 mm, voxels equal, frame of reference kept', async () => {
  const { dir, cleanup } = tempDir('sam-dicom-write-ge-');
  try {
    const src = await readDicomSeries(GE);
    const res = await writeDicomSeries(dir, src, { source: src, seriesDescription: 'tilt corrected' });
    const back = await readDicomSeries(dir);
    sameGeometry(back, src);
    assert.deepEqual(Buffer.from(back.data.buffer), Buffer.from(src.data.buffer));
    assert.deepEqual(back.meta.warnings, [], 'the written series is regular');
    assert.equal(back.meta.dicom!.attributes.FrameOfReferenceUID, src.meta.dicom!.attributes.FrameOfReferenceUID);
    assert.ok(src.meta.dicom!.attributes.FrameOfReferenceUID);
    assert.equal(res.files.length, src.size[2]);
  } finally {
    cleanup();
  }
});

test('float and out-of-int16 data: slope/intercept chosen so values come back within half a quantum', async () => {
  const { dir, cleanup } = tempDir('sam-dicom-write-float-');
  try {
    const src = await readDicomSeries(CTHEAD);
    const f = Float32Array.from(src.data, (v, n) => v * 0.37 + Math.sin(n) * 3.3 - 1000.125);
    const fv = withData(src, f);
    await writeDicomSeries(join(dir, 'f'), fv, { source: src, seriesDescription: 'float' });
    const back = await readDicomSeries(join(dir, 'f'));
    assert.ok(back.data instanceof Float32Array);
    const slope = Number(loadDicom(join(dir, 'f', readdirSync(join(dir, 'f'))[0])).ds.RescaleSlope);
    let worst = 0;
    for (let n = 0; n < f.length; n++) worst = Math.max(worst, Math.abs(back.data[n] - f[n]));
    assert.ok(worst <= slope / 2 + 1e-3, `worst error ${worst}, half quantum ${slope / 2}`);
    // integer-valued float data that fit in int16 are stored exactly and read back as int16
    await writeDicomSeries(join(dir, 'i'), withData(src, Float32Array.from(src.data)), {
      seriesDescription: 'integral float',
    });
    const exact = await readDicomSeries(join(dir, 'i'));
    assert.ok(exact.data instanceof Int16Array);
    assert.deepEqual(Array.from(exact.data), Array.from(src.data));
    // uint16 beyond int16: an integer intercept shift keeps them exact
    const u = Uint16Array.from(src.data, (v) => v * 15);
    await writeDicomSeries(join(dir, 'u'), withData(src, u), { seriesDescription: 'wide' });
    const wide = await readDicomSeries(join(dir, 'u'));
    assert.deepEqual(Array.from(wide.data), Array.from(u));
  } finally {
    cleanup();
  }
});

test('frameOfReference: a series resampled onto another scan takes the frame of that scan; a new one when it is not DICOM', async () => {
  const { dir, cleanup } = tempDir('sam-dicom-write-frame-');
  try {
    const src = await readDicomSeries(CTHEAD);
    const other = await readDicomSeries(GE);
    const frameOf = (v: Volume) => v.meta.dicom!.attributes.FrameOfReferenceUID;
    await writeDicomSeries(join(dir, 'a'), src, { source: src, frameOfReference: other, seriesDescription: 'on GE' });
    const a = await readDicomSeries(join(dir, 'a'));
    assert.equal(frameOf(a), frameOf(other));
    assert.equal(a.meta.dicom!.attributes.PatientID, src.meta.dicom!.attributes.PatientID, 'the source patient');
    const plain = { ...other, meta: { ...other.meta, dicom: undefined } };
    await writeDicomSeries(join(dir, 'b'), src, {
      source: src,
      frameOfReference: plain,
      seriesDescription: 'on NIfTI',
    });
    const b = await readDicomSeries(join(dir, 'b'));
    assert.ok(frameOf(b));
    assert.notEqual(frameOf(b), frameOf(src));
    assert.notEqual(frameOf(b), frameOf(other));
  } finally {
    cleanup();
  }
});
