/**
 * `sam train-reg` and `sam register --deform-net` end to end on real CT (a small lung CT), with the
 * untrained tiny SAM network for the features and the tiny deform network, so that both run in
 * seconds: train-reg writes checkpoints, model.samw and loss.csv, is deterministic under --seed, and a
 * resumed run continues exactly as an uninterrupted one; the cascade runs the network before the
 * instance optimisation and reports its time and numbers in qa.json; Ctrl-C saves a checkpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeSyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { registerPairCli } from '../register-helpers.ts';
import { dataPath, tempDir } from '../helpers.ts';

const LUNG = dataPath('elastix/Testing/Data/3DCT_lung_baseline_small.mha');
const COMMON = ['--net', 'tiny', '--crop', '16,16,16', '--random-init', '1', '--config', 'tiny'];
const DEVICE = ['--device', 'tfjs-cpu', '--backend', 'cpu'];

function trainReg(out: string, args: string[]) {
  const r = spawnSync(
    process.execPath,
    ['bin/sam.mjs', 'train-reg', '--data', LUNG, '--out', out, ...COMMON, ...DEVICE, ...args],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return r;
}

test('sam train-reg: 3 iterations on real CT write checkpoints, the network and loss.csv; --seed determinism and --resume', () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = join(dir, 'a');
    trainReg(a, ['--iterations', '3', '--checkpoint-every', '2', '--seed', '7']);
    for (const f of ['model.samw', 'loss.csv', 'loss.png', 'checkpoints/latest.json'])
      assert.ok(existsSync(join(a, f)), f);
    const rowsA = readFileSync(join(a, 'loss.csv'), 'utf8').trim().split('\n');
    assert.equal(rowsA.length, 4);
    assert.match(rowsA[0], /^iteration,total,ncc,feature,smooth,dice,treBefore,treAfter,lr,seconds$/);
    for (const row of rowsA.slice(1)) assert.ok(row.split(',').map(Number).every(Number.isFinite), row);
    // the same run in two sessions (2 iterations, then --resume to 3) gives the same losses
    const b = join(dir, 'b');
    trainReg(b, ['--iterations', '2', '--checkpoint-every', '2', '--seed', '7']);
    trainReg(b, ['--iterations', '3', '--checkpoint-every', '2', '--seed', '7', '--resume']);
    const rowsB = readFileSync(join(b, 'loss.csv'), 'utf8').trim().split('\n');
    const losses = (rows: string[]) => rows.slice(1).map((r) => r.split(',').slice(0, 8).join(','));
    assert.deepEqual(losses(rowsB), losses(rowsA));
    assert.deepEqual(readFileSync(join(b, 'model.samw')), readFileSync(join(a, 'model.samw')));
  } finally {
    cleanup();
  }
});

test('sam register --deform-net: the network runs before the instance optimisation; qa.json has its time', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const net = join(dir, 'net');
    trainReg(net, ['--iterations', '1']);
    const ct = await readVolume(LUNG);
    const pair = makeSyntheticPair(ct, { seed: 3, maxRotationDeg: 4, maxTranslationMm: 6, maxDeformationMm: 6 });
    const { out, r } = registerPairCli(dir, pair, [
      '--deform-net',
      join(net, 'model.samw'),
      '--random-init',
      '1',
      '--config',
      'tiny',
      '--device',
      'tfjs-cpu',
      '--grid',
      '24',
      '--stages',
      'affine,deform',
      '--deform-iters',
      '5',
      // the network opens the SAM model for its features with the NCC matcher too
      '--matcher',
      'ncc',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const qa = JSON.parse(readFileSync(join(out, 'qa.json'), 'utf8'));
    assert.ok(qa.secondsPerStage.deformNet > 0, JSON.stringify(qa.secondsPerStage));
    assert.ok(qa.secondsPerStage.deform > 0);
    assert.ok(Number.isFinite(qa.deformNet.meanDisplacementMm));
    assert.match(qa.deformNet.file, /model\.samw$/);
    assert.equal(qa.deformNet.runtime, 'onnxruntime');
    assert.equal(qa.matcher, 'ncc');
  } finally {
    cleanup();
  }
});

test('sam train-reg: Ctrl-C saves a checkpoint and exits 130; --resume finishes the run', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const args = ['bin/sam.mjs', 'train-reg', '--data', LUNG, '--out', dir, ...COMMON, ...DEVICE, '--iterations', '2'];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      if (err.includes('backend:') && !child.killed) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((res) => child.on('close', res));
    assert.equal(code, 130, err);
    assert.match(err, /saving a checkpoint/);
    assert.ok(existsSync(join(dir, 'checkpoints', 'latest.json')));
    const r = spawnSync(process.execPath, [...args, '--resume'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /finished at iteration 2/);
  } finally {
    cleanup();
  }
});
