/**
 * SAM-deform's instance optimisation of w on one grid level, behind one interface with two
 * implementations: hostDeformOptimiser (this file: plain JavaScript, deform-loss.ts's exact gradient)
 * and deviceDeformOptimiser (register/device/: the same objective and steps on the tfjs device, for a
 * GPU). Both run Adam on w in place, the gradient box-smoothed `smoothing` times first (a
 * preconditioner), with a cosine-decayed rate from lr0 to lr0 / 10:
 * - 'adam-global' (default): Adam's momentum with one second moment for all parameters (the mean square
 *   of the gradient entries that are nonzero): steps keep their relative sizes, so regions without
 *   image information (outside the moving field of view, flat tissue) are not pushed at full speed;
 *   each step is clipped to the rate;
 * - 'adam': per-parameter Adam.
 * Adam's denominator has a floor, gradientFloor(): Adam divides by the gradient's own scale, so a
 * gradient of rounding noise (a scan registered to itself: 1e-6 of a real pair's) made steps of the
 * full rate, and the field drifted; below the floor the steps shrink with the gradient.
 */
import { CancelledError } from '../../errors.ts';
import { yieldToEventLoop } from '../../util/yield.ts';
import { smoothField, smoothFieldOn } from './box-sum.ts';
import type { BoxSumThreads } from './box-sum-threads.ts';
import { deformLoss, deformLossOn, type DeformEval, type DeformProblem } from './deform-loss.ts';

export interface OptimiserSettings {
  optimizer?: 'adam-global' | 'adam';
  /** Host optimiser: the box sums on these worker threads (the same numbers), else in this thread. */
  boxSums?: BoxSumThreads | null;
  onProgress?: (stage: string, done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface DeformOptimiser {
  /** The loss terms at w. */
  evaluate(w: Float32Array): Promise<DeformEval>;
  /** `iterations` Adam steps on w, in place. */
  optimise(w: Float32Array, iterations: number, lr0: number, smoothing: number, label: string): Promise<void>;
  dispose(): void;
}

/**
 * The floor of Adam's denominator, ADAM_GRADIENT_FLOOR / Σ window weights: the loss is a mean over the
 * counted windows, so its gradient at a node scales as 1 / their number; times it, the RMS gradient
 * was 6e-3-9e-3 at the start of the deform stage on 2 mm chest pairs (1e-3 late in the optimisation),
 * 1e-6 on a scan registered to itself. The floor leaves the chest pairs' TRE as it was.
 */
export const ADAM_GRADIENT_FLOOR = 3e-4;

/** The floor for `problem` (with the 1e-12 that Adam's denominator always had). */
export function gradientFloor(problem: { windows: { weightSum: number } }): number {
  return ADAM_GRADIENT_FLOOR / problem.windows.weightSum + 1e-12;
}

/** The cosine-decayed rate of iteration `it` (1-based) of `iterations`. */
export function learningRateAt(lr0: number, it: number, iterations: number): number {
  return lr0 * (0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * (it - 1)) / iterations)));
}

export function hostDeformOptimiser(problem: DeformProblem, o: OptimiserSettings): DeformOptimiser {
  // the box sums on the threads when given (the same numbers), else here
  const threads = o.boxSums;
  const loss = async (w: Float32Array, grad?: Float32Array) =>
    threads ? deformLossOn(threads, problem, w, grad) : deformLoss(problem, w, grad);
  const smooth = async (g: Float32Array) =>
    threads ? smoothFieldOn(threads, g, problem.size) : smoothField(g, problem.size);
  return {
    evaluate: (w) => loss(w),
    async optimise(w, iterations, lr0, smoothing, label) {
      const n = w.length;
      const grad = new Float32Array(n);
      const m1 = new Float32Array(n);
      const m2 = new Float32Array(n);
      const b1 = 0.9;
      const b2 = 0.999;
      const floor = gradientFloor(problem);
      let v2 = 0;
      for (let it = 1; it <= iterations; it++) {
        if (o.signal?.aborted) throw new CancelledError('SAM-deform');
        grad.fill(0);
        await loss(w, grad);
        for (let p = 0; p < smoothing; p++) await smooth(grad);
        const lr = learningRateAt(lr0, it, iterations);
        const c1 = 1 - b1 ** it;
        const c2 = 1 - b2 ** it;
        if (o.optimizer === 'adam') {
          for (let q = 0; q < n; q++) {
            const g = grad[q];
            m1[q] = b1 * m1[q] + (1 - b1) * g;
            m2[q] = b2 * m2[q] + (1 - b2) * g * g;
            w[q] -= (lr * (m1[q] / c1)) / (Math.sqrt(m2[q] / c2) + floor);
          }
        } else {
          let ss = 0;
          let cnt = 0;
          for (let q = 0; q < n; q++)
            if (grad[q] !== 0) {
              ss += grad[q] * grad[q];
              cnt++;
            }
          v2 = b2 * v2 + (1 - b2) * (cnt ? ss / cnt : 0);
          const denom = Math.sqrt(v2 / c2) + floor;
          for (let q = 0; q < n; q++) {
            m1[q] = b1 * m1[q] + (1 - b1) * grad[q];
            const step = (lr * (m1[q] / c1)) / denom;
            w[q] -= step > lr ? lr : step < -lr ? -lr : step;
          }
        }
        o.onProgress?.(`deform: ${label}`, it, iterations);
        if (it % 4 === 0) await yieldToEventLoop();
      }
    },
    dispose() {},
  };
}
