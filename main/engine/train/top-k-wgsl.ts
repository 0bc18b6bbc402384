/**
 * Top k of each row of a [rows, n] float32 matrix on tfjs' WebGPU backend in one WGSL dispatch (one
 * workgroup a row): a radix select of the k-th largest value (4 rounds of an 8-bit histogram over the
 * row's order-preserving integer keys), the k winners written in index order (those equal to the k-th
 * value: the lowest indices first), then sorted best first by a bitonic sort in the output row. tfjs'
 * own TopK runs a bitonic sort of the whole row as one dispatch per merge step: 772 dispatches an
 * iteration of SAM training (8 rankings of 100 queries x 147,456 or 576 candidates), 88 ms of the
 * H200's kernel time and a third of all the iteration's dispatches.
 *
 * Same answer as tf.topk(x, k, sorted = true): values descending, equal values by ascending index
 * (-0 ranks below +0 here, the only difference). Other backends: tf.topk itself.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { runWebgpuProgram } from '../compute/run-webgpu-program.ts';

const THREADS = 256;

class TopKRowsProgram implements WebGPUProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  // one workgroup per row, on y (main() without the flat index)
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [THREADS, 1, 1];
  uniforms = 'n : i32, k : i32, k2 : i32, within : f32, rows : i32,';

  /**
   * masked: candidate i of row r counts as -Infinity when |qw[r] - cw[i]|^2 < within (world positions,
   * 3 each). withValues: the output is [2 * rows, k2], the indices then the bits of their (unmasked)
   * values, x[row, index] (0 for padding).
   */
  constructor(
    rows: number,
    k2: number,
    private readonly masked: boolean,
    private readonly withValues = false,
  ) {
    this.outputShape = [withValues ? 2 * rows : rows, k2];
    this.dispatch = [1, rows, 1];
    this.variableNames = masked ? ['x', 'qw', 'cw'] : ['x'];
    this.shaderKey = (masked ? 'samTopKRowsMasked' : 'samTopKRows') + (withValues ? 'Values' : '');
  }

  getUserCode(): string {
    const value = this.masked
      ? `
fn valueAt(row : i32, base : i32, i : i32) -> f32 {
  let d = vec3<f32>(qw[3 * row] - cw[3 * i], qw[3 * row + 1] - cw[3 * i + 1], qw[3 * row + 2] - cw[3 * i + 2]);
  // -Infinity (a var: a constant's bitcast to -inf is refused by the shader compiler)
  var minusInf = 0xff800000u;
  if (dot(d, d) < uniforms.within) { return bitcast<f32>(minusInf); }
  return x[base + i];
}`
      : `
fn valueAt(row : i32, base : i32, i : i32) -> f32 { return x[base + i]; }`;
    return `${value}

var<workgroup> hist : array<atomic<u32>, ${THREADS}>;
var<workgroup> gtBefore : array<u32, ${THREADS}>;
var<workgroup> eqBefore : array<u32, ${THREADS}>;
var<workgroup> selState : vec4<u32>;

// order-preserving: a larger float has a larger key
fn keyOf(v : f32) -> u32 {
  let b = bitcast<u32>(v);
  if ((b & 0x80000000u) != 0u) { return ~b; }
  return b | 0x80000000u;
}

// candidate p ranks before q: larger value, or the same value and a lower index; -1 (padding) last
fn ranksBefore(p : i32, q : i32, row : i32, base : i32) -> bool {
  if (q < 0) { return p >= 0; }
  if (p < 0) { return false; }
  let kp = keyOf(valueAt(row, base, p));
  let kq = keyOf(valueAt(row, base, q));
  return kp > kq || (kp == kq && p < q);
}

fn main() {
  let row = i32(workgroupId.y);
  let t = localIndex;
  let n = uniforms.n;
  let base = row * n;
  let out = row * uniforms.k2;
  // radix select, most significant byte first: prefix = the k-th largest key's leading bytes,
  // remain = how many of the keys with that prefix are still to take
  var prefix = 0u;
  var mask = 0u;
  var remain = u32(uniforms.k);
  for (var shift = 24u; ; shift -= 8u) {
    atomicStore(&hist[t], 0u);
    workgroupBarrier();
    for (var i = i32(t); i < n; i += ${THREADS}) {
      let key = keyOf(valueAt(row, base, i));
      if ((key & mask) == prefix) { atomicAdd(&hist[(key >> shift) & 255u], 1u); }
    }
    workgroupBarrier();
    if (t == 0u) {
      var above = 0u;
      var d = 255u;
      loop {
        let c = atomicLoad(&hist[d]);
        if (above + c >= remain || d == 0u) { break; }
        above += c;
        d -= 1u;
      }
      selState = vec4<u32>(prefix | (d << shift), remain - above, 0u, 0u);
    }
    workgroupBarrier();
    prefix = selState.x;
    remain = selState.y;
    mask = mask | (255u << shift);
    workgroupBarrier();
    if (shift == 0u) { break; }
  }
  // prefix is now the k-th largest key: take every larger key and the first 'remain' equal ones, in
  // index order (each thread a contiguous chunk; exclusive prefix sums of the chunks' counts)
  let chunk = (n + ${THREADS - 1}) / ${THREADS};
  let lo = min(i32(t) * chunk, n);
  let hi = min(lo + chunk, n);
  var gt = 0u;
  var eq = 0u;
  for (var i = lo; i < hi; i++) {
    let key = keyOf(valueAt(row, base, i));
    if (key > prefix) { gt++; } else if (key == prefix) { eq++; }
  }
  gtBefore[t] = gt;
  eqBefore[t] = eq;
  workgroupBarrier();
  if (t == 0u) {
    var sg = 0u;
    var se = 0u;
    for (var j = 0u; j < ${THREADS}u; j++) {
      let g = gtBefore[j];
      let e = eqBefore[j];
      gtBefore[j] = sg;
      eqBefore[j] = se;
      sg += g;
      se += e;
    }
    selState.z = sg;
  }
  workgroupBarrier();
  let allGt = selState.z;
  var pg = gtBefore[t];
  var pe = eqBefore[t];
  for (var i = lo; i < hi; i++) {
    let key = keyOf(valueAt(row, base, i));
    if (key > prefix) {
      result[out + i32(pg)] = i;
      pg++;
    } else if (key == prefix) {
      if (pe < remain) { result[out + i32(allGt + pe)] = i; }
      pe++;
    }
  }
  for (var i = uniforms.k + i32(t); i < uniforms.k2; i += ${THREADS}) { result[out + i] = -1; }
  storageBarrier();
  // bitonic sort of the row's k2 slots, best first
  let half = u32(uniforms.k2) / 2u;
  for (var size = 2u; size <= u32(uniforms.k2); size <<= 1u) {
    for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
      for (var i = t; i < half; i += ${THREADS}u) {
        let a = 2u * stride * (i / stride) + (i % stride);
        let b = a + stride;
        let ia = result[out + i32(a)];
        let ib = result[out + i32(b)];
        let bestFirst = (a & size) == 0u;
        if (select(ranksBefore(ia, ib, row, base), ranksBefore(ib, ia, row, base), bestFirst)) {
          result[out + i32(a)] = ib;
          result[out + i32(b)] = ia;
        }
      }
      storageBarrier();
    }
  }${
    this.withValues
      ? `
  // the values of the sorted slots (their bits), after all rows' indices
  let vOut = uniforms.rows * uniforms.k2 + out;
  for (var i = i32(t); i < uniforms.k2; i += ${THREADS}) {
    let idx = result[out + i];
    result[vOut + i] = select(0, bitcast<i32>(x[base + max(idx, 0)]), idx >= 0);
  }`
      : ''
  }
}`;
  }
}

const nextPow2 = (v: number) => 2 ** Math.ceil(Math.log2(Math.max(1, v)));

/** Candidates to leave out of each row's ranking: those within sqrt(within) mm of the row's point. */
export interface RadiusMask {
  /** World point of each row, rows * 3 (centred near the candidates: float32 distances). */
  rowWorld: Float32Array;
  /** World position of each candidate, n * 3. */
  candidateWorld: Float32Array;
  /** Squared distance (mm^2) below which a candidate is out. */
  within: number;
}

/** Whether the WGSL program takes this matrix (else tf.topk / tf ops). */
const wgslApplies = (x: tf.Tensor2D) =>
  tf.getBackend() === 'webgpu' && x.dtype === 'float32' && x.shape[0] > 0 && x.shape[0] <= 65535;

/** The program's output: [rows, k2] indices (k2 = k rounded up to a power of two; -1 past k), then with values their bits. */
function topkProgramWgsl(x: tf.Tensor2D, k: number, mask: RadiusMask | undefined, withValues: boolean): tf.Tensor2D {
  const [rows, n] = x.shape;
  return tf.tidy(() => {
    const k2 = nextPow2(k);
    const extra = mask ? [tf.tensor1d(mask.rowWorld), tf.tensor1d(mask.candidateWorld)] : [];
    return runWebgpuProgram(
      new TopKRowsProgram(rows, k2, !!mask, withValues),
      [x, ...extra],
      [
        { type: 'int32', data: [n] },
        { type: 'int32', data: [k] },
        { type: 'int32', data: [k2] },
        { type: 'float32', data: [mask?.within ?? 0] },
        { type: 'int32', data: [rows] },
      ],
      'int32',
    ) as tf.Tensor2D;
  });
}

/** The program's k best indices of each row (mask: see RadiusMask), [rows, k]. */
function topkIndicesWgsl(x: tf.Tensor2D, k: number, mask?: RadiusMask): tf.Tensor2D {
  const [rows] = x.shape;
  const all = topkProgramWgsl(x, k, mask, false);
  if (all.shape[1] === k) return all;
  try {
    return tf.slice(all, [0, 0], [rows, k]) as tf.Tensor2D;
  } finally {
    all.dispose();
  }
}

/**
 * topkRowsMaskedWgsl's indices and their values (the unmasked scores) in one dispatch and one int32
 * tensor, for reading back: `packed` [2 * rows, stride], row r's k indices (best first) at
 * r * stride, their values' float32 bits at (rows + r) * stride; stride = k rounded up to a power of
 * two (slots past k: index -1, value bits 0). Null where topkRowsMaskedWgsl is.
 */
export function topkRowsMaskedPackedWgsl(
  x: tf.Tensor2D,
  k: number,
  mask: RadiusMask,
): { packed: tf.Tensor2D; stride: number } | null {
  if (!wgslApplies(x)) return null;
  checkK(x, k);
  return { packed: topkProgramWgsl(x, k, mask, true), stride: nextPow2(k) };
}

function checkK(x: tf.Tensor2D, k: number): void {
  const n = x.shape[1];
  if (!Number.isInteger(k) || k < 1 || k > n) throw new RangeError(`topkRows: k = ${k} for rows of ${n}`);
}

/**
 * The WGSL top-k on WebGPU with the radius mask applied as the row is read (no masked copy of the
 * matrix: the mining's distance product, comparison and selection were four dispatches). Indices
 * as topkRows of the masked matrix; values are the unmasked scores (a masked candidate only appears
 * when a row has fewer than k others, last). Null on other backends (the caller masks with tf ops).
 */
export function topkRowsMaskedWgsl(x: tf.Tensor2D, k: number, mask: RadiusMask): tf.Tensor2D | null {
  if (!wgslApplies(x)) return null;
  checkK(x, k);
  return topkIndicesWgsl(x, k, mask);
}

/** tf.topk(x, k, true).indices of a [rows, n] matrix, by the WGSL program on WebGPU (no values gathered). */
export function topkRowIndices(x: tf.Tensor2D, k: number): tf.Tensor2D {
  checkK(x, k);
  if (!wgslApplies(x)) return tf.tidy(() => tf.topk(x, k, true).indices as tf.Tensor2D);
  return topkIndicesWgsl(x, k);
}

/** tf.topk(x, k, true) of a [rows, n] matrix, by the WGSL program on WebGPU (see the header). */
export function topkRows(x: tf.Tensor2D, k: number): { values: tf.Tensor2D; indices: tf.Tensor2D } {
  checkK(x, k);
  if (!wgslApplies(x)) {
    const r = tf.topk(x, k, true);
    return { values: r.values as tf.Tensor2D, indices: r.indices as tf.Tensor2D };
  }
  const indices = topkIndicesWgsl(x, k);
  return { values: tf.gather(x, indices, 1, 1) as tf.Tensor2D, indices };
}
