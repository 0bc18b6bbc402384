/**
 * Adam in place on WebGPU (train/adam-on-device.ts) against optimizer.ts' tfjs ops on the same backend
 * and against a float64 hand computation, over several steps with weight decay, with the tensors read
 * (as a checkpoint reads them) part way; and its refusal when a weight shares its buffer with another
 * tensor.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { adamStepOnDevice } from '../../main/engine/train/adam-on-device.ts';
import {
  createOptimizerState,
  optimizerStep,
  setAdamOnDevice,
  type OptimizerOptions,
} from '../../main/engine/train/optimizer.ts';
import type { SamWeights } from '../../main/engine/sam/network.ts';
import { useWebgpu } from './webgpu-fixture.ts';

const OPT: OptimizerOptions = { kind: 'adam', lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.05 };

function values(seed: number, n: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  });
}

/** Three weights (one of 70,000 elements: more than one row of workgroups is not needed, but many workgroups). */
const SHAPES: Record<string, number[]> = { 'a.w': [3, 3, 3, 4, 8], 'a.b': [8], 'big.w': [70000] };

function weightsOf(seed: number): SamWeights {
  return Object.fromEntries(
    Object.entries(SHAPES).map(([n, s], k) => [
      n,
      tf.tensor(
        values(
          seed + k,
          s.reduce((x, y) => x * y),
        ),
        s,
      ),
    ]),
  );
}

test('WebGPU: Adam in place equals the tfjs ops and a float64 reference over 4 steps (weight decay on .w only)', async (t) => {
  if (!(await useWebgpu(t))) return;
  try {
    const run = async (onDevice: boolean) => {
      setAdamOnDevice(onDevice);
      let w = weightsOf(1);
      let st = createOptimizerState(OPT, w);
      for (let it = 1; it <= 4; it++) {
        const g = weightsOf(10 * it);
        const before = w;
        // read everything first, as a checkpoint does: tfjs then keeps host copies, which the
        // in-place step must not leave stale (they were: every later checkpoint saved these values)
        if (it === 3)
          for (const x of [...Object.values(w), ...Object.values(st.m), ...Object.values(st.v ?? {})]) await x.data();
        const r = optimizerStep(OPT, w, g, st, it);
        // in place on the device: the same tensors come back
        assert.equal(r.weights === before, onDevice);
        tf.dispose(Object.values(g));
        w = r.weights;
        st = r.state;
      }
      const out: Record<string, Float32Array> = {};
      for (const [n, x] of Object.entries(w)) out[n] = (await x.data()) as Float32Array;
      tf.dispose([...Object.values(w), ...Object.values(st.m), ...Object.values(st.v ?? {})]);
      return out;
    };
    const ops = await run(false);
    const inPlace = await run(true);
    // float64 reference
    for (const [k, n] of Object.keys(SHAPES).entries()) {
      const size = ops[n].length;
      const w = Float64Array.from(values(1 + k, size));
      const m = new Float64Array(size);
      const v = new Float64Array(size);
      for (let it = 1; it <= 4; it++) {
        const g0 = values(10 * it + k, size);
        for (let i = 0; i < size; i++) {
          const g = g0[i] + (n.endsWith('.w') ? w[i] * 0.05 : 0);
          m[i] = 0.9 * m[i] + 0.1 * g;
          v[i] = 0.999 * v[i] + 0.001 * g * g;
          w[i] -= (0.01 * (m[i] / (1 - 0.9 ** it))) / (Math.sqrt(v[i] / (1 - 0.999 ** it)) + 1e-8);
        }
      }
      let dOps = 0;
      let dRef = 0;
      for (let i = 0; i < size; i++) {
        dOps = Math.max(dOps, Math.abs(inPlace[n][i] - ops[n][i]));
        dRef = Math.max(dRef, Math.abs(inPlace[n][i] - w[i]));
      }
      assert.ok(dOps < 2e-7, `${n}: in place vs tfjs ops differ by ${dOps}`);
      assert.ok(dRef < 1e-6, `${n}: in place vs float64 differ by ${dRef}`);
      // the step moved the weights (about lr a step)
      assert.ok(Math.abs(inPlace[n][0] - values(1 + k, size)[0]) > 0.01);
    }
  } finally {
    setAdamOnDevice(true);
    await initTfBackend({ backend: 'cpu' });
  }
});

test('WebGPU: Adam in place refuses a weight that shares its buffer (a reshape of it lives on)', async (t) => {
  if (!(await useWebgpu(t))) return;
  try {
    const w = weightsOf(3);
    const alias = tf.reshape(w['a.b'], [2, 4]);
    const st = createOptimizerState(OPT, w);
    const g = weightsOf(4);
    const scalars = { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, iteration: 1 };
    assert.equal(adamStepOnDevice(w, g, st.m, st.v!, scalars), false);
    // untouched
    assert.deepEqual(await w['a.b'].data(), values(3 + 1, 8));
    alias.dispose();
    assert.equal(adamStepOnDevice(w, g, st.m, st.v!, scalars), true);
    tf.dispose([...Object.values(w), ...Object.values(g), ...Object.values(st.m), ...Object.values(st.v!)]);
  } finally {
    await initTfBackend({ backend: 'cpu' });
  }
});
