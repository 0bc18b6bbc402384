/**
 * `sam register` end to end on a pair made from real CT by a known affine (no deformation): the
 * result folder, geometry of the exports, and the affine recovered, with the NCC matcher (the
 * default); the SAM matcher is covered by test/unit/affine-sam.test.ts and shipped-model.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { makeSyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import { readAffine } from '../../main/engine/register/affine-io.ts';
import { affineApply } from '../../main/engine/register/affine-fit.ts';
import { indexToWorld } from '../../main/engine/volume/geometry.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { readDicomSeries } from '../../main/engine/volume/io/dicom/read-series.ts';
import { writeDicomSeries } from '../../main/engine/volume/io/dicom/write-series.ts';
import { affineErrorRms, registerPairCli, transformixThroughField, transformPointsCli } from '../register-helpers.ts';
import { elastixVersion } from '../../main/engine/bench/elastix.ts';
import { dataPath, tempDir } from '../helpers.ts';

/** The abdomen CT and a copy moved by a known affine (6 degrees, 12 mm; 5 HU noise, no deformation). */
async function knownAffinePair() {
  const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
  return makeSyntheticPair(ct, {
    seed: 5,
    bumps: 0,
    maxDeformationMm: 0,
    noiseHu: 5,
    maxRotationDeg: 6,
    maxTranslationMm: 12,
  });
}

test('sam register (affine, NCC matcher): known affine recovered, exports read back on the fixed grid', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const pair = await knownAffinePair();
    const { fixedPath, movingPath, out, r } = registerPairCli(dir, pair, [
      '--matcher',
      'ncc',
      '--grid',
      '24',
      '--stages',
      'affine',
    ]);
    assert.equal(r.status, 0, r.stderr);
    for (const f of ['warped.nii.gz', 'displacement.nii.gz', 'affine.txt', 'affine.tfm', 'pairs.csv', 'qa.json'])
      assert.ok(existsSync(join(out, f)), f);
    // the affine against the truth, over points of the fixed body
    const a = readAffine(join(out, 'affine.tfm'));
    const rms = affineErrorRms(pair, a);
    console.log(`affine error RMS over the fixed body: ${rms.toFixed(3)} mm`);
    assert.ok(rms < 0.5, `affine error RMS ${rms.toFixed(2)} mm over the fixed body`);
    // exports: warped and field on the fixed grid; the field is A x - x
    const warped = await readVolume(join(out, 'warped.nii.gz'));
    assert.deepEqual(warped.size, pair.fixed.size);
    const field = await readVolume(join(out, 'displacement.nii.gz'));
    assert.equal(field.components, 3);
    const p = indexToWorld(field, [10, 20, 30]);
    const ax = affineApply(a, p);
    const [ni, nj] = field.size;
    const at = 3 * (10 + ni * (20 + nj * 30));
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(field.data[at + k] - (ax[k] - p[k])) < 1e-3);
    const qa = JSON.parse(readFileSync(join(out, 'qa.json'), 'utf8'));
    assert.ok(qa.nccInFixedBody.after > qa.nccInFixedBody.before, 'images agree better after registration');
    assert.equal(qa.jacobian.foldedPercent, 0);
    // transform-points carries fixed points into moving space through the result, as transformix -def
    const pts = [indexToWorld(pair.fixed, [40, 50, 60]), indexToWorld(pair.fixed, [60, 40, 50])];
    const rows = transformPointsCli(dir, out, pts);
    rows.forEach((row, k) => {
      const want = affineApply(a, pts[k]);
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(row[c] - want[c]) < 1e-2, `point ${k}: ${row} vs ${want}`);
    });
    // the exported field as elastix's transformix reads it (an independent reader: ITK's NIfTI IO,
    // 5.0 in Debian 12, which reads a DISPVECT file as a scalar image) gives the same points
    if (elastixVersion()) {
      const viaTransformix = transformixThroughField(dir, join(out, 'displacement.nii.gz'), field, pts);
      viaTransformix.forEach((q, k) => {
        for (let c = 0; c < 3; c++)
          assert.ok(Math.abs(q[c] - rows[k][c]) < 1e-2, `transformix point ${k}: ${q} vs sam ${rows[k]}`);
      });
    } else console.log('transformix not installed: the field is not checked against it');
    // provenance: qa.json records the inputs; a review against another moving scan is refused
    assert.equal(qa.inputs.fixed.path, resolve(fixedPath));
    assert.deepEqual(qa.inputs.moving.size, pair.moving.size);
    const wrong = spawnSync(process.execPath, ['bin/sam.mjs', 'review', fixedPath, fixedPath, out, '--no-sam'], {
      encoding: 'utf8',
    });
    assert.equal(wrong.status, 1, wrong.stderr);
    assert.match(wrong.stderr, /is not the moving image this result was registered with/);
    // transform-points never writes over the result it reads, nor its points; names a missing file;
    // warns about points outside the fixed image
    const fieldBefore = readFileSync(join(out, 'displacement.nii.gz'));
    const ptsFile = join(dir, 'points.csv');
    for (const target of [join(out, 'displacement.nii.gz'), join(out, 'qa.json'), ptsFile]) {
      const tp = spawnSync(process.execPath, ['bin/sam.mjs', 'transform-points', out, ptsFile, '--out', target], {
        encoding: 'utf8',
      });
      assert.equal(tp.status, 1, target);
      assert.match(tp.stderr, /is an input or a file of the registration result/);
    }
    assert.deepEqual(readFileSync(join(out, 'displacement.nii.gz')), fieldBefore, 'the field is untouched');
    const missing = spawnSync(process.execPath, ['bin/sam.mjs', 'transform-points', out, join(dir, 'nope.csv')], {
      encoding: 'utf8',
    });
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /nope\.csv: no such points file/);
    // the arguments swapped, an image given as the points: said so (no bytes quoted)
    writeFileSync(ptsFile, `${pts[0].join(',')}\n`);
    const swapped = spawnSync(process.execPath, ['bin/sam.mjs', 'transform-points', ptsFile, out], {
      encoding: 'utf8',
    });
    assert.equal(swapped.status, 1);
    assert.match(swapped.stderr, /points\.csv: is a file, not a result folder: the result folder comes first/);
    const image = spawnSync(process.execPath, ['bin/sam.mjs', 'transform-points', out, fixedPath], {
      encoding: 'utf8',
    });
    assert.equal(image.status, 1);
    assert.match(image.stderr, /is a binary file \(an image\?\), not a text file of points/);
    assert.ok(image.stderr.length < 400, 'no bytes of the image in the message');
    // voxel indices of another image than the fixed one registered: refused (qa.json's record)
    const ijk = join(dir, 'ijk.csv');
    writeFileSync(ijk, 'i,j,k\n40,50,60\n');
    const wrongFixed = spawnSync(
      process.execPath,
      ['bin/sam.mjs', 'transform-points', out, ijk, '--fixed', movingPath],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(wrongFixed.status, 1, wrongFixed.stderr);
    assert.match(wrongFixed.stderr, /is not the fixed image this result was registered with/);
    const rightFixed = spawnSync(
      process.execPath,
      ['bin/sam.mjs', 'transform-points', out, ijk, '--fixed', fixedPath],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(rightFixed.status, 0, rightFixed.stderr);
    rightFixed.stdout
      .trim()
      .split('\n')[1]
      .split(',')
      .map(Number)
      .forEach((v, c) => assert.ok(Math.abs(v - rows[0][c]) < 1e-3, `index point: ${rightFixed.stdout}`));
    writeFileSync(ptsFile, `${pts[0].join(',')}\n1000,1000,1000\n`);
    const far = spawnSync(process.execPath, ['bin/sam.mjs', 'transform-points', out, ptsFile], { encoding: 'utf8' });
    assert.equal(far.status, 0, far.stderr);
    assert.match(
      far.stderr,
      /warning: 1 of 2 points lie outside the fixed image \(point 2\): mapped by the affine alone/,
    );
    // ... and, mapped 1 m away, outside the moving image the result was registered with (qa.json's record)
    assert.match(far.stderr, /warning: 1 of 2 points map outside the moving image \(point 2\)/);
    // ... through the affine: exactly where it sends that point
    const farRow = far.stdout.trim().split('\n')[2].split(',').map(Number);
    affineApply(a, [1000, 1000, 1000]).forEach((v, c) => assert.ok(Math.abs(v - farRow[c]) < 1e-3, `${farRow}`));
    // a Slicer markups file in RAS, with labels: converted (said so), mapped as the LPS point, labels kept
    const [x0, y0, z0] = pts[0];
    writeFileSync(
      ptsFile.replace(/csv$/, 'fcsv'),
      `# Markups fiducial file version = 4.11\n# CoordinateSystem = RAS\n# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\nvtkMRMLMarkupsFiducialNode_0,${-x0},${-y0},${z0},0,0,0,1,1,1,0,lesion 1,,\n`,
    );
    const ras = spawnSync(process.execPath, ['bin/sam.mjs', 'transform-points', out, ptsFile.replace(/csv$/, 'fcsv')], {
      encoding: 'utf8',
    });
    assert.equal(ras.status, 0, ras.stderr);
    assert.match(ras.stderr, /holds RAS coordinates \(as it says\): converted to LPS/);
    const rasRows = ras.stdout.trim().split('\n');
    assert.equal(rasRows[0], 'label,x,y,z');
    assert.equal(rasRows[1].split(',')[0], 'lesion 1');
    rasRows[1]
      .split(',')
      .slice(1)
      .map(Number)
      .forEach((v, c) => assert.ok(Math.abs(v - rows[0][c]) < 1e-3, `${rasRows[1]} vs ${rows[0]}`));
    // unknown stages, and stages out of order, refused
    for (const bad of ['affine,warp', 'coarse,affine']) {
      const again = spawnSync(
        process.execPath,
        ['bin/sam.mjs', 'register', fixedPath, movingPath, '--out', out, '--stages', bad, '--matcher', 'ncc'],
        { encoding: 'utf8' },
      );
      assert.equal(again.status, 1, bad);
      assert.match(again.stderr, /--stages/);
    }
    // where the NCC runs: auto, gpu or cpu, refused otherwise before the inputs are read
    const where = spawnSync(
      process.execPath,
      ['bin/sam.mjs', 'register', fixedPath, movingPath, '--out', out, '--ncc-on', 'fast'],
      { encoding: 'utf8' },
    );
    assert.equal(where.status, 1);
    assert.match(where.stderr, /--ncc-on: use auto, gpu or cpu, got 'fast'/);
  } finally {
    cleanup();
  }
});

test('sam register on DICOM: one folder of two series picked by --fixed-series / --moving-series; the warped series lies in the fixed frame of reference', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const pair = await knownAffinePair();
    // both series in one folder, each in its own frame of reference, of one named patient (a scan
    // without a PatientID would not lend its frame: nothing would show the two are one patient)
    const both = join(dir, 'both');
    const movingPatient = { attributes: { PatientID: 'SAM-TEST-7', PatientName: 'Test^Moving' } };
    const f = await writeDicomSeries(both, pair.fixed, {
      source: { ...pair.fixed, meta: { ...pair.fixed.meta, dicom: movingPatient } },
      seriesDescription: 'planning CT',
    });
    const m = await writeDicomSeries(both, pair.moving, {
      source: { ...pair.moving, meta: { ...pair.moving.meta, dicom: movingPatient } },
      seriesDescription: '',
    });
    const out = join(dir, 'result');
    const run = (extra: string[]) =>
      spawnSync(
        process.execPath,
        [
          'bin/sam.mjs',
          'register',
          both,
          both,
          '--out',
          out,
          '--stages',
          'affine',
          '--matcher',
          'ncc',
          '--grid',
          '24',
          ...extra,
        ],
        { encoding: 'utf8' },
      );
    const ambiguous = run([]);
    assert.equal(ambiguous.status, 1);
    assert.match(ambiguous.stderr, /holds 2 DICOM series/);
    assert.match(ambiguous.stderr, /--fixed-series UID/);
    const r = run(['--fixed-series', f.seriesInstanceUid, '--moving-series', m.seriesInstanceUid]);
    assert.equal(r.status, 0, r.stderr);
    const fixedBack = await readDicomSeries(both, { seriesUid: f.seriesInstanceUid });
    const movingBack = await readDicomSeries(both, { seriesUid: m.seriesInstanceUid });
    const warped = await readDicomSeries(join(out, 'warped-dicom'));
    const a = warped.meta.dicom!.attributes;
    const frameOf = (v: typeof warped) => v.meta.dicom!.attributes.FrameOfReferenceUID;
    assert.notEqual(frameOf(fixedBack), frameOf(movingBack));
    // its voxels are on the fixed grid, in the fixed scan's patient coordinates: the fixed frame
    assert.equal(frameOf(warped), frameOf(fixedBack));
    assert.deepEqual(warped.size, fixedBack.size);
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(warped.origin[k] - fixedBack.origin[k]) < 1e-3);
    // ... of the moving scan's patient
    assert.equal(a.PatientID, 'SAM-TEST-7');
    assert.equal(a.SeriesDescription, 'CT registered to fixed (NCC affine)');
    assert.notEqual(a.SeriesInstanceUID, m.seriesInstanceUid);
  } finally {
    cleanup();
  }
});
