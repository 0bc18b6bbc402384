// ONNX export of the SAM network against the tfjs reference ('tiny', random weights): both outputs
// agree per voxel (cosine, max abs difference) on sizes with and without padding; the ONNX engine's
// checks, execution-provider fallback and `sam export-onnx`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { getSamConfig, type Vec3 } from '../../main/engine/sam/config.ts';
import { createWeights, disposeWeights, initValues, weightSpecs } from '../../main/engine/sam/network.ts';
import { exportSamOnnxBytes } from '../../main/engine/sam/onnx/export.ts';
import { encodeWeights } from '../../main/engine/sam/weights-file.ts';
import { writeFileAtomic } from '../../main/engine/util/atomic-write.ts';
import { createOnnxEngine, type OnnxEngine } from '../../main/engine/compute/onnx-engine.ts';
import { createTfjsEngine } from '../../main/engine/compute/tfjs-engine.ts';
import type { EmbeddingEngine, EngineOutput } from '../../main/engine/compute/embedding-engine.ts';
import { rng, tempDir } from '../helpers.ts';
import { compareEmbeddings } from './onnx-compare.ts';

const tiny = getSamConfig('tiny');
const weights = createWeights(tiny, 4);
let onnx: OnnxEngine;
let tfjs: EmbeddingEngine;

before(async () => {
  await initTfBackend({ backend: 'cpu', gradients: false });
  onnx = await createOnnxEngine({ modelBytes: exportSamOnnxBytes(tiny, weights), config: tiny, threads: 1 });
  tfjs = await createTfjsEngine({ config: tiny, weights });
});
after(async () => {
  await onnx.dispose();
  disposeWeights(weights);
});

/** A normalised-CT-like block: air (-50), soft tissue, some bone, noise. */
function block(size: Vec3, seed: number): Float32Array {
  const r = rng(seed);
  return new Float32Array(size[0] * size[1] * size[2]).map((_, i) => (i % 7 < 2 ? -50 : 70 + 100 * r() * r()));
}

function assertParity(o: EngineOutput, t: EngineOutput, C: number, what: string, log?: (s: string) => void) {
  for (const k of ['global', 'local'] as const) {
    assert.deepEqual(o[`${k}Size`], t[`${k}Size`], `${what} ${k} size`);
    const { minCos, maxAbs } = compareEmbeddings(o[k], t[k], C);
    log?.(`${what} ${k}: 1 - min cosine ${(1 - minCos).toExponential(2)}, max |diff| ${maxAbs.toExponential(2)}`);
    assert.ok(minCos >= 0.9999, `${what} ${k}: min cosine ${minCos}`);
    assert.ok(maxAbs < 1e-4, `${what} ${k}: max abs difference ${maxAbs}`);
  }
}

test('tiny: ONNX Runtime = tfjs on both outputs, with and without padding', async (c) => {
  const sizes: Vec3[] = [
    [8, 32, 48], // a multiple of the total stride (4, 16, 16)
    [7, 30, 33], // padded on every axis
    [1, 5, 17], // smaller than one stride block on two axes
  ];
  for (const [i, size] of sizes.entries()) {
    const x = block(size, 10 + i);
    const o = await onnx.run(x, size);
    const t = await tfjs.run(x, size);
    assert.deepEqual(
      o.localSize,
      size.map((n) => Math.ceil(n / 2)),
    );
    assert.deepEqual(o.globalSize, [Math.ceil(size[0] / 4), Math.ceil(size[1] / 16), Math.ceil(size[2] / 16)]);
    assert.equal(o.local.length, o.localSize[0] * o.localSize[1] * o.localSize[2] * tiny.embedDim);
    assertParity(o, t, tiny.embedDim, `[${size}]`, (m) => c.diagnostic(m));
  }
});

test('the ONNX engine accepts an input view at an offset and refuses wrong sizes', async () => {
  const size: Vec3 = [4, 16, 16];
  const x = block(size, 3);
  const buf = new Float32Array(x.length + 5);
  buf.set(x, 5);
  const a = await onnx.run(x, size);
  const b = await onnx.run(buf.subarray(5), size);
  assert.deepEqual(b.local, a.local);
  await assert.rejects(onnx.run(x, [4, 16, 15]), /1024 values for a block of \[4,16,15\]/);
  await assert.rejects(onnx.run(x, [0, 16, 16] as Vec3), /positive integers/);
});

test('execution providers: unavailable ones are skipped with the reason, CPU last', async () => {
  const e = await createOnnxEngine({
    modelBytes: exportSamOnnxBytes(tiny, weights),
    config: tiny,
    executionProviders: ['coreml', 'cuda', 'dml'],
    threads: 1,
  });
  try {
    assert.equal(e.attempts.at(-1)!.ok, true);
    assert.equal(e.name, `onnxruntime-${e.provider}`);
    for (const a of e.attempts.slice(0, -1)) assert.ok(!a.ok && a.reason, JSON.stringify(a));
    if (e.provider === 'cpu')
      assert.deepEqual(
        e.attempts.map((a) => a.provider),
        ['coreml', 'cuda', 'dml', 'cpu'],
      );
  } finally {
    await e.dispose();
  }
  await assert.rejects(
    createOnnxEngine({ modelBytes: new Uint8Array([1, 2, 3]), config: tiny }),
    /ONNX model bytes: ONNX Runtime could not load the model \(cpu: /,
  );
  await assert.rejects(
    createOnnxEngine({ config: tiny, executionProviders: ['tpu' as 'cpu'], modelBytes: new Uint8Array() }),
    /unknown execution provider 'tpu'/,
  );
});

test('sam export-onnx: from a weights file (same bytes as the API), untrained with --config, never over its input', async () => {
  const tmp = tempDir();
  const sam = (...args: string[]) =>
    spawnSync(process.execPath, ['bin/sam.mjs', 'export-onnx', ...args], { encoding: 'utf8' });
  try {
    const values = new Map(weightSpecs(tiny).map((s) => [s.name, initValues(s, 9)]));
    const samw = join(tmp.dir, 'w.samw');
    writeFileAtomic(samw, encodeWeights(tiny, values));
    const out = join(tmp.dir, 'sub', 'm.onnx');
    let r = sam('--weights', samw, '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /wrote .*m\.onnx .*configuration 'tiny'/);
    const expected = exportSamOnnxBytes(tiny, values, { weightsDescription: `weights from ${samw}` });
    assert.ok(Buffer.from(readFileSync(out)).equals(Buffer.from(expected)), 'CLI and API write the same model');

    r = sam('--config', 'tiny', '--seed', '9', '--out', join(tmp.dir, 'r.onnx'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /UNTRAINED network \(configuration 'tiny', seed 9\)/);
    const e = await createOnnxEngine({ modelPath: join(tmp.dir, 'r.onnx'), config: tiny, threads: 1 });
    const size: Vec3 = [4, 16, 16];
    const a = await e.run(block(size, 1), size);
    await e.dispose();
    const w9 = createWeights(tiny, 9);
    const t = await (await createTfjsEngine({ config: tiny, weights: w9 })).run(block(size, 1), size);
    disposeWeights(w9);
    assertParity(a, t, tiny.embedDim, 'CLI model');

    r = sam('--weights', samw, '--out', samw);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /refusing to overwrite an input file/);
    // an existing file only with --force; never a file that is not .onnx (a trained model, a CT)
    const before = readFileSync(out);
    r = sam('--config', 'tiny', '--out', out);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /m\.onnx: already exists: give another name, or --force to replace it/);
    assert.ok(readFileSync(out).equals(before));
    r = sam('--config', 'tiny', '--out', out, '--force');
    assert.equal(r.status, 0, r.stderr);
    r = sam('--config', 'tiny', '--out', join(tmp.dir, 'model.samw'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /model\.samw: the output must be a \.onnx file/);
    r = sam('--out', out);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /give either --weights or --config/);
  } finally {
    tmp.cleanup();
  }
});
