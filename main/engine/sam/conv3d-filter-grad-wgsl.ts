/**
 * The weight gradient of a 3D convolution as one WGSL compute kernel on tfjs' WebGPU backend: an
 * implicit matrix product with split-K.
 *
 *   dW[tap, ci, co] = sum over n of X_tap[n, ci] * dY[n, co]
 *
 * is a GEMM C[M, N] = A^T B with M = kd*kh*kw*Cin rows (row m = (tap, ci)), N = Cout columns and a
 * long reduction over K = B*Do*Ho*Wo output voxels. A[k, m] is the input at output voxel k shifted by
 * tap(m), strided, and zero outside the volume (tfjs' padding, backend_util.computeConv3DInfo); it is
 * never materialised: the kernel gathers it while loading its tiles. B[k, co] = dY is read as it lies.
 *
 * Pass 1 (ConvFilterGradProgram): workgroup (x, y, z) owns the TM x TN output tile (y, x) and the
 * z-th chunk of K (split-K: every tile gets S chunks, so even a 144 x 16 stem gradient has enough
 * workgroups to fill a GPU). Per step of TK output voxels it stages the A tile [TK, TM] and the B
 * tile [TK, TN] in workgroup memory (vec4 loads along Cin and Cout where they are multiples of 4,
 * consecutive threads on consecutive channels: coalesced), then every thread accumulates a 4 x 4
 * register block of C (4 vec4 FMAs per pair of vec4 reads from workgroup memory). It writes its
 * partial tile to P [S, M*N]. Pass 2 (a small reduction) sums P over S in a fixed order, so the
 * result is deterministic (no float atomics) and costs S*M*N reads, under 1/chunk of pass 1.
 *
 * Every shape (volume, strides, padding, kernel, channels, tile and chunk sizes) is a WGSL constant:
 * one compiled pipeline per layer geometry (tfjs caches them by shaderKey), and the divisions that
 * turn a voxel index into (b, z, y, x) become multiply-shifts (vector integer division does not exist
 * on the CPU that runs lavapipe, and costs ~20 instructions on a GPU).
 *
 * Tile sizes: TN = 16, 32 or 64 (the smallest power of two >= Cout, capped), TM = 64 rows (16-32 for
 * narrow layers), TK = 16; 4x4 per thread gives TM*TN/16 threads (at most 256) and TK*(TM+TN)*4 bytes
 * of workgroup memory (at most 8 KiB: within WebGPU's 16 KiB default). The number of chunks S aims at
 * TARGET_WORKGROUPS workgroups in all with chunks of at least MIN_CHUNK voxels, so the reduction
 * stays cheap. On lavapipe (a CPU rasteriser: workgroups run on the CPU threads, invocations as SIMD
 * lanes) and on an H100 (132 SMs, needs several hundred workgroups of 64-256 threads) alike the
 * kernel has the same shape as a tiled SGEMM; see the README ("Training speed and the weight-gradient
 * kernel") for measured numbers.
 *
 * Layout: NDHWC tensors [B, D, H, W, C], filters [kd, kh, kw, Cin, Cout] (tfjs' conv3d order). The
 * program's inputs are rank-2 views ([voxels, C]; tfjs-webgpu cannot index rank-5 coordinates) and
 * all index arithmetic is written out here.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { Vec3 } from './conv3d-filter-grad.ts';

/** Workgroups pass 1 aims at (tiles x chunks): enough for a large GPU, few enough to keep chunks long. */
const TARGET_WORKGROUPS = 512;
/** Smallest chunk of the reduction (output voxels) one workgroup sums. */
const MIN_CHUNK = 256;
const TK = 16;

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

interface Plan {
  TM: number;
  TN: number;
  chunk: number;
  splits: number;
}

const roundUp = (a: number, b: number) => Math.ceil(a / b) * b;

/** Tile and split-K sizes for one geometry. */
export function planFilterGrad(g: Pick<Geometry, 'M' | 'N' | 'K'>): Plan {
  const TN = g.N <= 16 ? 16 : g.N <= 32 ? 32 : 64;
  const TM = g.M <= 16 ? 16 : g.M <= 32 ? 32 : 64;
  const tiles = Math.ceil(g.M / TM) * Math.ceil(g.N / TN);
  const maxSplits = Math.max(1, Math.floor(g.K / MIN_CHUNK));
  let splits = Math.max(1, Math.min(maxSplits, Math.ceil(TARGET_WORKGROUPS / tiles)));
  const chunk = roundUp(Math.ceil(g.K / splits), TK);
  splits = Math.ceil(g.K / chunk);
  return { TM, TN, chunk, splits };
}

/** Pass 1: partial sums P [S, M*N] of the implicit GEMM, one K chunk per workgroup z. */
class ConvFilterGradProgram implements WebGPUProgram {
  variableNames = ['x', 'dy'];
  // K, the only uniform of the program's own (everything else is a constant; layout 'auto' drops
  // a uniform buffer nothing reads, and tfjs always binds one)
  uniforms = 'kTotal : i32,';
  variableComponents: number[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];

  constructor(
    private g: Geometry,
    private p: Plan,
  ) {
    const vecA = g.cin % 4 === 0;
    const vecB = g.cout % 4 === 0;
    this.variableComponents = [vecA ? 4 : 1, vecB ? 4 : 1];
    this.outputShape = [p.splits, g.M * g.N];
    this.workgroupSize = [(p.TM * p.TN) / 16, 1, 1];
    this.dispatch = [Math.ceil(g.N / p.TN), Math.ceil(g.M / p.TM), p.splits];
    const dims = [g.B, g.D, g.H, g.W, g.cin, g.kd, g.kh, g.kw, g.cout, g.Do, g.Ho, g.Wo];
    const conv = [g.sd, g.sh, g.sw, g.pf, g.pt, g.pl];
    this.shaderKey = `samConv3dFilterGrad_${dims.join('x')}_${conv.join('_')}_${p.TM}_${p.TN}_${p.chunk}`;
  }

  getUserCode(): string {
    const { g, p } = this;
    const { TM, TN } = p;
    const T = (TM * TN) / 16;
    const vecA = g.cin % 4 === 0;
    const vecB = g.cout % 4 === 0;
    // A tile loads: vec4 path, thread owns the 4 rows am..am+3 (same tap, 4 channels) and rows kk of
    // the step; scalar path, one row am.
    const aPerRow = vecA ? TM / 4 : TM;
    const aLoads = (TK * aPerRow) / T;
    const aRowStep = T / aPerRow;
    const bPerRow = vecB ? TN / 4 : TN;
    const bLoads = (TK * bPerRow) / T;
    const bRowStep = T / bPerRow;
    const i = (n: number) => `${n}`;
    const u = (n: number) => `${n}u`;
    const aLoad: string[] = [];
    for (let j = 0; j < aLoads; j++)
      aLoad.push(`{
        let kk = akk + ${j * aRowStep};
        let k = k0 + kk;
        let ox = k % WO;
        let t1 = k / WO;
        let oy = t1 % HO;
        let t2 = t1 / HO;
        let oz = t2 % DO;
        let ob = t2 / DO;
        let iz = oz * SD + az;
        let iy = oy * SH + ay;
        let ix = ox * SW + ax;
        var v = ${vecA ? 'vec4<f32>(0.0)' : '0.0'};
        if (amOk && k < kEnd && u32(iz) < ${u(g.D)} && u32(iy) < ${u(g.H)} && u32(ix) < ${u(g.W)}) {
          v = x[((((ob * ${i(g.D)} + iz) * ${i(g.H)} + iy) * ${i(g.W)} + ix) * CIN + aci)${vecA ? ' / 4' : ''}];
        }
        ${vecA ? `As[kk * ${TM / 4} + am4] = v;` : `As[kk * ${TM / 4} + am4][amc] = v;`}
      }`);
    const bLoad: string[] = [];
    for (let j = 0; j < bLoads; j++)
      bLoad.push(`{
        let kk = bkk + ${j * bRowStep};
        let k = k0 + kk;
        var v = ${vecB ? 'vec4<f32>(0.0)' : '0.0'};
        if (bnOk && k < kEnd) {
          v = dy[(k * COUT + bn)${vecB ? ' / 4' : ''}];
        }
        ${vecB ? `Bs[kk * ${TN / 4} + bn4] = v;` : `Bs[kk * ${TN / 4} + bn4][bnc] = v;`}
      }`);
    return `
      const CIN = ${i(g.cin)};
      const COUT = ${i(g.cout)};
      const WO = ${i(g.Wo)};
      const HO = ${i(g.Ho)};
      const DO = ${i(g.Do)};
      const SD = ${i(g.sd)};
      const SH = ${i(g.sh)};
      const SW = ${i(g.sw)};
      const MROWS = ${i(g.M)};
      const CHUNK = ${i(p.chunk)};
      var<workgroup> As : array<vec4<f32>, ${(TK * TM) / 4}>;
      var<workgroup> Bs : array<vec4<f32>, ${(TK * TN) / 4}>;

      fn main() {
        let lid = i32(localIndex);
        let tileN = i32(workgroupId.x) * ${TN};
        let tileM = i32(workgroupId.y) * ${TM};
        let split = i32(workgroupId.z);
        let kStart = split * CHUNK;
        let kEnd = min(uniforms.kTotal, kStart + CHUNK);

        // this thread's A column(s): row m = (tap, ci) of the filter, hoisted out of every loop
        ${
          vecA
            ? `let am4 = lid % ${TM / 4};
        let am = tileM + am4 * 4;`
            : `let amIdx = lid % ${TM};
        let am4 = amIdx / 4;
        let amc = amIdx % 4;
        let am = tileM + amIdx;`
        }
        let akk = lid / ${aPerRow};
        let amOk = am < MROWS;
        let atap = am / CIN;
        let aci = am % CIN;
        // input offset of the tap relative to the output voxel's strided position, padding included
        let az = atap / ${i(g.kh * g.kw)} - ${i(g.pf)};
        let ay = (atap / ${i(g.kw)}) % ${i(g.kh)} - ${i(g.pt)};
        let ax = atap % ${i(g.kw)} - ${i(g.pl)};

        // this thread's B column(s)
        ${
          vecB
            ? `let bn4 = lid % ${TN / 4};
        let bn = tileN + bn4 * 4;`
            : `let bnIdx = lid % ${TN};
        let bn4 = bnIdx / 4;
        let bnc = bnIdx % 4;
        let bn = tileN + bnIdx;`
        }
        let bkk = lid / ${bPerRow};
        let bnOk = bn < COUT;

        // the 4 x 4 register block: rows ty*4.., columns tx*4..
        let tx = lid % ${TN / 4};
        let ty = lid / ${TN / 4};
        var acc0 = vec4<f32>(0.0);
        var acc1 = vec4<f32>(0.0);
        var acc2 = vec4<f32>(0.0);
        var acc3 = vec4<f32>(0.0);

        // constant trip count (barriers need uniform control flow); loads past kEnd read zeros
        for (var t = 0; t < ${p.chunk / TK}; t = t + 1) {
          let k0 = kStart + t * ${TK};
          ${aLoad.join('\n')}
          ${bLoad.join('\n')}
          workgroupBarrier();
          for (var kk = 0; kk < ${TK}; kk = kk + 1) {
            let a = As[kk * ${TM / 4} + ty];
            let b = Bs[kk * ${TN / 4} + tx];
            acc0 = fma(vec4<f32>(a.x), b, acc0);
            acc1 = fma(vec4<f32>(a.y), b, acc1);
            acc2 = fma(vec4<f32>(a.z), b, acc2);
            acc3 = fma(vec4<f32>(a.w), b, acc3);
          }
          workgroupBarrier();
        }

        let m0 = tileM + ty * 4;
        let n0 = tileN + tx * 4;
        let base = split * ${g.M * g.N};
        var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
        for (var r = 0; r < 4; r = r + 1) {
          let m = m0 + r;
          if (m < MROWS) {
            for (var c = 0; c < 4; c = c + 1) {
              let n = n0 + c;
              if (n < COUT) {
                result[base + m * COUT + n] = accs[r][c];
              }
            }
          }
        }
      }
    `;
  }
}

/** Pass 2: out[i] = sum over s of P[s, i], in order. */
class SplitSumProgram implements WebGPUProgram {
  variableNames = ['P'];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;

  constructor(
    private splits: number,
    private n: number,
  ) {
    this.outputShape = [n];
    this.dispatch = [Math.ceil(n / 64), 1, 1];
    this.shaderKey = `samSplitSum_${splits}_${n}`;
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var s = 0.0;
          for (var i = 0; i < ${this.splits}; i = i + 1) {
            s = s + P[i * ${this.n} + index];
          }
          setOutputAtIndex(index, s);
        }
      }
    `;
  }
}

/**
 * dL/dW of conv3d(x, W, strides, pad) given dy = dL/d(output): [kd, kh, kw, Cin, Cout], by the WGSL
 * kernel above. Same signature and values (up to float rounding) as conv3dFilterGradByTaps; WebGPU only.
 */
export function conv3dFilterGradWgsl(
  x: tf.Tensor5D,
  dy: tf.Tensor5D,
  filterShape: [number, number, number, number, number],
  strides: Vec3,
  pad: 'same' | 'valid',
): tf.Tensor5D {
  if (tf.getBackend() !== 'webgpu')
    throw new Error(`conv3dFilterGradWgsl needs the webgpu backend (the active backend is '${tf.getBackend()}')`);
  if (x.dtype !== 'float32' || dy.dtype !== 'float32')
    throw new Error(`conv3dFilterGradWgsl: float32 only (x ${x.dtype}, dy ${dy.dtype})`);
  const [kd, kh, kw, cin, cout] = filterShape;
  if (x.shape[4] !== cin)
    throw new Error(`conv3d filter gradient: x has ${x.shape[4]} channels, the filter ${filterShape} wants ${cin}`);
  const info = tf.backend_util.computeConv3DInfo(x.shape, filterShape, strides, 1, pad);
  const [B, D, H, W] = x.shape;
  if (
    dy.shape[0] !== B ||
    dy.shape[1] !== info.outDepth ||
    dy.shape[2] !== info.outHeight ||
    dy.shape[3] !== info.outWidth ||
    dy.shape[4] !== cout
  )
    throw new Error(`conv3d filter gradient: dy ${dy.shape} does not match the convolution's output`);
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
    Do: info.outDepth,
    Ho: info.outHeight,
    Wo: info.outWidth,
    sd: info.strideDepth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    pf: info.padInfo.front,
    pt: info.padInfo.top,
    pl: info.padInfo.left,
    M: kd * kh * kw * cin,
    N: cout,
    K: B * info.outDepth * info.outHeight * info.outWidth,
  };
  if (g.K === 0 || g.M * g.N === 0) return tf.zeros(filterShape);
  const backend = tf.backend() as unknown as WebGPUBackend;
  const plan = planFilterGrad(g);
  const x2 = tf.reshape(x, [-1, cin]);
  const dy2 = tf.reshape(dy, [-1, cout]);
  const partial = backend.runWebGPUProgram(new ConvFilterGradProgram(g, plan), [x2, dy2], 'float32', [
    { type: 'int32', data: [g.K] },
  ]);
  tf.dispose([x2, dy2]);
  let flat: tf.TensorInfo = partial;
  if (plan.splits > 1) {
    flat = backend.runWebGPUProgram(new SplitSumProgram(plan.splits, g.M * g.N), [partial], 'float32');
    backend.disposeData(partial.dataId);
  }
  const t = tf.engine().makeTensorFromTensorInfo(flat);
  const out = tf.reshape(t, filterShape) as tf.Tensor5D;
  t.dispose();
  return out;
}
