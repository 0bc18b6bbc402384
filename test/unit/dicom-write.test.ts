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
import { withData, type Mat3, type Vec3, type Volume } from '../../main/engine/volume/volume.ts';
import { indexToWorld } from '../../main/engine/volume/geometry.ts';
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

test("frameOfReference: a series resampled onto another scan of the patient takes the frame of that scan; a new one when it is not DICOM or another patient's", async () => {
  const { dir, cleanup } = tempDir('sam-dicom-write-frame-');
  try {
    const src = await readDicomSeries(CTHEAD);
    const ge = await readDicomSeries(GE);
    const frameOf = (v: Volume) => v.meta.dicom!.attributes.FrameOfReferenceUID;
    const srcAttrs = src.meta.dicom!.attributes;
    // the GE scan taken as another scan of the CTHead patient (FFS, to see PatientPosition follow the frame)
    const other = {
      ...ge,
      meta: {
        ...ge.meta,
        dicom: {
          ...ge.meta.dicom!,
          attributes: { ...ge.meta.dicom!.attributes, PatientID: srcAttrs.PatientID, PatientPosition: 'FFS' },
        },
      },
    };
    const ra = await writeDicomSeries(join(dir, 'a'), src, {
      source: src,
      frameOfReference: other,
      seriesDescription: 'on GE',
    });
    assert.deepEqual(ra.notes, []);
    const a = await readDicomSeries(join(dir, 'a'));
    assert.equal(frameOf(a), frameOf(other));
    assert.equal(a.meta.dicom!.attributes.PatientID, srcAttrs.PatientID, 'the source patient');
    assert.equal(a.meta.dicom!.attributes.PatientPosition, 'FFS', 'the position of the scan whose frame it is in');
    const plain = { ...ge, meta: { ...ge.meta, dicom: undefined } };
    await writeDicomSeries(join(dir, 'b'), src, {
      source: src,
      frameOfReference: plain,
      seriesDescription: 'on NIfTI',
    });
    const b = await readDicomSeries(join(dir, 'b'));
    assert.ok(frameOf(b));
    assert.notEqual(frameOf(b), frameOf(src));
    assert.notEqual(frameOf(b), frameOf(other));
    assert.equal(b.meta.dicom!.attributes.PatientPosition ?? '', '', 'unknown without a DICOM frame scan');
    // the GE scan as it is: another patient's, so its frame of reference is not borrowed, and the note says so
    const rc = await writeDicomSeries(join(dir, 'c'), src, {
      source: src,
      frameOfReference: ge,
      seriesDescription: 'x',
    });
    const c = await readDicomSeries(join(dir, 'c'));
    assert.notEqual(frameOf(c), frameOf(ge));
    assert.notEqual(frameOf(c), frameOf(src));
    assert.equal(rc.notes.length, 1);
    assert.match(rc.notes[0], /another patient's \(PatientID QMNx85rKkkg, the moving scan's 8775070\)/);
    // a moving scan with no PatientID against a named fixed one: nothing shows they are one patient
    const anonymous = {
      ...src,
      meta: {
        ...src.meta,
        dicom: { ...src.meta.dicom!, attributes: { ...srcAttrs, PatientID: '' } },
      },
    };
    const rd = await writeDicomSeries(join(dir, 'd'), anonymous, {
      source: anonymous,
      frameOfReference: other,
      seriesDescription: 'y',
    });
    const d = await readDicomSeries(join(dir, 'd'));
    assert.notEqual(frameOf(d), frameOf(other));
    assert.equal(rd.notes.length, 1);
    assert.match(rd.notes[0], /the moving scan has no PatientID \(the fixed scan's is 8775070\)/);
  } finally {
    cleanup();
  }
});

/** The CTHead volume with its index axes permuted (new axis a = old axis perm[a]) and flipped (flip[a]). */
function reordered(v: Volume, perm: [number, number, number], flip: [boolean, boolean, boolean]): Volume {
  const size = perm.map((p) => v.size[p]) as Vec3;
  const spacing = perm.map((p) => v.spacing[p]) as Vec3;
  const direction = new Array<number>(9);
  for (let w = 0; w < 3; w++)
    for (let a = 0; a < 3; a++) direction[3 * w + a] = (flip[a] ? -1 : 1) * v.direction[3 * w + perm[a]];
  const corner: Vec3 = [0, 0, 0];
  for (let a = 0; a < 3; a++) corner[perm[a]] = flip[a] ? v.size[perm[a]] - 1 : 0;
  const data = new Int16Array(v.data.length);
  const old: Vec3 = [0, 0, 0];
  let n = 0;
  for (let k = 0; k < size[2]; k++)
    for (let j = 0; j < size[1]; j++)
      for (let i = 0; i < size[0]; i++, n++) {
        [i, j, k].forEach((x, a) => (old[perm[a]] = flip[a] ? size[a] - 1 - x : x));
        data[n] = v.data[old[0] + v.size[0] * (old[1] + v.size[1] * old[2])];
      }
  return { ...v, size, spacing, direction: direction as Mat3, origin: indexToWorld(v, corner), data };
}

test('voxel order: a RAS-ordered or sagittal-stored volume is written as the LPS-ordered axial series (rows to the left, columns to posterior), every voxel at its world position', async () => {
  const { dir, cleanup } = tempDir('sam-dicom-write-order-');
  try {
    const src = await readDicomSeries(CTHEAD); // LPS-ordered axial (identity direction)
    const cases: [string, Volume][] = [
      ['ras', reordered(src, [0, 1, 2], [true, true, false])],
      ['sagittal', reordered(src, [1, 2, 0], [false, true, false])],
      ['left-handed', reordered(src, [0, 1, 2], [false, false, true])],
    ];
    for (const [name, v] of cases) {
      assert.notDeepEqual(v.direction, src.direction);
      await writeDicomSeries(join(dir, name), v, { source: src, seriesDescription: name });
      const first = loadDicom(join(dir, name, readdirSync(join(dir, name)).sort()[0])).ds;
      assert.deepEqual((first.ImageOrientationPatient as string[]).map(Number), [1, 0, 0, 0, 1, 0], name);
      assert.equal(Number(first.Rows), 64, name);
      // read back: the CTHead series itself, same grid and the same voxels (so each at its world position)
      const back = await readDicomSeries(join(dir, name));
      sameGeometry(back, src);
      assert.deepEqual(Buffer.from(back.data.buffer), Buffer.from(src.data.buffer), name);
    }
  } finally {
    cleanup();
  }
});

test("derived-series attributes: SliceThickness is at least the source's, window from the source (else soft tissue), de-identification and Type 2 attributes kept or present", async () => {
  const { dir, cleanup } = tempDir('sam-dicom-write-attrs-');
  try {
    const ge = await readDicomSeries(GE); // 4 mm thick, slices 2.62 mm apart
    const deid = { DeidentificationMethod: 'test profile', PatientIdentityRemoved: 'YES' };
    const src = {
      ...ge,
      meta: { ...ge.meta, dicom: { ...ge.meta.dicom!, attributes: { ...ge.meta.dicom!.attributes, ...deid } } },
    };
    await writeDicomSeries(join(dir, 'ge'), src, { source: src, seriesDescription: 'ge' });
    const g = loadDicom(join(dir, 'ge', readdirSync(join(dir, 'ge')).sort()[0])).ds;
    assert.equal(Number(g.SliceThickness), 4);
    assert.ok(Math.abs(Number(g.SpacingBetweenSlices) - 2.6197871793) < 1e-6);
    assert.equal(Number(g.WindowCenter), 35);
    assert.equal(Number(g.WindowWidth), 100);
    assert.equal(g.DeidentificationMethod, 'test profile');
    assert.equal(g.PatientIdentityRemoved, 'YES');
    assert.equal(g.PatientPosition, 'HFS');
    // a volume with no DICOM source: thickness = slice spacing, soft-tissue window, Type 2 attributes present (empty)
    const plain = { ...ge, meta: { ...ge.meta, dicom: undefined } };
    await writeDicomSeries(join(dir, 'plain'), plain, { seriesDescription: 'plain' });
    const file = join(dir, 'plain', readdirSync(join(dir, 'plain')).sort()[0]);
    const p = loadDicom(file).ds;
    assert.ok(Math.abs(Number(p.SliceThickness) - 2.6197871793) < 1e-6);
    assert.equal(Number(p.WindowCenter), 40);
    assert.equal(Number(p.WindowWidth), 400);
    const raw = loadDicom(file).dict!;
    for (const tag of ['00185100', '00200060']) assert.ok(tag in raw, `Type 2 element ${tag} present`);
  } finally {
    cleanup();
  }
});
