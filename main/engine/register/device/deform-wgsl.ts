/**
 * WGSL programs for SAM-deform on tfjs' WebGPU backend, where each tfjs op is a dispatch and the
 * op-by-op versions (box-sum-on-device.ts: a pad, 2r + 1 slices and an addN per axis; sample-on-device.ts:
 * about 85 ops per trilinear sampling) spend a GPU's time on launches:
 * - BoxSumAxisProgram: the truncated box sum (or mean) of radius r along one axis of a flat tensor (the
 *   axis given by its length and element stride), one dispatch per axis; the truncated window's count
 *   is a product over the axes, so three axis means make the box mean (boxSum3Wgsl, the reference);
 * - BoxSumAxesProgram: the same passes fused, i and j or all three axes in one dispatch, bit for bit
 *   the same numbers (boxSum3dWgsl, what the deform stage uses: one or two dispatches a box sum);
 * - TrilinearProgram: the trilinear value of every channel of an image [V, C] at world points [N, 3]
 *   (through the world -> index affine, border clamped as the host code) and its derivatives with
 *   respect to the world coordinates, in one dispatch: output [N, 4, C] = value, d/dX, d/dY, d/dZ.
 * Values equal the op-by-op versions up to float32 rounding (test/unit/reg-deform-on-device.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
// types only: importing the package registers the webgpu backend, which tf-backend.ts does when chosen
import { FlatProgram } from './flat-program.ts';
import { runWebgpuProgram } from '../../compute/run-webgpu-program.ts';
import type { Affine3x4 } from '../../volume/geometry.ts';

class BoxSumAxisProgram extends FlatProgram {
  variableNames = ['X'];
  uniforms = 'len : i32, stride : i32,';
  outputShape: number[];
  shaderKey: string;
  size = true;

  constructor(
    n: number,
    private readonly r: number,
    private readonly mean = false,
  ) {
    super(n);
    this.outputShape = [n];
    this.shaderKey = `samBoxSumAxis_${r}_${mean}`;
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let pos = (index / uniforms.stride) % uniforms.len;
          var s = 0.0;
          var n = 0.0;
          for (var t = -${this.r}; t <= ${this.r}; t = t + 1) {
            let q = pos + t;
            if (q >= 0 && q < uniforms.len) {
              s = s + X[index + t * uniforms.stride];
              n = n + 1.0;
            }
          }
          setOutputAtIndex(index, ${this.mean ? 's / n' : 's'});
        }
      }
    `;
  }
}

/**
 * Box sum (or with `mean`, box mean) of radius r along axis `axis` of x (float32, any rank), by the
 * WGSL program; webgpu only.
 */
export function boxSumAxisWgsl(x: tf.Tensor, axis: number, r: number, mean = false): tf.Tensor {
  const len = x.shape[axis];
  const stride = x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const flat = tf.reshape(x, [-1]);
  const out = runWebgpuProgram(
    new BoxSumAxisProgram(x.size, r, mean),
    [flat],
    [
      { type: 'int32', data: [len] },
      { type: 'int32', data: [stride] },
    ],
  );
  flat.dispose();
  const shaped = tf.reshape(out, x.shape);
  out.dispose();
  return shaped;
}

/** Truncated box sum (or mean) of radius r over the three spatial axes of [nk, nj, ni, C]: three dispatches. */
export function boxSum3Wgsl(x: tf.Tensor4D, r: number, mean = false): tf.Tensor4D {
  return tf.tidy(
    () => boxSumAxisWgsl(boxSumAxisWgsl(boxSumAxisWgsl(x, 2, r, mean), 1, r, mean), 0, r, mean) as tf.Tensor4D,
  );
}

/**
 * Box sums over the i and j axes (`axes` 2) or all three (`axes` 3) of [nk, nj, ni, C] in one
 * dispatch: each output sums its window directly, in the order and with the divisions of the axis
 * passes (i innermost, then j, then k; each partial sum divided by its axis's count for a mean), so
 * the float32 result is the same bit for bit as boxSumAxisWgsl's passes. (2r + 1)^axes reads instead of
 * axes (2r + 1), for one dispatch instead of `axes`: launching a program costs a GPU's host more than
 * the reads (0.3-0.5 ms a dispatch on the H200 machine).
 */
class BoxSumAxesProgram extends FlatProgram {
  variableNames = ['X'];
  uniforms = 'dims : vec4<i32>,';
  outputShape: number[];
  shaderKey: string;
  size = true;

  constructor(
    n: number,
    private readonly r: number,
    private readonly mean: boolean,
    private readonly axes: 2 | 3,
  ) {
    super(n);
    this.outputShape = [n];
    this.shaderKey = `samBoxSumAxes_${r}_${mean}_${axes}`;
  }

  getUserCode(): string {
    const r = this.r;
    const div = (s: string, n: string) => (this.mean ? `${s} / ${n}` : s);
    // the k loop: over the window (3 axes) or k itself (2 axes: no k pass)
    const kLoop =
      this.axes === 3 ? `for (var tk = -${r}; tk <= ${r}; tk = tk + 1)` : 'for (var tk = 0; tk <= 0; tk = tk + 1)';
    const result = this.axes === 3 ? div('sk', 'ck') : 'sk';
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let ni = uniforms.dims.x;
          let nj = uniforms.dims.y;
          let nk = uniforms.dims.z;
          let C = uniforms.dims.w;
          let v = index / C;
          let i = v % ni;
          let j = (v / ni) % nj;
          let k = v / (ni * nj);
          var sk = 0.0;
          var ck = 0.0;
          ${kLoop} {
            let kk = k + tk;
            if (kk < 0 || kk >= nk) { continue; }
            var sj = 0.0;
            var cj = 0.0;
            for (var tj = -${r}; tj <= ${r}; tj = tj + 1) {
              let jj = j + tj;
              if (jj < 0 || jj >= nj) { continue; }
              var si = 0.0;
              var ci = 0.0;
              for (var ti = -${r}; ti <= ${r}; ti = ti + 1) {
                let ii = i + ti;
                if (ii >= 0 && ii < ni) {
                  si = si + X[index + ((kk - k) * nj * ni + (jj - j) * ni + ti) * C];
                  ci = ci + 1.0;
                }
              }
              sj = sj + ${div('si', 'ci')};
              cj = cj + 1.0;
            }
            sk = sk + ${div('sj', 'cj')};
            ck = ck + 1.0;
          }
          setOutputAtIndex(index, ${result});
        }
      }
    `;
  }
}

/** BoxSumAxesProgram over [nk, nj, ni, C]: the i and j passes (`axes` 2) or all three (3), one dispatch. */
export function boxSumAxesWgsl(x: tf.Tensor4D, r: number, mean: boolean, axes: 2 | 3): tf.Tensor4D {
  const [nk, nj, ni, C] = x.shape;
  return tf.tidy(() => {
    const out = runWebgpuProgram(
      new BoxSumAxesProgram(x.size, r, mean, axes),
      [tf.reshape(x, [-1])],
      [{ type: 'int32', data: [ni, nj, nk, C] }],
    );
    return tf.reshape(out, x.shape) as tf.Tensor4D;
  });
}

/**
 * boxSum3Wgsl's numbers in fewer dispatches: radius 1 in one (27 reads an output), larger radii in two
 * (the i and j axes together, then k: (2r + 1)^2 + 2r + 1 reads). Bit for bit the same.
 */
export function boxSum3dWgsl(x: tf.Tensor4D, r: number, mean = false): tf.Tensor4D {
  if (r <= 1) return boxSumAxesWgsl(x, r, mean, 3);
  return tf.tidy(() => boxSumAxisWgsl(boxSumAxesWgsl(x, r, mean, 2), 0, r, mean) as tf.Tensor4D);
}

class TrilinearProgram extends FlatProgram {
  variableNames = ['I', 'P'];
  uniforms = 'm0 : vec4<f32>, m1 : vec4<f32>, m2 : vec4<f32>, dims : vec3<i32>, points : i32,';
  outputShape: number[];
  shaderKey: string;

  constructor(
    points: number,
    private readonly channels: number,
  ) {
    super(points);
    this.outputShape = [points, 4, channels];
    this.shaderKey = `samTrilinearWorld_${channels}`;
  }

  getUserCode(): string {
    const C = this.channels;
    return `
      ${trilinearWgsl('sampleI', 'I', C, 'uniforms.dims')}
      fn main(index : i32) {
        if (index >= uniforms.points) {
          return;
        }
        let w = vec4<f32>(P[index * 3], P[index * 3 + 1], P[index * 3 + 2], 1.0);
        let p = vec3<f32>(dot(uniforms.m0, w), dot(uniforms.m1, w), dot(uniforms.m2, w));
        for (var ch = 0; ch < ${C}; ch = ch + 1) {
          let s = sampleI(p, ch);
          let o = index * ${4 * C} + ch;
          setOutputAtIndex(o, s.x);
          // index-space derivatives to world: d/dX_r = sum_a d/didx_a * m[a][r]
          let g = toWorld(s.yzw, uniforms.m0, uniforms.m1, uniforms.m2);
          setOutputAtIndex(o + ${C}, g.x);
          setOutputAtIndex(o + ${2 * C}, g.y);
          setOutputAtIndex(o + ${3 * C}, g.z);
        }
      }
    `;
  }
}

/**
 * WGSL for trilinear sampling with derivatives, shared by this folder's programs: `fn name(p, ch)`
 * reads channel ch of the `C`-channel image in buffer `buf` (dims given by the expression `dims`,
 * vec3<i32>, i fastest, channels interleaved) at the continuous index p, border clamped as the host
 * code (deform-loss.ts sampleWithGradient), and returns (value, d/di, d/dj, d/dk), each derivative zero
 * where p is clamped along its axis. Also declares `toWorld` (once per shader: pass `withToWorld`
 * false for a second sampler).
 */
export function trilinearWgsl(name: string, buf: string, C: number, dims: string, withToWorld = true): string {
  return `
      fn ${name}(p : vec3<f32>, ch : i32) -> vec4<f32> {
        let dims = ${dims};
        let hi = vec3<f32>(dims - vec3<i32>(1));
        let c = clamp(p, vec3<f32>(0.0), hi);
        let inside = select(vec3<f32>(0.0), vec3<f32>(1.0), (p >= vec3<f32>(0.0)) & (p <= hi));
        let f0 = min(floor(c), hi - vec3<f32>(1.0));
        let fr = c - f0;
        let i0 = vec3<i32>(f0);
        let sj = dims.x * ${C};
        let sk = sj * dims.y;
        let q = i0.x * ${C} + i0.y * sj + i0.z * sk + ch;
        let v000 = ${buf}[q];
        let v100 = ${buf}[q + ${C}];
        let v010 = ${buf}[q + sj];
        let v110 = ${buf}[q + sj + ${C}];
        let v001 = ${buf}[q + sk];
        let v101 = ${buf}[q + sk + ${C}];
        let v011 = ${buf}[q + sk + sj];
        let v111 = ${buf}[q + sk + sj + ${C}];
        let c00 = v000 + (v100 - v000) * fr.x;
        let c10 = v010 + (v110 - v010) * fr.x;
        let c01 = v001 + (v101 - v001) * fr.x;
        let c11 = v011 + (v111 - v011) * fr.x;
        let c0 = c00 + (c10 - c00) * fr.y;
        let c1 = c01 + (c11 - c01) * fr.y;
        let dx0 = (v100 - v000) + ((v110 - v010) - (v100 - v000)) * fr.y;
        let dx1 = (v101 - v001) + ((v111 - v011) - (v101 - v001)) * fr.y;
        let g = inside * vec3<f32>(dx0 + (dx1 - dx0) * fr.z, (c10 - c00) + ((c11 - c01) - (c10 - c00)) * fr.z, c1 - c0);
        return vec4<f32>(c0 + (c1 - c0) * fr.z, g);
      }${
        withToWorld
          ? `
      // index-space gradient g to world: d/dX_r = sum_a g_a * m[a][r] (m0..m2: rows of the world -> index map)
      fn toWorld(g : vec3<f32>, m0 : vec4<f32>, m1 : vec4<f32>, m2 : vec4<f32>) -> vec3<f32> {
        return g.x * m0.xyz + g.y * m1.xyz + g.z * m2.xyz;
      }`
          : ''
      }`;
}

/**
 * Trilinear samples and their world-space derivatives of `image` [V, C] (size [ni, nj, nk]) at world
 * points [N, 3] through `toIndex`: [N, 4, C] (value, d/dX, d/dY, d/dZ). webgpu only.
 */
export function trilinearWorldWgsl(
  image: tf.Tensor2D,
  size: readonly number[],
  toIndex: Affine3x4,
  points: tf.Tensor2D,
): tf.Tensor3D {
  const C = image.shape[1];
  const m = toIndex;
  return runWebgpuProgram(
    new TrilinearProgram(points.shape[0], C),
    [image, points],
    [
      { type: 'float32', data: [m[0], m[1], m[2], m[3]] },
      { type: 'float32', data: [m[4], m[5], m[6], m[7]] },
      { type: 'float32', data: [m[8], m[9], m[10], m[11]] },
      { type: 'int32', data: [size[0], size[1], size[2]] },
      { type: 'int32', data: [points.shape[0]] },
    ],
  ) as tf.Tensor3D;
}
