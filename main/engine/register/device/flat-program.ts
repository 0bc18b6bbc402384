/**
 * The common frame of this folder's WGSL programs: one thread per output element (or per point),
 * 64 threads a workgroup along x; past WebGPU's 65,535 workgroups a dimension tfjs reshapes the
 * dispatch (reshapeDispatch) and `main(index)` still receives the flat thread index.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

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

/** Run a program on the active webgpu backend; its float32 output as a tensor the caller owns. */
export function runProgram(
  program: WebGPUProgram,
  inputs: tf.TensorInfo[],
  uniforms: { type: string; data: number[] }[],
): tf.Tensor {
  const backend = tf.backend() as unknown as WebGPUBackend;
  return tf.engine().makeTensorFromTensorInfo(backend.runWebGPUProgram(program, inputs, 'float32', uniforms));
}
