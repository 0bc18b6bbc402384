/**
 * The mining's local ranking score on tfjs' WebGPU backend in a few WGSL dispatches (negatives.ts
 * computes the same numbers with tfjs ops: about 17 dispatches a direction and 30 a pair).
 *
 * For a pair (patches A and B, local rows 0..2Vl-1, global rows 0..2Vg-1) and a query q:
 *   score(q, v) = cl[q] . cl[v] + up(q) . up(v) / (|up(q)| |up(v)|)
 * where up(v) = sum over the 8 global voxels around v of their trilinear weight times the global
 * embedding (the patch's own global grid, interpolationTaps). With the Gram matrix G = cg cg^T of
 * the pair's global embeddings (one matMul), up(a) . up(b) = sum_c sum_d w_a,c w_b,d G[c, d]: no
 * upsampled embedding is ever formed.
 *  - norms: |up(v)| of every local voxel of both patches (one dispatch a pair);
 *  - query rows: s_q[d] = sum_c w_q,c G[c, d] / |up(q)| for every global voxel d (one a direction);
 *  - scores: cl[q] . cl[v] (tfjs' matMul) plus sum_d w_v,d s_q[d] / |up(v)| (one a direction).
 * Equal to the tfjs-ops scores within float32 rounding (test/unit/train-local-score-wgsl.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { foldedDispatch, runWebgpuProgram } from '../compute/run-webgpu-program.ts';
import type { Geometry } from '../volume/geometry.ts';
import { interpolationTaps } from './negatives.ts';

const THREADS = 128;

/**
 * WGSL: the 8 trilinear taps of local voxel v (0..2Vl-1: patch v / Vl) as global rows of the pair
 * (0..2Vg-1) and weights. Tables: g0 (int) and f (float) per patch and axis, x then y then z.
 */
function tapsWgsl(lx: number, ly: number, lz: number, gx: number, gy: number, gz: number): string {
  const per = lx + ly + lz;
  return `
const LX = ${lx};
const LY = ${ly};
const LZ = ${lz};
const VL = ${lx * ly * lz};
const GX = ${gx};
const GY = ${gy};
const VG = ${gx * gy * gz};

struct Taps { row : array<i32, 8>, w : array<f32, 8> };

fn tapsOf(v : i32) -> Taps {
  let pt = v / VL;
  let r = v - pt * VL;
  let i = r % LX;
  let j = (r / LX) % LY;
  let k = r / (LX * LY);
  let o = pt * ${per};
  let x0 = g0[o + i];
  let y0 = g0[o + LX + j];
  let z0 = g0[o + LX + LY + k];
  let fx = ff[o + i];
  let fy = ff[o + LX + j];
  let fz = ff[o + LX + LY + k];
  var t : Taps;
  for (var c = 0; c < 8; c++) {
    let dx = c & 1;
    let dy = (c >> 1) & 1;
    let dz = (c >> 2) & 1;
    let wx = select(1.0 - fx, fx, dx == 1);
    let wy = select(1.0 - fy, fy, dy == 1);
    let wz = select(1.0 - fz, fz, dz == 1);
    // a tap of weight 0 may lie past the grid's end (a one-voxel axis): point it at the first
    let w = wx * wy * wz;
    t.w[c] = w;
    t.row[c] = select(pt * VG, pt * VG + ((z0 + dz) * GY + y0 + dy) * GX + x0 + dx, w != 0.0);
  }
  return t;
}`;
}

abstract class PairProgram implements WebGPUProgram {
  abstract variableNames: string[];
  outputShape: number[] = [];
  abstract shaderKey: string;
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number] = [1, 1, 1];
  workgroupSize: [number, number, number] = [THREADS, 1, 1];
  constructor(protected readonly sizes: number[]) {}
  abstract getUserCode(): string;
}

/** |up(v)| for the 2Vl local voxels: [2Vl]. */
class NormsProgram extends PairProgram {
  variableNames = ['gram', 'g0', 'ff'];
  shaderKey: string;
  constructor(sizes: number[]) {
    super(sizes);
    const vl = sizes[0] * sizes[1] * sizes[2];
    this.outputShape = [2 * vl];
    this.dispatch = foldedDispatch(Math.ceil((2 * vl) / THREADS));
    this.shaderKey = `samMiningNorms_${sizes.join('_')}`;
  }
  // used by the shader (an unused uniform block would leave its binding out of the layout)
  uniforms = 'nv : i32,';
  getUserCode(): string {
    const [lx, ly, lz, gx, gy, gz] = this.sizes;
    return `${tapsWgsl(lx, ly, lz, gx, gy, gz)}
fn main() {
  let v = i32((workgroupId.x + workgroupId.y * numWorkgroups.x) * ${THREADS}u + localIndex);
  if (v >= uniforms.nv) { return; }
  let t = tapsOf(v);
  var s = 0.0;
  for (var a = 0; a < 8; a++) {
    for (var b = 0; b < 8; b++) { s += t.w[a] * t.w[b] * gram[t.row[a] * 2 * VG + t.row[b]]; }
  }
  result[v] = sqrt(max(s, 1e-24));
}`;
  }
}

/** s_q[d] = sum_c w_q,c G[c, d] / |up(q)| for each query and each of the 2Vg global voxels: [nq, 2Vg]. */
class QueryRowsProgram extends PairProgram {
  variableNames = ['gram', 'g0', 'ff', 'norms', 'queries'];
  shaderKey: string;
  constructor(sizes: number[], nq: number) {
    super(sizes);
    const vg = sizes[3] * sizes[4] * sizes[5];
    this.outputShape = [nq, 2 * vg];
    this.dispatch = foldedDispatch(nq);
    this.shaderKey = `samMiningQueryRows_${sizes.join('_')}`;
  }
  getUserCode(): string {
    const [lx, ly, lz, gx, gy, gz] = this.sizes;
    return `${tapsWgsl(lx, ly, lz, gx, gy, gz)}
fn main() {
  let q = i32(workgroupId.x + workgroupId.y * numWorkgroups.x);
  if (q >= uniforms.nq) { return; }
  let v = queries[q];
  let t = tapsOf(v);
  let inv = 1.0 / norms[v];
  for (var d = i32(localIndex); d < 2 * VG; d += ${THREADS}) {
    var s = 0.0;
    for (var a = 0; a < 8; a++) { s += t.w[a] * gram[t.row[a] * 2 * VG + d]; }
    result[q * 2 * VG + d] = s * inv;
  }
}`;
  }
  uniforms = 'nq : i32,';
}

/** local dot products [nq, 2Vl] plus sum_d w_v,d s_q[d] / |up(v)|. */
class ScoresProgram extends PairProgram {
  variableNames = ['dots', 'rows', 'g0', 'ff', 'norms'];
  shaderKey: string;
  constructor(sizes: number[], nq: number) {
    super(sizes);
    const vl = sizes[0] * sizes[1] * sizes[2];
    this.outputShape = [nq, 2 * vl];
    this.dispatch = foldedDispatch(Math.ceil((nq * 2 * vl) / THREADS));
    this.shaderKey = `samMiningScores_${sizes.join('_')}`;
  }
  getUserCode(): string {
    const [lx, ly, lz, gx, gy, gz] = this.sizes;
    return `${tapsWgsl(lx, ly, lz, gx, gy, gz)}
fn main() {
  let e = i32((workgroupId.x + workgroupId.y * numWorkgroups.x) * ${THREADS}u + localIndex);
  if (e >= uniforms.total) { return; }
  let q = e / (2 * VL);
  let v = e - q * 2 * VL;
  let t = tapsOf(v);
  var s = 0.0;
  for (var a = 0; a < 8; a++) { s += t.w[a] * rows[q * 2 * VG + t.row[a]]; }
  result[e] = dots[e] + s / norms[v];
}`;
  }
  uniforms = 'total : i32,';
}

export interface LocalScorer {
  /** Ranking scores [nq, 2Vl] of the queries (local rows of the pair) against every local voxel. */
  score: (queries: tf.Tensor1D) => tf.Tensor2D;
  dispose: () => void;
}

/**
 * The scorer of one pair on WebGPU: cl [2Vl, C] and cg [2Vg, C] its local and global embeddings
 * (patch A's rows, then B's), grids the two patches' local and global grids. Null where it does not
 * apply (another backend, or a global grid too large for the Gram matrix's simple layout).
 */
export function localScorerWgsl(
  cl: tf.Tensor2D,
  cg: tf.Tensor2D,
  grids: { local: Geometry; global: Geometry }[],
): LocalScorer | null {
  if (tf.getBackend() !== 'webgpu' || process.env.SAM_MINING === 'tfops') return null;
  const [lx, ly, lz] = grids[0].local.size;
  const [gx, gy, gz] = grids[0].global.size;
  const vg = gx * gy * gz;
  if (2 * vg > 8192 || grids[1].global.size.some((n, a) => n !== grids[0].global.size[a])) return null;
  const sizes = [lx, ly, lz, gx, gy, gz];
  const g0 = new Int32Array(2 * (lx + ly + lz));
  const ff = new Float32Array(2 * (lx + ly + lz));
  grids.forEach((g, x) => {
    let o = x * (lx + ly + lz);
    for (let a = 0; a < 3; a++) {
      const t = interpolationTaps(g.local, g.global, a);
      g0.set(t.g0, o);
      ff.set(t.f, o);
      o += t.g0.length;
    }
  });
  const [g0T, ffT, gram, norms] = tf.tidy(() => {
    const g0T = tf.tensor1d(g0, 'int32');
    const ffT = tf.tensor1d(ff);
    const gram = tf.matMul(cg, cg, false, true);
    const norms = runWebgpuProgram(
      new NormsProgram(sizes),
      [gram, g0T, ffT],
      [{ type: 'int32', data: [2 * lx * ly * lz] }],
    );
    return [g0T, ffT, gram, norms];
  });
  return {
    score: (queries) =>
      tf.tidy(() => {
        const nq = queries.shape[0];
        const rows = runWebgpuProgram(
          new QueryRowsProgram(sizes, nq),
          [gram, g0T, ffT, norms, queries],
          [{ type: 'int32', data: [nq] }],
        );
        const dots = tf.matMul(tf.gather(cl, queries) as tf.Tensor2D, cl, false, true);
        return runWebgpuProgram(
          new ScoresProgram(sizes, nq),
          [dots, rows, g0T, ffT, norms],
          [{ type: 'int32', data: [nq * 2 * lx * ly * lz] }],
        ) as tf.Tensor2D;
      }),
    dispose: () => tf.dispose([g0T, ffT, gram, norms]),
  };
}
