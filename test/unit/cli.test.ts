/** The `sam` command as a user runs it: real files, exit codes, messages naming the file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dataPath, tempDir } from '../helpers.ts';
import { loadDicom } from './dicom-fixtures.ts';

function sam(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/sam.mjs', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('sam info prints the geometry of a DICOM series', () => {
  const r = sam('info', dataPath('Slicer/Testing/Data/Input/CTHeadAxialDicom'));
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /size:\s+64 x 64 x 93 voxels \(int16/);
  assert.match(r.out, /spacing:\s+3\.2 x 3\.2 x 1\.5 mm/);
  assert.match(r.out, /modality:\s+CT/);
});

test('sam info --json on NIfTI gives machine-readable geometry', () => {
  const r = sam('info', dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'), '--json');
  assert.equal(r.code, 0, r.err);
  const s = JSON.parse(r.out);
  assert.deepEqual(s.size, [122, 101, 112]);
  assert.deepEqual(s.spacing, [3, 3, 3]);
  assert.equal(s.ct.ok, true);
});

test('sam info lists the series of a folder with several, and reads the one chosen', () => {
  const { dir, cleanup } = tempDir();
  try {
    cpSync(dataPath('Slicer/Testing/Data/Input/CTHeadAxialDicom'), join(dir, 'head'), { recursive: true });
    mkdirSync(join(dir, 'single'));
    cpSync(dataPath('pydicom-deb/CT_small.dcm'), join(dir, 'single', 'CT_small.dcm'));
    const list = sam('info', dir, '--json');
    assert.equal(list.code, 0, list.err);
    const series = JSON.parse(list.out).series as { seriesInstanceUid: string; sliceCount: number }[];
    assert.equal(series.length, 2);
    const head = series.find((s) => s.sliceCount === 93)!;
    const one = sam('info', dir, '--series', head.seriesInstanceUid);
    assert.equal(one.code, 0, one.err);
    assert.match(one.out, /64 x 64 x 93/);
  } finally {
    cleanup();
  }
});

test('sam info on bad input exits 1 with the file and the problem, no stack trace', () => {
  const { dir, cleanup } = tempDir();
  try {
    const bad = join(dir, 'broken.nii.gz');
    writeFileSync(bad, Buffer.from('this is not gzip'));
    for (const [file, problem] of [
      [bad, /not a NIfTI file|gzip|corrupt/i],
      [join(dir, 'missing.mha'), /no such file/],
    ] as const) {
      const r = sam('info', file);
      assert.equal(r.code, 1);
      assert.ok(r.err.includes(file), r.err);
      assert.match(r.err, problem);
      assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
    }
    assert.equal(sam('frobnicate').code, 2);
  } finally {
    cleanup();
  }
});

test('sam convert: DICOM to NIfTI and MetaImage and back to a DICOM series, geometry and voxels kept', () => {
  const { dir, cleanup } = tempDir();
  try {
    const src = dataPath('Slicer/Testing/Data/Input/CTHeadAxialDicom');
    const infoOf = (p: string) => JSON.parse(sam('info', p, '--json').out);
    const ref = infoOf(src);
    for (const out of [join(dir, 'head.nii.gz'), join(dir, 'head.mha')]) {
      const r = sam('convert', src, out);
      assert.equal(r.code, 0, r.err);
      const got = infoOf(out);
      assert.deepEqual(got.size, ref.size);
      assert.deepEqual(got.valueRange, ref.valueRange);
      for (let a = 0; a < 3; a++) assert.ok(Math.abs(got.origin[a] - ref.origin[a]) < 1e-4);
    }
    const r = sam('convert', join(dir, 'head.mha'), join(dir, 'dicom'), '--dicom', '--description', 'round trip');
    assert.equal(r.code, 0, r.err);
    assert.equal(readdirSync(join(dir, 'dicom')).length, 93);
    const back = infoOf(join(dir, 'dicom'));
    assert.deepEqual(back.size, ref.size);
    assert.equal(back.description, 'round trip');
    // into the same folder again: a second series beside the first, and the user is told
    const again = sam('convert', join(dir, 'head.mha'), join(dir, 'dicom'), '--dicom');
    assert.equal(again.code, 0, again.err);
    assert.match(again.err, /dicom now holds 2 series \(the new one beside the earlier\); read it with --series /);
    // a NIfTI (no patient) written as a series for a PACS: the patient given on the command line
    const nii = join(dir, 'unnamed.nii.gz');
    assert.equal(sam('convert', join(dir, 'head.mha'), nii).code, 0);
    const named = sam(
      'convert',
      nii,
      join(dir, 'named'),
      '--dicom',
      '--patient-id',
      'P-1',
      '--patient-name',
      'Doe^Jane',
    );
    assert.equal(named.code, 0, named.err);
    const first = loadDicom(join(dir, 'named', readdirSync(join(dir, 'named')).sort()[0])).ds;
    assert.equal(first.PatientID, 'P-1');
    assert.equal(JSON.stringify(first.PatientName), JSON.stringify([{ Alphabetic: 'Doe^Jane' }]));
    const bad = sam('convert', nii, join(dir, 'bad'), '--dicom', '--patient-id', 'a\\b');
    assert.equal(bad.code, 1);
    assert.match(bad.err, /PatientID "a\\b" is not a DICOM LO value/);
    // converting onto the input itself is refused
    const same = sam('convert', join(dir, 'head.mha'), join(dir, 'head.mha'));
    assert.equal(same.code, 1);
    assert.match(same.err, /refusing to overwrite an input/);
  } finally {
    cleanup();
  }
});

test('mistyped numbers are refused with the option and what it takes, before any input is read', async () => {
  const { intOption, numberOption, sizeOption, optionalNumber } = await import('../../main/cli/option-values.ts');
  assert.equal(intOption('pairs', '3'), 3);
  assert.equal(intOption('seed', '0', 0), 0);
  assert.throws(() => intOption('pairs', '0'), /--pairs: an integer >= 1, got '0'/);
  assert.throws(() => intOption('pairs', '2.5'), /--pairs: an integer >= 1/);
  assert.throws(() => intOption('pairs', ''), /--pairs: an integer >= 1, got ''/);
  assert.equal(numberOption('lr', '1e-3', { above: 0 }), 1e-3);
  assert.throws(() => numberOption('lr', '0', { above: 0 }), /--lr: a number > 0, got '0'/);
  assert.throws(() => numberOption('lr', 'fast'), /--lr: a number, got 'fast'/);
  assert.throws(() => numberOption('lr', 'Infinity'), /--lr: a number/);
  assert.equal(optionalNumber('threshold', undefined), undefined);
  assert.deepEqual(sizeOption('patch', '96,96,32'), [96, 96, 32]);
  assert.throws(() => sizeOption('patch', '96,96'), /--patch: three sizes X,Y,Z, got '96,96'/);
  // through the command: exit code 1, the message names the option; the (missing) inputs are never read
  const r = sam('register', 'no-such-fixed.nii.gz', 'no-such-moving.nii.gz', '--out', 'x', '--grid', 'abc');
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /--grid: a number > 0, got 'abc'/);
  assert.doesNotMatch(r.err, /no-such-fixed/);
  const fw = sam('register', 'no-such-fixed.nii.gz', 'no-such-moving.nii.gz', '--out', 'x', '--feature-weight=-1');
  assert.equal(fw.code, 1, fw.err);
  assert.match(fw.err, /--feature-weight: a number >= 0, got '-1'/);
  const e = sam('bench-embed', 'no-such-volume', '--points', 'many');
  assert.equal(e.code, 1, e.err);
  assert.match(e.err, /--points: an integer >= 1, got 'many'/);
});

test('a mistyped option is named, with the nearest real one', () => {
  const r = sam('register', 'a.nii.gz', 'b.nii.gz', '--out', 'x', '--stage', 'affine');
  assert.equal(r.code, 2);
  assert.match(r.err, /^sam register: unknown option --stage \(did you mean --stages\?\)/);
  assert.doesNotMatch(r.err, /positional/);
});

test("a negative number given to an option gets the option's own range message", () => {
  const r = sam('register', 'a.nii.gz', 'b.nii.gz', '--out', 'x', '--grid', '-5');
  assert.equal(r.code, 1);
  assert.match(r.err, /--grid: a number > 0, got '-5'/);
  assert.doesNotMatch(r.err, /ambiguous/);
});

test('sam demo finds its default CT from any working folder', () => {
  const { dir, cleanup } = tempDir();
  try {
    // an invalid seed stops it right after the CT is read: the CT was found
    const bin = join(process.cwd(), 'bin/sam.mjs');
    const env = { ...process.env, SAM_DATA_DIR: '' };
    const r = spawnSync(process.execPath, [bin, 'demo', '--out', join(dir, 'd'), '--seed', 'x'], {
      cwd: dir,
      encoding: 'utf8',
      env,
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /seed/);
    assert.doesNotMatch(r.stderr, /no such file/);
  } finally {
    cleanup();
  }
});

test('the example data is found from any folder, $SAM_DATA_DIR first', async () => {
  const { findSharedData, sharedDataPath } = await import('../../main/cli/shared-data.ts');
  const { dir, cleanup } = tempDir();
  const cwd = process.cwd();
  const env = process.env.SAM_DATA_DIR;
  try {
    process.chdir(dir);
    delete process.env.SAM_DATA_DIR;
    // no ../shared/data from the temp folder: the one beside the checkout, where the tests read theirs
    assert.equal(realpathSync(findSharedData()!), realpathSync(dataPath('.')));
    process.env.SAM_DATA_DIR = join(dir, 'elsewhere');
    assert.equal(findSharedData(), join(dir, 'elsewhere'));
    assert.equal(sharedDataPath('a', 'b.nii'), join(dir, 'elsewhere', 'a', 'b.nii'));
  } finally {
    process.chdir(cwd);
    if (env === undefined) delete process.env.SAM_DATA_DIR;
    else process.env.SAM_DATA_DIR = env;
    cleanup();
  }
});
