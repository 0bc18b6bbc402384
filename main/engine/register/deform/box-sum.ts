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
