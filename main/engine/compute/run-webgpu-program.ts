/**
 * Run a WGSL program through tfjs-webgpu's program mechanism (shader cache, uniforms, buffers) on the
 * active webgpu backend; its output (float32 unless `dtype`) as a tensor the caller owns. Shared by the
 * programs of the registration (register/device/), the network (sam/) and training (train/).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

export type ProgramUniform = { type: string; data: number[] };

export function runWebgpuProgram(
  program: WebGPUProgram,
  inputs: tf.TensorInfo[],
  uniforms: ProgramUniform[] = [],
  dtype: 'float32' | 'int32' = 'float32',
): tf.Tensor {
  const backend = tf.backend() as unknown as WebGPUBackend;
  return tf.engine().makeTensorFromTensorInfo(backend.runWebGPUProgram(program, inputs, dtype, uniforms));
}

/**
 * A dispatch of `workgroups` workgroups folded onto x and y (at most 1,024 along x), for programs past
 * WebGPU's 65,535 workgroups a dimension; the shader's workgroup number is
 * `workgroupId.x + workgroupId.y * numWorkgroups.x` (the last row's remainder must do nothing).
 */
export function foldedDispatch(workgroups: number): [number, number, number] {
  const x = Math.max(1, Math.min(workgroups, 1024));
  return [x, Math.ceil(workgroups / x), 1];
}
