// SAM weights file: documented layout, bit-exact round trip, clear errors naming the file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { getSamConfig } from '../../main/engine/sam/config.ts';
import { createWeights, disposeWeights, forward, weightSpecs, type SamWeights } from '../../main/engine/sam/network.ts';
import { crc32, encodeWeights, loadModel, loadWeights, saveWeights } from '../../main/engine/sam/weights-file.ts';
import { InputError, VolumeReadError } from '../../main/engine/errors.ts';

const tiny = getSamConfig('tiny');
let dir = '';
let weights: SamWeights;
let good = '';
let bytes: Uint8Array;

before(async () => {
  await initTfBackend({ backend: 'cpu', gradients: false });
  dir = mkdtempSync(join(tmpdir(), 'sam-weights-'));
  weights = createWeights(tiny, 11);
  good = join(dir, 'tiny.samw');
  await saveWeights(good, tiny, weights, { note: 'unit test', iterations: 3 });
  bytes = new Uint8Array(readFileSync(good)); // a copy: Buffer.slice would share memory
});
after(() => {
  disposeWeights(weights);
  rmSync(dir, { recursive: true, force: true });
});

test('round trip is bit-exact, with the configuration and meta', () => {
  const r = loadWeights(good);
  assert.deepEqual(r.config, tiny);
  assert.deepEqual(r.meta, { note: 'unit test', iterations: 3 });
  for (const s of weightSpecs(tiny)) {
    assert.deepEqual(r.weights[s.name].shape, s.shape);
    const a = new Uint32Array(weights[s.name].dataSync().slice().buffer);
    const b = new Uint32Array(r.weights[s.name].dataSync().slice().buffer);
    assert.deepEqual(a, b, s.name);
  }
  const x = tf.randomUniform([1, 4, 16, 16, 1], -50, 150, 'float32', 1) as tf.Tensor5D;
  const o1 = forward(weights, x, tiny);
  const o2 = forward(r.weights, x, r.config);
  assert.deepEqual(o1.local.dataSync(), o2.local.dataSync());
  tf.dispose([x, o1.local, o1.global, o2.local, o2.global]);
  disposeWeights(r.weights);
  assert.deepEqual(readdirSync(dir), ['tiny.samw'], 'no temporary files left behind');
});

test('the bytes follow the documented layout', () => {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), 'SAMW');
  assert.equal(dv.getUint32(4, true), 1);
  const n = dv.getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + n)));
  const d0 = Math.ceil((12 + n) / 8) * 8;
  assert.equal(bytes.byteLength, d0 + header.dataBytes);
  assert.equal(crc32(bytes.subarray(d0)), header.dataCrc32);
  assert.deepEqual(
    header.tensors.map((t: { name: string }) => t.name),
    weightSpecs(tiny).map((s) => s.name),
  );
  const t = header.tensors[3];
  const first = dv.getFloat32(d0 + t.offset, true);
  assert.equal(first, weights[t.name].dataSync()[0]);
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926); // the CRC-32 check value
});

/** Write a variant of the good file and expect a VolumeReadError naming it and matching `re`. */
function expectBad(name: string, data: Uint8Array, re: RegExp) {
  const p = join(dir, name);
  writeFileSync(p, data);
  assert.throws(
    () => loadWeights(p),
    (e: unknown) =>
      e instanceof VolumeReadError && e.file === p && e.message.startsWith(`${p}: `) && re.test(e.message),
  );
}

/** The good file with its header replaced (data section unchanged). */
function withHeader(edit: (h: Record<string, unknown>) => void): Uint8Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint32(8, true);
  const h = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + n)));
  edit(h);
  const json = new TextEncoder().encode(JSON.stringify(h));
  const d0 = Math.ceil((12 + json.byteLength) / 8) * 8;
  const data = bytes.subarray(Math.ceil((12 + n) / 8) * 8);
  const out = new Uint8Array(d0 + data.byteLength);
  out.set(bytes.subarray(0, 12));
  new DataView(out.buffer).setUint32(8, json.byteLength, true);
  out.set(json, 12);
  out.set(data, d0);
  return out;
}

test('truncated, corrupt and foreign files give errors naming the file', () => {
  expectBad('truncated.samw', bytes.subarray(0, bytes.byteLength - 10), /truncated/);
  expectBad('header-only.samw', bytes.subarray(0, 20), /truncated/);
  expectBad('empty.samw', new Uint8Array(0), /truncated/);
  const magic = bytes.slice();
  magic[0] = 0x47;
  expectBad('magic.samw', magic, /not a SAM weights file/);
  // the other model file of the product, and an ONNX export, say what they are
  const deform = bytes.slice();
  deform.set(new TextEncoder().encode('SAMD'), 0);
  expectBad('model.samw', deform, /a SAM-deform network \(sam train-reg\), not a SAM embedding model/);
  expectBad(
    'sam.onnx',
    Uint8Array.from([8, 7, 18, 4, 115, 97, 109, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    /an ONNX export: the embedding model is the \.samw file/,
  );
  const version = bytes.slice();
  version[4] = 9;
  expectBad('version.samw', version, /unsupported SAM weights format version 9/);
  const flipped = bytes.slice();
  flipped[flipped.length - 3] ^= 0x10;
  expectBad('flipped.samw', flipped, /CRC-32 mismatch/);
  const json = bytes.slice();
  json[13] = 0x7b; // '{{' breaks the JSON
  expectBad('json.samw', json, /corrupt SAM weights header/);
  expectBad('trailing.samw', Uint8Array.from([...bytes, 0, 0, 0, 0]), /unexpected bytes/);
  expectBad(
    'shape.samw',
    withHeader((h) => ((h.tensors as { shape: number[] }[])[0].shape = [1, 2, 3])),
    /expected 'stem\.w'/,
  );
  expectBad(
    'config.samw',
    withHeader((h) => ((h.config as { embedDim: number }).embedDim = 7)),
    /invalid configuration.*embedDim/,
  );
  expectBad(
    'dtype.samw',
    withHeader((h) => ((h.tensors as { dtype: string }[])[2].dtype = 'float16')),
    /dtype float16/,
  );
  assert.throws(
    () => loadWeights(join(dir, 'missing.samw')),
    (e: unknown) => e instanceof VolumeReadError && /missing\.samw: cannot read/.test(e.message),
  );
});

test('non-finite values are refused on load; mismatched weights are refused on save', async () => {
  const values = new Map(weightSpecs(tiny).map((s) => [s.name, weights[s.name].dataSync() as Float32Array]));
  const nan = Float32Array.from(values.get('s1.b0.conv2.w')!);
  nan[0] = NaN;
  const chunks = encodeWeights(tiny, new Map([...values, ['s1.b0.conv2.w', nan]]));
  const all = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0));
  chunks.reduce((off, c) => (all.set(c, off), off + c.byteLength), 0);
  expectBad('nan.samw', all, /'s1\.b0\.conv2\.w' holds non-finite values/);
  const small = getSamConfig('small');
  await assert.rejects(
    saveWeights(join(dir, 'wrong.samw'), small, weights),
    (e: unknown) => e instanceof InputError && /stem\.w. has shape/.test(e.message),
  );
});

test("a checkpoint's optimiser state is refused where a model is expected (same layout, momentum values)", async () => {
  const p = join(dir, 'opt-m.samw');
  await saveWeights(p, tiny, weights, { kind: 'optimizer-m', iteration: 6 });
  assert.throws(
    () => loadModel(p),
    (e: unknown) =>
      e instanceof VolumeReadError &&
      /optimiser state of a training checkpoint \(optimizer-m\), not a model/.test((e as Error).message),
  );
  // the checkpoint loader itself still reads it, and a model file passes
  disposeWeights(loadWeights(p).weights);
  const m = loadModel(good);
  assert.equal(m.config.name, 'tiny');
  disposeWeights(m.weights);
});
