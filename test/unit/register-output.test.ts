/**
 * The result folder is written whole or not at all (register/register-output.ts): the files go into
 * a staging folder and move into place once all are written, so a cancel while writing leaves the
 * folder as it was; a killed writer's staging folder is removed by the next write; the rest of an
 * earlier result without its qa.json is moved aside like a whole one; an input lying in the folder
 * as a result file is refused before anything moves; the warped series names only the stages used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { makeSyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import { CancelledError, InputError } from '../../main/engine/errors.ts';
import { registerVolumes, type RegisterResult } from '../../main/engine/register/cascade.ts';
import { usedStages, writeRegistration } from '../../main/engine/register/register-output.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { dataPath, tempDir } from '../helpers.ts';

test('a result folder is written whole or not at all; stale staging removed; partial earlier results moved aside', async () => {
  const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
  const pair = makeSyntheticPair(ct, { seed: 4, bumps: 0, maxDeformationMm: 0, noiseHu: 5, maxRotationDeg: 4 });
  const r = await registerVolumes(pair.fixed, pair.moving, { matcher: 'ncc', stages: ['affine'], gridMm: 24 });
  const { dir: tmp, cleanup } = tempDir();
  try {
    const dir = join(tmp, 'out');
    mkdirSync(dir);
    // a staging folder of a writer that was killed (no such process), the rest of an earlier result
    // without its qa.json, and a file of the user's
    const host = hostname().replace(/[^A-Za-z0-9.]/g, '_');
    const stale = join(dir, `.sam-writing-${host}-999999999-abcd1234`);
    mkdirSync(stale);
    writeFileSync(join(stale, 'warped.nii.gz'), 'half');
    // another machine's writer on a shared disk: its process id means nothing here, its folder stays
    const elsewhere = `.sam-writing-another-machine-${process.pid}-abcd1234`;
    mkdirSync(join(dir, elsewhere));
    writeFileSync(join(dir, 'coarse-pairs.csv'), 'an older run');
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    const archived: string[] = [];
    const files = await writeRegistration(dir, pair.fixed, pair.moving, r, {
      protect: [],
      onArchived: (f) => archived.push(f),
    });
    const names = readdirSync(dir).sort();
    assert.deepEqual(
      names.filter((n) => n.startsWith('.sam-writing')),
      [elsewhere],
      `no staging folder of this machine left: ${names}`,
    );
    assert.equal(archived.length, 1, 'the partial earlier result moved aside');
    assert.deepEqual(readdirSync(archived[0]), ['coarse-pairs.csv']);
    assert.ok(!existsSync(join(dir, 'coarse-pairs.csv')), 'no coarse pairs of another run beside an affine result');
    assert.equal(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'mine');
    for (const f of ['warped.nii.gz', 'displacement.nii.gz', 'affine.txt', 'affine.tfm', 'pairs.csv', 'qa.json'])
      assert.ok(files.includes(join(dir, f)) && existsSync(join(dir, f)), f);
    const warped = await readVolume(join(dir, 'warped.nii.gz'));
    assert.deepEqual(warped.size, pair.fixed.size);
    // a cancel while writing (at the second file): the folder is as it was, nothing archived
    const before = readdirSync(dir).sort();
    const qaBefore = readFileSync(join(dir, 'qa.json'), 'utf8');
    const controller = new AbortController();
    const again: string[] = [];
    await assert.rejects(
      writeRegistration(dir, pair.fixed, pair.moving, r, {
        protect: [],
        signal: controller.signal,
        onArchived: (f) => again.push(f),
        onWriting: (p) => {
          if (p.endsWith('displacement.nii.gz')) controller.abort();
        },
      }),
      (e) => e instanceof CancelledError,
    );
    assert.deepEqual(readdirSync(dir).sort(), before, 'the folder as it was');
    assert.equal(readFileSync(join(dir, 'qa.json'), 'utf8'), qaBefore, 'the earlier result untouched');
    assert.deepEqual(again, [], 'nothing moved aside');
    // an input that is one of the result's files in the folder: refused before anything moves
    await assert.rejects(
      writeRegistration(dir, pair.fixed, pair.moving, r, { protect: [join(dir, 'warped.nii.gz')] }),
      (e) => e instanceof InputError && /warped\.nii\.gz: is an input and lies in the output folder/.test(e.message),
    );
    assert.deepEqual(readdirSync(dir).sort(), before);
    // ... or lies inside one of them (a file of the earlier warped series)
    mkdirSync(join(dir, 'warped-dicom'));
    writeFileSync(join(dir, 'warped-dicom', 'IM1.dcm'), 'x');
    await assert.rejects(
      writeRegistration(dir, pair.fixed, pair.moving, r, { protect: [join(dir, 'warped-dicom', 'IM1.dcm')] }),
      (e) =>
        e instanceof InputError &&
        /IM1\.dcm: is an input and lies in the output folder .* \(warped-dicom\)/.test(e.message),
    );
  } finally {
    cleanup();
  }
});

test('usedStages: the warped series names the stages whose correction the result holds', () => {
  const r = (coarseUsed: boolean, deformUsed: boolean, net = false) =>
    ({
      qa: { stages: ['affine', 'coarse', 'deform'] },
      coarse: { stats: { used: coarseUsed } },
      deform: { stats: { used: deformUsed, kept: deformUsed } },
      ...(net ? { deformNet: {} } : {}),
    }) as unknown as RegisterResult;
  assert.deepEqual(usedStages(r(true, true)), ['affine', 'coarse', 'deform']);
  assert.deepEqual(usedStages(r(false, false)), ['affine']);
  assert.deepEqual(usedStages(r(true, false)), ['affine', 'coarse']);
  assert.deepEqual(usedStages(r(false, false, true)), ['affine', 'deform'], "the network's field stays in the map");
});
