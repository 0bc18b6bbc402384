/**
 * The InfoNCE selections of one embedding level (infonce.ts) on tfjs' WebGPU backend in two WGSL
 * dispatches: its loss and its gradient at once. With tfjs ops each selection took about 37
 * dispatches (gathers, batched products, log-sum-exp, softmax, concatenations, the scatter), 296 of
 * the ~800 of an iteration of SAM training at 2 pairs; training on a GPU is bound by the CPU's work
 * of launching programs, not by their arithmetic.
 *
 *  1. One workgroup per query q (row qRow of the [rows, C] embeddings) over its candidates k_0..k_n
 *     (k_0 the positive key, then the per-query negatives that exist, then the shared ones):
 *     logits l_j = q.k_j / tau, lse = log sum_j exp l_j, loss = scale (lse - l_0);
 *     coef_j = d loss / d (q.k_j) = scale (softmax_j - [j = 0]) / tau; dq = sum_j coef_j k_j.
 *     Written into one output: [scaled loss per query | dq per query (C each) | coef per candidate].
 *  2. One workgroup per embedding row r: d loss / d row_r = the sum over r's entries, each either a
 *     query's dq (r is that query's row) or coef_j q (r is candidate j of query q); the entries come
 *     from the host (the rows are host arrays), as a row-sorted list (CSR), so the sum has a fixed
 *     order (tfjs' scatterND adds with atomics) and rows without entries get exact zeros.
 * A missing negative (-1) is left out of the candidates: what its -1e9 logit gives with tfjs ops
 * (exp of it is 0 in float32). Both equal the tfjs-ops path (test/unit/train-infonce-wgsl.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { foldedDispatch, runWebgpuProgram } from '../compute/run-webgpu-program.ts';
import type { DirectionSelection } from './infonce.ts';
import { workgroupReduceWgsl } from '../compute/wgsl-workgroup-reduce.ts';

const THREADS = 128;

/** tfjs-webgpu names the uniform block's fields after the program's; these stay distinct in lower case. */
class QueryProgram implements WebGPUProgram {
  variableNames = ['emb', 'qRow', 'candStart', 'candRow', 'qScale'];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [THREADS, 1, 1];
  uniforms = 'nq : i32, invTau : f32,';

  constructor(
    nq: number,
    candidates: number,
    private readonly c: number,
  ) {
    this.outputShape = [nq + nq * c + candidates];
    // queries past WebGPU's 65,535 workgroups a dimension go on y
    this.dispatch = foldedDispatch(nq);
    this.shaderKey = `samInfoNceQuery_${c}`;
  }

  getUserCode(): string {
    const C = this.c;
    return `
var<workgroup> qv : array<f32, ${C}>;
${workgroupReduceWgsl('reduceMax', THREADS, 'max(a, b)')}
${workgroupReduceWgsl('reduceSum', THREADS, 'a + b')}

fn main() {
  let t = localIndex;
  let nq = uniforms.nq;
  // a workgroup past the last query (the y row's remainder) works on no candidates and writes
  // nothing; it cannot return early: the barriers below must be in uniform control flow
  let qw = i32(workgroupId.x + workgroupId.y * numWorkgroups.x);
  let valid = qw < nq;
  let qi = min(qw, nq - 1);
  let row = qRow[qi];
  for (var c = i32(t); c < ${C}; c += ${THREADS}) { qv[c] = emb[row * ${C} + c]; }
  workgroupBarrier();
  let c0 = candStart[qi];
  let n = select(0, candStart[qi + 1] - c0, valid);
  let coefBase = nq + nq * ${C} + c0;
  // logits, kept in the coef slots until the softmax
  var m = -3.0e38;
  for (var j = i32(t); j < n; j += ${THREADS}) {
    let k = candRow[c0 + j] * ${C};
    var d = 0.0;
    for (var c = 0; c < ${C}; c++) { d += qv[c] * emb[k + c]; }
    let l = d * uniforms.invTau;
    result[coefBase + j] = l;
    m = max(m, l);
  }
  m = reduceMax(m, t);
  var s = 0.0;
  for (var j = i32(t); j < n; j += ${THREADS}) { s += exp(result[coefBase + j] - m); }
  let lse = m + log(reduceSum(s, t));
  let scale = qScale[qi];
  // thread 0 wrote candidate 0's logit itself
  if (t == 0u && valid) { result[qi] = scale * (lse - result[coefBase]); }
  for (var j = i32(t); j < n; j += ${THREADS}) {
    let p = exp(result[coefBase + j] - lse);
    result[coefBase + j] = scale * (p - select(0.0, 1.0, j == 0)) * uniforms.invTau;
  }
  storageBarrier();
  workgroupBarrier();
  if (valid) {
    for (var c = i32(t); c < ${C}; c += ${THREADS}) {
      var g = 0.0;
      for (var j = 0; j < n; j++) { g += result[coefBase + j] * emb[candRow[c0 + j] * ${C} + c]; }
      result[nq + qi * ${C} + c] = g;
    }
  }
}`;
  }
}

class RowGradProgram implements WebGPUProgram {
  variableNames = ['emb', 'packed', 'qRow', 'rowStart', 'ent'];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [THREADS, 1, 1];
  uniforms = 'nq : i32, nrows : i32,';

  constructor(
    rows: number,
    private readonly c: number,
  ) {
    this.outputShape = [rows, c];
    this.dispatch = foldedDispatch(rows);
    this.shaderKey = `samInfoNceRowGrad_${c}`;
  }

  getUserCode(): string {
    const C = this.c;
    return `
fn main() {
  let r = i32(workgroupId.x + workgroupId.y * numWorkgroups.x);
  if (r >= uniforms.nrows) { return; }
  let t = localIndex;
  let nq = uniforms.nq;
  let e0 = rowStart[r];
  let e1 = rowStart[r + 1];
  for (var c = i32(t); c < ${C}; c += ${THREADS}) {
    var g = 0.0;
    for (var e = e0; e < e1; e++) {
      let a = ent[2 * e];
      let q = ent[2 * e + 1];
      if (a < 0) {
        g += packed[nq + q * ${C} + c];
      } else {
        g += packed[nq + nq * ${C} + a] * emb[qRow[q] * ${C} + c];
      }
    }
    result[r * ${C} + c] = g;
  }
}`;
  }
}

class TermSumProgram implements WebGPUProgram {
  variableNames = ['lossL', 'lossG'];
  outputShape = [5];
  shaderKey = 'samInfoNceTerms';
  // not flat: main() without an index
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number] = [1, 1, 1];
  workgroupSize: [number, number, number] = [1, 1, 1];
  uniforms = 'splitL : i32, endL : i32, splitG : i32, endG : i32,';

  getUserCode(): string {
    return `
fn main() {
  var a = 0.0;
  for (var i = 0; i < uniforms.splitL; i++) { a += lossL[i]; }
  var b = 0.0;
  for (var i = uniforms.splitL; i < uniforms.endL; i++) { b += lossL[i]; }
  var c = 0.0;
  for (var i = 0; i < uniforms.splitG; i++) { c += lossG[i]; }
  var d = 0.0;
  for (var i = uniforms.splitG; i < uniforms.endG; i++) { d += lossG[i]; }
  result[0] = a;
  result[1] = b;
  result[2] = c;
  result[3] = d;
  result[4] = ((a + b) + c) + d;
}`;
  }
}

/** One selection of a level, with d total / d (its summed loss) (1 / the term's positives). */
export interface LevelItem {
  sel: DirectionSelection;
  scale: number;
}

export interface LevelLossAndGrad {
  /** [scaled loss per query | ...] (only the first `queries` values are losses). */
  packed: tf.Tensor1D;
  queries: number;
  /** Queries of each item, in order. */
  perItem: number[];
  /** d (sum of the items' scaled losses) / d embeddings, [rows, C]. */
  grad: tf.Tensor2D;
}

/** The items' losses (each query's, scaled) and the gradient of their sum, on [rows, C] embeddings. */
export function levelLossAndGradWgsl(emb: tf.Tensor2D, items: LevelItem[], tau: number): LevelLossAndGrad {
  const [rows, c] = emb.shape;
  const perItem = items.map((it) => it.sel.query.length);
  const nq = perItem.reduce((a, b) => a + b, 0);
  if (nq === 0) return { packed: tf.zeros([1]), queries: 0, perItem, grad: tf.zeros([rows, c]) };
  // candidates of each query: key, its existing negatives, the selection's shared rows
  let total = 0;
  for (const { sel } of items) {
    let valid = 0;
    for (const r of sel.negatives) if (r >= 0) valid++;
    total += sel.query.length * (1 + sel.shared.length) + valid;
  }
  const qRow = new Int32Array(nq);
  const qScale = new Float32Array(nq);
  const candStart = new Int32Array(nq + 1);
  const candRow = new Int32Array(total);
  let qi = 0;
  let ci = 0;
  for (const { sel, scale } of items) {
    const p = sel.perQuery;
    for (let j = 0; j < sel.query.length; j++, qi++) {
      qRow[qi] = sel.query[j];
      qScale[qi] = scale;
      candStart[qi] = ci;
      candRow[ci++] = sel.key[j];
      for (let n = j * p; n < (j + 1) * p; n++) if (sel.negatives[n] >= 0) candRow[ci++] = sel.negatives[n];
      candRow.set(sel.shared, ci);
      ci += sel.shared.length;
    }
  }
  candStart[nq] = ci;
  // row-sorted entries (counting sort): each query's own row (-1, q) and each candidate's (coef, q)
  const rowStart = new Int32Array(rows + 1);
  for (let q = 0; q < nq; q++) {
    rowStart[qRow[q] + 1]++;
    for (let j = candStart[q]; j < candStart[q + 1]; j++) rowStart[candRow[j] + 1]++;
  }
  for (let r = 0; r < rows; r++) rowStart[r + 1] += rowStart[r];
  const fill = rowStart.slice(0, rows);
  const ent = new Int32Array(2 * (nq + total));
  for (let q = 0; q < nq; q++) {
    let e = fill[qRow[q]]++;
    ent[2 * e] = -1;
    ent[2 * e + 1] = q;
    for (let j = candStart[q]; j < candStart[q + 1]; j++) {
      e = fill[candRow[j]]++;
      ent[2 * e] = j;
      ent[2 * e + 1] = q;
    }
  }
  return tf.tidy(() => {
    const qRowT = tf.tensor1d(qRow, 'int32');
    const packed = runWebgpuProgram(
      new QueryProgram(nq, total, c),
      [emb, qRowT, tf.tensor1d(candStart, 'int32'), tf.tensor1d(candRow, 'int32'), tf.tensor1d(qScale)],
      [
        { type: 'int32', data: [nq] },
        { type: 'float32', data: [1 / tau] },
      ],
    ) as tf.Tensor1D;
    const grad = runWebgpuProgram(
      new RowGradProgram(rows, c),
      [emb, packed, qRowT, tf.tensor1d(rowStart, 'int32'), tf.tensor1d(ent, 'int32')],
      [
        { type: 'int32', data: [nq] },
        { type: 'int32', data: [rows] },
      ],
    ) as tf.Tensor2D;
    return { packed, queries: nq, perItem, grad };
  });
}

/**
 * The four terms and their total as one [5] tensor (localAB, localBA, globalAB, globalBA, total)
 * from the two levels' per-query losses; each level's items are its AB selections, then its BA ones.
 */
export function termSumsWgsl(local: LevelLossAndGrad, global: LevelLossAndGrad, abItems: number): tf.Tensor1D {
  const split = (l: LevelLossAndGrad) => l.perItem.slice(0, abItems).reduce((a, b) => a + b, 0);
  return runWebgpuProgram(
    new TermSumProgram(),
    [local.packed, global.packed],
    [split(local), local.queries, split(global), global.queries].map((v) => ({ type: 'int32', data: [v] })),
  ) as tf.Tensor1D;
}
