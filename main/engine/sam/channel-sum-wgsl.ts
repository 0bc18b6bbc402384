/**
 * Sum over the voxels of each channel of a channel-last tensor [..., C] in one WGSL dispatch (one
 * workgroup per channel, a fixed summation order): the bias gradient of every convolution. tfjs'
 * own sum over the leading axes transposes first and reduces after (two dispatches per layer).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { runWebgpuProgram } from '../compute/run-webgpu-program.ts';
import { workgroupReduceWgsl } from '../compute/wgsl-workgroup-reduce.ts';

const THREADS = 256;

class ChannelSumProgram implements WebGPUProgram {
  variableNames = ['x'];
  outputShape: number[];
  shaderKey = 'samChannelSum';
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [THREADS, 1, 1];
  uniforms = 'voxels : i32, channels : i32,';

  constructor(channels: number) {
    this.outputShape = [channels];
    this.dispatch = [1, channels, 1];
  }

  getUserCode(): string {
    return `
${workgroupReduceWgsl('total', THREADS, 'a + b')}

fn main() {
  let c = i32(workgroupId.y);
  let t = localIndex;
  var s = 0.0;
  for (var v = i32(t); v < uniforms.voxels; v += ${THREADS}) { s += x[v * uniforms.channels + c]; }
  let r = total(s, t);
  if (t == 0u) { result[c] = r; }
}`;
  }
}

/** Σ over all but the last axis of x, [C]; on WebGPU one dispatch, elsewhere tf.sum. */
export function sumPerChannel(x: tf.Tensor): tf.Tensor1D {
  const c = x.shape[x.shape.length - 1];
  const voxels = x.size / c;
  if (tf.getBackend() !== 'webgpu' || c > 65535 || x.dtype !== 'float32') {
    // rank 3, as network.ts has always summed (the CPU backend's results stay bit for bit)
    const s = x.shape;
    const lead = s.length === 5 ? [s[0] * s[1], s[2] * s[3]] : [voxels, 1];
    return tf.sum(tf.reshape(x, [...lead, c]), [0, 1]) as tf.Tensor1D;
  }
  return runWebgpuProgram(
    new ChannelSumProgram(c),
    [x],
    [
      { type: 'int32', data: [voxels] },
      { type: 'int32', data: [c] },
    ],
  ) as tf.Tensor1D;
}
