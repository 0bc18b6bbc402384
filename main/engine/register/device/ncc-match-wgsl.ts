/**
 * bench/ncc-match.ts nccMatch on tfjs' WebGPU backend: one workgroup a point does the whole search in
 * one dispatch for every point, so the cascade's NCC refinement (ncc-refine.ts) and SAM-coarse's NCC
 * matcher run on the GPU beside the SAM embeddings instead of on the CPU's threads.
 *
 * Per point, as the host: the zero-mean fixed template (clipped, sampled trilinearly on an LPS-aligned
 * lattice around p) against every position of the coarse level's window around the start, the first
 * maximum in k, j, i order; then the fine level around the coarse best; then the continuous climb
 * (per-axis parabolas, h = spacing / 2, / 4, / 8, a move kept where the NCC does not fall) from the
 * fine best and from the start, the higher end kept (the fine best's on a tie).
 *
 * Numerics: float32 instead of the host's float64. The window's variance is summed per candidate
 * from values minus the candidate's own voxel, and the climb's from values minus the template's mean,
 * so that no sum of squares of -1000 HU cancels (the host uses box sums in float64; a float32 box sum
 * over 2,197 voxels of air would lose the variance). Two candidates that score equal to float32
 * rounding may be taken the other way round (test/unit/ncc-match-wgsl.test.ts bounds how often).
 *
 * Output [P, 4]: the location (world mm) and the fine level's best score (below -1e38: no candidate,
 * the host's -Infinity).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { runWebgpuProgram, type ProgramUniform } from '../../compute/run-webgpu-program.ts';
import { worldToIndexMatrix, type Geometry } from '../../volume/geometry.ts';
import { affineUniforms, TRILINEAR_WGSL } from './flat-program.ts';
import { workgroupReduceWgsl } from '../../compute/wgsl-workgroup-reduce.ts';
import { NCC_HI_HU, NCC_LO_HU } from '../../bench/ncc-match.ts';

const THREADS = 64;
/** Largest template (voxels) that fits the workgroup's memory beside the reductions (16 KB in all). */
export const MAX_TEMPLATE_VOXELS = 3375;
/** Score written where a level's window has no candidate (the host's -Infinity). */
export const NO_CANDIDATE = -3e38;

/** The search's sizes (ncc-match.ts nccSpacings). */
export interface NccShape {
  /** Template radii (voxels) of the coarse level, the fine level and the climb. */
  rc: number;
  rf: number;
  rr: number;
  /** Level spacings (mm): coarse, fine (the climb's lattice is the fine spacing). */
  cs: number;
  fs: number;
  /** Search radii (level voxels): the coarse window around the start, the fine around the coarse best. */
  Rc: number;
  Rf: number;
}

const LO = NCC_LO_HU;
const HI = NCC_HI_HU;

/** A level: padded, clipped moving image on an LPS-aligned grid (geometry.ts identity direction). */
export interface NccLevelOnDevice {
  data: tf.Tensor;
  grid: Geometry;
}

class NccMatchProgram implements WebGPUProgram {
  variableNames = ['F', 'CL', 'FL', 'M', 'pts'];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [THREADS, 1, 1];
  // (radii and spacings are uniforms, not constants: loops of constant length were unrolled by the
  // shader compiler, 40 s on lavapipe for one program)
  uniforms =
    'f0 : vec4<f32>, f1 : vec4<f32>, f2 : vec4<f32>, fdims : vec3<i32>, ' +
    'm0 : vec4<f32>, m1 : vec4<f32>, m2 : vec4<f32>, mdims : vec3<i32>, ' +
    'corigin : vec3<f32>, cdims : vec3<i32>, forigin : vec3<f32>, fdimsL : vec3<i32>, ' +
    'radii : vec3<i32>, spacing : vec2<f32>, windows : vec2<i32>, evaluations : i32,';

  constructor(
    points: number,
    private readonly templateVoxels: number,
  ) {
    this.outputShape = [points, 4];
    this.dispatch = [1, points, 1];
    this.shaderKey = `samNccMatch_${templateVoxels}`;
  }

  getUserCode(): string {
    const f = (x: number) => (Number.isInteger(x) ? `${x}.0` : `${x}`);
    return `
var<workgroup> T : array<f32, ${this.templateVoxels}>;
var<workgroup> bestS : array<f32, ${THREADS}>;
var<workgroup> orderS : array<i32, ${THREADS}>;

// three sums over the workgroup at once, in a fixed tree order, returned to every thread
${workgroupReduceWgsl('reduce3', THREADS, 'a + b', 'vec3<f32>')}

struct Best {
  score : f32,
  order : i32,
}

// the workgroup's best (score, order): the higher score, on a tie the lower order; to every thread
fn argmax(best : f32, order : i32, t : i32) -> Best {
  bestS[t] = best;
  orderS[t] = order;
  workgroupBarrier();
  for (var s = ${THREADS / 2}; s > 0; s >>= 1u) {
    if (t < s) {
      let b = bestS[t + s];
      if (b > bestS[t] || (b == bestS[t] && orderS[t + s] < orderS[t])) {
        bestS[t] = b;
        orderS[t] = orderS[t + s];
      }
    }
    workgroupBarrier();
  }
  let r = Best(bestS[0], orderS[0]);
  workgroupBarrier();
  return r;
}

${TRILINEAR_WGSL}

// synthetic-pair.ts sampleLinear: trilinear, fill ${LO} beyond the voxel-centre hull (+-1e-6 voxel)
fn sampleVolume(p : vec3<f32>, dims : vec3<i32>, isFixed : bool) -> f32 {
  let hi = vec3<f32>(dims - vec3<i32>(1));
  if (any(p < vec3<f32>(-1e-6)) || any(p > hi + vec3<f32>(1e-6))) { return ${f(LO)}; }
  let i0 = max(vec3<i32>(0), min(vec3<i32>(floor(p)), dims - vec3<i32>(2)));
  let fr = select(vec3<f32>(0.0), clamp(p - vec3<f32>(i0), vec3<f32>(0.0), vec3<f32>(1.0)), dims > vec3<i32>(1));
  let d = vec3<i32>(select(0, 1, dims.x > 1), select(0, dims.x, dims.y > 1), select(0, dims.x * dims.y, dims.z > 1));
  let q = i0.x + dims.x * (i0.y + dims.y * i0.z);
  var v : array<f32, 8>;
  for (var c = 0; c < 8; c++) {
    let o = q + select(0, d.x, (c & 1) != 0) + select(0, d.y, (c & 2) != 0) + select(0, d.z, (c & 4) != 0);
    if (isFixed) { v[c] = F[o]; } else { v[c] = M[o]; }
  }
  return trilinear(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], fr);
}

fn clipHu(v : f32) -> f32 { return clamp(v, ${f(LO)}, ${f(HI)}); }

fn toFixed(w : vec3<f32>) -> vec3<f32> {
  let x = vec4<f32>(w, 1.0);
  return vec3<f32>(dot(uniforms.f0, x), dot(uniforms.f1, x), dot(uniforms.f2, x));
}

fn latticeOffset(q : i32, r : i32) -> vec3<f32> {
  let w = 2 * r + 1;
  return vec3<f32>(f32(q % w - r), f32((q / w) % w - r), f32(q / (w * w) - r));
}

// the zero-mean fixed template of radius r and spacing s around p into T; (mean, sum of squares)
fn buildTemplate(p : vec3<f32>, s : f32, r : i32, t : i32) -> vec2<f32> {
  let w = 2 * r + 1;
  let n = w * w * w;
  var sum = 0.0;
  for (var q = t; q < n; q += ${THREADS}) {
    let v = clipHu(sampleVolume(toFixed(p + latticeOffset(q, r) * s), uniforms.fdims, true));
    T[q] = v;
    sum += v;
  }
  let mean = reduce3(vec3<f32>(sum, 0.0, 0.0), u32(t)).x / f32(n);
  var ss = 0.0;
  for (var q = t; q < n; q += ${THREADS}) {
    let v = T[q] - mean;
    T[q] = v;
    ss += v * v;
  }
  return vec2<f32>(mean, reduce3(vec3<f32>(ss, 0.0, 0.0), u32(t)).x);
}

// the best window position (level index) and its score; the window is +-R voxels around round(centre)
// inside the level's unpadded part; no candidate: (round(centre), ${NO_CANDIDATE})
fn searchLevel(isCoarse : bool, centre : vec3<f32>, r : i32, s : f32, R : i32, tn : f32, t : i32) -> vec4<f32> {
  var origin = uniforms.forigin;
  var dims = uniforms.fdimsL;
  if (isCoarse) { origin = uniforms.corigin; dims = uniforms.cdims; }
  let c0 = vec3<i32>(floor((centre - origin) / s + vec3<f32>(0.5)));
  let lo = max(vec3<i32>(r), c0 - vec3<i32>(R));
  let hi = min(dims - vec3<i32>(1 + r), c0 + vec3<i32>(R));
  let ext = max(hi - lo + vec3<i32>(1), vec3<i32>(0));
  let count = ext.x * ext.y * ext.z;
  let w = 2 * r + 1;
  let n = f32(w * w * w);
  var best = ${NO_CANDIDATE};
  var order = 0x7fffffff;
  for (var c = t; c < count; c += ${THREADS}) {
    let at = lo + vec3<i32>(c % ext.x, (c / ext.x) % ext.y, c / (ext.x * ext.y));
    let base = at.x + dims.x * (at.y + dims.y * at.z);
    var dc = 0.0;
    if (isCoarse) { dc = CL[base]; } else { dc = FL[base]; }
    var cross = 0.0;
    var s1 = 0.0;
    var s2 = 0.0;
    var q = 0;
    for (var kc = -r; kc <= r; kc++) {
      for (var kb = -r; kb <= r; kb++) {
        let row = base - r + dims.x * (kb + dims.y * kc);
        for (var ka = 0; ka < w; ka++) {
          var v = 0.0;
          if (isCoarse) { v = CL[row + ka] - dc; } else { v = FL[row + ka] - dc; }
          cross += T[q] * v;
          s1 += v;
          s2 += v * v;
          q++;
        }
      }
    }
    let variance = s2 - s1 * s1 / n;
    var score = 0.0;
    if (variance > 1e-6 && tn > 0.0) { score = cross / (tn * sqrt(variance)); }
    if (score > best) {
      best = score;
      order = c;
    }
  }
  let top = argmax(best, order, t);
  if (count == 0) { return vec4<f32>(vec3<f32>(c0), ${NO_CANDIDATE}); }
  let c = top.order;
  let at = lo + vec3<i32>(c % ext.x, (c / ext.x) % ext.y, c / (ext.x * ext.y));
  return vec4<f32>(vec3<f32>(at), top.score);
}

// NCC of the template (radius r, spacing s; sum of squares tn2; values shifted by its mean) with the
// moving image on the template's lattice moved to y
fn nccAt(y : vec3<f32>, r : i32, s : f32, tn2 : f32, shift : f32, t : i32) -> f32 {
  let w = 2 * r + 1;
  let n = w * w * w;
  let yw = vec4<f32>(y, 1.0);
  let b = vec3<f32>(dot(uniforms.m0, yw), dot(uniforms.m1, yw), dot(uniforms.m2, yw));
  var acc = vec3<f32>(0.0);
  for (var q = t; q < n; q += ${THREADS}) {
    let o = latticeOffset(q, r) * s;
    let d = vec3<f32>(dot(uniforms.m0.xyz, o), dot(uniforms.m1.xyz, o), dot(uniforms.m2.xyz, o));
    let v = clipHu(sampleVolume(b + d, uniforms.mdims, false)) - shift;
    acc += vec3<f32>(v, v * v, T[q] * v);
  }
  let sums = reduce3(acc, u32(t));
  let variance = sums.y - sums.x * sums.x / f32(n);
  if (variance > 1e-6) { return sums.z / sqrt(tn2 * variance); }
  return 0.0;
}

fn main() {
  let p = i32(workgroupId.y);
  let t = i32(localIndex);
  let x = vec3<f32>(pts[p * 6], pts[p * 6 + 1], pts[p * 6 + 2]);
  let start = vec3<f32>(pts[p * 6 + 3], pts[p * 6 + 4], pts[p * 6 + 5]);
  let cs = uniforms.spacing.x;
  let fs = uniforms.spacing.y;
  // the coarse level's window around the start, then the fine level's around the coarse best
  var centre = start;
  var score = ${NO_CANDIDATE};
  for (var level = 0; level < 2; level++) {
    let coarse = level == 0;
    let r = select(uniforms.radii.y, uniforms.radii.x, coarse);
    let s = select(fs, cs, coarse);
    let tt = buildTemplate(x, s, r, t);
    let found = searchLevel(coarse, centre, r, s, select(uniforms.windows.y, uniforms.windows.x, coarse), sqrt(tt.y), t);
    centre = select(uniforms.forigin, uniforms.corigin, coarse) + found.xyz * s;
    score = found.w;
  }
  let gridBest = centre;
  // the climb (ncc-match.ts refine and climb) from the grid's best, then from the start: one
  // evaluation per pass (one call site: the compiler inlines each), 1 + 9 x 3 a start
  let rr = uniforms.radii.z;
  let tr = buildTemplate(x, fs, rr, t);
  let tn2 = max(tr.y, 1e-30);
  var y = gridBest;
  var best = 0.0;
  var sm = 0.0;
  var sp = 0.0;
  var step = 0.0;
  var ends : array<vec4<f32>, 2>;
  for (var e = 0; e < uniforms.evaluations; e++) {
    let si = e / 28;
    let k = e % 28;
    var pos = y;
    var h = 0.0;
    var axis = vec3<f32>(0.0);
    if (k == 0) {
      y = select(start, gridBest, si == 0);
      pos = y;
    } else {
      let pair = (k - 1) / 3;
      h = fs / f32(2 << u32(pair / 3));
      axis[pair % 3] = h;
      let sub = (k - 1) % 3;
      if (sub == 0) {
        pos = y - axis;
      } else if (sub == 1) {
        pos = y + axis;
      } else {
        let den = sm - 2.0 * best + sp;
        step = 0.0;
        if (den < 0.0) {
          step = clamp((0.5 * (sm - sp)) / den, -1.0, 1.0);
        } else if (max(sm, sp) > best) {
          step = select(1.0, -1.0, sm > sp);
        }
        pos = y + axis * step;
      }
    }
    let v = nccAt(pos, rr, fs, tn2, tr.x, t);
    if (k == 0) {
      best = v;
    } else {
      let sub = (k - 1) % 3;
      if (sub == 0) {
        sm = v;
      } else if (sub == 1) {
        sp = v;
      } else if (step != 0.0 && v >= best) {
        y = pos;
        best = v;
      }
    }
    if (k == 27) { ends[si] = vec4<f32>(y, best); }
  }
  // a flat template: the grid's best (as the host); else the higher end, the grid's on a tie
  var found = gridBest;
  if (tr.y > 0.0) {
    found = ends[0].xyz;
    if (ends[1].w > ends[0].w) { found = ends[1].xyz; }
  }
  if (t == 0) {
    result[p * 4] = found.x;
    result[p * 4 + 1] = found.y;
    result[p * 4 + 2] = found.z;
    result[p * 4 + 3] = score;
  }
}`;
  }
}

/**
 * nccMatch of P points [P, 6] (fixed point, start; world mm) on the device: [P, 4] (location,
 * score). F, M: the fixed and moving images' voxels (float32); coarse, fine: the moving image's
 * levels; shape: ncc-match.ts nccSpacings of the options.
 */
export function nccMatchWgsl(
  F: tf.Tensor,
  fixed: Geometry,
  M: tf.Tensor,
  moving: Geometry,
  coarse: NccLevelOnDevice,
  fine: NccLevelOnDevice,
  points: tf.Tensor2D,
  shape: NccShape,
): tf.Tensor2D {
  const P = points.shape[0];
  const { rc, rf, rr, cs, fs, Rc, Rf } = shape;
  const uniforms: ProgramUniform[] = [
    ...affineUniforms(worldToIndexMatrix(fixed)),
    { type: 'int32', data: [...fixed.size] },
    ...affineUniforms(worldToIndexMatrix(moving)),
    { type: 'int32', data: [...moving.size] },
    { type: 'float32', data: [...coarse.grid.origin] },
    { type: 'int32', data: [...coarse.grid.size] },
    { type: 'float32', data: [...fine.grid.origin] },
    { type: 'int32', data: [...fine.grid.size] },
    { type: 'int32', data: [rc, rf, rr] },
    { type: 'float32', data: [cs, fs] },
    { type: 'int32', data: [Rc, Rf] },
    { type: 'int32', data: [2 * 28] },
  ];
  return runWebgpuProgram(
    new NccMatchProgram(P, templateVoxels(shape)),
    [F, coarse.data, fine.data, M, points],
    uniforms,
  ) as tf.Tensor2D;
}

/** The largest of the search's three templates (voxels): the workgroup array's length. */
export function templateVoxels(s: Pick<NccShape, 'rc' | 'rf' | 'rr'>): number {
  return Math.max(2 * s.rc + 1, 2 * s.rf + 1, 2 * s.rr + 1) ** 3;
}
