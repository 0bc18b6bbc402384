/**
 * volume/resample.ts resample (trilinear, `fill` outside the source's voxel-centre hull) of a
 * multi-channel float image onto another grid, on tfjs' WebGPU backend: one dispatch, read back. The
 * deform stage resamples the fixed image's SAM features (8 channels) onto its grid this way when it
 * runs on the GPU. float32 positions: the hull test has 1e-3 voxel of slack (the host's 1e-6 is below
 * float32's resolution at a few hundred mm), so a point within that of a face is sampled, not filled.
 * Returns null when the source does not fit one device buffer (the caller resamples on the host).
 */
import * as tf from '@tensorflow/tfjs-core';
import { voxelsOnDevice } from '../../compute/device-images.ts';
import { maxTensorBytes } from '../../compute/tf-backend.ts';
import { indexToWorldMatrix, worldToIndexMatrix, type Geometry } from '../../volume/geometry.ts';
import type { Volume } from '../../volume/volume.ts';
import { affineUniforms, FlatProgram, readAndDispose, TRILINEAR_WGSL } from './flat-program.ts';
import { runWebgpuProgram } from '../../compute/run-webgpu-program.ts';

class ResampleProgram extends FlatProgram {
  variableNames = ['X'];
  uniforms =
    'g0 : vec4<f32>, g1 : vec4<f32>, g2 : vec4<f32>, s0 : vec4<f32>, s1 : vec4<f32>, s2 : vec4<f32>, ' +
    'sdims : vec3<i32>, tdims : vec3<i32>, voxels : i32, fill : f32,';
  outputShape: number[];
  shaderKey: string;

  constructor(
    voxels: number,
    private readonly channels: number,
  ) {
    super(voxels);
    this.outputShape = [voxels, channels];
    this.shaderKey = `samResample_${channels}`;
  }

  getUserCode(): string {
    const C = this.channels;
    return `
      ${TRILINEAR_WGSL}
      fn main(index : i32) {
        if (index >= uniforms.voxels) {
          return;
        }
        let t = uniforms.tdims;
        let iw = vec4<f32>(f32(index % t.x), f32((index / t.x) % t.y), f32(index / (t.x * t.y)), 1.0);
        let x = vec4<f32>(dot(uniforms.g0, iw), dot(uniforms.g1, iw), dot(uniforms.g2, iw), 1.0);
        let p = vec3<f32>(dot(uniforms.s0, x), dot(uniforms.s1, x), dot(uniforms.s2, x));
        let dims = uniforms.sdims;
        let hi = vec3<f32>(dims - vec3<i32>(1));
        if (any(p < vec3<f32>(-1e-3)) || any(p > hi + vec3<f32>(1e-3))) {
          for (var c = 0; c < ${C}; c = c + 1) {
            setOutputAtIndex(index * ${C} + c, uniforms.fill);
          }
          return;
        }
        let f0 = clamp(floor(p), vec3<f32>(0.0), max(hi - vec3<f32>(1.0), vec3<f32>(0.0)));
        let f = clamp(p - f0, vec3<f32>(0.0), vec3<f32>(1.0));
        let i0 = vec3<i32>(f0);
        // neighbour offsets (none along an axis of one voxel), in elements of C channels
        let d = vec3<i32>(select(0, ${C}, dims.x > 1), select(0, ${C} * dims.x, dims.y > 1),
          select(0, ${C} * dims.x * dims.y, dims.z > 1));
        let b = ${C} * (i0.x + dims.x * (i0.y + dims.y * i0.z));
        for (var c = 0; c < ${C}; c = c + 1) {
          let q = b + c;
          setOutputAtIndex(index * ${C} + c, trilinear(X[q], X[q + d.x], X[q + d.y], X[q + d.y + d.x], X[q + d.z],
            X[q + d.z + d.x], X[q + d.z + d.y], X[q + d.z + d.y + d.x], f));
        }
      }
    `;
  }
}

/**
 * `source`'s voxels X (C channels, on the device) resampled onto `grid`: [N, C] on the device, the
 * caller owns it. webgpu only.
 */
export function resampleTensorOnDevice(
  X: tf.Tensor,
  source: Geometry,
  C: number,
  grid: Geometry,
  fill: number,
): tf.Tensor2D {
  const N = grid.size[0] * grid.size[1] * grid.size[2];
  return runWebgpuProgram(
    new ResampleProgram(N, C),
    [X],
    [
      ...affineUniforms(indexToWorldMatrix(grid)),
      ...affineUniforms(worldToIndexMatrix(source)),
      { type: 'int32', data: [...source.size] },
      { type: 'int32', data: [...grid.size] },
      { type: 'int32', data: [N] },
      { type: 'float32', data: [fill] },
    ],
  ) as tf.Tensor2D;
}

/** resample(volume, grid, { fill, outputType: 'float32' }).data on WebGPU; null when it does not fit. */
export async function resampleOnDevice(volume: Volume, grid: Geometry, fill: number): Promise<Float32Array | null> {
  const t = resampleToTensorOnDevice(volume, grid, fill);
  return t && (await readAndDispose(t));
}

/** resampleOnDevice left on the device: [N, C], the caller disposes it; null when it does not fit. */
export function resampleToTensorOnDevice(volume: Volume, grid: Geometry, fill: number): tf.Tensor2D | null {
  if (tf.getBackend() !== 'webgpu')
    throw new Error(`resampleOnDevice needs the webgpu backend (active: ${tf.getBackend()})`);
  const C = volume.components;
  const N = grid.size[0] * grid.size[1] * grid.size[2];
  const cap = maxTensorBytes() ?? 2 ** 31;
  if (volume.data.length * 4 > cap || N * C * 4 > cap) return null;
  const X = voxelsOnDevice(volume);
  try {
    return resampleTensorOnDevice(X, volume, C, grid, fill);
  } finally {
    X.dispose();
  }
}
