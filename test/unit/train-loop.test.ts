/**
 * The training loop end to end on real CT (tiny network, small patches): loss logged, checkpoints
 * written, determinism under a seed, resume identical to an uninterrupted run, Ctrl-C saves; one
 * forward pass per iteration equals two.
 */
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { CTHEAD, J2K, filesOf } from './dicom-fixtures.ts';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { getSamConfig } from '../../main/engine/sam/config.ts';
import { loadTrainingSet, type TrainingCase } from '../../main/engine/train/dataset.ts';
import { ADAM } from '../../main/engine/train/optimizer.ts';
import { trainSam, type TrainOptions } from '../../main/engine/train/train-loop.ts';
import { checkRunFolder } from '../../main/engine/train/checkpoint.ts';
import { niceTicks } from '../../main/engine/train/loss-plot-svg.ts';
import { checkPatchSize, trainingMemoryEstimate } from '../../main/engine/train/patch-size-check.ts';
import { runIterations } from '../../main/engine/train/run-iterations.ts';
import { createWeights, disposeWeights } from '../../main/engine/sam/network.ts';
import { loadWeights } from '../../main/engine/sam/weights-file.ts';
import { dataPath, tempDir } from '../helpers.ts';

const CT = dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz');
let cases: TrainingCase[];

function options(runDir: string, iterations: number, resume = false): TrainOptions {
  return {
    config: getSamConfig('tiny'),
    runDir,
    iterations,
    batchPairs: 1,
    seed: 7,
    optimizer: { ...ADAM, lr: 1e-3 },
    checkpointEvery: 2,
    resume,
    patch: { patchSize: [32, 32, 16] },
  };
}

test('training set: CT volumes are used, label maps and MR are skipped with a reason', async () => {
  await initTfBackend({ backend: 'cpu' });
  const r = await loadTrainingSet([
    CT,
    dataPath('TotalSegmentator/tests/reference_files/example_seg.nii.gz'),
    dataPath('TotalSegmentator/tests/reference_files/example_mr_sm.nii.gz'),
  ]);
  assert.equal(r.cases.length, 1);
  assert.equal(r.skipped.length, 2);
  for (const s of r.skipped) assert.match(s.reason, /not CT in HU/);
  cases = r.cases;
});

test('a run logs four finite loss terms per iteration, checkpoints, and resuming equals an uninterrupted run', async () => {
  const a = tempDir();
  const b = tempDir();
  try {
    const straight = await trainSam(cases, options(a.dir, 4));
    assert.equal(straight.stopped, 'done');
    assert.equal(straight.rows.length, 4);
    for (const r of straight.rows)
      for (const k of ['total', 'localAB', 'localBA', 'globalAB', 'globalBA'] as const)
        assert.ok(Number.isFinite(r[k]) && r[k] > 0, `${k} ${r[k]}`);
    assert.ok(existsSync(join(a.dir, 'loss.png')));
    // the SVG: both panels, a legend naming every term, an iteration axis with its ticks
    const svg = readFileSync(join(a.dir, 'loss.svg'), 'utf8');
    for (const t of ['total loss', 'terms', 'localAB', 'localBA', 'globalAB', 'globalBA', 'iteration'])
      assert.ok(svg.includes(`>${t}`), t);
    assert.equal((svg.match(/<polyline/g) ?? []).length, 5);
    assert.equal(readFileSync(join(a.dir, 'loss.csv'), 'utf8').trim().split('\n').length, 5);

    await trainSam(cases, options(b.dir, 2));
    await assert.rejects(trainSam(cases, options(b.dir, 4)), /pass --resume/);
    const resumed = await trainSam(cases, options(b.dir, 4, true));
    assert.equal(resumed.iteration, 4);
    assert.deepEqual(
      resumed.rows.map((r) => r.total),
      straight.rows.map((r) => r.total),
      'same losses',
    );
    assert.ok(readFileSync(join(a.dir, 'model.samw')).equals(readFileSync(join(b.dir, 'model.samw'))), 'same weights');
    // resuming a finished run leaves its last checkpoint untouched (no rewrite of what latest.json names)
    const last = join(b.dir, 'checkpoints', 'iter-0000004', 'weights.samw');
    const before = statSync(last);
    await trainSam(cases, options(b.dir, 4, true));
    const after = statSync(last);
    assert.equal(after.ino, before.ino);
    assert.equal(after.mtimeMs, before.mtimeMs);
    // a resume with other run-defining options is refused, naming them
    await assert.rejects(trainSam(cases, { ...options(b.dir, 6, true), seed: 8 }), /seed: 7 then, 8 now/);
    // and with another data set (cases are drawn by index: another set is another run)
    await assert.rejects(trainSam([...cases, ...cases], options(b.dir, 6, true)), /data: 1 volumes then, 2 now/);
    const state = JSON.parse(readFileSync(join(b.dir, 'checkpoints', 'iter-0000004', 'state.json'), 'utf8'));
    assert.deepEqual(state.options.data, {
      count: 1,
      volumes: [{ source: cases[0].source, size: [...cases[0].ct.image.size] }],
    });
    assert.equal(state.options.backend, 'cpu');
    // the newest checkpoint damaged (a file cut short): the older one kept beside it is resumed from,
    // said so, the damaged folder kept aside, and the run continues as the uninterrupted one
    const c = tempDir();
    try {
      await trainSam(cases, options(c.dir, 4));
      const v = join(c.dir, 'checkpoints', 'iter-0000004', 'opt-v.samw');
      writeFileSync(v, readFileSync(v).subarray(0, 1000));
      const notes: string[] = [];
      const again = await trainSam(cases, options(c.dir, 4, true), { onNote: (t) => notes.push(t) });
      assert.match(
        notes.join('\n'),
        /iter-0000004 cannot be read .*truncated.*resuming from iter-0000002, iteration 2/,
      );
      assert.ok(existsSync(join(c.dir, 'checkpoints', 'damaged-iter-0000004', 'opt-v.samw')), 'kept aside');
      assert.deepEqual(
        again.rows.map((r) => r.total),
        straight.rows.map((r) => r.total),
      );
      assert.ok(readFileSync(join(a.dir, 'model.samw')).equals(readFileSync(join(c.dir, 'model.samw'))));
    } finally {
      c.cleanup();
    }
  } finally {
    a.cleanup();
    b.cleanup();
  }
});

test('sam train: Ctrl-C saves a checkpoint and exits 130; --resume finishes the run', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const args = [
      'bin/sam.mjs',
      'train',
      '--data',
      CT,
      '--out',
      dir,
      '--config',
      'tiny',
      '--patch',
      '32,32,16',
      '--iterations',
      '3',
      '--optimizer',
      'adam',
      '--backend',
      'cpu',
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      // after the first iteration (stopped before it, a run saves nothing)
      if (/ 1\/3 /.test(err) && !child.killed) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((res) => child.on('close', res));
    assert.equal(code, 130, err);
    assert.match(err, /saving a checkpoint/);
    assert.ok(existsSync(join(dir, 'checkpoints', 'latest.json')));
    assert.match(err, /continue with: sam train --out .* --resume/);
    // resumed with only the folder: the run's own options (tiny, 3 iterations, adam...) and data
    const resume = spawn(process.execPath, ['bin/sam.mjs', 'train', '--out', dir, '--backend', 'cpu', '--resume'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err2 = '';
    resume.stderr.on('data', (d) => (err2 += d));
    assert.equal(await new Promise((res) => resume.on('close', res)), 0, err2);
    assert.match(err2, /resuming .*: config tiny, 3 iterations, batch 1, patch 32,32,16, adam lr 0\.001/);
    assert.match(err2, /finished at iteration 3/);
    assert.match(err2, /use .*example_ct\.nii\.gz/);
    // an option given again and different is refused, naming it
    const other = spawnSync(process.execPath, [...args, '--seed', '4', '--resume'], { encoding: 'utf8' });
    assert.equal(other.status, 1, other.stderr);
    assert.match(other.stderr, /seed: 0 then, 4 now/);
    assert.doesNotMatch(other.stderr, /reading training data/, 'refused before the data is read');
    // an optimiser option: named by its field; a run already done: nothing to train
    const lr = spawnSync(process.execPath, [...args, '--lr', '0.5', '--resume'], { encoding: 'utf8' });
    assert.match(lr.stderr, /optimizer\.lr: 0\.001 then, 0\.5 now/);
    const done = spawnSync(process.execPath, [...args, '--iterations', '2', '--resume'], { encoding: 'utf8' });
    assert.equal(done.status, 0, done.stderr);
    assert.match(done.stderr, /the run is at iteration 3 of 2: nothing to train/);
  } finally {
    cleanup();
  }
});

test("training set: each series of a DICOM folder, lists' missing lines and broken links skipped with the reason", async () => {
  const a = tempDir();
  try {
    // one folder holding two series (a CT in HU and a head series without a RescaleIntercept)
    const two = join(a.dir, 'two');
    mkdirSync(two);
    for (const f of filesOf(J2K)) copyFileSync(f, join(two, basename(f)));
    for (const f of filesOf(CTHEAD)) copyFileSync(f, join(two, basename(f)));
    symlinkSync('/nonexistent/gone.nii.gz', join(two, 'gone.nii.gz'));
    // a list naming 12 slices of a 141-slice series: those 12, read together as one volume
    const chest = dataPath('ITKElastix/examples/data/00');
    const slices = Array.from({ length: 12 }, (_, n) => join(chest, `00-slice${String(n).padStart(3, '0')}.dcm`));
    writeFileSync(join(a.dir, 'list.txt'), `# my scans\n${CT}\nmissing.nii.gz\n${slices.join('\n')}\n`);
    const seen: string[] = [];
    const r = await loadTrainingSet([two, join(a.dir, 'list.txt')], {
      onCase: (src, ok, reason) => seen.push(`${ok ? 'use' : 'skip'} ${src}: ${reason}`),
    });
    assert.equal(r.cases.length, 3, seen.join('\n'));
    const named = r.cases.find((c) => c.source === `${chest} (12 file(s) named)`);
    assert.ok(named, seen.join('\n'));
    assert.ok(Math.abs(named.ct.image.size[2] * named.ct.image.spacing[2] - 24) <= 2, `${named.ct.image.size}`);
    assert.ok(
      r.cases.some((c) => /two \(series .*'CT Body 3\.0'\)$/.test(c.source)),
      seen.join('\n'),
    );
    assert.ok(r.cases.some((c) => c.source === CT));
    const reasons = r.skipped.map((k) => `${k.source}: ${k.reason}`).join('\n');
    assert.match(reasons, /gone\.nii\.gz: broken link/);
    assert.match(reasons, /missing\.nii\.gz: listed in .*list\.txt \(line 3\) but not found/);
    assert.match(reasons, /two \(series .*\): not CT in HU/);
  } finally {
    a.cleanup();
  }
});

test('the run folder: --resume without a checkpoint, files a run would overwrite, a file for a folder are refused', async () => {
  const a = tempDir();
  try {
    // a mistyped --out with --resume: refused, not a new run from scratch
    await assert.rejects(trainSam(cases, options(join(a.dir, 'typo'), 2, true)), /no checkpoint to resume from/);
    assert.ok(!existsSync(join(a.dir, 'typo', 'loss.csv')));
    // the user's own model and loss log in the folder (no run there): refused, left as they were
    writeFileSync(join(a.dir, 'model.samw'), 'mine');
    writeFileSync(join(a.dir, 'loss.csv'), 'mine too');
    await assert.rejects(trainSam(cases, options(a.dir, 1)), /holds model\.samw, loss\.csv but no training run/);
    assert.equal(readFileSync(join(a.dir, 'model.samw'), 'utf8'), 'mine');
    assert.equal(readFileSync(join(a.dir, 'loss.csv'), 'utf8'), 'mine too');
    assert.throws(() => checkRunFolder(join(a.dir, 'model.samw'), false, 'sam'), /is a file, not a folder/);
    // an empty or unrelated folder is fine
    writeFileSync(join(a.dir, 'notes.txt'), 'x');
    assert.doesNotThrow(() => checkRunFolder(join(a.dir, 'new'), false, 'sam'));
    // a run killed before its first checkpoint (its marker, a log, a partial checkpoint): nothing to
    // resume, and a plain rerun starts it over
    const killed = join(a.dir, 'killed');
    mkdirSync(join(killed, 'checkpoints', 'iter-0000002'), { recursive: true });
    writeFileSync(join(killed, 'sam-run.json'), JSON.stringify({ format: 'sam-training-run', kind: 'sam' }));
    writeFileSync(join(killed, 'loss.csv'), 'iteration,total\n1,20\n');
    assert.throws(() => checkRunFolder(killed, true, 'sam'), /stopped before its first checkpoint: nothing to resume/);
    await trainSam(cases, options(killed, 1));
    assert.equal(readFileSync(join(killed, 'loss.csv'), 'utf8').trim().split('\n').length, 2);
    assert.ok(!existsSync(join(killed, 'checkpoints', 'iter-0000002')));
    // the other training's run is refused by name; a file of the user's by the marker's name is protected
    assert.throws(() => checkRunFolder(killed, false, 'deform-net'), /holds a sam train run, not a sam train-reg one/);
    const notes = join(a.dir, 'notes');
    mkdirSync(notes);
    writeFileSync(join(notes, 'sam-run.json'), '{"experiment": "my notes"}');
    assert.throws(() => checkRunFolder(notes, false, 'sam'), /holds sam-run\.json but no training run/);
  } finally {
    a.cleanup();
  }
});

test('loss plot ticks: round values at 1, 2 or 5 times a power of ten, covering the range', () => {
  assert.deepEqual(niceTicks(18.9, 22.1), [19, 20, 21, 22]);
  assert.deepEqual(niceTicks(0, 394, 8), [0, 50, 100, 150, 200, 250, 300, 350]);
  // iterations of a short run: whole numbers only
  assert.deepEqual(niceTicks(1, 3, 8, true), [1, 2, 3]);
  assert.ok(
    niceTicks(1, 3, 8).some((t) => !Number.isInteger(t)),
    'without the flag: fractional steps',
  );
  assert.deepEqual(niceTicks(0.0012, 0.0031, 4), [0.0015, 0.002, 0.0025, 0.003]);
  assert.deepEqual(niceTicks(5, 5), [5]);
});

test('a run started from a saved model (--init) begins from its weights, not a random initialisation', async () => {
  const a = tempDir();
  const b = tempDir();
  try {
    await trainSam(cases, options(a.dir, 1));
    const saved = loadWeights(join(a.dir, 'model.samw'));
    // lr 0: the weights after one iteration are exactly the initial ones
    await trainSam(cases, {
      ...options(b.dir, 1),
      optimizer: { ...ADAM, lr: 0 },
      init: { file: join(a.dir, 'model.samw'), weights: saved.weights },
    });
    const after = loadWeights(join(b.dir, 'model.samw'));
    const random = createWeights(getSamConfig('tiny'), 7);
    let differsFromRandom = false;
    for (const [name, t] of Object.entries(after.weights)) {
      const v = t.dataSync();
      assert.deepEqual(Array.from(v), Array.from(readFileWeights(a.dir)[name]), name);
      if (Array.from(v).some((x, i) => x !== random[name].dataSync()[i])) differsFromRandom = true;
    }
    assert.ok(differsFromRandom, 'the weights are the saved model, not the seed-7 initialisation');
    disposeWeights(after.weights);
    disposeWeights(random);
  } finally {
    a.cleanup();
    b.cleanup();
  }
});

test('one forward pass per iteration (its tape paused while mining) gives the two-pass losses and weights exactly', async () => {
  const a = tempDir();
  const b = tempDir();
  try {
    const before = tf.memory().numTensors;
    const one = await trainSam(cases, options(a.dir, 3));
    assert.equal(tf.memory().numTensors, before, 'one pass: no tensor left behind');
    const engineState = (tf.engine() as unknown as { state: { activeTape: unknown; gradientDepth: number } }).state;
    assert.equal(engineState.gradientDepth, 0, 'no gradient tape left open');
    assert.equal(engineState.activeTape, null, 'the tape is freed');
    const two = await trainSam(cases, { ...options(b.dir, 3), twoPass: true });
    for (let t = 0; t < 3; t++)
      for (const k of ['total', 'localAB', 'localBA', 'globalAB', 'globalBA'] as const)
        assert.equal(one.rows[t][k], two.rows[t][k], `iteration ${t + 1}: ${k}`);
    const [wa, wb] = [readFileWeights(a.dir), readFileWeights(b.dir)];
    for (const name of Object.keys(wb)) assert.deepEqual(wa[name], wb[name], name);
  } finally {
    a.cleanup();
    b.cleanup();
  }
});

function readFileWeights(runDir: string): Record<string, Float32Array> {
  const m = loadWeights(join(runDir, 'model.samw'));
  const out: Record<string, Float32Array> = {};
  for (const [name, t] of Object.entries(m.weights)) out[name] = t.dataSync() as Float32Array;
  disposeWeights(m.weights);
  return out;
}

test('training set: a file reached twice (a symlink) is read once; a lone DICOM slice beside volumes is named by its file', async () => {
  const a = tempDir();
  try {
    const data = join(a.dir, 'data');
    mkdirSync(data);
    symlinkSync(CT, join(data, 'ct.nii.gz'));
    copyFileSync(filesOf(CTHEAD)[0], join(data, 'slice.dcm'));
    const r = await loadTrainingSet([data, CT]);
    assert.equal(r.cases.length, 1);
    const reasons = r.skipped.map((k) => `${k.source}: ${k.reason}`).join('\n');
    assert.match(
      reasons,
      new RegExp(`${CT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the same file or folder as .*ct\\.nii\\.gz`),
    );
    assert.match(reasons, /slice\.dcm: 1 voxel\(s\) thick/);
  } finally {
    a.cleanup();
  }
});

test('sam train refuses a patch too small for the network before reading any data', () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = spawnSync(
      process.execPath,
      ['bin/sam.mjs', 'train', '--data', CT, '--out', join(dir, 'run'), '--patch', '16,16,4', '--backend', 'cpu'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /--patch: 16,16,4 is too small for the 'small' network: at least 32,32,8 \(x,y,z\)/);
    assert.doesNotMatch(r.stderr, /reading training data/);
  } finally {
    cleanup();
  }
});

test('patch memory estimate: the measured peaks (1.00 GB at 96x96x32, 0.43 GB at 48x48x16) within 10 %; a huge patch is refused', () => {
  const small = getSamConfig('small');
  const near = (a: number, b: number) => Math.abs(a - b) / b < 0.1;
  assert.ok(
    near(trainingMemoryEstimate(small, [96, 96, 32], 1), 1.0e9),
    `${trainingMemoryEstimate(small, [96, 96, 32], 1)}`,
  );
  assert.ok(
    near(trainingMemoryEstimate(small, [48, 48, 16], 1), 0.43e9),
    `${trainingMemoryEstimate(small, [48, 48, 16], 1)}`,
  );
  checkPatchSize(small, [96, 96, 32], 1, 8e9);
  assert.throws(
    () => checkPatchSize(small, [2000, 2000, 500], 1, 128e9),
    /needs about .* GB to train, more than this machine's 128\.0 GB/,
  );
});

test('a run stopped before its first iteration saves nothing: no checkpoint of untrained weights', async () => {
  const controller = new AbortController();
  controller.abort();
  const saved: number[] = [];
  let released = false;
  const r = await runIterations(
    {
      start: 0,
      log: { append: () => {} } as never,
      rows: [],
      checkpoint: async (t) => (saved.push(t), `ck${t}`),
      release: () => (released = true),
      step: async () => assert.fail('no step after the stop'),
    },
    { iterations: 5, checkpointEvery: 2, seed: 0 },
    { signal: controller.signal },
  );
  assert.deepEqual(saved, []);
  assert.equal(r.checkpoint, undefined);
  assert.equal(r.iteration, 0);
  assert.ok(released);
});
