/**
 * The shipped model (resources/sam-small.samw) is a trained small network, and `sam register` uses it
 * by default: on a pair made from real CT by a known affine, the SAM matcher's affine lands within
 * a few millimetres of the truth over the fixed body.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { makeSyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { readAffine } from '../../main/engine/register/affine-io.ts';
import { createWeights, disposeWeights } from '../../main/engine/sam/network.ts';
import { loadWeights } from '../../main/engine/sam/weights-file.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { affineErrorRms, registerPairCli } from '../register-helpers.ts';
import { dataPath, tempDir } from '../helpers.ts';

const MODEL = 'resources/sam-small.samw';

test('the shipped model is the small configuration, trained (not its random initialisation)', async () => {
  await initTfBackend({ backend: 'cpu', gradients: false });
  const m = loadWeights(MODEL);
  assert.equal(m.config.name, 'small');
  const init = createWeights(m.config, 0);
  let changed = 0;
  let total = 0;
  for (const [name, t] of Object.entries(m.weights)) {
    const a = t.dataSync();
    const b = init[name].dataSync();
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) changed++;
    total += a.length;
  }
  disposeWeights(m.weights);
  disposeWeights(init);
  assert.ok(changed / total > 0.9, `${changed} of ${total} weights differ from the seed-0 initialisation`);
});

test('sam register --matcher sam with the shipped model: known affine recovered within 3 mm RMS', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const ct = await readVolume(dataPath('TotalSegmentator/tests/reference_files/example_ct.nii.gz'));
    const pair = makeSyntheticPair(ct, { seed: 5, bumps: 0, maxDeformationMm: 0, noiseHu: 5 });
    const { out, r } = registerPairCli(dir, pair, ['--stages', 'affine', '--matcher', 'sam', '--device', 'onnx'], {
      ...process.env,
      SAM_MODEL: '',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr + r.stdout, /sam-small\.samw|SAM/);
    const rms = affineErrorRms(pair, readAffine(join(out, 'affine.tfm')));
    console.log(`SAM matcher, shipped model: affine error RMS over the fixed body ${rms.toFixed(2)} mm`);
    assert.ok(rms < 3, `affine error RMS ${rms.toFixed(2)} mm`);
  } finally {
    cleanup();
  }
});
