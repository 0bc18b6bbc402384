/**
 * CT voxels of 16-bit types go up to the GPU packed two to a word and are widened there
 * (compute/widen16-wgsl.ts via compute/device-images.ts): the float32 tensor equals the host's
 * conversion for int16 (negative values, both extremes), uint16, odd lengths and views at odd
 * offsets, and for a real DICOM series (Dawn on lavapipe here).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { useWebgpu } from './webgpu-fixture.ts';
import { DeviceImages, voxelsOnDevice } from '../../main/engine/compute/device-images.ts';
import { makeVolume, type Volume } from '../../main/engine/volume/volume.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { dataPath } from '../helpers.ts';

function volumeOf(data: Int16Array | Uint16Array | Float32Array): Volume {
  return makeVolume({
    size: [data.length, 1, 1],
    spacing: [1, 1, 1],
    origin: [0, 0, 0],
    direction: [1, 0, 0, 0, 1, 0, 0, 0, 1],
    components: 1,
    data,
  });
}

async function assertSame(v: Volume, what: string): Promise<void> {
  const t = voxelsOnDevice(v);
  const got = await t.data();
  t.dispose();
  assert.equal(got.length, v.data.length, what);
  for (let q = 0; q < got.length; q++)
    if (got[q] !== Number(v.data[q])) assert.fail(`${what}: voxel ${q} is ${got[q]}, not ${v.data[q]}`);
}

test('16-bit voxels widened on the GPU equal the host conversion', async (t) => {
  if (!(await useWebgpu(t, false))) return;
  const before = tf.memory().numTensors;
  const signed = Int16Array.from({ length: 1001 }, (_, q) => ((q * 7919) % 65536) - 32768);
  signed[0] = -32768;
  signed[1] = 32767;
  signed[2] = -1;
  signed[3] = -1024;
  await assertSame(volumeOf(signed), 'int16, odd length');
  await assertSame(volumeOf(signed.subarray(0, 1000)), 'int16, even length');
  await assertSame(volumeOf(signed.subarray(1, 1001)), 'int16, a view at an odd offset');
  const unsigned = Uint16Array.from({ length: 998 }, (_, q) => (q * 7919) % 65536);
  unsigned[0] = 65535;
  await assertSame(volumeOf(unsigned), 'uint16');
  await assertSame(volumeOf(Float32Array.from([1.5, -2.25, 3])), 'float32 (uploaded as it is)');
  const ct = await readVolume(dataPath('ITKElastix/examples/data/00'));
  assert.ok(ct.data instanceof Int16Array, `the DICOM series reads as int16 (${ct.data.constructor.name})`);
  // its first 40 slices (under lavapipe's 128 MB buffers as float32), a view on the series' voxels
  const slab = makeVolume({
    ...ct,
    size: [ct.size[0], ct.size[1], 40],
    data: ct.data.subarray(0, ct.size[0] * ct.size[1] * 40),
  });
  const images = new DeviceImages();
  try {
    const got = await images.get(slab).data();
    let off = 0;
    for (let q = 0; q < got.length; q++) if (got[q] !== slab.data[q]) off++;
    assert.equal(off, 0, 'the chest series on the device');
  } finally {
    images.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'no tensor left');
});
