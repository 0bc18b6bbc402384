/**
 * Box sums over a 3D grid (i fastest): out(x) = Σ src(y) over |y - x| <= r per axis, windows truncated at
 * the grid's faces (so y is in the window of x exactly when x is in the window of y: the adjoint of the
 * box sum is itself, which the local-NCC gradient relies on). Separable running sums, float64.
 */
export function boxSum(
  src: ArrayLike<number>,
  size: readonly number[],
  r: number,
  out = new Float64Array(src.length),
): Float64Array {
  const [ni, nj, nk] = size;
  const tmp = new Float64Array(src.length);
  pass(src, tmp, ni, 1, nj * nk, (line) => line * ni, r);
  pass(tmp, out, nj, ni, ni * nk, (line) => (line % ni) + Math.floor(line / ni) * ni * nj, r);
  tmp.set(out);
  pass(tmp, out, nk, ni * nj, ni * nj, (line) => line, r);
  return out;
}

/** Running box sum of radius r along `lines` lines of length n with the given stride. */
function pass(
  src: ArrayLike<number>,
  dst: Float64Array,
  n: number,
  stride: number,
  lines: number,
  start: (line: number) => number,
  r: number,
): void {
  for (let line = 0; line < lines; line++) {
    const s0 = start(line);
    let acc = 0;
    for (let t = 0; t < Math.min(r, n); t++) acc += src[s0 + t * stride];
    for (let t = 0; t < n; t++) {
      if (t + r < n) acc += src[s0 + (t + r) * stride];
      if (t - r - 1 >= 0) acc -= src[s0 + (t - r - 1) * stride];
      dst[s0 + t * stride] = acc;
    }
  }
}

/** Box mean of radius r: the box sum divided by the truncated window's voxel count (float32 out). */
export function boxMean(data: Float32Array, size: readonly number[], r: number): Float32Array {
  const s = boxSum(data, size, r);
  const c = boxSum(new Float32Array(data.length).fill(1), size, r);
  const out = new Float32Array(data.length);
  for (let q = 0; q < out.length; q++) out[q] = s[q] / c[q];
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
