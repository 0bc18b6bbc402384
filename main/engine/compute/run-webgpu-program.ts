/**
 * Run a WGSL program through tfjs-webgpu's program mechanism (shader cache, uniforms, buffers) and
 * hand its output back as a tensor of the active engine. WebGPU backend only.
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
