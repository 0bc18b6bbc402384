/**
 * Optimisers over a weights record (plain tensors; the network is a pure function of it):
 * SGD with momentum and weight decay as PyTorch/mmcv compute it (the official SAM configuration:
 * lr 0.02, momentum 0.9, weight decay 1e-4, linear warm-up from 0.001 x lr), or Adam.
 * Weight decay applies to convolution kernels ('.w') only, not to gains and biases.
 * The state is a record of tensors with the weights' names, so it is saved like the weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SamWeights } from '../sam/network.ts';
import { adamStepOnDevice } from './adam-on-device.ts';

export interface OptimizerOptions {
  kind: 'sgd' | 'adam';
  lr: number;
  momentum?: number;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Linear warm-up over this many iterations from warmupRatio x lr (official 500, 0.001). */
  warmup?: number;
  warmupRatio?: number;
  /** Iterations (1-based) after which lr is multiplied by 0.1 (official step schedule). */
  steps?: number[];
}

export interface OptimizerState {
  /** SGD: velocity; Adam: first moment. */
  m: SamWeights;
  /** Adam only: second moment. */
  v?: SamWeights;
}

export const SAM_SGD: OptimizerOptions = {
  kind: 'sgd',
  lr: 0.02,
  momentum: 0.9,
  weightDecay: 1e-4,
  warmup: 500,
  warmupRatio: 0.001,
};
export const ADAM: OptimizerOptions = {
  kind: 'adam',
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  weightDecay: 0,
};

/** Learning rate at a 1-based iteration. */
export function learningRate(o: OptimizerOptions, iteration: number): number {
  let lr = o.lr;
  for (const s of o.steps ?? []) if (iteration > s) lr *= 0.1;
  const w = o.warmup ?? 0;
  if (w > 0 && iteration <= w) {
    const r = o.warmupRatio ?? 0.001;
    lr *= r + (1 - r) * (iteration / w);
  }
  return lr;
}

export function createOptimizerState(o: OptimizerOptions, weights: SamWeights): OptimizerState {
  const zeros = (): SamWeights => Object.fromEntries(Object.entries(weights).map(([k, t]) => [k, tf.zerosLike(t)]));
  return o.kind === 'adam' ? { m: zeros(), v: zeros() } : { m: zeros() };
}

let adamOnDevice = process.env.SAM_ADAM_ON_DEVICE !== '0';

/** Whether Adam may step in place on WebGPU (default yes; $SAM_ADAM_ON_DEVICE=0 sets no): for comparisons. */
export function setAdamOnDevice(on: boolean): void {
  adamOnDevice = on;
}

/**
 * One step: returns the new weights and state (the old tensors are disposed; on WebGPU, Adam updates
 * them in place and returns the same ones).
 * `iteration` is 1-based (Adam's bias correction and the schedule use it).
 */
export function optimizerStep(
  o: OptimizerOptions,
  weights: SamWeights,
  grads: SamWeights,
  state: OptimizerState,
  iteration: number,
): { weights: SamWeights; state: OptimizerState; lr: number } {
  const lr = learningRate(o, iteration);
  const wd = o.weightDecay ?? 0;
  // on WebGPU: one dispatch per weight, in place (adam-on-device.ts)
  if (
    o.kind === 'adam' &&
    state.v &&
    adamOnDevice &&
    adamStepOnDevice(weights, grads, state.m, state.v, {
      lr,
      beta1: o.beta1 ?? 0.9,
      beta2: o.beta2 ?? 0.999,
      epsilon: o.epsilon ?? 1e-8,
      weightDecay: wd,
      iteration,
    })
  )
    return { weights, state, lr };
  const next: SamWeights = {};
  const m: SamWeights = {};
  const v: SamWeights = {};
  for (const [name, w] of Object.entries(weights)) {
    const g0 = grads[name];
    if (!g0) throw new Error(`no gradient for weight ${name}`);
    const out = tf.tidy(() => {
      const g = wd > 0 && name.endsWith('.w') ? tf.add(g0, tf.mul(w, wd)) : g0;
      if (o.kind === 'sgd') {
        const vel = tf.add(tf.mul(state.m[name], o.momentum ?? 0.9), g);
        return { w: tf.sub(w, tf.mul(vel, lr)), m: vel };
      }
      const b1 = o.beta1 ?? 0.9;
      const b2 = o.beta2 ?? 0.999;
      const m1 = tf.add(tf.mul(state.m[name], b1), tf.mul(g, 1 - b1));
      const v1 = tf.add(tf.mul(state.v![name], b2), tf.mul(tf.square(g), 1 - b2));
      const mh = tf.div(m1, 1 - b1 ** iteration);
      const vh = tf.div(v1, 1 - b2 ** iteration);
      return { w: tf.sub(w, tf.mul(tf.div(mh, tf.add(tf.sqrt(vh), o.epsilon ?? 1e-8)), lr)), m: m1, v: v1 };
    });
    next[name] = out.w;
    m[name] = out.m;
    if (out.v) v[name] = out.v;
  }
  for (const t of Object.values(weights)) t.dispose();
  for (const t of Object.values(state.m)) t.dispose();
  for (const t of Object.values(state.v ?? {})) t.dispose();
  return { weights: next, state: o.kind === 'adam' ? { m, v } : { m }, lr };
}
