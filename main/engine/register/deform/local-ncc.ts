/**
 * Local normalised cross-correlation (LNCC) between a fixed image I and a warped moving image J on the
 * same grid, and its exact gradient with respect to every voxel of J.
 *
 * Windows: the (2r+1)^3 box around each voxel c, truncated at the grid's faces (n_c voxels). With the
 * box sums S_I, S_J, S_II, S_JJ, S_IJ of the window:
 *   cross_c = S_IJ - S_I S_J / n_c,  varI_c = S_II - S_I^2 / n_c,  varJ_c = S_JJ - S_J^2 / n_c,
 *   cc_c = cross_c^2 / ((varI_c + eps) (varJ_c + eps)),      loss = -(Σ_c m_c cc_c) / Σ_c m_c
 * with m_c a weight per window centre (the fixed body) and eps damping flat windows (air, uniform
 * tissue). The damping sits on each variance of its own: VoxelMorph's cross^2 / (varI varJ + eps)
 * rewards more contrast in J (for J = a I, a^2 v^2 / (a^2 v^2 + eps) grows with a, by eps / v^2),
 * so its gradient at J = I is not zero and a scan registered to itself came out deformed (|w| up to
 * 0.9 mm, Jacobian 0.56-1.14 on the 2 mm chest). Here the reward is eps / v, a textured window's
 * variance v times smaller. (Damping varJ by only 1e-3 eps made the gradient at J = I rounding
 * noise, but the registrations came out worse: the demo pair 0.20 / 0.46 mm against 0.18 / 0.41, the
 * four 2 mm chest pairs 0.01 mm worse in two; the damping of flat J windows helps.) Then
 *   ∂cc_c/∂J(x) = a_c (I(x) - Ī_c) - 2 b_c (J(x) - J̄_c),  a_c = 2 cross_c / D_c,
 *   b_c = cross_c^2 (varI_c + eps) / D_c^2,  D_c = (varI_c + eps)(varJ_c + eps)
 * for x in the window of c, and since the truncated windows are symmetric (x in window(c) iff c in
 * window(x)), the sum over windows is a box sum again:
 *   ∂loss/∂J(x) = -(1/Σm) [ I(x) B(m a)(x) - B(m a Ī)(x) - 2 J(x) B(m b)(x) + 2 B(m b J̄)(x) ].
 */
import { boxSum } from './box-sum.ts';
import type { BoxSumThreads } from './box-sum-threads.ts';

/** The default eps of windows of radius r: 1e-3 for 5^3 windows, scaled as a squared window sum. */
export function defaultLnccEps(r: number): number {
  return 1e-3 * ((2 * r + 1) ** 3 / 125) ** 2;
}

export interface FixedWindows {
  size: readonly number[];
  r: number;
  /** Damping of varI and of varJ. */
  eps: number;
  I: Float32Array;
  /** Window sums of 1, I, I^2. */
  n: Float64Array;
  sI: Float64Array;
  sII: Float64Array;
  /** Window-centre weights (null: all 1) and their sum. */
  weight: Float32Array | null;
  weightSum: number;
}

/**
 * The fixed image's window sums (I on the grid, i fastest), each made when first read (the GPU
 * optimiser makes its own on the device and never reads them: device/deform-loss-on-device.ts).
 */
export function fixedWindows(
  I: Float32Array,
  size: readonly number[],
  r: number,
  weight: Float32Array | null = null,
  eps?: number,
): FixedWindows {
  const weightSum = windowWeightSum(weight, I.length);
  let n: Float64Array | undefined;
  let sI: Float64Array | undefined;
  let sII: Float64Array | undefined;
  return {
    size,
    r,
    eps: eps ?? defaultLnccEps(r),
    I,
    get n() {
      return (n ??= boxSum(new Float32Array(I.length).fill(1), size, r));
    },
    get sI() {
      return (sI ??= boxSum(I, size, r));
    },
    get sII() {
      if (!sII) {
        const II = new Float32Array(I.length);
        for (let v = 0; v < I.length; v++) II[v] = I[v] * I[v];
        sII = boxSum(II, size, r);
      }
      return sII;
    },
    weight,
    weightSum,
  };
}

/** FixedWindows.weightSum: the window centres' weights summed (n when there are none), at least 1e-12. */
export function windowWeightSum(weight: Float32Array | null, n: number): number {
  let sum = 0;
  if (weight) for (let v = 0; v < weight.length; v++) sum += weight[v];
  else sum = n;
  return Math.max(sum, 1e-12);
}

/** The LNCC loss of J against the fixed windows; writes ∂loss/∂J into `grad` when given. */
export function lnccLoss(f: FixedWindows, J: Float32Array, grad?: Float64Array): number {
  const N = J.length;
  const JJ = new Float32Array(N);
  const IJ = new Float32Array(N);
  products(f, J, JJ, IJ);
  const coef = grad ? [0, 1, 2, 3].map(() => new Float64Array(N)) : null;
  const total = windowTerms(f, boxSum(J, f.size, f.r), boxSum(JJ, f.size, f.r), boxSum(IJ, f.size, f.r), coef);
  if (grad && coef) {
    const [bA, bAI, bB, bBJ] = coef.map((c) => boxSum(c, f.size, f.r));
    gradientFrom(f, J, bA, bAI, bB, bBJ, grad);
  }
  return -total / f.weightSum;
}

/**
 * lnccLoss with its box sums on worker threads (box-sum-threads.ts): the same numbers. J must be on
 * shared memory (threads.shared32); the intermediate images are the threads' reusable shared arrays.
 */
export async function lnccLossOn(
  threads: BoxSumThreads,
  f: FixedWindows,
  J: Float32Array,
  grad?: Float64Array,
): Promise<number> {
  const N = J.length;
  const JJ = threads.shared32('lncc.JJ', N);
  const IJ = threads.shared32('lncc.IJ', N);
  products(f, J, JJ, IJ);
  const [sJ, sJJ, sIJ] = ['sJ', 'sJJ', 'sIJ'].map((k) => threads.shared64(`lncc.${k}`, N));
  await threads.sums([J, JJ, IJ], [sJ, sJJ, sIJ], f.size, f.r);
  const coef = grad ? ['A', 'AI', 'B', 'BJ'].map((k) => threads.shared64(`lncc.${k}`, N)) : null;
  const total = windowTerms(f, sJ, sJJ, sIJ, coef);
  if (grad && coef) {
    const b = ['bA', 'bAI', 'bB', 'bBJ'].map((k) => threads.shared64(`lncc.${k}`, N));
    await threads.sums(coef, b, f.size, f.r);
    gradientFrom(f, J, b[0], b[1], b[2], b[3], grad);
  }
  return -total / f.weightSum;
}

/** JJ = J^2, IJ = I J per voxel. */
function products(f: FixedWindows, J: Float32Array, JJ: Float32Array, IJ: Float32Array): void {
  const I = f.I;
  for (let v = 0; v < J.length; v++) {
    JJ[v] = J[v] * J[v];
    IJ[v] = I[v] * J[v];
  }
}

/**
 * Σ_c m_c cc_c from the window sums of J, and with `coef` the gradient's per-window coefficients
 * m a, m a Ī, m b, m b J̄ (zero where m = 0) written into coef[0..3].
 */
function windowTerms(
  f: FixedWindows,
  sJ: Float64Array,
  sJJ: Float64Array,
  sIJ: Float64Array,
  coef: Float64Array[] | null,
): number {
  const w = f.weight;
  // (the window sums read once: they are getters, made when first read)
  const fn = f.n;
  const fsI = f.sI;
  const fsII = f.sII;
  const [A, AI, B, BJ] = coef ?? [];
  let total = 0;
  for (let c = 0; c < sJ.length; c++) {
    const m = w ? w[c] : 1;
    if (m === 0) {
      if (A) A[c] = AI[c] = B[c] = BJ[c] = 0;
      continue;
    }
    const n = fn[c];
    const cross = sIJ[c] - (fsI[c] * sJ[c]) / n;
    const varI = fsII[c] - (fsI[c] * fsI[c]) / n;
    const varJ = sJJ[c] - (sJ[c] * sJ[c]) / n;
    const vI = varI + f.eps;
    const D = vI * (varJ + f.eps);
    total += (m * cross * cross) / D;
    if (A) {
      const a = (m * 2 * cross) / D;
      const b = (m * cross * cross * vI) / (D * D);
      A[c] = a;
      AI[c] = (a * fsI[c]) / n;
      B[c] = b;
      BJ[c] = (b * sJ[c]) / n;
    }
  }
  return total;
}

/** ∂loss/∂J from the box sums of the per-window coefficients (see the header). */
function gradientFrom(
  f: FixedWindows,
  J: Float32Array,
  bA: Float64Array,
  bAI: Float64Array,
  bB: Float64Array,
  bBJ: Float64Array,
  grad: Float64Array,
): void {
  const I = f.I;
  const s = -1 / f.weightSum;
  for (let x = 0; x < J.length; x++) grad[x] = s * (I[x] * bA[x] - bAI[x] - 2 * J[x] * bB[x] + 2 * bBJ[x]);
}
