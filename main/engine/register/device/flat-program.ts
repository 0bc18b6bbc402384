/**
 * The common frame of this folder's WGSL programs: one thread per output element (or per point),
 * 64 threads a workgroup along x; past WebGPU's 65,535 workgroups a dimension tfjs reshapes the
 * dispatch (reshapeDispatch) and `main(index)` still receives the flat thread index.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { Affine3x4 } from '../../volume/geometry.ts';

export abstract class FlatProgram implements WebGPUProgram {
  abstract variableNames: string[];
  abstract outputShape: number[];
  abstract shaderKey: string;
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];

  constructor(threads: number) {
    this.dispatch = [Math.ceil(threads / 64), 1, 1];
  }

  abstract getUserCode(): string;
}

/** An affine's three rows as vec4<f32> uniforms (the programs' `dot(row, vec4(x, 1))`). */
export function affineUniforms(m: Affine3x4): { type: string; data: number[] }[] {
  return [0, 1, 2].map((a) => ({ type: 'float32', data: m.slice(4 * a, 4 * a + 4) }));
}

/** WGSL: trilinear interpolation of the 8 corner values at fractions f (x fastest), for any program. */
export const TRILINEAR_WGSL = `
      fn trilinear(v000 : f32, v100 : f32, v010 : f32, v110 : f32, v001 : f32, v101 : f32, v011 : f32, v111 : f32,
                   f : vec3<f32>) -> f32 {
        let c00 = v000 + (v100 - v000) * f.x;
        let c10 = v010 + (v110 - v010) * f.x;
        let c01 = v001 + (v101 - v001) * f.x;
        let c11 = v011 + (v111 - v011) * f.x;
        let c0 = c00 + (c10 - c00) * f.y;
        let c1 = c01 + (c11 - c01) * f.y;
        return c0 + (c1 - c0) * f.z;
      }`;

/** A device tensor's values read back to the host; the tensor is disposed, also when the read fails. */
export async function readAndDispose(t: tf.Tensor): Promise<Float32Array> {
  try {
    return (await t.data()) as Float32Array;
  } finally {
    t.dispose();
  }
}
