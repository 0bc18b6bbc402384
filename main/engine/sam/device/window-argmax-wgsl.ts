/**
 * The matcher's local search on tfjs' WebGPU backend in one WGSL dispatch (one workgroup a point):
 * every local voxel in the windows around a point's top-k global candidates scored as
 * (global + local) / 2, with the global term read from the query's global embedding upsampled to the
 * local grid and renormalised (match-on-device.ts upsampledGlobal), and the best kept, the first
 * maximum in match.ts's scan order (candidates in rank order, each window k, then j, then i), so ties
 * resolve as the host's strict '>' does. Nothing but [P, 4] comes back: the best voxel (flat local
 * index, exact in float32 below 2^24 voxels), its score and its global and local terms.
 *
 * The gather-and-multiply path it replaces read every window score back (P x 20 x 243 x 2 floats: 78
 * MB and forty read-backs for 2,000 points of the small network; 0.8 s on an H200).
 * Windows come from a table of every global voxel's box (match.ts candidateWindow, [Vg, 6] int32:
 * lo i j k, hi i j k), so the candidates go from the top-k straight into this program.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { runWebgpuProgram } from '../../compute/run-webgpu-program.ts';

const THREADS = 64;
/** Above this many local voxels a flat index is no longer exact in float32. */
export const MAX_ARGMAX_VOXELS = 2 ** 24;

class WindowArgmaxProgram implements WebGPUProgram {
  variableNames = ['gn', 'ql', 'tg', 'tl', 'cand', 'boxes'];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [THREADS, 1, 1];
  uniforms = 'k : i32, li : i32, lj : i32,';

  constructor(
    points: number,
    private readonly c: number,
    private readonly cl: number,
  ) {
    this.outputShape = [points, 4];
    this.dispatch = [1, points, 1];
    this.shaderKey = `samWindowArgmax_${c}_${cl}`;
  }

  getUserCode(): string {
    const { c, cl } = this;
    return `
var<workgroup> tgS : array<f32, ${c}>;
var<workgroup> tlS : array<f32, ${cl}>;
var<workgroup> bestS : array<f32, ${THREADS}>;
var<workgroup> orderS : array<i32, ${THREADS}>;
var<workgroup> slotS : array<i32, ${THREADS}>;

fn main() {
  let p = i32(workgroupId.y);
  let t = i32(localIndex);
  for (var n = t; n < ${c}; n += ${THREADS}) { tgS[n] = tg[p * ${c} + n]; }
  for (var n = t; n < ${cl}; n += ${THREADS}) { tlS[n] = tl[p * ${cl} + n]; }
  workgroupBarrier();
  // scores lie in [-1, 1]: -3 is below any of them; order = the slot's position in the scan
  var best = -3.0;
  var bestOrder = 0x7fffffff;
  var bestV = 0;
  var bestG = 0.0;
  var bestL = 0.0;
  var offset = 0;
  for (var q = 0; q < uniforms.k; q++) {
    let g = cand[p * uniforms.k + q];
    if (g < 0) { break; }
    let lo = vec3<i32>(boxes[6 * g], boxes[6 * g + 1], boxes[6 * g + 2]);
    let n = vec3<i32>(boxes[6 * g + 3], boxes[6 * g + 4], boxes[6 * g + 5]) - lo + vec3<i32>(1, 1, 1);
    let count = n.x * n.y * n.z;
    for (var s = t; s < count; s += ${THREADS}) {
      let i = lo.x + s % n.x;
      let j = lo.y + (s / n.x) % n.y;
      let k = lo.z + s / (n.x * n.y);
      let v = i + uniforms.li * (j + uniforms.lj * k);
      var dg = 0.0;
      for (var m = 0; m < ${c}; m++) { dg += gn[v * ${c} + m] * tgS[m]; }
      var dl = 0.0;
      for (var m = 0; m < ${cl}; m++) { dl += ql[v * ${cl} + m] * tlS[m]; }
      let sc = (dg + dl) / 2.0;
      if (sc > best) {
        best = sc;
        bestOrder = offset + s;
        bestV = v;
        bestG = dg;
        bestL = dl;
      }
    }
    offset += count;
  }
  // the workgroup's best: the higher score, on a tie the earlier slot in scan order
  bestS[t] = best;
  orderS[t] = bestOrder;
  slotS[t] = t;
  workgroupBarrier();
  for (var h = ${THREADS / 2}; h > 0; h >>= 1u) {
    if (t < h) {
      let a = bestS[t];
      let b = bestS[t + h];
      if (b > a || (b == a && orderS[t + h] < orderS[t])) {
        bestS[t] = b;
        orderS[t] = orderS[t + h];
        slotS[t] = slotS[t + h];
      }
    }
    workgroupBarrier();
  }
  if (slotS[0] == t) {
    result[p * 4] = f32(bestV);
    result[p * 4 + 1] = best;
    result[p * 4 + 2] = bestG;
    result[p * 4 + 3] = bestL;
  }
}`;
  }
}

/**
 * Best voxel of each point's windows, [P, 4] (flat local voxel, score, global, local): gn [Vl, C] the
 * upsampled normalised global embedding, ql [Vl, CL] the local one, tg [P, C] and tl [P, CL] the
 * points' template vectors, cand [P, K] int32 global candidates (best first; -1 ends a list early),
 * boxes [Vg, 6] int32 each global voxel's window; localSize the local grid (i, j, k).
 */
export function windowArgmaxWgsl(
  gn: tf.Tensor2D,
  ql: tf.Tensor2D,
  tg: tf.Tensor2D,
  tl: tf.Tensor2D,
  cand: tf.Tensor2D,
  boxes: tf.Tensor2D,
  localSize: readonly number[],
): tf.Tensor2D {
  const [P, K] = cand.shape;
  return runWebgpuProgram(
    new WindowArgmaxProgram(P, gn.shape[1], ql.shape[1]),
    [gn, ql, tg, tl, cand, boxes],
    [
      { type: 'int32', data: [K] },
      { type: 'int32', data: [localSize[0]] },
      { type: 'int32', data: [localSize[1]] },
    ],
  ) as tf.Tensor2D;
}

/** Whether windowArgmaxWgsl takes this search (else the gather-and-multiply path). */
export const windowArgmaxApplies = (points: number, localVoxels: number) =>
  tf.getBackend() === 'webgpu' && points > 0 && points <= 65535 && localVoxels < MAX_ARGMAX_VOXELS;
