/**
 * The sub-voxel refinement of continuous-refine.ts (refineContinuous: pattern search of
 * (g(x) + l(x)) / 2 within one voxel of the best voxel, steps 1/2 to 1/16, axis moves then diagonal
 * moves) on tfjs' WebGPU backend, one thread a point, on the blocks the GPU matcher gathers
 * (dot products [P, 27] and Gram matrices [P, 27, 27] per level), so they are never read back.
 * The same moves in the same order and the same formula as the host (blockSimilarity), in float32
 * instead of float64: where two candidate positions score equal to float32 rounding the search may
 * go another way (test/unit/match-refine-wgsl.test.ts bounds how often and what it costs).
 *
 * On an H200 the host search was 75% of the GPU matcher's time (0.26 s of 0.36 s for 2,000 points).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { runWebgpuProgram } from '../../compute/run-webgpu-program.ts';
import { AXIS_MOVES, DIAGONAL_MOVES, type LocalToGlobal } from '../continuous-refine.ts';

const THREADS = 64;
/** Per point in `geometry`: best voxel (3), local block base (3) and extent (3), global block base (3) and extent (3). */
export const REFINE_GEOMETRY = 15;

/** WGSL of blockSimilarity for one level's inputs (dots, gram), geometry offset `at` (base; extent at + 3). */
function similarityWgsl(name: string, dots: string, gram: string, at: number): string {
  return `
fn ${name}(p : i32, pos : vec3<f32>) -> f32 {
  let base = vec3<f32>(f32(geometry[p * ${REFINE_GEOMETRY} + ${at}]), f32(geometry[p * ${REFINE_GEOMETRY} + ${at + 1}]),
                       f32(geometry[p * ${REFINE_GEOMETRY} + ${at + 2}]));
  let n = vec3<i32>(geometry[p * ${REFINE_GEOMETRY} + ${at + 3}], geometry[p * ${REFINE_GEOMETRY} + ${at + 4}],
                    geometry[p * ${REFINE_GEOMETRY} + ${at + 5}]);
  let x = clamp(pos - base, vec3<f32>(0.0), vec3<f32>(n - vec3<i32>(1)));
  var o = vec3<i32>(0);
  var f = vec3<f32>(0.0);
  for (var a = 0; a < 3; a++) {
    if (n[a] > 1) {
      o[a] = min(i32(floor(x[a])), n[a] - 2);
      f[a] = x[a] - f32(o[a]);
    }
  }
  let g = vec3<f32>(1.0) - f;
  var w : array<f32, 8>;
  w[0] = g.x * g.y * g.z;
  w[1] = f.x * g.y * g.z;
  w[2] = g.x * f.y * g.z;
  w[3] = f.x * f.y * g.z;
  w[4] = g.x * g.y * f.z;
  w[5] = f.x * g.y * f.z;
  w[6] = g.x * f.y * f.z;
  w[7] = f.x * f.y * f.z;
  var slot : array<i32, 8>;
  for (var c = 0; c < 8; c++) {
    slot[c] = min(o.x + (c & 1), n.x - 1) + 3 * (min(o.y + ((c >> 1u) & 1), n.y - 1) + 3 * min(o.z + (c >> 2u), n.z - 1));
  }
  var num = 0.0;
  var den = 0.0;
  for (var q = 0; q < 8; q++) {
    let wq = w[q];
    num += wq * ${dots}[p * 27 + slot[q]];
    var row = 0.0;
    for (var r = q + 1; r < 8; r++) { row += w[r] * ${gram}[p * 729 + slot[q] * 27 + slot[r]]; }
    den += wq * (wq * ${gram}[p * 729 + slot[q] * 28] + 2.0 * row);
  }
  return num / sqrt(max(den, 1e-24));
}`;
}

class RefineProgram implements WebGPUProgram {
  variableNames = ['ldots', 'lgram', 'gdots', 'ggram', 'geometry'];
  outputShape: number[];
  shaderKey = 'samRefineContinuous';
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [THREADS, 1, 1];
  uniforms = 'points : i32, lsize : vec3<f32>, scale : vec3<f32>, offset : vec3<f32>, gsize : vec3<f32>,';

  constructor(points: number) {
    this.outputShape = [points, 3];
    this.dispatch = [Math.ceil(points / THREADS), 1, 1];
  }

  getUserCode(): string {
    const moves = (list: readonly number[]) => `array<i32, ${list.length}>(${list.join(', ')})`;
    return `
${similarityWgsl('localSim', 'ldots', 'lgram', 3)}
${similarityWgsl('globalSim', 'gdots', 'ggram', 9)}

fn score(p : i32, pos : vec3<f32>) -> f32 {
  let gp = clamp(uniforms.scale * pos + uniforms.offset, vec3<f32>(0.0), uniforms.gsize - vec3<f32>(1.0));
  return (globalSim(p, gp) + localSim(p, pos)) / 2.0;
}

fn offsetOf(d : i32) -> vec3<f32> {
  return vec3<f32>(f32(d % 3 - 1), f32((d / 3) % 3 - 1), f32(d / 9 - 1));
}

fn main(index : i32) {
  let p = index;
  if (p >= uniforms.points) { return; }
  let bi = vec3<f32>(f32(geometry[p * ${REFINE_GEOMETRY}]), f32(geometry[p * ${REFINE_GEOMETRY} + 1]),
                     f32(geometry[p * ${REFINE_GEOMETRY} + 2]));
  let lo = max(vec3<f32>(0.0), bi - vec3<f32>(1.0));
  let hi = min(uniforms.lsize - vec3<f32>(1.0), bi + vec3<f32>(1.0));
  var axis = ${moves(AXIS_MOVES)};
  var diagonal = ${moves(DIAGONAL_MOVES)};
  var at = bi;
  var best = score(p, at);
  var step = 0.5;
  for (var level = 0; level < 4; level++) {
    for (var rounds = 0; rounds < 12; rounds++) {
      var moved = false;
      var next = at;
      for (var m = 0; m < ${AXIS_MOVES.length}; m++) {
        let q = at + offsetOf(axis[m]) * step;
        if (all(q >= lo) && all(q <= hi)) {
          let s = score(p, q);
          if (s > best) { best = s; next = q; moved = true; }
        }
      }
      if (!moved) {
        for (var m = 0; m < ${DIAGONAL_MOVES.length}; m++) {
          let q = at + offsetOf(diagonal[m]) * step;
          if (all(q >= lo) && all(q <= hi)) {
            let s = score(p, q);
            if (s > best) { best = s; next = q; moved = true; }
          }
        }
      }
      if (!moved) { break; }
      at = next;
    }
    step = step / 2.0;
  }
  result[p * 3] = at.x;
  result[p * 3 + 1] = at.y;
  result[p * 3 + 2] = at.z;
}`;
  }
}

/**
 * Refined continuous local-grid positions [P, 3] of P matches: local and global blocks as
 * deviceBlocks makes them (dots [P, 27], gram [P, 27, 27]), geometry [P, 15] int32 (REFINE_GEOMETRY).
 */
export function refineContinuousWgsl(
  local: { dots: tf.Tensor; gram: tf.Tensor },
  global: { dots: tf.Tensor; gram: tf.Tensor },
  geometry: tf.Tensor2D,
  localSize: readonly number[],
  map: LocalToGlobal,
): tf.Tensor2D {
  const P = geometry.shape[0];
  return runWebgpuProgram(
    new RefineProgram(P),
    [local.dots, local.gram, global.dots, global.gram, geometry],
    [
      { type: 'int32', data: [P] },
      { type: 'float32', data: [...localSize] },
      { type: 'float32', data: [...map.scale] },
      { type: 'float32', data: [...map.offset] },
      { type: 'float32', data: [...map.size] },
    ],
  ) as tf.Tensor2D;
}
