/**
 * ReLU with its gradient in one WGSL dispatch on tfjs' WebGPU backend (network.ts, every activation):
 * dL/dx = dy where x > 0, else 0. tfjs' own ReLU gradient is three kernels and two dispatches
 * (Step, Cast, Multiply); training the `small` network runs 13 activations an iteration, and on a
 * GPU an iteration is bound by the host's work of launching kernels, not by their arithmetic.
 * The forward pass is tfjs' Relu. The program reads and writes flat views of the tensors (their
 * data ids with a rank-1 shape: no Reshape kernels, and tfjs-webgpu cannot index rank-5 shapes).
 * A NaN input gives a zero gradient here (tfjs' Step passes NaN on); the values are otherwise
 * identical (dy times 1 or 0 either way, signed zeros included).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

const THREADS = 128;

class ReluGradProgram implements WebGPUProgram {
  variableNames = ['x', 'dy'];
  outputShape: number[];
  shaderKey = 'samReluGrad';
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [THREADS, 1, 1];
  size = true;

  constructor(n: number) {
    this.outputShape = [n];
    this.dispatch = [Math.ceil(n / THREADS), 1, 1];
  }

  getUserCode(): string {
    return `
fn main(index : i32) {
  if (index < uniforms.size) { result[index] = dy[index] * select(0.0, 1.0, x[index] > 0.0); }
}`;
  }
}

/** The gradient of relu at x for dy (same shapes, float32) as one dispatch; a tensor the caller owns. */
export function reluGradWgsl(x: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  const backend = tf.backend() as unknown as WebGPUBackend;
  const flat = (t: tf.Tensor): tf.TensorInfo => ({ dataId: t.dataId, shape: [t.size], dtype: t.dtype });
  const out = backend.runWebGPUProgram(new ReluGradProgram(x.size), [flat(x), flat(dy)], 'float32');
  return tf.engine().makeTensorFromTensorInfo({ dataId: out.dataId, shape: dy.shape, dtype: 'float32' });
}

/** tf.relu with its gradient by reluGradWgsl (WebGPU only). */
export function reluWgsl<T extends tf.Tensor>(x: T): T {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const v = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([v]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => reluGradWgsl(saved[0], dy);
    return { value: tf.relu(v), gradFunc };
  });
  return f(x) as T;
}
