/**
 * Dense dot products between two sets of row vectors, out = A Bᵀ (A: m x k, B: n x k, row-major,
 * float32): the similarity of many template embeddings with every voxel of a query grid.
 *
 * Backends: ONNX Runtime's MatMul (onnxruntime-node, MLAS kernels, ~20x the JS speed) when it loads,
 * from a one-node model built here in memory; else a register-blocked JS kernel. 'auto' (default)
 * tries ONNX Runtime once and falls back to JS for good, keeping the reason (dotBackendStatus()).
 */
import { importOnnxRuntime } from '../compute/onnx-runtime.ts';

export type DotBackend = 'auto' | 'onnxruntime' | 'js';

export interface RowMatrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

interface OrtLike {
  InferenceSession: { create(model: Uint8Array, o?: object): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => unknown;
}
interface OrtSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, { data: unknown }>>;
}

let ort: Promise<{ ort: OrtLike; session: OrtSession } | string> | undefined;

/** A one-node ONNX model Y = MatMul(A [m, k], B [k, n]), encoded by hand (protobuf). */
function matMulModel(): Uint8Array {
  const enc = new TextEncoder();
  const varint = (n: number) => {
    const b: number[] = [];
    for (; n > 127; n = Math.floor(n / 128)) b.push((n & 127) | 128);
    b.push(n);
    return b;
  };
  const len = (no: number, p: number[]) => [...varint(no * 8 + 2), ...varint(p.length), ...p];
  const str = (no: number, s: string) => len(no, [...enc.encode(s)]);
  const int = (no: number, v: number) => [...varint(no * 8), ...varint(v)];
  // ValueInfoProto{name, type: TypeProto{tensor_type{elem_type FLOAT, shape{dim{dim_param}...}}}}
  const value = (name: string, dims: string[]) => [
    ...str(1, name),
    ...len(
      2,
      len(1, [
        ...int(1, 1),
        ...len(
          2,
          dims.flatMap((d) => len(1, str(2, d))),
        ),
      ]),
    ),
  ];
  const node = [...str(1, 'A'), ...str(1, 'B'), ...str(2, 'Y'), ...str(4, 'MatMul')];
  const graph = [
    ...len(1, node),
    ...str(2, 'dot'),
    ...len(11, value('A', ['m', 'k'])),
    ...len(11, value('B', ['k', 'n'])),
    ...len(12, value('Y', ['m', 'n'])),
  ];
  return new Uint8Array([...int(1, 8), ...len(8, [...str(1, ''), ...int(2, 13)]), ...len(7, graph)]);
}

function loadOrt() {
  ort ??= (async () => {
    try {
      const o = await importOnnxRuntime<OrtLike>();
      return { ort: o, session: await o.InferenceSession.create(matMulModel()) };
    } catch (e) {
      return `onnxruntime-node unavailable (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`;
    }
  })();
  return ort;
}

/** Which backend 'auto' uses, and why ONNX Runtime is not used when it is not. */
export async function dotBackendStatus(): Promise<{ backend: 'onnxruntime' | 'js'; reason?: string }> {
  const r = await loadOrt();
  return typeof r === 'string' ? { backend: 'js', reason: r } : { backend: 'onnxruntime' };
}

const transposed = new WeakMap<Float32Array, Float32Array>();

/** out (m x n) = A Bᵀ. */
export async function dotRows(a: RowMatrix, b: RowMatrix, backend: DotBackend = 'auto'): Promise<Float32Array> {
  if (a.cols !== b.cols) throw new RangeError(`dotRows: ${a.cols} vs ${b.cols} columns`);
  if (a.rows === 0 || b.rows === 0) return new Float32Array(a.rows * b.rows);
  if (backend !== 'js') {
    const r = await loadOrt();
    if (typeof r === 'string') {
      if (backend === 'onnxruntime') throw new Error(r);
    } else {
      let bt = transposed.get(b.data);
      if (!bt) {
        bt = new Float32Array(b.rows * b.cols);
        for (let i = 0; i < b.rows; i++) for (let c = 0; c < b.cols; c++) bt[c * b.rows + i] = b.data[i * b.cols + c];
        transposed.set(b.data, bt);
      }
      const out = await r.session.run({
        A: new r.ort.Tensor('float32', a.data.subarray(0, a.rows * a.cols), [a.rows, a.cols]),
        B: new r.ort.Tensor('float32', bt, [b.cols, b.rows]),
      });
      return out.Y.data as Float32Array;
    }
  }
  return dotRowsJs(a, b);
}

/** The JS kernel: 2 rows of A x 4 rows of B per step (8 accumulators). */
export function dotRowsJs(a: RowMatrix, b: RowMatrix): Float32Array {
  const { rows: m, cols: k } = a;
  const n = b.rows;
  const A = a.data;
  const B = b.data;
  const out = new Float32Array(m * n);
  const dot = (p: number, q: number) => {
    let s = 0;
    for (let c = 0; c < k; c++) s += A[p * k + c] * B[q * k + c];
    return s;
  };
  const m2 = m - (m % 2);
  const n4 = n - (n % 4);
  for (let p = 0; p < m2; p += 2) {
    const a0 = p * k;
    const a1 = a0 + k;
    for (let q = 0; q < n4; q += 4) {
      const b0 = q * k;
      const b1 = b0 + k;
      const b2 = b1 + k;
      const b3 = b2 + k;
      // prettier-ignore
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      for (let c = 0; c < k; c++) {
        const x0 = A[a0 + c];
        const x1 = A[a1 + c];
        const y0 = B[b0 + c];
        const y1 = B[b1 + c];
        const y2 = B[b2 + c];
        const y3 = B[b3 + c];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s02 += x0 * y2;
        s03 += x0 * y3;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s12 += x1 * y2;
        s13 += x1 * y3;
      }
      const o0 = p * n + q;
      const o1 = o0 + n;
      out[o0] = s00;
      out[o0 + 1] = s01;
      out[o0 + 2] = s02;
      out[o0 + 3] = s03;
      out[o1] = s10;
      out[o1 + 1] = s11;
      out[o1 + 2] = s12;
      out[o1 + 3] = s13;
    }
    for (let q = n4; q < n; q++) {
      out[p * n + q] = dot(p, q);
      out[(p + 1) * n + q] = dot(p + 1, q);
    }
  }
  for (let p = m2; p < m; p++) for (let q = 0; q < n; q++) out[p * n + q] = dot(p, q);
  return out;
}
