/**
 * WGSL programs for SAM-deform on tfjs' WebGPU backend, where each tfjs op is a dispatch and the
 * op-by-op versions (box-sum-on-device.ts: a pad, 2r + 1 slices and an addN per axis; sample-on-device.ts:
 * about 85 ops per trilinear sampling) spend a GPU's time on launches:
 * - BoxSumAxisProgram: the truncated box sum of radius r along one axis of a flat tensor (the axis
 *   given by its length and element stride), one dispatch per axis;
 * - TrilinearProgram: the trilinear value of every channel of an image [V, C] at world points [N, 3]
 *   (through the world -> index affine, border clamped as the host code) and its derivatives with
 *   respect to the world coordinates, in one dispatch: output [N, 4, C] = value, d/dX, d/dY, d/dZ.
 * Values equal the op-by-op versions up to float32 rounding (test/unit/reg-deform-on-device.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
// types only: importing the package registers the webgpu backend, which tf-backend.ts does when chosen
import { FlatProgram, runProgram } from './flat-program.ts';
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
  ) {
    super(n);
    this.outputShape = [n];
    this.shaderKey = `samBoxSumAxis_${r}`;
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let pos = (index / uniforms.stride) % uniforms.len;
          var s = 0.0;
          for (var t = -${this.r}; t <= ${this.r}; t = t + 1) {
            let q = pos + t;
            if (q >= 0 && q < uniforms.len) {
              s = s + X[index + t * uniforms.stride];
            }
          }
          setOutputAtIndex(index, s);
        }
      }
    `;
  }
}

/** Box sum of radius r along axis `axis` of x (float32, any rank), by the WGSL program; webgpu only. */
export function boxSumAxisWgsl(x: tf.Tensor, axis: number, r: number): tf.Tensor {
  const len = x.shape[axis];
  const stride = x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const flat = tf.reshape(x, [-1]);
  const out = runProgram(
    new BoxSumAxisProgram(x.size, r),
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
      fn main(index : i32) {
        if (index >= uniforms.points) {
          return;
        }
        let w = vec4<f32>(P[index * 3], P[index * 3 + 1], P[index * 3 + 2], 1.0);
        let p = vec3<f32>(dot(uniforms.m0, w), dot(uniforms.m1, w), dot(uniforms.m2, w));
        let hi = vec3<f32>(uniforms.dims - vec3<i32>(1));
        let c = clamp(p, vec3<f32>(0.0), hi);
        // the derivative along a clamped axis is zero (as the host code)
        let inside = select(vec3<f32>(0.0), vec3<f32>(1.0), (p >= vec3<f32>(0.0)) & (p <= hi));
        let f0 = min(floor(c), hi - vec3<f32>(1.0));
        let fr = c - f0;
        let i0 = vec3<i32>(f0);
        let sj = uniforms.dims.x * ${C};
        let sk = sj * uniforms.dims.y;
        let b = i0.x * ${C} + i0.y * sj + i0.z * sk;
        let fx = fr.x;
        let fy = fr.y;
        let fz = fr.z;
        for (var ch = 0; ch < ${C}; ch = ch + 1) {
          let q = b + ch;
          let v000 = I[q];
          let v100 = I[q + ${C}];
          let v010 = I[q + sj];
          let v110 = I[q + sj + ${C}];
          let v001 = I[q + sk];
          let v101 = I[q + sk + ${C}];
          let v011 = I[q + sk + sj];
          let v111 = I[q + sk + sj + ${C}];
          let c00 = v000 + (v100 - v000) * fx;
          let c10 = v010 + (v110 - v010) * fx;
          let c01 = v001 + (v101 - v001) * fx;
          let c11 = v011 + (v111 - v011) * fx;
          let c0 = c00 + (c10 - c00) * fy;
          let c1 = c01 + (c11 - c01) * fy;
          let dx0 = (v100 - v000) + ((v110 - v010) - (v100 - v000)) * fy;
          let dx1 = (v101 - v001) + ((v111 - v011) - (v101 - v001)) * fy;
          // index-space derivatives, then world: d/dX_r = sum_a d/didx_a * m[a][r]
          let g = inside * vec3<f32>(dx0 + (dx1 - dx0) * fz, (c10 - c00) + ((c11 - c01) - (c10 - c00)) * fz, c1 - c0);
          let o = index * ${4 * C} + ch;
          setOutputAtIndex(o, c0 + (c1 - c0) * fz);
          setOutputAtIndex(o + ${C}, g.x * uniforms.m0.x + g.y * uniforms.m1.x + g.z * uniforms.m2.x);
          setOutputAtIndex(o + ${2 * C}, g.x * uniforms.m0.y + g.y * uniforms.m1.y + g.z * uniforms.m2.y);
          setOutputAtIndex(o + ${3 * C}, g.x * uniforms.m0.z + g.y * uniforms.m1.z + g.z * uniforms.m2.z);
        }
      }
    `;
  }
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
  return runProgram(
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
