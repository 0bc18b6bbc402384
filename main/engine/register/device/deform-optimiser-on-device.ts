/**
 * SAM-deform's instance optimisation on the tfjs device: the same Adam as sam-deform.ts's host
 * optimiser (gradient box-smoothed `smoothing` times first; 'adam-global': Adam's momentum over one
 * shared second moment, the mean square of the nonzero gradient entries, each step clipped to the
 * learning rate; or per-parameter 'adam'), the same cosine-decayed rate, on the objective of
 * deform-loss-on-device.ts. The problem is uploaded once per level; w, the moments and the gradient
 * stay on the device, and w is read back only at the end, so a GPU runs the iterations back to back.
 * On WebGPU each iteration is 9 dispatches of WGSL programs (deform-gradient-wgsl.ts: the hand-written
 * gradient, the smoothing box means, the gradient's statistics, a fused Adam step on one state
 * tensor); on other tfjs
 * backends (the CPU backend in the tests) tfjs' autodiff differentiates deform-loss-on-device.ts.
 * The AbortSignal is checked and progress reported every iteration; every few iterations the loop
 * waits for the device (a one-number read), so progress and cancel follow the GPU, not the queue.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CancelledError } from '../../errors.ts';
import type { DeformEval, DeformProblem } from '../deform/deform-loss.ts';
import {
  gradientFloor,
  learningRateAt,
  type DeformOptimiser,
  type OptimiserSettings,
} from '../deform/deform-optimiser.ts';
import { smoothGradientOnDevice } from './box-sum-on-device.ts';
import {
  deformLossAndGradientOnDevice,
  deformTermsOnDevice,
  deviceProblem,
  type DeformProblemOnDevice,
  type DeviceDeformProblem,
} from './deform-loss-on-device.ts';
import { adamStepWgsl, deformGradientWgsl, fixedPack, STATE_STRIDE } from './deform-gradient-wgsl.ts';
import { readAndDispose } from './flat-program.ts';

/**
 * The optimiser of a host problem (uploaded) or of one whose images are on the device already (taken
 * over: disposed with the optimiser).
 */
export function deviceDeformOptimiser(
  problem: DeformProblem | DeformProblemOnDevice,
  settings: OptimiserSettings,
): DeformOptimiser {
  const p = deviceProblem(problem);
  const [ni, nj, nk] = problem.size;
  const N = ni * nj * nk;
  let wgsl: tf.Tensor2D | null;
  try {
    wgsl = tf.getBackend() === 'webgpu' ? fixedPack(p) : null;
  } catch (e) {
    p.dispose();
    throw e;
  }
  return {
    async evaluate(w: Float32Array): Promise<DeformEval> {
      const t = tf.tidy(() => {
        const terms = deformTermsOnDevice(p, tf.tensor2d(w, [N, 3]));
        return tf.stack([terms.loss, terms.similarity, terms.feature, terms.smoothness]);
      });
      const [loss, similarity, feature, smoothness] = await readAndDispose(t);
      return { loss, similarity, feature, smoothness };
    },
    async optimise(w: Float32Array, iterations: number, lr0: number, smoothing: number, label: string): Promise<void> {
      const floor = gradientFloor(problem);
      if (wgsl) return optimiseWgsl(p, wgsl, settings, w, iterations, lr0, smoothing, label, floor);
      const o = settings;
      let wt: tf.Tensor2D = tf.tensor2d(w, [N, 3]);
      let m1: tf.Tensor = tf.zerosLike(wt);
      let m2: tf.Tensor = o.optimizer === 'adam' ? tf.zerosLike(wt) : tf.scalar(0);
      const b1 = 0.9;
      const b2 = 0.999;
      try {
        for (let it = 1; it <= iterations; it++) {
          if (o.signal?.aborted) throw new CancelledError('SAM-deform');
          const lr = learningRateAt(lr0, it, iterations);
          const c1 = 1 - b1 ** it;
          const c2 = 1 - b2 ** it;
          const next = tf.tidy(() => {
            const g = smoothGradientOnDevice(deformLossAndGradientOnDevice(p, wt).grad, problem.size, smoothing);
            const m1n = tf.add(tf.mul(m1, b1), tf.mul(g, 1 - b1));
            let m2n: tf.Tensor;
            let step: tf.Tensor;
            if (o.optimizer === 'adam') {
              m2n = tf.add(tf.mul(m2, b2), tf.mul(tf.square(g), 1 - b2));
              step = tf.div(tf.mul(m1n, lr / c1), tf.add(tf.sqrt(tf.div(m2n, c2)), floor));
            } else {
              const nonzero = tf.sum(tf.cast(tf.notEqual(g, 0), 'float32'));
              const meanSquare = tf.div(tf.sum(tf.square(g)), tf.maximum(nonzero, 1));
              m2n = tf.add(tf.mul(m2, b2), tf.mul(meanSquare, 1 - b2));
              const denom = tf.add(tf.sqrt(tf.div(m2n, c2)), floor);
              step = tf.clipByValue(tf.div(tf.mul(m1n, lr / c1), denom), -lr, lr);
            }
            return [tf.sub(wt, step) as tf.Tensor2D, m1n, m2n] as const;
          });
          tf.dispose([wt, m1, m2]);
          [wt, m1, m2] = next;
          o.onProgress?.(`deform: ${label}`, it, iterations);
          // wait for the device now and then: progress and cancel follow the GPU, not the queue
          if (it % 4 === 0 || it === iterations) await m2.data();
        }
        w.set(await wt.data());
      } finally {
        tf.dispose([wt, m1, m2]);
      }
    },
    dispose() {
      p.dispose();
      wgsl?.dispose();
    },
  };
}

/** The optimisation loop on WebGPU: one state tensor (w, moments) updated by WGSL programs. */
async function optimiseWgsl(
  p: DeviceDeformProblem,
  pack: tf.Tensor2D,
  o: OptimiserSettings,
  w: Float32Array,
  iterations: number,
  lr0: number,
  smoothing: number,
  label: string,
  floor: number,
): Promise<void> {
  const N = w.length / 3;
  const initial = new Float32Array(STATE_STRIDE * N + 1);
  for (let v = 0; v < N; v++) for (let a = 0; a < 3; a++) initial[STATE_STRIDE * v + a] = w[3 * v + a];
  let state: tf.Tensor = tf.tensor1d(initial);
  // the device's progress checks, one in flight (see below)
  let inFlight: Promise<unknown> | null = null;
  try {
    for (let it = 1; it <= iterations; it++) {
      if (o.signal?.aborted) throw new CancelledError('SAM-deform');
      const next = tf.tidy(() => {
        const g = smoothGradientOnDevice(deformGradientWgsl(p, pack, state), p.size, smoothing);
        return adamStepWgsl(state, g, {
          lr: learningRateAt(lr0, it, iterations),
          c1: 1 - 0.9 ** it,
          c2: 1 - 0.999 ** it,
          floor,
          global: o.optimizer !== 'adam',
        });
      });
      state.dispose();
      state = next;
      o.onProgress?.(`deform: ${label}`, it, iterations);
      // wait for the device now and then (one number): progress and cancel follow the GPU, not the queue.
      // The wait for iteration it's number comes after iterations it + 1 .. it + 4 are queued, so the
      // queue holds at most 8 iterations and the GPU does not idle while this thread queues the next 4
      // (a wait right away left it idle for each batch's queueing, 20 times a level)
      if (it % 4 === 0 && it < iterations) {
        const check = readAndDispose(tf.slice(state, [STATE_STRIDE * N], [1]));
        // (awaited at the next check or in finally: a device lost meanwhile is no unhandled rejection)
        check.catch(() => {});
        const previous = inFlight;
        inFlight = check;
        await previous;
      }
    }
    const out = (await state.data()) as Float32Array;
    for (let v = 0; v < N; v++) for (let a = 0; a < 3; a++) w[3 * v + a] = out[STATE_STRIDE * v + a];
  } finally {
    state.dispose();
    // (a cancel leaves the last check's read in flight: its tensor is gone once it has come back)
    await inFlight?.catch(() => {});
  }
}
