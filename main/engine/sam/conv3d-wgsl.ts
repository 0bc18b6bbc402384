/**
 * A 3D convolution forward pass for tfjs-webgpu written in WGSL: an implicit matrix product with
 * register blocks, operands staged through shared-memory tiles or read directly, run through
 * tfjs-webgpu's own program mechanism (runWebGPUProgram).
 *
 * Why: tfjs-webgpu's Conv3D is a naive kernel (conv3d_naive_webgpu.js: one thread per output element
 * looping over kd*kh*kw*Cin, with two scalar buffer reads per multiply-add and no reuse between
 * threads); it is 88% of the `small` network's kernel time. tfjs' conv2d has a tiled matrix-product
 * program (conv2d_mm_webgpu.js); this is the same idea in 3D.
 *
 * Algorithm (implicit GEMM): out[m, n] = sum_k A[m, k] B[k, n] with
 *   m = an output voxel (b, z, y, x) of M = B * Do * Ho * Wo, n = an output channel of Cout,
 *   k = (tap (a, b, c), input channel ci) of K = kd * kh * kw * Cin, in the filter's own order, so
 *   B = the filter [kd, kh, kw, Cin, Cout] read as [K, Cout] with no copy, and
 *   A[m, k] = x[b, z*sd + a - padFront, y*sh + b - padTop, x*sw + c - padLeft, ci], 0 outside the
 *   input: the tap shift, the stride and the zero padding ('same'/'valid', from tfjs'
 *   backend_util.computeConv3DInfo) are applied while loading, nothing is materialised.
 * A workgroup computes a TM x TN tile of the output (TM voxels x TN channels); every thread an
 * RM x 4CN register block of it. Two variants:
 *
 * 'staged' (the classic GPU shape; default on GPUs). The workgroup walks K in chunks of TK: its
 * threads copy the TM x TK slice of A and the TK x TN slice of B into workgroup memory
 * (coalesced: neighbouring threads read neighbouring vec4s of a voxel's channels, and of a filter
 * row), then every thread accumulates an RM x 4CN register block (RM voxels x CN vec4s of
 * channels, CN vec4s of B times a broadcast A value per multiply-add, unrolled into registers), so
 * each value read from workgroup memory feeds 4CN (A) or RM (B) multiply-adds. Two ways to walk K:
 *  - 'tap' (Cin a multiple of 16): chunks never straddle a tap, so the tap loop is outside and one
 *    bounds test per voxel row and tap gives a whole vec4 of channels; vec4 buffer reads of x.
 *  - 'flat' (any Cin, e.g. the Cin = 1 stem with its 4x6x6 or 3x7x7 kernel): k is decomposed per
 *    element into (tap, ci) with compile-time divisors, so a 144-tap stem is 9 chunks of 16, not 144
 *    chunks of 1. (A vec4 variant of it for any Cin multiple of 4, with 32-wide chunks spanning
 *    taps, measured no faster than 'tap' and was dropped.)
 * Filter and output are read and written as vec4 when Cout is a multiple of 4 (scalar otherwise).
 * Per-row data (the input corner and batch offset of every voxel of the tile) is computed once per
 * workgroup into workgroup memory.
 *
 * 'direct' (default on software adapters such as lavapipe). No workgroup memory and no barriers:
 * each thread reads, per tap, its RM voxel rows (one bounds test per row and tap) and walks the
 * channels, a vec4 of A per row and CN vec4s of 4 filter rows, straight from the buffers; the
 * threads sharing rows or filter columns share them through the caches. 'tap' when Cin is a
 * multiple of 4, else 'flat' (one k at a time, scalar A).
 *
 * Both variants: all shapes that fix loop bounds are compile-time constants of
 * the shader (one pipeline per layer shape, cached by tfjs); the spatial sizes and paddings are
 * uniforms, so the tiles of a large volume share pipelines. Voxel tiles go on dispatch y, wrapped
 * onto z past 65,535.
 *
 * Tiles: TN = 16, 32 or 64 by Cout (a 16-channel layer does not waste 3/4 of a 64-wide tile),
 * RM = 8 and CN = 2 (an 8 x 8 block per thread), TM = 128 voxels staged (32, 64 or 128 threads per
 * workgroup), 64 direct (16, 32 or 64); TK = 16 (workgroup memory 10-14 KiB, under WebGPU's default
 * 16 KiB). On this CPU's WebGPU (Dawn on Mesa lavapipe): 8 x 8 blocks ran 1.5x faster than 4 x 4
 * ones; TM 64 vs 128 and TK 16 vs 32 made no measurable difference for 'staged'; 'direct' ran
 * 1.3-1.5x faster than 'staged' (barriers are coroutine switches in lavapipe), TM 64 best. Against
 * the naive kernel over the small network's layers: direct 6.4-7.5x, staged 4.4-5.6x (README, "The
 * forward convolution kernel"; `sam bench-train` on WebGPU times both variants per layer).
 * On a large GPU (H100) 'staged' is the classic shape: ~10^4 workgroups for a whole CT at level 1
 * (1.2M voxels / 128 per tile), coalesced global reads, each A and B element read from global
 * memory once per tile column/row instead of once per output element, and 64 multiply-adds per 16
 * workgroup-memory reads; 'direct' leans on the L1/L2 caches instead (its A reads are 16-byte
 * pieces of different voxels across a warp). We expect either to move the convolutions from the
 * naive kernel's rate towards that of tfjs' matrix programs, but that is unmeasured here, and so is
 * which variant wins there. Weak spot on a GPU: the deepest levels (a few thousand voxels, K up to
 * 27 x 512) make few workgroups that each walk all of K, so a split-K variant would help the
 * paper-size network; the small one spends little time there.
 *
 * Differentiable: tf.customGrad, input gradient by this same program with the flipped, transposed
 * filter for stride-1 'same' convolutions (conv3dInputGrad; tfjs' Conv3DBackpropInputV2 for the
 * strided stems), filter gradient by tfjs' Conv3DBackpropFilterV2 or by the caller's function
 * (network.ts passes the WGSL weight-gradient kernel on WebGPU).
 *
 * Layout: NDHWC [B, D, H, W, C], filters [kd, kh, kw, Cin, Cout], dilation 1 (tf.conv3d's order).
 * The program sees x as [B*D*H*W, Cin], the filter as [K, Cout] and writes [M, Cout] (free
 * reshapes): tfjs-webgpu cannot index rank-5 coordinates in generated shader code (see network.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { sumPerChannel } from './channel-sum-wgsl.ts';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { Conv3dFilterGrad } from './conv3d-filter-grad.ts';
import { isSoftwareAdapter } from '../compute/tf-backend.ts';

export type Vec3 = [number, number, number];
export type Shape5 = [number, number, number, number, number];

/**
 * Tile sizes of one program (see the header): TM voxels x TN channels per workgroup, K in chunks of
 * TK; each thread accumulates RM voxels x CN vec4s of channels.
 */
export interface Conv3dTiles {
  tm: number;
  tn: number;
  tk: number;
  rm: number;
  cn: number;
  /** 'staged': A and B tiles through workgroup memory; 'direct': each thread reads its operands from the buffers. */
  variant: 'staged' | 'direct';
}

const KERNEL_NAME = 'SamConv3DWgsl';
/** Default workgroup memory limit of WebGPU (maxComputeWorkgroupStorageSize). */
const SHARED_BYTES = 16384;

type Mode = 'tap' | 'flat';
/** Tile overrides; maxWorkgroupsY (default WebGPU's 65,535) lets tests wrap the dispatch onto z. */
type TileOverride = Partial<Conv3dTiles & { mode: Mode; maxWorkgroupsY: number }>;
let tileOverride: TileOverride = {};

/** For benchmarks and tests: override the tile sizes the heuristic picks (an empty object restores it). */
export function setConv3dWgslTiles(t: TileOverride): void {
  tileOverride = { ...t };
}

/**
 * The tiles used for a layer. `variant` (unless overridden): 'direct' on a software adapter (a CPU
 * rasteriser such as lavapipe: workgroup barriers are coroutine switches there and the direct
 * variant measured 1.4x the staged one), 'staged' on a GPU (the usual tiled shape; unmeasured on a
 * GPU so far, `sam bench-train` on WebGPU times both). TN = 16, 32 or 64 by Cout; 8 x 8 register
 * blocks (RM = 8 voxels x CN = 2 vec4s of channels); TM = 128 voxels staged (32, 64 or 128
 * threads), 64 direct (16, 32 or 64 threads; measured best on lavapipe); TK = 16 (TK = 32 would
 * exceed 16 KiB of workgroup memory at TM = 128 and measured no faster). Staged: 'tap' when Cin is
 * a multiple of 16, direct: when Cin is a multiple of 4; 'flat' otherwise.
 */
export function chooseTiles(
  cin: number,
  cout: number,
  defaultVariant: Conv3dTiles['variant'] = 'staged',
): Conv3dTiles & { mode: Mode } {
  const variant = tileOverride.variant ?? defaultVariant;
  const tn = tileOverride.tn ?? (cout <= 16 ? 16 : cout <= 32 ? 32 : 64);
  const tm = tileOverride.tm ?? (variant === 'direct' ? 64 : 128);
  const rm = tileOverride.rm ?? 8;
  const cn = tileOverride.cn ?? 2;
  const tk = tileOverride.tk ?? 16;
  if (variant === 'direct') {
    const mode: Mode = tileOverride.mode ?? (cin % 4 === 0 ? 'tap' : 'flat');
    if (mode === 'tap' && cin % 4 !== 0) throw new Error(`conv3dWgsl: 'tap' needs Cin a multiple of 4`);
    return { tm, tn, tk, rm, cn, mode, variant };
  }
  if ((tm * tk + tk * tn) * 4 + tm * 16 > SHARED_BYTES) throw new Error(`conv3dWgsl: tiles exceed workgroup memory`);
  const mode: Mode = tileOverride.mode ?? (cin % 16 === 0 && cin % tk === 0 ? 'tap' : 'flat');
  if (mode === 'tap' && cin % tk !== 0) throw new Error(`conv3dWgsl: 'tap' needs Cin a multiple of TK`);
  return { tm, tn, tk, rm, cn, mode, variant };
}

/**
 * WGSL: a thread's place in its workgroup (tx along channels, ty along voxels, WN threads across),
 * the input's dimensions, and the workgroup's first output voxel m0 and channel n0 (voxel tiles wrap
 * from dispatch y onto z); both variants of the program start with it.
 */
function tileStart(wn: number, tm: number, tn: number): string {
  return `let t = i32(localIndex);
  let tx = t % ${wn};
  let ty = t / ${wn};
  let inD = uniforms.inDims.x;
  let inH = uniforms.inDims.y;
  let inW = uniforms.inDims.z;
  let m0 = (i32(workgroupId.z) * uniforms.tilesY + i32(workgroupId.y)) * ${tm};
  let n0 = i32(workgroupId.x) * ${tn};`;
}

/**
 * WGSL: for output row `m` (flat output voxel, x fastest, then y, z, batch) below uniforms.M, set
 * `target` to its input corner (z, y, x: the output index times the stride, minus the padding) and
 * its batch offset; both variants of the program start their rows with it.
 */
function voxelCorner(target: string, [sd, sh, sw]: Vec3): string {
  return `if (m < uniforms.M) {
      let ox = m % uniforms.outDims.z;
      let m1 = m / uniforms.outDims.z;
      let oy = m1 % uniforms.outDims.y;
      let m2 = m1 / uniforms.outDims.y;
      let oz = m2 % uniforms.outDims.x;
      let bt = m2 / uniforms.outDims.x;
      ${target} = vec4<i32>(oz * ${sd} - uniforms.pads.x, oy * ${sh} - uniforms.pads.y, ox * ${sw} - uniforms.pads.z,
        bt * inD * inH * inW);
    }`;
}

/** The default variant for a backend: 'direct' on a software adapter (lavapipe, SwiftShader), else 'staged'. */
export function defaultVariant(backend: unknown): Conv3dTiles['variant'] {
  const info = (backend as { adapterInfo?: { vendor?: string; architecture?: string } }).adapterInfo;
  return isSoftwareAdapter(info) ? 'direct' : 'staged';
}

class Conv3DMMProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  variableNames = ['x', 'W'];
  variableComponents: number[];
  outputComponent: number;
  uniforms = 'inDims : vec3<i32>, outDims : vec3<i32>, pads : vec3<i32>, M : i32, tilesY : i32,';
  workgroupSize: [number, number, number];
  readonly tilesY: number;

  constructor(
    private readonly info: tf.backend_util.Conv3DInfo,
    private readonly t: Conv3dTiles & { mode: Mode },
    /** Add a per-output-channel bias (a third input, [Cout]) to every result. */
    private readonly bias = false,
  ) {
    const { tm, tn, tk, rm, cn } = t;
    const cin = info.inChannels;
    const cout = info.outChannels;
    if (tn % (4 * cn) !== 0 || tm % rm !== 0 || tk % 4 !== 0)
      throw new Error(`conv3dWgsl: bad tiles ${JSON.stringify(t)}`);
    const M = info.batchSize * info.outDepth * info.outHeight * info.outWidth;
    this.outputShape = [M, cout];
    const threads = (tm / rm) * (tn / 4 / cn);
    if (threads > 256) throw new Error(`conv3dWgsl: ${threads} threads per workgroup (at most 256)`);
    this.workgroupSize = [threads, 1, 1];
    const tilesM = Math.ceil(M / tm);
    // voxel tiles on y, wrapped onto z past WebGPU's 65,535 workgroups a dimension (whole CTs at
    // stride 1: 9.4M voxels = 74k tiles); at most z - 1 surplus workgroups, which write nothing
    const tilesZ = Math.ceil(tilesM / (tileOverride.maxWorkgroupsY ?? 65535));
    this.tilesY = Math.ceil(tilesM / tilesZ);
    this.dispatch = [Math.ceil(cout / tn), this.tilesY, tilesZ];
    const xv = t.mode === 'flat' ? 1 : 4;
    const ov = cout % 4 === 0 ? 4 : 1;
    this.variableComponents = bias ? [xv, ov, ov] : [xv, ov];
    if (bias) this.variableNames = ['x', 'W', 'bias'];
    this.outputComponent = ov;
    const k = [info.filterDepth, info.filterHeight, info.filterWidth];
    const s = [info.strideDepth, info.strideHeight, info.strideWidth];
    this.shaderKey = `samConv3dMM_${t.variant}_${t.mode}_${tm}_${tn}_${tk}_${rm}_${cn}_${k.join('x')}_${s.join('x')}_${cin}_${cout}${bias ? '_bias' : ''}`;
  }

  getUserCode(): string {
    return this.t.variant === 'direct' ? this.directCode() : this.stagedCode();
  }

  /**
   * The direct variant: no workgroup memory, no barriers. Each thread computes its RM x 4CN block
   * reading A (vec4s of a voxel's channels in 'tap' mode, scalars in 'flat') and B (vec4s of a
   * filter row) straight from the buffers; threads of a workgroup share rows and filter rows
   * through the caches.
   */
  /** The convolution's kernel sizes, strides, channels and K = taps x input channels, as both variants name them. */
  private dims() {
    const info = this.info;
    const [KD, KH, KW] = [info.filterDepth, info.filterHeight, info.filterWidth];
    const [SD, SH, SW] = [info.strideDepth, info.strideHeight, info.strideWidth];
    const CIN = info.inChannels;
    return { KD, KH, KW, SD, SH, SW, CIN, COUT: info.outChannels, K: KD * KH * KW * CIN };
  }

  private directCode(): string {
    const { tn, rm, cn, mode } = this.t;
    const { KD, KH, KW, SD, SH, SW, CIN, COUT, K } = this.dims();
    const WN = tn / 4 / cn;
    const I = [...Array(rm).keys()];
    const J = [...Array(cn).keys()];
    const Q = [0, 1, 2, 3];
    // columns past COUT read a valid filter column (clamped) and are never written
    const readB = (k: string, j: number) =>
      COUT % 4 === 0
        ? `W[(${k}) * ${COUT / 4} + nb${j}]`
        : `vec4<f32>(${Q.map((q) => `W[(${k}) * ${COUT} + min(nc${j} + ${q}, ${COUT - 1})]`).join(', ')})`;
    const rowSetup = I.map(
      (i) => `
  var info${i} = vec4<i32>(-1073741824, 0, 0, 0);
  {
    let m = m0 + ty * ${rm} + ${i};
    ${voxelCorner(`info${i}`, [SD, SH, SW])}
  }`,
    ).join('');
    const rowOffset = (i: number, abc: [string, string, string]) => `
      let iz${i} = info${i}.x + ${abc[0]};
      let iy${i} = info${i}.y + ${abc[1]};
      let ix${i} = info${i}.z + ${abc[2]};
      let ok${i} = iz${i} >= 0 && iz${i} < inD && iy${i} >= 0 && iy${i} < inH && ix${i} >= 0 && ix${i} < inW;
      let base${i} = select(0, info${i}.w + (iz${i} * inH + iy${i}) * inW + ix${i}, ok${i});`;
    const fma = (i: number, j: number, a: string, q: number | null) =>
      `acc${i}_${j} = fma(vec4<f32>(${a}${q === null ? '' : `.${'xyzw'[q]}`}), b${j}_${q ?? 0}, acc${i}_${j});`;
    let body: string;
    if (mode === 'tap') {
      const C4 = CIN / 4;
      body = `
  for (var a = 0; a < ${KD}; a++) {
    for (var b = 0; b < ${KH}; b++) {
      for (var c = 0; c < ${KW}; c++) {
        ${I.map((i) => rowOffset(i, ['a', 'b', 'c'])).join('')}
        let k0 = ((a * ${KH} + b) * ${KW} + c) * ${CIN};
        for (var c4 = 0; c4 < ${C4}; c4++) {
          ${I.map((i) => `let a${i} = select(vec4<f32>(0.0), x[base${i} * ${C4} + c4], ok${i});`).join('\n')}
          ${J.map((j) => Q.map((q) => `let b${j}_${q} = ${readB(`k0 + c4 * 4 + ${q}`, j)};`).join('\n')).join('\n')}
          ${I.map((i) => J.map((j) => Q.map((q) => fma(i, j, `a${i}`, q)).join('\n')).join('\n')).join('\n')}
        }
      }
    }
  }`;
    } else {
      body = `
  for (var k = 0; k < ${K}; k++) {
    let tap = k / ${CIN};
    let ci = k - tap * ${CIN};
    let a = tap / ${KH * KW};
    let bc = tap - a * ${KH * KW};
    let b = bc / ${KW};
    let c = bc - b * ${KW};
    ${I.map((i) => rowOffset(i, ['a', 'b', 'c'])).join('')}
    ${I.map((i) => `let a${i} = select(0.0, x[base${i} * ${CIN} + ci], ok${i});`).join('\n')}
    ${J.map((j) => `let b${j}_0 = ${readB('k', j)};`).join('\n')}
    ${I.map((i) => J.map((j) => fma(i, j, `a${i}`, null)).join('\n')).join('\n')}
  }`;
    }
    const write = (i: number, j: number) => {
      const store =
        COUT % 4 === 0
          ? `result[m * ${COUT / 4} + n / 4] = acc${i}_${j}${this.bias ? ' + bias[n / 4]' : ''};`
          : Q.map(
              (q) =>
                `if (n + ${q} < ${COUT}) { result[m * ${COUT} + n + ${q}] = acc${i}_${j}[${q}]${this.bias ? ` + bias[n + ${q}]` : ''}; }`,
            ).join('\n');
      return `{
    let m = m0 + ty * ${rm} + ${i};
    let n = nc${j};
    if (m < uniforms.M && n < ${COUT}) {
      ${store}
    }
  }`;
    };
    return `
${main()} {
  ${tileStart(WN, this.t.tm, tn)}
  ${J.map((j) => `let nc${j} = n0 + (tx + ${j * WN}) * 4;`).join('\n')}
  ${COUT % 4 === 0 ? J.map((j) => `let nb${j} = min(nc${j}, ${COUT - 4}) / 4;`).join('\n') : ''}
  ${rowSetup}
  ${I.map((i) => J.map((j) => `var acc${i}_${j} = vec4<f32>(0.0);`).join('\n')).join('\n')}
  ${body}
  ${I.map((i) => J.map((j) => write(i, j)).join('\n')).join('\n')}
}`;
  }

  private stagedCode(): string {
    const { tm, tn, tk, rm, cn, mode } = this.t;
    const { KD, KH, KW, SD, SH, SW, CIN, COUT, K } = this.dims();
    const NT = this.workgroupSize[0];
    const TN4 = tn / 4;
    const WN = TN4 / cn; // threads along the channels
    const TK4 = tk / 4;
    const I = [...Array(rm).keys()];
    const J = [...Array(cn).keys()];
    const inBounds = 'iz >= 0 && iz < inD && iy >= 0 && iy < inH && ix >= 0 && ix < inW';
    // filter row k at columns n..n+3 (n < COUT) as a vec4
    const readB =
      COUT % 4 === 0
        ? `if (n < ${COUT}) { v = W[(k * ${COUT} + n) / 4]; }`
        : [0, 1, 2, 3].map((j) => `if (n + ${j} < ${COUT}) { v[${j}] = W[k * ${COUT} + n + ${j}]; }`).join('\n');
    const loadB = (kExpr: string, guard: string) => `
        for (var s = t; s < ${tk * TN4}; s += ${NT}) {
          let r = s / ${TN4};
          let n = n0 + (s % ${TN4}) * 4;
          let k = ${kExpr} + r;
          var v = vec4<f32>(0.0);
          ${guard ? `if (${guard}) {` : ''}
          ${readB}
          ${guard ? '}' : ''}
          Bsub[r][s % ${TN4}] = v;
        }`;
    // the register block: RM rows x CN vec4 columns, unrolled (acc_i_j), a thread's columns WN apart
    const fmas = I.map(
      (i) => `
            let a${i} = Asub[ty * ${rm} + ${i}][k4];
            ${J.map((j) => ['x', 'y', 'z', 'w'].map((c, q) => `acc${i}_${j} = fma(vec4<f32>(a${i}.${c}), b${j}_${q}, acc${i}_${j});`).join('\n')).join('\n')}`,
    ).join('');
    const compute = `
        workgroupBarrier();
        for (var k4 = 0; k4 < ${TK4}; k4++) {
          ${J.map((j) => [0, 1, 2, 3].map((q) => `let b${j}_${q} = Bsub[k4 * 4 + ${q}][tx + ${j * WN}];`).join('\n')).join('\n')}
          ${fmas}
        }
        workgroupBarrier();`;
    let body: string;
    if (mode === 'tap') {
      body = `
  for (var a = 0; a < ${KD}; a++) {
    for (var b = 0; b < ${KH}; b++) {
      for (var c = 0; c < ${KW}; c++) {
        let tap = (a * ${KH} + b) * ${KW} + c;
        for (var c0 = 0; c0 < ${CIN}; c0 += ${tk}) {
          for (var s = t; s < ${tm * TK4}; s += ${NT}) {
            let row = s / ${TK4};
            let q = s % ${TK4};
            let info = rowInfo[row];
            let iz = info.x + a;
            let iy = info.y + b;
            let ix = info.z + c;
            var v = vec4<f32>(0.0);
            if (${inBounds}) {
              v = x[(info.w + (iz * inH + iy) * inW + ix) * ${CIN / 4} + c0 / 4 + q];
            }
            Asub[row][q] = v;
          }
          ${loadB(`tap * ${CIN} + c0`, '')}
          ${compute}
        }
      }
    }
  }`;
    } else {
      const elem = (j: number) => {
        const decompose =
          CIN === 1
            ? `let tap = k;`
            : `let tap = k / ${CIN};
              let ci = k - tap * ${CIN};`;
        return `{
            let k = k0 + q * 4 + ${j};
            if (k < ${K}) {
              ${decompose}
              let a = tap / ${KH * KW};
              let bc = tap - a * ${KH * KW};
              let b = bc / ${KW};
              let c = bc - b * ${KW};
              let iz = info.x + a;
              let iy = info.y + b;
              let ix = info.z + c;
              if (${inBounds}) {
                v[${j}] = x[(info.w + (iz * inH + iy) * inW + ix) * ${CIN}${CIN === 1 ? '' : ' + ci'}];
              }
            }
          }`;
      };
      body = `
  for (var kt = 0; kt < ${Math.ceil(K / tk)}; kt++) {
    let k0 = kt * ${tk};
    for (var s = t; s < ${tm * TK4}; s += ${NT}) {
      let row = s / ${TK4};
      let q = s % ${TK4};
      let info = rowInfo[row];
      var v = vec4<f32>(0.0);
      ${[0, 1, 2, 3].map(elem).join('\n')}
      Asub[row][q] = v;
    }
    ${loadB('k0', `k < ${K}`)}
    ${compute}
  }`;
    }
    const write = (i: number, j: number) => {
      const store =
        COUT % 4 === 0
          ? `result[m * ${COUT / 4} + n / 4] = acc${i}_${j}${this.bias ? ' + bias[n / 4]' : ''};`
          : [0, 1, 2, 3]
              .map(
                (q) =>
                  `if (n + ${q} < ${COUT}) { result[m * ${COUT} + n + ${q}] = acc${i}_${j}[${q}]${this.bias ? ` + bias[n + ${q}]` : ''}; }`,
              )
              .join('\n');
      return `{
    let m = m0 + ty * ${rm} + ${i};
    let n = n0 + (tx + ${j * WN}) * 4;
    if (m < uniforms.M && n < ${COUT}) {
      ${store}
    }
  }`;
    };
    return `
var<workgroup> Asub : array<array<vec4<f32>, ${TK4}>, ${tm}>;
var<workgroup> Bsub : array<array<vec4<f32>, ${TN4}>, ${tk}>;
var<workgroup> rowInfo : array<vec4<i32>, ${tm}>;

${main()} {
  ${tileStart(WN, tm, tn)}
  // each voxel row of the tile: input corner (z, y, x) and batch offset; rows past M read nothing
  for (var r = t; r < ${tm}; r += ${NT}) {
    let m = m0 + r;
    var info = vec4<i32>(-1073741824, 0, 0, 0);
    ${voxelCorner('info', [SD, SH, SW])}
    rowInfo[r] = info;
  }
  ${I.map((i) => J.map((j) => `var acc${i}_${j} = vec4<f32>(0.0);`).join('\n')).join('\n')}
  workgroupBarrier();
  ${body}
  ${I.map((i) => J.map((j) => write(i, j)).join('\n')).join('\n')}
}`;
  }
}

/** tfjs-webgpu's getMainHeaderString() (webgpu_program.js): the entry `_start` calls `main()`. */
const main = () => 'fn main()';

interface KernelAttrs {
  strides: Vec3;
  pad: 'same' | 'valid';
}

function kernelFunc({
  inputs,
  backend,
  attrs,
}: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const { x, filter, bias } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo; bias?: tf.TensorInfo };
  const { strides, pad } = attrs as unknown as KernelAttrs;
  const info = tf.backend_util.computeConv3DInfo(x.shape as Shape5, filter.shape as Shape5, strides, 1, pad);
  const program = new Conv3DMMProgram(
    info,
    chooseTiles(info.inChannels, info.outChannels, defaultVariant(backend)),
    bias !== undefined,
  );
  const p = info.padInfo;
  const uniforms = [
    { type: 'int32', data: [info.inDepth, info.inHeight, info.inWidth] },
    { type: 'int32', data: [info.outDepth, info.outHeight, info.outWidth] },
    { type: 'int32', data: [p.front, p.top, p.left] },
    { type: 'int32', data: [program.outputShape[0]] },
    { type: 'int32', data: [program.tilesY] },
  ];
  // rank-2 views of the same buffers (free)
  const x2 = {
    dataId: x.dataId,
    shape: [x.shape[0] * x.shape[1] * x.shape[2] * x.shape[3], x.shape[4]],
    dtype: x.dtype,
  };
  const w2 = {
    dataId: filter.dataId,
    shape: [filter.shape.slice(0, 4).reduce((a, b) => a * b, 1), filter.shape[4]],
    dtype: filter.dtype,
  };
  const ins = bias ? [x2, w2, { dataId: bias.dataId, shape: [bias.shape[0]], dtype: bias.dtype }] : [x2, w2];
  const out = (backend as WebGPUBackend).runWebGPUProgram(program, ins, 'float32', uniforms);
  return { dataId: out.dataId, shape: info.outShape, dtype: out.dtype };
}

function ensureKernel(): void {
  if (tf.getKernel(KERNEL_NAME, 'webgpu')) return;
  tf.registerKernel({ kernelName: KERNEL_NAME, backendName: 'webgpu', kernelFunc });
}

/** Forward only (no gradient): the WGSL program on the active webgpu backend; plus `bias` [Cout] if given. */
export function conv3dWgslForward(
  x: tf.Tensor5D,
  filter: tf.Tensor5D,
  strides: Vec3,
  pad: 'same' | 'valid',
  bias?: tf.Tensor,
): tf.Tensor5D {
  if (tf.getBackend() !== 'webgpu')
    throw new Error(`conv3dWgsl needs the tfjs 'webgpu' backend (the active backend is '${tf.getBackend()}')`);
  if (x.rank !== 5 || filter.rank !== 5) throw new Error(`conv3dWgsl: x and filter must be rank 5`);
  if (x.shape[4] !== filter.shape[3])
    throw new Error(`conv3dWgsl: input channels ${x.shape[4]} differ from the filter's ${filter.shape[3]}`);
  if (x.dtype !== 'float32' || filter.dtype !== 'float32') throw new Error(`conv3dWgsl: float32 only`);
  if (bias && (bias.size !== filter.shape[4] || bias.dtype !== 'float32'))
    throw new Error(
      `conv3dWgsl: the bias must be ${filter.shape[4]} float32 values (got [${bias.shape}] ${bias.dtype})`,
    );
  ensureKernel();
  const attrs: KernelAttrs = { strides, pad };
  const inputs: tf.NamedTensorMap = bias ? { x, filter, bias } : { x, filter };
  return tf.engine().runKernel(KERNEL_NAME, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor5D;
}

/** tfjs' own filter gradient kernel (Conv3DBackpropFilterV2), as tf.conv3d's gradient calls it. */
const builtinFilterGrad: Conv3dFilterGrad = (x, dy, filterShape, strides, pad) =>
  tf.engine().runKernel('Conv3DBackpropFilterV2', { x, dy }, {
    strides,
    pad,
    filterShape,
  } as unknown as tf.NamedAttrMap) as tf.Tensor5D;

/** W'[a, b, c, o, i] = W[kd-1-a, kh-1-b, kw-1-c, i, o], one workgroup per tap (flipping the three tap axes reverses the flat tap index). */
class FlipSwapProgram implements WebGPUProgram {
  variableNames = ['W'];
  outputShape: number[];
  shaderKey = 'samConvFlipSwap';
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [128, 1, 1];
  uniforms = 'taps : i32, cin : i32, cout : i32,';

  constructor(taps: number, cin: number, cout: number) {
    this.outputShape = [taps, cout * cin];
    this.dispatch = [1, taps, 1];
  }

  getUserCode(): string {
    return `
fn main() {
  let tap = i32(workgroupId.y);
  let n = uniforms.cin * uniforms.cout;
  let src = (uniforms.taps - 1 - tap) * n;
  for (var e = i32(localIndex); e < n; e += 128) {
    let o = e / uniforms.cin;
    let i = e - o * uniforms.cin;
    result[tap * n + e] = W[src + i * uniforms.cout + o];
  }
}`;
  }
}

/** The input gradient's filter W' (flipped taps, channels swapped) in one dispatch: [kd, kh, kw, Cout, Cin]. */
export function flipSwapFilter(filter: tf.Tensor5D): tf.Tensor5D {
  const [kd, kh, kw, cin, cout] = filter.shape;
  const taps = kd * kh * kw;
  const backend = tf.backend() as unknown as WebGPUBackend;
  const flat = { dataId: filter.dataId, shape: [taps, cin * cout], dtype: filter.dtype };
  const out = backend.runWebGPUProgram(new FlipSwapProgram(taps, cin, cout), [flat], 'float32', [
    { type: 'int32', data: [taps] },
    { type: 'int32', data: [cin] },
    { type: 'int32', data: [cout] },
  ]);
  return tf.engine().makeTensorFromTensorInfo({ ...out, shape: [kd, kh, kw, cout, cin] }) as tf.Tensor5D;
}

/**
 * dL/dx of conv3d(x, W, strides, pad) given dy. A stride-1 'same' convolution with an odd kernel is
 * its own transpose up to the filter: dx = conv3d_same(dy, W'), W'[a, b, c, o, i] =
 * W[kd-1-a, kh-1-b, kw-1-c, i, o] (flipped taps, channels swapped), so it runs on the WGSL forward
 * program instead of tfjs' naive Conv3DBackpropInputV2 (the next bottleneck of training on WebGPU
 * once the forward and the weight gradient are fast). Other convolutions (the strided stems) keep
 * tf.conv3dTranspose.
 */
export function conv3dInputGrad(
  dy: tf.Tensor5D,
  filter: tf.Tensor5D,
  xShape: Shape5,
  strides: Vec3,
  pad: 'same' | 'valid',
): tf.Tensor5D {
  const [kd, kh, kw] = filter.shape;
  const same = pad === 'same' || (kd === 1 && kh === 1 && kw === 1);
  if (!(same && strides.every((s) => s === 1) && kd % 2 === 1 && kh % 2 === 1 && kw % 2 === 1))
    return tf.conv3dTranspose(dy, filter, xShape, strides, pad);
  const flipped = flipSwapFilter(filter);
  try {
    return conv3dWgslForward(dy, flipped, [1, 1, 1], 'same');
  } finally {
    flipped.dispose();
  }
}

/**
 * tf.conv3d(x, filter, strides, pad) (NDHWC, filter [kd, kh, kw, Cin, Cout], dilation 1) with the
 * forward pass in WGSL; needs the webgpu backend. Gradients: input by conv3dInputGrad, filter by
 * `filterGrad` (default tfjs' Conv3DBackpropFilterV2). With `bias` [Cout], plus the bias in the same
 * dispatch (the same numbers as adding it after: one float addition per value), its gradient the
 * per-channel sum of dy (sumPerChannel: one dispatch).
 */
export function conv3dWgsl(
  x: tf.Tensor5D,
  filter: tf.Tensor5D,
  strides: Vec3,
  pad: 'same' | 'valid',
  filterGrad: Conv3dFilterGrad = builtinFilterGrad,
  bias?: tf.Tensor,
): tf.Tensor5D {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xi, wi] = args as [tf.Tensor5D, tf.Tensor5D];
    const bi = bias ? (args[2] as tf.Tensor) : undefined;
    const save = args[bias ? 3 : 2] as tf.GradSaveFunc;
    const value = conv3dWgslForward(xi, wi, strides, pad, bi);
    save([xi, wi]);
    const gradFunc = (dy: tf.Tensor5D, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [tf.Tensor5D, tf.Tensor5D];
      const grads: tf.Tensor[] = [
        conv3dInputGrad(dy, ws, xs.shape, strides, pad),
        filterGrad(xs, dy, ws.shape as Shape5, strides, pad),
      ];
      if (bi) grads.push(bi.rank === 1 ? sumPerChannel(dy) : tf.reshape(sumPerChannel(dy), bi.shape));
      return grads;
    };
    return { value, gradFunc };
  });
  return (bias ? f(x, filter, bias) : f(x, filter)) as tf.Tensor5D;
}
