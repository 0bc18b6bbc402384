/**
 * Inputs stay untouched however their paths are spelt: the path relations (util/paths.ts), the
 * atomic writer's protection through a symlink, the DICOM writer and `sam register` refusing an
 * output inside an input DICOM folder (which is read with its subfolders).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, VolumeWriteError } from '../../main/engine/errors.ts';
import { writeFileAtomic } from '../../main/engine/util/atomic-write.ts';
import {
  checkFolderCanBeMade,
  checkOutputFolder,
  inputFolderHolding,
  isInside,
  realPathOf,
  samePath,
} from '../../main/engine/util/paths.ts';
import { writeDicomSeries } from '../../main/engine/volume/io/dicom/write-series.ts';
import { listDicomSeries } from '../../main/engine/volume/io/dicom/scan.ts';
import { makeVolume } from '../../main/engine/volume/volume.ts';
import { dataPath, tempDir } from '../helpers.ts';

test('isInside, realPathOf, samePath: relative spellings, symlinks, names that merely start with ..', () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, 'a', 'b'), { recursive: true });
    symlinkSync(join(dir, 'a'), join(dir, 'link'));
    assert.ok(isInside('/x/y', '/x/y'));
    assert.ok(isInside('/x/y', '/x/y/z/w'));
    assert.ok(!isInside('/x/y', '/x/yz'));
    assert.ok(!isInside('/x/y', '/x'));
    assert.ok(isInside('/x', '/x/..hidden'), 'a name starting with .. is inside');
    // a path that does not exist yet: its deepest existing ancestor resolved, the rest kept
    assert.equal(realPathOf(join(dir, 'link', 'new', 'f.nii')), join(realPathOf(dir), 'a', 'new', 'f.nii'));
    assert.ok(samePath(join(dir, 'link', 'b'), join(dir, 'a', 'b')));
    assert.ok(samePath(join(dir, 'a', '..', 'a'), join(dir, 'a')));
    assert.ok(!samePath(join(dir, 'a'), join(dir, 'a', 'b')));
    // only folders hold: a file input is never a host
    writeFileSync(join(dir, 'a', 'f.nii'), 'x');
    assert.equal(
      inputFolderHolding(join(dir, 'link', 'b', 'out'), [join(dir, 'a', 'f.nii'), join(dir, 'a')]),
      join(dir, 'a'),
    );
    assert.equal(inputFolderHolding(join(dir, 'a', 'f.nii', 'x'), [join(dir, 'a', 'f.nii')]), undefined);
    assert.equal(inputFolderHolding(join(dir, 'elsewhere'), [join(dir, 'a')]), undefined);
  } finally {
    cleanup();
  }
});

test('checkOutputFolder: refuses an input itself and a folder inside an input folder, through symlinks', () => {
  const { dir, cleanup } = tempDir();
  try {
    const series = join(dir, 'series');
    mkdirSync(series);
    symlinkSync(series, join(dir, 'alias'));
    const file = join(dir, 'moving.nii.gz');
    writeFileSync(file, 'x');
    assert.throws(
      () => checkOutputFolder(file, [series, file]),
      (e) => e instanceof InputError && /is an input/.test(e.message),
    );
    assert.throws(
      () => checkOutputFolder(join(dir, 'alias', 'result'), [series, file]),
      (e) => e instanceof InputError && e.message.includes(`inside the input folder ${series}`),
    );
    checkOutputFolder(join(dir, 'result'), [series, file]);
  } finally {
    cleanup();
  }
});

test('writeFileAtomic refuses an input reached through a symlink and leaves it untouched', () => {
  const { dir, cleanup } = tempDir();
  try {
    const input = join(dir, 'input.nii');
    writeFileSync(input, 'original');
    symlinkSync(input, join(dir, 'link.nii'));
    assert.throws(
      () => writeFileAtomic(join(dir, 'link.nii'), Buffer.from('new'), { protect: [input] }),
      (e) => e instanceof VolumeWriteError && /refusing to overwrite an input/.test(e.message),
    );
    assert.throws(
      () => writeFileAtomic(input, Buffer.from('new'), { protect: [join(dir, 'link.nii')] }),
      (e) => e instanceof VolumeWriteError,
    );
    assert.equal(readFileSync(input, 'utf8'), 'original');
  } finally {
    cleanup();
  }
});

test('writeDicomSeries refuses a folder inside an input DICOM folder: the input stays one series', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const input = join(dir, 'ct');
    cpSync(dataPath('Slicer/Testing/Data/Input/CTHeadAxialDicom'), input, { recursive: true });
    const volume = makeVolume({ size: [4, 3, 2], spacing: [1, 1, 2], origin: [0, 0, 0], data: new Int16Array(24) });
    const out = join(input, 'derived');
    await assert.rejects(
      writeDicomSeries(out, volume, { seriesDescription: 'derived', protect: [input] }),
      (e) => e instanceof VolumeWriteError && e.message.includes(`inside the input folder ${input}`),
    );
    assert.ok(!existsSync(out));
    assert.equal((await listDicomSeries(input)).length, 1);
  } finally {
    cleanup();
  }
});

test('sam register refuses --out inside an input DICOM folder before reading anything', () => {
  const { dir, cleanup } = tempDir();
  try {
    const input = join(dir, 'ct');
    cpSync(dataPath('Slicer/Testing/Data/Input/CTHeadAxialDicom'), input, { recursive: true });
    const r = spawnSync(process.execPath, ['bin/sam.mjs', 'register', input, input, '--out', join(input, 'result')], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr,
      /result: is inside the input folder .*ct: what is written there would become part of that input/,
    );
    assert.doesNotMatch(r.stderr, /read fixed/);
    assert.ok(!existsSync(join(input, 'result')));
  } finally {
    cleanup();
  }
});

test('checkFolderCanBeMade and sam register: an --out that is a file, or lies under one, is refused before anything is read', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'outfile');
    writeFileSync(file, 'mine');
    assert.throws(() => checkFolderCanBeMade(file), /outfile: is a file, not a folder/);
    assert.throws(
      () => checkFolderCanBeMade(join(file, 'sub', 'deeper')),
      /outfile is a file, so no folder can be made/,
    );
    checkFolderCanBeMade(join(dir, 'new', 'nested'));
    checkFolderCanBeMade(dir);
    for (const out of [file, join(file, 'sub')]) {
      const ct = dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz');
      const r = spawnSync(process.execPath, ['bin/sam.mjs', 'register', ct, ct, '--out', out, '--matcher', 'ncc'], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /sam register: .*outfile.*(is a file, not a folder|is a file, so no folder)/);
      assert.doesNotMatch(r.stderr, /read fixed|EEXIST|ENOTDIR/);
    }
    assert.equal(readFileSync(file, 'utf8'), 'mine', 'the file is untouched');
    // the atomic writer under a file: its own error, not a raw ENOTDIR
    assert.throws(
      () => writeFileAtomic(join(file, 'x.txt'), Buffer.from('a')),
      (e) => e instanceof VolumeWriteError && /a part of its folder path is a file, not a folder/.test(e.message),
    );
    // options that contradict each other, and a series UID for a NIfTI: refused before the work, named
    const ct = dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz');
    const out = join(dir, 'res');
    for (const [extra, want] of [
      [['--weights', 'resources/sam-small.samw', '--random-init', '3'], /--weights\/--random-init: give one/],
      [['--deform-net', 'x.samw', '--no-deform-net'], /--deform-net\/--no-deform-net: give one/],
      [['--matcher', 'ncc', '--refine', 'none'], /--refine: refines the SAM matcher's matches/],
      [
        ['--matcher', 'ncc', '--stages', 'affine', '--fixed-series', '1.2.3'],
        /example_ct\.nii\.gz: a DICOM series UID was given \(1\.2\.3\), but this is a NIfTI file, not DICOM/,
      ],
    ] as [string[], RegExp][]) {
      const r = spawnSync(process.execPath, ['bin/sam.mjs', 'register', ct, ct, '--out', out, ...extra], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 1, `${extra.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, want);
      assert.ok(!existsSync(out), 'nothing written');
    }
    // no --out: said so, not only the usage
    const none = spawnSync(process.execPath, ['bin/sam.mjs', 'register', file, file], { encoding: 'utf8' });
    assert.equal(none.status, 2);
    assert.match(none.stderr, /^sam register: give the result folder with --out DIR/);
  } finally {
    cleanup();
  }
});
