/**
 * SAM-deform's gradient and Adam step as a few WGSL dispatches on tfjs' WebGPU backend: the hand-written
 * gradient of deform/deform-loss.ts (not tfjs' autodiff, which takes about 115 dispatches an iteration
 * with its pads, slices and element-wise ops), 9 dispatches an iteration in all:
 *   1. SampleProducts: J = M(b + w) per voxel of G -> [J, J², I·J]                       (1 dispatch)
 *   2. their box sums' i and j passes (deform-wgsl.ts boxSumAxesWgsl)                    (1)
 *   3. LnccCoefficients: per window centre, the box sums' k pass, then the coefficients
 *      a, a·Ī, b, b·J̄ of local-ncc.ts (zero where the centre's weight is 0)              (1)
 *   4. the coefficients' box sums' i and j passes (the truncated windows are symmetric)  (1)
 *   5. DeformGradient: per voxel, the k pass of those, ∂LNCC/∂J times ∇M at b + w (world),
 *      the feature term's -weight/N · Σ_c f_c ∇g_c, and the diffusion term's forward
 *      differences                                                                       (1)
 * and in the optimiser (deform-optimiser-on-device.ts): the radius-1 box means that smooth the
 * gradient (1 per pass, 2 passes by default), 'adam-global''s two statistics of the gradient
 * (GradientStats: partial sums, 1) and AdamStep (1), which adds the parts and writes the new w and
 * moments. State: one flat tensor [9N + 1] = per voxel w (3), m1 (3), m2 (3), then the global second
 * moment; float32 throughout, equal to the host's float64 gradient to float32 rounding
 * (test/unit/reg-deform-on-device.test.ts).
 * DeformGradient binds 7 inputs and its output: WebGPU's default limit of 8 storage buffers per shader
 * stage, which tfjs does not raise. Another input needs packing, not a new binding.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { DeviceDeformProblem } from './deform-loss-on-device.ts';
import { boxSumAxesWgsl, trilinearWgsl } from './deform-wgsl.ts';
import { affineUniforms, FlatProgram } from './flat-program.ts';
import { runWebgpuProgram } from '../../compute/run-webgpu-program.ts';
import { workgroupReduceWgsl } from '../../compute/wgsl-workgroup-reduce.ts';

/** Values per voxel in the optimiser's state tensor: w, m1, m2 (3 each). */
export const STATE_STRIDE = 9;

/** The world point b + w of voxel `index` and the moving image's index there (needs S, B, m0..m2). */
const MOVED = `
        let X = vec4<f32>(B[3 * index] + S[${STATE_STRIDE} * index], B[3 * index + 1] + S[${STATE_STRIDE} * index + 1],
          B[3 * index + 2] + S[${STATE_STRIDE} * index + 2], 1.0);
        let pm = vec3<f32>(dot(uniforms.m0, X), dot(uniforms.m1, X), dot(uniforms.m2, X));`;

/**
 * WGSL: the k pass of a truncated box sum of radius r at voxel `index` of a [nk, nj, ni, C] buffer
 * that already holds the i and j passes (deform-wgsl.ts boxSumAxesWgsl, axes 2): its C channels
 * as a vecC<f32>, each summed in BoxSumAxisProgram's order (t = -r .. r from 0.0), so the same
 * float32 numbers as boxSum3dWgsl.
 */
function boxSumKWgsl(name: string, buf: string, C: 3 | 4, r: number): string {
  const read = Array.from({ length: C }, (_, c) => `${buf}[o + ${c}]`).join(', ');
  return `
      fn ${name}(index : i32, dims : vec3<i32>) -> vec${C}<f32> {
        let plane = dims.x * dims.y;
        let k = index / plane;
        var s = vec${C}<f32>(0.0);
        for (var t = -${r}; t <= ${r}; t = t + 1) {
          let kk = k + t;
          if (kk >= 0 && kk < dims.z) {
            let o = ${C} * (index + t * plane);
            s = s + vec${C}<f32>(${read});
          }
        }
        return s;
      }`;
}

class SampleProductsProgram extends FlatProgram {
  variableNames = ['S', 'B', 'M', 'P'];
  uniforms = 'm0 : vec4<f32>, m1 : vec4<f32>, m2 : vec4<f32>, mdims : vec3<i32>, voxels : i32,';
  outputShape: number[];
  shaderKey = 'samDeformSampleProducts';

  constructor(voxels: number) {
    super(voxels);
    this.outputShape = [voxels, 3];
  }

  getUserCode(): string {
    return `
      ${trilinearWgsl('sampleM', 'M', 1, 'uniforms.mdims')}
      fn main(index : i32) {
        if (index >= uniforms.voxels) {
          return;
        }
        ${MOVED}
        let J = sampleM(pm, 0).x;
        let I = P[5 * index + 4];
        setOutputAtIndex(3 * index, J);
        setOutputAtIndex(3 * index + 1, J * J);
        setOutputAtIndex(3 * index + 2, I * J);
      }
    `;
  }
}

/** LNCC's coefficients per voxel, from the products' i-j box sums (Qij): the k pass done here. */
class LnccCoefficientsProgram extends FlatProgram {
  variableNames = ['Q', 'P'];
  uniforms = 'eps : f32, dims : vec3<i32>, voxels : i32,';
  outputShape: number[];
  shaderKey: string;

  constructor(
    voxels: number,
    private readonly r: number,
  ) {
    super(voxels);
    this.outputShape = [voxels, 4];
    this.shaderKey = `samDeformLnccCoefficients_${r}`;
  }

  getUserCode(): string {
    return `
      ${boxSumKWgsl('windowSums', 'Q', 3, this.r)}
      fn main(index : i32) {
        if (index >= uniforms.voxels) {
          return;
        }
        let m = P[5 * index + 3];
        var out = vec4<f32>(0.0);
        if (m != 0.0) {
          let q = windowSums(index, uniforms.dims);
          let n = P[5 * index];
          let sI = P[5 * index + 1];
          let vI = P[5 * index + 2] + uniforms.eps;
          let sJ = q.x;
          let cross = q.z - sI * sJ / n;
          let varJ = q.y - sJ * sJ / n;
          let D = vI * (varJ + uniforms.eps);
          let a = m * 2.0 * cross / D;
          let b = m * cross * cross * vI / (D * D);
          out = vec4<f32>(a, a * sI / n, b, b * sJ / n);
        }
        for (var c = 0; c < 4; c = c + 1) {
          setOutputAtIndex(4 * index + c, out[c]);
        }
      }
    `;
  }
}

class DeformGradientProgram extends FlatProgram {
  variableNames: string[];
  uniforms: string;
  outputShape: number[];
  shaderKey: string;

  constructor(
    voxels: number,
    private readonly featureChannels: number,
    private readonly r: number,
  ) {
    super(voxels);
    this.variableNames = ['S', 'B', 'M', 'P', 'R', ...(featureChannels ? ['FM', 'FF'] : [])];
    this.uniforms =
      'm0 : vec4<f32>, m1 : vec4<f32>, m2 : vec4<f32>, mdims : vec3<i32>, f0 : vec4<f32>, f1 : vec4<f32>, ' +
      'f2 : vec4<f32>, fdims : vec3<i32>, dims : vec3<i32>, gd : vec3<f32>, lnccScale : f32, featureScale : f32, voxels : i32,';
    this.outputShape = [voxels, 3];
    this.shaderKey = `samDeformGradient_${featureChannels}_${r}`;
  }

  getUserCode(): string {
    const C = this.featureChannels;
    const W = STATE_STRIDE;
    const features = C
      ? `
        let pf = vec3<f32>(dot(uniforms.f0, X), dot(uniforms.f1, X), dot(uniforms.f2, X));
        var acc = vec3<f32>(0.0);
        for (var c = 0; c < ${C}; c = c + 1) {
          acc = acc + FF[${C} * index + c] * sampleF(pf, c).yzw;
        }
        g = g - uniforms.featureScale * toWorld(acc, uniforms.f0, uniforms.f1, uniforms.f2);`
      : '';
    return `
      ${trilinearWgsl('sampleM', 'M', 1, 'uniforms.mdims')}
      ${C ? trilinearWgsl('sampleF', 'FM', C, 'uniforms.fdims', false) : ''}
      ${boxSumKWgsl('coefficientSums', 'R', 4, this.r)}
      fn w3(v : i32) -> vec3<f32> {
        return vec3<f32>(S[${W} * v], S[${W} * v + 1], S[${W} * v + 2]);
      }
      fn main(index : i32) {
        if (index >= uniforms.voxels) {
          return;
        }
        ${MOVED}
        let s = sampleM(pm, 0);
        let r = coefficientSums(index, uniforms.dims);
        let dJ = uniforms.lnccScale * (P[5 * index + 4] * r.x - r.y - 2.0 * s.x * r.z + 2.0 * r.w);
        var g = dJ * toWorld(s.yzw, uniforms.m0, uniforms.m1, uniforms.m2);
        ${features}
        // diffusion: forward differences between neighbours along each axis of G
        let dims = uniforms.dims;
        let pos = vec3<i32>(index % dims.x, (index / dims.x) % dims.y, index / (dims.x * dims.y));
        let strides = vec3<i32>(1, dims.x, dims.x * dims.y);
        let here = w3(index);
        for (var a = 0; a < 3; a = a + 1) {
          if (pos[a] > 0) {
            g = g + uniforms.gd[a] * (here - w3(index - strides[a]));
          }
          if (pos[a] < dims[a] - 1) {
            g = g - uniforms.gd[a] * (w3(index + strides[a]) - here);
          }
        }
        setOutputAtIndex(3 * index, g.x);
        setOutputAtIndex(3 * index + 1, g.y);
        setOutputAtIndex(3 * index + 2, g.z);
      }
    `;
  }
}

/** The fixed image's window terms per voxel of G, [N, 5]: n, S_I, varI, centre weight, I. */
export function fixedPack(p: DeviceDeformProblem): tf.Tensor2D {
  const f = p.windows;
  return tf.tidy(() => tf.reshape(tf.concat([f.n, f.sI, f.varI, f.weight, f.I], 3), [-1, 5]) as tf.Tensor2D);
}

/**
 * The gradient [N, 3] of the SAM-deform loss (deform-loss.ts) at the w held in `state` ([9N + 1], see
 * the header), `pack` = fixedPack(p). webgpu only.
 */
export function deformGradientWgsl(p: DeviceDeformProblem, pack: tf.Tensor2D, state: tf.Tensor): tf.Tensor2D {
  const [ni, nj, nk] = p.size;
  const N = ni * nj * nk;
  const mv = p.moving;
  const mUniforms = [...affineUniforms(mv.toIndex), { type: 'int32', data: [...mv.size] }];
  const r = p.windows.r;
  return tf.tidy(() => {
    const products = runWebgpuProgram(
      new SampleProductsProgram(N),
      [state, p.base, mv.data, pack],
      [...mUniforms, { type: 'int32', data: [N] }],
    );
    // box sums: the i and j passes here, the k pass inside the next program
    const Qij = boxSumAxesWgsl(tf.reshape(products, [nk, nj, ni, 3]), r, false, 2);
    const coefficients = runWebgpuProgram(
      new LnccCoefficientsProgram(N, r),
      [Qij, pack],
      [
        { type: 'float32', data: [p.windows.eps] },
        { type: 'int32', data: [ni, nj, nk] },
        { type: 'int32', data: [N] },
      ],
    );
    const R = boxSumAxesWgsl(tf.reshape(coefficients, [nk, nj, ni, 4]), r, false, 2);
    const F = p.features && p.features.weight > 0 ? p.features : undefined;
    const C = F ? F.fixed.shape[1] : 0;
    const coef = p.alpha / N;
    const gd = [0, 1, 2].map((a) => (2 * coef) / (p.spacing[a] * p.spacing[a]));
    const fm = F ? F.moving : mv;
    return runWebgpuProgram(
      new DeformGradientProgram(N, C, r),
      [state, p.base, mv.data, pack, R, ...(F ? [F.moving.data, F.fixed] : [])],
      [
        ...mUniforms,
        ...affineUniforms(fm.toIndex),
        { type: 'int32', data: [...fm.size] },
        { type: 'int32', data: [ni, nj, nk] },
        { type: 'float32', data: gd },
        { type: 'float32', data: [-1 / p.windows.weightSum] },
        { type: 'float32', data: [F ? F.weight / N : 0] },
        { type: 'int32', data: [N] },
      ],
    ) as tf.Tensor2D;
  });
}

/** Partial sums of the gradient statistics: one per workgroup of GradientStatsProgram. */
const STATS_PARTS = 64;
const STATS_THREADS = 256;

/**
 * 'adam-global''s two statistics of the gradient g, its sum of squares and its count of nonzero
 * entries, as STATS_PARTS partial pairs in one dispatch: workgroup w sums the w-th contiguous part of
 * g ([2 * STATS_PARTS]: sums, then counts). AdamStepProgram adds the parts in order. tfjs' ops
 * took six dispatches (square, sum, notEqual, cast, sum, stack).
 */
class GradientStatsProgram implements WebGPUProgram {
  variableNames = ['G'];
  outputShape = [2 * STATS_PARTS];
  shaderKey = 'samDeformGradientStats';
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number] = [1, STATS_PARTS, 1];
  workgroupSize: [number, number, number] = [STATS_THREADS, 1, 1];
  uniforms = 'entries : i32,';

  getUserCode(): string {
    return `
${workgroupReduceWgsl('total', STATS_THREADS, 'a + b', 'vec2<f32>')}

fn main() {
  let part = i32(workgroupId.y);
  let t = localIndex;
  let per = (uniforms.entries + ${STATS_PARTS - 1}) / ${STATS_PARTS};
  let end = min(uniforms.entries, (part + 1) * per);
  var s = vec2<f32>(0.0);
  for (var e = part * per + i32(t); e < end; e += ${STATS_THREADS}) {
    let g = G[e];
    s += vec2<f32>(g * g, select(0.0, 1.0, g != 0.0));
  }
  let r = total(s, t);
  if (t == 0u) {
    result[part] = r.x;
    result[${STATS_PARTS} + part] = r.y;
  }
}`;
  }
}

class AdamStepProgram extends FlatProgram {
  // (every declared input must be read: WGSL drops unused bindings and the bind group would not match)
  variableNames: string[];
  uniforms = 'lr : f32, c1 : f32, c2 : f32, gradientFloor : f32, voxels : i32,';
  outputShape: number[];
  shaderKey: string;

  constructor(
    voxels: number,
    private readonly global: boolean,
  ) {
    super(voxels);
    this.variableNames = global ? ['S', 'G', 'T'] : ['S', 'G'];
    this.outputShape = [STATE_STRIDE * voxels + 1];
    this.shaderKey = `samDeformAdamStep_${global}`;
  }

  getUserCode(): string {
    const W = STATE_STRIDE;
    // 'adam-global': one second moment from the mean square of the nonzero gradient entries (T: the
    // partial sums of GradientStatsProgram), each step clipped to the rate; 'adam': per parameter
    const update = this.global
      ? `
          let step = clamp(uniforms.lr * (m1n / uniforms.c1) / (sqrt(v2 / uniforms.c2) + uniforms.gradientFloor), -uniforms.lr, uniforms.lr);
          setOutputAtIndex(${W} * index + 6 + a, 0.0);`
      : `
          let m2n = 0.999 * S[${W} * index + 6 + a] + 0.001 * g * g;
          let step = uniforms.lr * (m1n / uniforms.c1) / (sqrt(m2n / uniforms.c2) + uniforms.gradientFloor);
          setOutputAtIndex(${W} * index + 6 + a, m2n);`;
    return `
      fn main(index : i32) {
        if (index >= uniforms.voxels) {
          return;
        }
        ${
          this.global
            ? `var squares = 0.0;
        var nonzero = 0.0;
        for (var q = 0; q < ${STATS_PARTS}; q = q + 1) {
          squares = squares + T[q];
          nonzero = nonzero + T[${STATS_PARTS} + q];
        }
        var v2 = 0.999 * S[${W} * uniforms.voxels];
        if (nonzero > 0.0) {
          v2 = v2 + 0.001 * squares / nonzero;
        }`
            : 'let v2 = 0.0;'
        }
        for (var a = 0; a < 3; a = a + 1) {
          let g = G[3 * index + a];
          let m1n = 0.9 * S[${W} * index + 3 + a] + 0.1 * g;
          ${update}
          setOutputAtIndex(${W} * index + a, S[${W} * index + a] - step);
          setOutputAtIndex(${W} * index + 3 + a, m1n);
        }
        if (index == 0) {
          setOutputAtIndex(${W} * uniforms.voxels, v2);
        }
      }
    `;
  }
}

/**
 * One Adam step on `state` ([9N + 1]) with the (smoothed) gradient g [N, 3]: the new state. `global`:
 * 'adam-global' (the gradient's sum of squares and nonzero count are taken here: one more dispatch);
 * else per-parameter.
 */
export function adamStepWgsl(
  state: tf.Tensor,
  g: tf.Tensor2D,
  o: { lr: number; c1: number; c2: number; floor: number; global: boolean },
): tf.Tensor {
  const N = g.shape[0];
  return tf.tidy(() => {
    const stats = o.global
      ? [runWebgpuProgram(new GradientStatsProgram(), [g], [{ type: 'int32', data: [g.size] }])]
      : [];
    return runWebgpuProgram(
      new AdamStepProgram(N, o.global),
      [state, g, ...stats],
      [
        { type: 'float32', data: [o.lr] },
        { type: 'float32', data: [o.c1] },
        { type: 'float32', data: [o.c2] },
        { type: 'float32', data: [o.floor] },
        { type: 'int32', data: [N] },
      ],
    );
  });
}
