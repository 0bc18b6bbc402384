/**
 * outOfMemoryDuring (compute/tf-backend.ts): the WebGPU error scope around queued work passes the
 * work's value and errors through, leaves the scope stack balanced (a failed piece of work does not
 * leave its scope open for the next), and on other backends runs the work alone.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend, outOfMemoryDuring } from '../../main/engine/compute/tf-backend.ts';
import { useWebgpu } from './webgpu-fixture.ts';

test('outOfMemoryDuring on the CPU backend: the work alone', async () => {
  await initTfBackend({ backend: 'cpu' });
  const r = await outOfMemoryDuring(async () => 42);
  assert.deepEqual(r, { value: 42 });
  await assert.rejects(
    outOfMemoryDuring(async () => {
      throw new Error('boom');
    }),
    /boom/,
  );
});

test('WebGPU: outOfMemoryDuring passes values and errors through and keeps the scopes balanced', async (t) => {
  if (!(await useWebgpu(t, false))) return;
  const device = (
    tf.backend() as unknown as { device: { pushErrorScope(f: string): void; popErrorScope(): Promise<unknown> } }
  ).device;
  try {
    const r = await outOfMemoryDuring(async () => {
      const a = tf.randomNormal([64, 64]);
      const b = tf.matMul(a, a);
      a.dispose();
      return b;
    });
    assert.equal(r.outOfMemory, undefined);
    assert.equal(((await r.value.data()) as Float32Array).length, 64 * 64);
    r.value.dispose();
    await assert.rejects(
      outOfMemoryDuring(async () => {
        throw new Error('failed inside');
      }),
      /failed inside/,
    );
    // a validation error pushed now must land in this scope, not in one left open by the calls above
    device.pushErrorScope('validation');
    device.pushErrorScope('out-of-memory');
    await outOfMemoryDuring(async () => 1);
    assert.equal(await device.popErrorScope(), null);
    assert.equal(await device.popErrorScope(), null);
    // and nothing is left open: the stack is empty again
    await assert.rejects(device.popErrorScope());
  } finally {
    await initTfBackend({ backend: 'cpu' });
  }
});
