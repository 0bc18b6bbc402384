/**
 * The weight gradient of a 3D convolution as a WGSL compute kernel on tfjs' WebGPU backend: an
 * implicit matrix product with split-K.
 *
 *   dW[tap, ci, co] = sum over n of X_tap[n, ci] * dY[n, co]
 *
 * is a GEMM C[M, N] = A^T B with M = kd*kh*kw*Cin rows (row m = (tap, ci)), N = Cout columns and a
 * long reduction over the K = B*Do*Ho*Wo output voxels. A[k, m] is the input at output voxel k
 * shifted by tap(m), strided, and zero outside the volume (tfjs' padding, from
 * backend_util.computeConv3DInfo); it is never materialised: the kernel gathers it as it reads.
 * B[k, co] = dY is read as it lies.
 *
 * Pass 1: workgroup (x, y, z) owns the TM x TN output tile (y, x) and the z-th chunk of K (split-K:
 * every tile gets S chunks, so even the 144 x 16 stem gradient has hundreds of workgroups). Each
 * thread accumulates an RM x RN register block of C as vec4 FMAs, reading A and B as vec4 along Cin
 * and Cout where they are multiples of 4 (threads of a workgroup read neighbouring channels of the
 * same voxel at the same time: coalesced, and broadcast to the threads sharing a row). It writes its
 * partial tile to P [S, M*N]. Pass 2 sums P over S in a fixed order, so the result is deterministic
 * (no float atomics); it costs S*M*N reads, under 1/chunk of pass 1.
 *
 * Two variants of pass 1, same plan otherwise:
 *  - 'direct' (the default on software adapters): 8 x 8 blocks (64 accumulators, 4 vec4 loads per 16 vec4 FMAs), every
 *    thread reads its rows of A and B from the storage buffers itself (the workgroup's threads read
 *    the same voxel's row at the same step, so the caches serve them), no workgroup memory, no
 *    barriers; the output voxel (b, z, y, x) is stepped incrementally, without divisions.
 *  - 'staged' (the default on GPUs): the classic tiled SGEMM: per step of TK = 16 voxels the workgroup stages the A tile
 *    [TK, TM] and the B tile [TK, TN] in workgroup memory (at most 8 KiB), two barriers, 4 x 4
 *    blocks per thread.
 * On lavapipe (Mesa's CPU Vulkan: a workgroup runs on one CPU thread, 8 invocations per SIMD
 * register, and a barrier is a coroutine switch) 'direct' is 2.7-3.7x faster than 'staged' (README,
 * "Training speed and the weight-gradient kernel"). On an H100 'direct' is the register-blocked
 * GEMM that relies on L1 for the operand reuse that 'staged' makes explicit; a warp's loads are
 * coalesced (a 256 B row of dY, 128 B runs of X) and issue ~40 non-FMA instructions per 64 FMAs,
 * so a few TFLOP/s are to be expected from it, an order of magnitude above the built-in kernel's 0.03-0.5, and
 * 'staged' to be at most somewhat faster there. Measured on an H200 (`sam bench-train --backend
 * webgpu`, all layers, 4 patches of 96x96x32): 'direct' 1.14 / 3.74 TFLOP/s (`small` / `paper`),
 * 'staged' 1.38 / 5.23, against the built-in kernel's 0.019 / 0.119.
 *
 * Tile sizes: TN and TM the smallest power of two from 16 to 64 that covers Cout and M (so narrow
 * layers do not pay for empty columns); chunks of at least MIN_CHUNK voxels, as many as bring the
 * workgroups to about TARGET_WORKGROUPS (enough for 132 SMs; on lavapipe 16 to 512 measured the
 * same, as did 128 x 64 and 32 x 64 tiles; 8 x 8 blocks beat 4 x 4, 4 x 8, 8 x 16 and 16 x 16).
 * 'direct' reads the geometry (volume, strides, padding, kernel, channels, chunk) from uniforms, so
 * one pipeline serves every layer with the same tiles and vec4 paths, and divides only while a
 * thread sets up; 'staged' decodes a voxel index per staged element, so there every shape is a WGSL
 * constant (divisions by constants become multiply-shifts; the CPU behind lavapipe has no vector
 * integer division), one pipeline per layer geometry. tfjs caches pipelines by shaderKey; lavapipe
 * compiles one in 1-1.5 s ('direct') or 2-3 s ('staged'), and Mesa keeps them on disk.
 *
 * Layout: NDHWC tensors [B, D, H, W, C], filters [kd, kh, kw, Cin, Cout] (tfjs' conv3d order). The
 * programs' inputs are rank-2 views ([voxels, C]; tfjs-webgpu cannot index rank-5 coordinates) and
 * all index arithmetic is written out here.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { Vec3 } from './conv3d-filter-grad.ts';
import { defaultVariant } from './conv3d-wgsl.ts';

export type WgslFilterGradVariant = 'direct' | 'staged';

/** Workgroups pass 1 aims at (tiles x chunks). */
const TARGET_WORKGROUPS = 512;
/** Smallest chunk of the reduction (output voxels) one workgroup sums. */
const MIN_CHUNK = 256;

interface Geometry {
  B: number;
  D: number;
  H: number;
  W: number;
  cin: number;
  kd: number;
  kh: number;
  kw: number;
  cout: number;
  Do: number;
  Ho: number;
  Wo: number;
  sd: number;
  sh: number;
  sw: number;
  pf: number;
  pt: number;
  pl: number;
  M: number;
  N: number;
  K: number;
}

export interface FilterGradPlan {
  variant: WgslFilterGradVariant;
  /** Output tile (rows of M, columns of N) of a workgroup, and the register block of a thread. */
  TM: number;
  TN: number;
  RM: number;
  RN: number;
  /** Output voxels per step ('staged': staged in workgroup memory together; 'direct': 1). */
  TK: number;
  /** Output voxels (of K) per workgroup, and the number of chunks S. */
  chunk: number;
  splits: number;
}

const roundUp = (a: number, b: number) => Math.ceil(a / b) * b;
const pow2Covering = (n: number) => (n <= 16 ? 16 : n <= 32 ? 32 : 64);

/** Tiles and split-K chunks for a GEMM of M x N outputs over K. */
export function planFilterGrad(
  g: { M: number; N: number; K: number },
  variant: WgslFilterGradVariant = 'direct',
): FilterGradPlan {
  const R = variant === 'direct' ? 8 : 4;
  const TK = variant === 'direct' ? 1 : 16;
  const TM = pow2Covering(g.M);
  const TN = pow2Covering(g.N);
  const tiles = Math.ceil(g.M / TM) * Math.ceil(g.N / TN);
  const maxSplits = Math.max(1, Math.floor(g.K / MIN_CHUNK));
  const want = Math.max(1, Math.min(maxSplits, Math.ceil(TARGET_WORKGROUPS / tiles)));
  const chunk = roundUp(Math.ceil(g.K / want), TK);
  return { variant, TM, TN, RM: R, RN: R, TK, chunk, splits: Math.ceil(g.K / chunk) };
}

/** WGSL declaring, for filter row `am` (a tap and channel), the input offset of its tap. */
function tapRow(r: string, am: string): string {
  return `let am${r} = ${am};
        let ok${r} = am${r} < MROWS;
        let tap${r} = am${r} / CIN;
        let az${r} = tap${r} / (KH * KW) - PF;
        let ay${r} = (tap${r} / KW) % KH - PT;
        let ax${r} = tap${r} % KW - PL;
        let toff${r} = ((az${r} * H + ay${r}) * W + ax${r}) * CIN + am${r} % CIN;`;
}

/**
 * The geometry's WGSL names (D, H, W, CIN; DO, HO, WO, COUT; SD, SH, SW, CHUNK; PF, PT, PL, MROWS;
 * KH, KW) as module constants ('staged': divisions by constants stay cheap in its per-element
 * decode) or read from the uniforms in main ('direct': one pipeline serves every geometry with the
 * same tiles; it divides only while setting up).
 */
const GEOMETRY_NAMES = [
  ['D', 'H', 'W', 'CIN'],
  ['DO', 'HO', 'WO', 'COUT'],
  ['SD', 'SH', 'SW', 'CHUNK'],
  ['PF', 'PT', 'PL', 'MROWS'],
  ['KH', 'KW'],
];
const GEOMETRY_UNIFORMS = ['inDims', 'outDims', 'convSteps', 'tapDims', 'kernelDims'];

function geometryValues(g: Geometry, p: FilterGradPlan): number[][] {
  return [
    [g.D, g.H, g.W, g.cin],
    [g.Do, g.Ho, g.Wo, g.cout],
    [g.sd, g.sh, g.sw, p.chunk],
    [g.pf, g.pt, g.pl, g.M],
    [g.kh, g.kw],
  ];
}

function geometryWgsl(g: Geometry, p: FilterGradPlan, from: 'constants' | 'uniforms'): string {
  const values = geometryValues(g, p);
  const lines: string[] = [];
  GEOMETRY_NAMES.forEach((names, i) =>
    names.forEach((n, j) =>
      lines.push(
        from === 'constants' ? `const ${n} = ${values[i][j]};` : `let ${n} = uniforms.${GEOMETRY_UNIFORMS[i]}[${j}];`,
      ),
    ),
  );
  return lines.join('\n        ');
}

/** WGSL writing the RM x RN accumulators acc{r}_{c4} of the block at (m0, n0) to P[split]. */
function writeBlock(p: FilterGradPlan): string {
  const out: string[] = [];
  for (let r = 0; r < p.RM; r++)
    for (let c = 0; c < p.RN; c++)
      out.push(`if (m0 + ${r} < MROWS && n0 + ${c} < COUT) {
          result[rbase + (m0 + ${r}) * COUT + n0 + ${c}] = acc${r}_${c >> 2}[${c & 3}];
        }`);
  return out.join('\n        ');
}

/**
 * WGSL of one step of the register block: acc{r}_{c4} += a{r/4}[r%4] * b{c4} for vec4 operands
 * a0.. (rows) and b0.. (columns).
 */
function blockFmas(p: FilterGradPlan): { decl: string; fma: string } {
  const decl: string[] = [];
  const fma: string[] = [];
  for (let r = 0; r < p.RM; r++)
    for (let c4 = 0; c4 < p.RN / 4; c4++) {
      decl.push(`var acc${r}_${c4} = vec4<f32>(0.0);`);
      fma.push(`acc${r}_${c4} = fma(vec4<f32>(a${r >> 2}[${r & 3}]), b${c4}, acc${r}_${c4});`);
    }
  return { decl: decl.join('\n        '), fma: fma.join('\n          ') };
}

/** Pass 1: partial sums P [S, M*N] of the implicit GEMM, one K chunk per workgroup z. */
class ConvFilterGradProgram implements WebGPUProgram {
  variableNames = ['x', 'dy'];
  // K ('staged': the only uniform of its own, though every shape is a constant there: the pipeline
  // layout 'auto' would drop a uniform buffer nothing reads, and tfjs always binds one)
  uniforms = 'kTotal : i32,';
  uniformData: { type: 'int32'; data: number[] }[];
  variableComponents: number[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  private vecA: boolean;
  private vecB: boolean;

  constructor(
    private g: Geometry,
    private p: FilterGradPlan,
  ) {
    this.vecA = g.cin % 4 === 0;
    this.vecB = g.cout % 4 === 0;
    this.variableComponents = [this.vecA ? 4 : 1, this.vecB ? 4 : 1];
    this.outputShape = [p.splits, g.M * g.N];
    this.workgroupSize = [(p.TM / p.RM) * (p.TN / p.RN), 1, 1];
    this.dispatch = [Math.ceil(g.N / p.TN), Math.ceil(g.M / p.TM), p.splits];
    const dims = [g.B, g.D, g.H, g.W, g.cin, g.kd, g.kh, g.kw, g.cout, g.Do, g.Ho, g.Wo];
    const conv = [g.sd, g.sh, g.sw, g.pf, g.pt, g.pl];
    const plan = [p.TM, p.TN, p.RM, p.RN, p.TK, p.chunk];
    this.uniformData = [{ type: 'int32', data: [g.K] }];
    if (p.variant === 'direct') {
      this.uniforms += GEOMETRY_UNIFORMS.map((u, i) => ` ${u} : vec${GEOMETRY_NAMES[i].length}<i32>,`).join('');
      for (const data of geometryValues(g, p)) this.uniformData.push({ type: 'int32', data });
      this.shaderKey = `samConv3dFilterGrad_direct_${this.vecA}_${this.vecB}_${plan.slice(0, 4).join('_')}`;
    } else this.shaderKey = `samConv3dFilterGrad_staged_${dims.join('x')}_${conv.join('_')}_${plan.join('_')}`;
  }

  getUserCode(): string {
    const { g, p } = this;
    return p.variant === 'direct' ? this.directCode() : `${geometryWgsl(g, p, 'constants')}\n${this.stagedCode()}`;
  }

  /** Pass 1, each thread reading its own operands. */
  private directCode(): string {
    const { g, p, vecA, vecB } = this;
    const rows: string[] = [];
    const loads: string[] = [];
    const xValue = (r: string) => {
      // the index may leave the buffer where the tap leaves the volume: select() discards that
      // read, and WebGPU keeps out-of-bounds reads inside the buffer
      const inside = `ok${r} && u32(bz + az${r}) < u32(D) && u32(by + ay${r}) < u32(H) && u32(bx + ax${r}) < u32(W)`;
      return `select(${vecA ? 'vec4<f32>(0.0)' : '0.0'}, x[(kbase + toff${r})${vecA ? ' / 4' : ''}], ${inside})`;
    };
    for (let q = 0; q < p.RM / 4; q++) {
      if (vecA) {
        // 4 rows of the same tap (M and Cin multiples of 4): one vec4
        rows.push(tapRow(`${q}`, `m0 + ${4 * q}`));
        loads.push(`let a${q} = ${xValue(`${q}`)};`);
      } else {
        for (let c = 0; c < 4; c++) rows.push(tapRow(`${q}_${c}`, `m0 + ${4 * q + c}`));
        loads.push(`let a${q} = vec4<f32>(${[0, 1, 2, 3].map((c) => xValue(`${q}_${c}`)).join(', ')});`);
      }
    }
    for (let c4 = 0; c4 < p.RN / 4; c4++) {
      if (vecB)
        loads.push(`let b${c4} = select(vec4<f32>(0.0), dy[(k * COUT + n0) / 4 + ${c4}], n0 + ${4 * c4} < COUT);`);
      else {
        const cols = [0, 1, 2, 3].map(
          (c) => `select(0.0, dy[k * COUT + n0 + ${4 * c4 + c}], n0 + ${4 * c4 + c} < COUT)`,
        );
        loads.push(`let b${c4} = vec4<f32>(${cols.join(', ')});`);
      }
    }
    const block = blockFmas(p);
    return `
      fn main() {
        ${geometryWgsl(g, p, 'uniforms')}
        let lid = i32(localIndex);
        let m0 = i32(workgroupId.y) * ${p.TM} + (lid / ${p.TN / p.RN}) * ${p.RM};
        let n0 = i32(workgroupId.x) * ${p.TN} + (lid % ${p.TN / p.RN}) * ${p.RN};
        let split = i32(workgroupId.z);
        let kStart = split * CHUNK;
        let kEnd = min(uniforms.kTotal, kStart + CHUNK);
        ${rows.join('\n        ')}
        ${block.decl}
        // output voxel k = (ob, oz, oy, ox), stepped with k
        var ox = kStart % WO;
        var oy = (kStart / WO) % HO;
        var oz = (kStart / (WO * HO)) % DO;
        var ob = kStart / (WO * HO * DO);
        for (var k = kStart; k < kEnd; k = k + 1) {
          let bz = oz * SD;
          let by = oy * SH;
          let bx = ox * SW;
          let kbase = (((ob * D + bz) * H + by) * W + bx) * CIN;
          ${loads.join('\n          ')}
          ${block.fma}
          ox = ox + 1;
          let wx = ox == WO;
          ox = select(ox, 0, wx);
          oy = oy + select(0, 1, wx);
          let wy = oy == HO;
          oy = select(oy, 0, wy);
          oz = oz + select(0, 1, wy);
          let wz = oz == DO;
          oz = select(oz, 0, wz);
          ob = ob + select(0, 1, wz);
        }
        let rbase = split * MROWS * COUT;
        ${writeBlock(p)}
      }
    `;
  }

  /** Pass 1 with the operand tiles staged in workgroup memory. */
  private stagedCode(): string {
    const { p, vecA, vecB } = this;
    const { TM, TN, RM, RN, TK } = p;
    const T = (TM / RM) * (TN / RN);
    const a = stageTile({
      T,
      TK,
      cols: TM,
      vec: vecA,
      array: 'As',
      column: (col, r) => tapRow(r, `tileM + ${col}${vecA ? ' * 4' : ''}`),
      value: (r) =>
        `select(${vecA ? 'vec4<f32>(0.0)' : '0.0'}, x[(xBase(k) + toff${r})${vecA ? ' / 4' : ''}], ok${r} && inside(k, az${r}, ay${r}, ax${r}))`,
    });
    const b = stageTile({
      T,
      TK,
      cols: TN,
      vec: vecB,
      array: 'Bs',
      column: (col, r) => `let bn${r} = tileN + ${col}${vecB ? ' * 4' : ''};`,
      value: (r) =>
        `select(${vecB ? 'vec4<f32>(0.0)' : '0.0'}, dy[(k * COUT + bn${r})${vecB ? ' / 4' : ''}], bn${r} < COUT && k < kEnd)`,
    });
    const block = blockFmas(p);
    const reads: string[] = [];
    for (let q = 0; q < RM / 4; q++) reads.push(`let a${q} = As[kk * ${TM / 4} + ty * ${RM / 4} + ${q}];`);
    for (let c4 = 0; c4 < RN / 4; c4++) reads.push(`let b${c4} = Bs[kk * ${TN / 4} + tx * ${RN / 4} + ${c4}];`);
    const decode = `let ox = k % WO;
        let t1 = k / WO;
        let oy = t1 % HO;
        let t2 = t1 / HO;
        let oz = t2 % DO;`;
    return `
      var<workgroup> As : array<vec4<f32>, ${(TK * TM) / 4}>;
      var<workgroup> Bs : array<vec4<f32>, ${(TK * TN) / 4}>;
      var<private> kEnd : i32;

      // does output voxel k shifted by a tap offset (dz, dyy, dx) lie inside the input?
      fn inside(k : i32, dz : i32, dyy : i32, dx : i32) -> bool {
        ${decode}
        return k < kEnd && u32(oz * SD + dz) < u32(D) && u32(oy * SH + dyy) < u32(H) && u32(ox * SW + dx) < u32(W);
      }
      // index in x of the input voxel at output voxel k's strided position
      fn xBase(k : i32) -> i32 {
        ${decode}
        let ob = t2 / DO;
        return (((ob * D + oz * SD) * H + oy * SH) * W + ox * SW) * CIN;
      }

      fn main() {
        let lid = i32(localIndex);
        let tileN = i32(workgroupId.x) * ${TN};
        let tileM = i32(workgroupId.y) * ${TM};
        let split = i32(workgroupId.z);
        let kStart = split * CHUNK;
        kEnd = min(uniforms.kTotal, kStart + CHUNK);
        ${a.hoisted}
        ${b.hoisted}
        let tx = lid % ${TN / RN};
        let ty = lid / ${TN / RN};
        ${block.decl}
        // constant trip count (barriers need uniform control flow); loads past kEnd read zeros
        for (var t = 0; t < ${p.chunk / TK}; t = t + 1) {
          let k0 = kStart + t * ${TK};
          ${a.load}
          ${b.load}
          workgroupBarrier();
          for (var kk = 0; kk < ${TK}; kk = kk + 1) {
            ${reads.join('\n            ')}
            ${block.fma}
          }
          workgroupBarrier();
        }
        let m0 = tileM + ty * ${RM};
        let n0 = tileN + tx * ${RN};
        let rbase = split * MROWS * COUT;
        ${writeBlock(p)}
      }
    `;
  }
}

/**
 * WGSL staging one operand tile [TK, cols] in workgroup memory: element e = lid + j * T of the tile
 * (e < TK * perRow) is row e / perRow, column group e % perRow (4 columns as a vec4, or 1). When T
 * is a multiple of perRow a thread's column never changes and `column` (its declarations, suffix
 * '') is hoisted out of the loop; else it is declared per load (suffix _j).
 */
function stageTile(o: {
  T: number;
  TK: number;
  cols: number;
  vec: boolean;
  array: string;
  column: (col: string, suffix: string) => string;
  value: (suffix: string) => string;
}): { hoisted: string; load: string } {
  const perRow = o.vec ? o.cols / 4 : o.cols;
  const total = o.TK * perRow;
  const hoist = o.T % perRow === 0;
  const parts: string[] = [];
  for (let j = 0; j < Math.ceil(total / o.T); j++) {
    const r = hoist ? '' : `_${j}`;
    const e = `(lid + ${j * o.T})`;
    const col = `${o.array}col${r}`;
    const store = o.vec
      ? `${o.array}[kk * ${o.cols / 4} + ${col}]`
      : `${o.array}[kk * ${o.cols / 4} + ${col} / 4][${col} % 4]`;
    const body = `{
          let kk = ${e} / ${perRow};
          let k = k0 + kk;
          ${hoist ? '' : `let ${col} = ${e} % ${perRow};\n          ${o.column(col, r)}`}
          ${store} = ${o.value(r)};
        }`;
    parts.push((j + 1) * o.T <= total ? body : `if (${e} < ${total}) ${body}`);
  }
  const col = `${o.array}col`;
  return {
    hoisted: hoist ? `let ${col} = lid % ${perRow};\n        ${o.column(col, '')}` : '',
    load: parts.join('\n'),
  };
}

/** Pass 2: out[i] = sum over s of P[s, i], in order (one pipeline for every shape: sizes are uniforms). */
class SplitSumProgram implements WebGPUProgram {
  variableNames = ['P'];
  uniforms = 'splits : i32,';
  outputShape: number[];
  shaderKey = 'samSplitSum';
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;

  constructor(n: number) {
    this.outputShape = [n];
    this.dispatch = [Math.ceil(n / 64), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var s = 0.0;
          for (var i = 0; i < uniforms.splits; i = i + 1) {
            s = s + P[i * uniforms.size + index];
          }
          setOutputAtIndex(index, s);
        }
      }
    `;
  }
}

/**
 * dL/dW of conv3d(x, W, strides, pad) given dy = dL/d(output): [kd, kh, kw, Cin, Cout], by the WGSL
 * kernel above. Same signature and values (up to float rounding) as conv3dFilterGradByTaps; needs
 * the webgpu backend.
 */
export function conv3dFilterGradWgsl(
  x: tf.Tensor5D,
  dy: tf.Tensor5D,
  filterShape: [number, number, number, number, number],
  strides: Vec3,
  pad: 'same' | 'valid',
  variantOrDefault?: WgslFilterGradVariant,
): tf.Tensor5D {
  if (tf.getBackend() !== 'webgpu')
    throw new Error(`conv3dFilterGradWgsl needs the webgpu backend (the active backend is '${tf.getBackend()}')`);
  // default: 'direct' on a software adapter (lavapipe: barriers are coroutine switches), 'staged' on a
  // GPU (all layers on an H200: 0.010 vs 0.012 s for `small`, 0.087 vs 0.122 s for `paper`)
  const variant = variantOrDefault ?? defaultVariant(tf.backend());
  if (x.dtype !== 'float32' || dy.dtype !== 'float32')
    throw new Error(`conv3dFilterGradWgsl: float32 only (x is ${x.dtype}, dy ${dy.dtype})`);
  const [kd, kh, kw, cin, cout] = filterShape;
  if (x.shape[4] !== cin)
    throw new Error(`conv3d filter gradient: x has ${x.shape[4]} channels, the filter [${filterShape}] ${cin}`);
  const info = tf.backend_util.computeConv3DInfo(x.shape, filterShape, strides, 1, pad);
  const [B, D, H, W] = x.shape;
  const [, Do, Ho, Wo, dyC] = dy.shape;
  if (dy.shape[0] !== B || Do !== info.outDepth || Ho !== info.outHeight || Wo !== info.outWidth || dyC !== cout)
    throw new Error(`conv3d filter gradient: dy [${dy.shape}] does not match the convolution's output`);
  const g: Geometry = {
    B,
    D,
    H,
    W,
    cin,
    kd,
    kh,
    kw,
    cout,
    Do,
    Ho,
    Wo,
    sd: info.strideDepth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    pf: info.padInfo.front,
    pt: info.padInfo.top,
    pl: info.padInfo.left,
    M: kd * kh * kw * cin,
    N: cout,
    K: B * Do * Ho * Wo,
  };
  if (g.K === 0 || g.M * g.N === 0) return tf.zeros(filterShape);
  if (B * D * H * W * cin >= 2 ** 31 || g.K * cout >= 2 ** 31)
    throw new Error(`conv3dFilterGradWgsl: tensors over 2^31 elements (i32 indices)`);
  const backend = tf.backend() as unknown as WebGPUBackend;
  const plan = planFilterGrad(g, variant);
  // rank-2 views of the same buffers (no Reshape kernels)
  const x2: tf.TensorInfo = { dataId: x.dataId, shape: [x.size / cin, cin], dtype: x.dtype };
  const dy2: tf.TensorInfo = { dataId: dy.dataId, shape: [dy.size / cout, cout], dtype: dy.dtype };
  const program = new ConvFilterGradProgram(g, plan);
  const partial = backend.runWebGPUProgram(program, [x2, dy2], 'float32', program.uniformData);
  let flat: tf.TensorInfo = partial;
  if (plan.splits > 1) {
    flat = backend.runWebGPUProgram(new SplitSumProgram(g.M * g.N), [partial], 'float32', [
      { type: 'int32', data: [plan.splits] },
    ]);
    backend.disposeData(partial.dataId);
  }
  return tf.engine().makeTensorFromTensorInfo({ ...flat, shape: filterShape }) as tf.Tensor5D;
}
