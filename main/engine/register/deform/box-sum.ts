/**
 * Box sums over a 3D grid (i fastest): out(x) = Σ src(y) over |y - x| <= r per axis, windows truncated at
 * the grid's faces (so y is in the window of x exactly when x is in the window of y: the adjoint of the
 * box sum is itself, which the local-NCC gradient relies on). Separable running sums, float64, into
 * `out` when given (e.g. an array on shared memory).
 */
import type { BoxSumThreads } from './box-sum-threads.ts';

export function boxSum(
  src: ArrayLike<number>,
  size: readonly number[],
  r: number,
  out: Float64Array<ArrayBufferLike> = new Float64Array(src.length),
): Float64Array {
  const [ni, nj, nk] = size;
  if (out.length !== src.length) throw new Error(`boxSum: ${out.length} outputs for ${src.length} values`);
  const a = out as Float64Array;
  const b = new Float64Array(src.length);
  passRows(src, a, ni, nj * nk, r);
  // along j and k the window slides over whole rows (i contiguous): sequential access, and per
  // element the same additions in the same order as a running sum along each line
  passStrided(a, b, ni, nj, nk, r);
  passStrided(b, a, ni * nj, nk, 1, r);
  return a;
}

/** Running box sum of radius r along each of `lines` contiguous lines of length n. */
function passRows(src: ArrayLike<number>, dst: Float64Array, n: number, lines: number, r: number): void {
  for (let line = 0, s0 = 0; line < lines; line++, s0 += n) {
    let acc = 0;
    for (let t = 0; t < Math.min(r, n); t++) acc += src[s0 + t];
    for (let t = 0; t < n; t++) {
      if (t + r < n) acc += src[s0 + t + r];
      if (t - r - 1 >= 0) acc -= src[s0 + t - r - 1];
      dst[s0 + t] = acc;
    }
  }
}

/**
 * Running box sum of radius r along an axis of length n whose elements are `inner` apart, in `blocks`
 * consecutive blocks of n * inner elements: the running sums of all `inner` lines advance together.
 */
function passStrided(src: Float64Array, dst: Float64Array, inner: number, n: number, blocks: number, r: number): void {
  const acc = new Float64Array(inner);
  for (let b = 0, b0 = 0; b < blocks; b++, b0 += n * inner) {
    acc.fill(0);
    for (let t = 0; t < Math.min(r, n); t++) {
      const o = b0 + t * inner;
      for (let q = 0; q < inner; q++) acc[q] += src[o + q];
    }
    for (let t = 0; t < n; t++) {
      if (t + r < n) {
        const o = b0 + (t + r) * inner;
        for (let q = 0; q < inner; q++) acc[q] += src[o + q];
      }
      if (t - r - 1 >= 0) {
        const o = b0 + (t - r - 1) * inner;
        for (let q = 0; q < inner; q++) acc[q] -= src[o + q];
      }
      dst.set(acc, b0 + t * inner);
    }
  }
}

/** Voxels of the truncated window of radius r around position t on an axis of length n. */
function windowWidth(t: number, n: number, r: number): number {
  return Math.min(n - 1, t + r) - Math.max(0, t - r) + 1;
}

/** Box mean of radius r: the box sum divided by the truncated window's voxel count (float32 out). */
export function boxMean(data: Float32Array, size: readonly number[], r: number): Float32Array {
  return windowMeans(boxSum(data, size, r), size, r, new Float32Array(data.length));
}

/**
 * boxMean's values where `need` is nonzero (0 elsewhere), computing only what those need: every row's
 * running sum along i, kept at the i that some needed voxel has; the running sums along j of those
 * lines, kept at the (i, j) columns that hold a needed voxel; the running sums along k of those
 * columns; the divisions at the needed voxels. The partial sums are stored compactly (a fine image on
 * a coarse grid needs a fraction of them). Each line's running sum is the same sequence of additions
 * as in boxSum, so the values equal boxMean's exactly. `radius` may differ per axis (i, j, k): a box of
 * (2ri + 1) x (2rj + 1) x (2rk + 1) voxels.
 */
export function boxMeanWhere(
  data: Float32Array,
  size: readonly number[],
  radius: number | readonly [number, number, number],
  need: Uint8Array,
): Float32Array {
  const [ni, nj, nk] = size;
  // a radius per axis (i, j, k), or one for all three
  const [ri, rj, rk] = typeof radius === 'number' ? [radius, radius, radius] : radius;
  const plane = ni * nj;
  // the needed columns (i, j) and the needed i, each numbered in order (-1: not needed)
  const colOf = new Int32Array(plane).fill(-1);
  for (let k = 0, base = 0; k < nk; k++, base += plane)
    for (let c = 0; c < plane; c++) if (need[base + c] !== 0) colOf[c] = 0;
  const iOf = new Int32Array(ni).fill(-1);
  for (let c = 0; c < plane; c++) if (colOf[c] === 0) iOf[c % ni] = 0;
  const is: number[] = [];
  for (let i = 0; i < ni; i++) if (iOf[i] === 0) iOf[i] = is.push(i) - 1;
  const cols: number[] = [];
  for (let c = 0; c < plane; c++) if (colOf[c] === 0) colOf[c] = cols.push(c) - 1;
  const nI = is.length;
  const nC = cols.length;
  // along i, every row; kept at the needed i: A[(j + nj k) nI + iOf[i]]
  const A = new Float64Array(nI * nj * nk);
  for (let row = 0, s0 = 0; row < nj * nk; row++, s0 += ni) {
    let acc = 0;
    for (let t = 0; t < Math.min(ri, ni); t++) acc += data[s0 + t];
    const a0 = row * nI;
    for (let t = 0; t < ni; t++) {
      if (t + ri < ni) acc += data[s0 + t + ri];
      if (t - ri - 1 >= 0) acc -= data[s0 + t - ri - 1];
      if (iOf[t] >= 0) A[a0 + iOf[t]] = acc;
    }
  }
  // along j, the needed i's lines, all together (as passStrided); kept at the needed columns:
  // B[k nC + colOf[c]]
  const B = new Float64Array(nC * nk);
  const acc = new Float64Array(nI);
  for (let k = 0; k < nk; k++) {
    const b0 = k * nj * nI;
    acc.fill(0);
    for (let t = 0; t < Math.min(rj, nj); t++) for (let q = 0, o = b0 + t * nI; q < nI; q++) acc[q] += A[o + q];
    for (let t = 0; t < nj; t++) {
      if (t + rj < nj) for (let q = 0, o = b0 + (t + rj) * nI; q < nI; q++) acc[q] += A[o + q];
      if (t - rj - 1 >= 0) for (let q = 0, o = b0 + (t - rj - 1) * nI; q < nI; q++) acc[q] -= A[o + q];
      for (let q = 0; q < nI; q++) {
        const c = colOf[is[q] + ni * t];
        if (c >= 0) B[k * nC + c] = acc[q];
      }
    }
  }
  // along k, the needed columns
  const C = new Float64Array(nC * nk);
  passStrided(B, C, nC, nk, 1, rk);
  const out = new Float32Array(data.length);
  const wi = Float64Array.from({ length: ni }, (_, t) => windowWidth(t, ni, ri));
  const wj = Float64Array.from({ length: nj }, (_, t) => windowWidth(t, nj, rj));
  for (let k = 0; k < nk; k++) {
    const wk = windowWidth(k, nk, rk);
    for (let n = 0; n < nC; n++) {
      const c = cols[n];
      const q = k * plane + c;
      const i = c % ni;
      // boxMean's count wi * (wj * wk): small integers, multiplied exactly in any order
      if (need[q] !== 0) out[q] = C[k * nC + n] / (wi[i] * (wj[(c - i) / ni] * wk));
    }
  }
  return out;
}

/** Box sums divided by their truncated windows' voxel counts, into `out`. */
function windowMeans(s: Float64Array, size: readonly number[], r: number, out: Float32Array): Float32Array {
  const [ni, nj, nk] = size;
  // the count is a product over the axes
  const wi = Float64Array.from({ length: ni }, (_, t) => windowWidth(t, ni, r));
  for (let k = 0, q = 0; k < nk; k++) {
    const wk = windowWidth(k, nk, r);
    for (let j = 0; j < nj; j++) {
      const wjk = windowWidth(j, nj, r) * wk;
      for (let i = 0; i < ni; i++, q++) out[q] = s[q] / (wi[i] * wjk);
    }
  }
  return out;
}

/** Box-smooth each component of a 3-component field (interleaved) in place, radius 1. */
export function smoothField(w: Float32Array, size: readonly number[]): void {
  const N = w.length / 3;
  const comp = new Float32Array(N);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < N; v++) comp[v] = w[3 * v + c];
    const s = boxMean(comp, size, 1);
    for (let v = 0; v < N; v++) w[3 * v + c] = s[v];
  }
}

/** smoothField with the three components' box sums on worker threads: the same numbers. */
export async function smoothFieldOn(threads: BoxSumThreads, w: Float32Array, size: readonly number[]): Promise<void> {
  const N = w.length / 3;
  const comps = [0, 1, 2].map((c) => threads.shared32(`smooth.${c}`, N));
  const sums = [0, 1, 2].map((c) => threads.shared64(`smooth.s${c}`, N));
  for (let c = 0; c < 3; c++) for (let v = 0; v < N; v++) comps[c][v] = w[3 * v + c];
  await threads.sums(comps, sums, size, 1);
  const mean = new Float32Array(N);
  for (let c = 0; c < 3; c++) {
    windowMeans(sums[c], size, 1, mean);
    for (let v = 0; v < N; v++) w[3 * v + c] = mean[v];
  }
}
