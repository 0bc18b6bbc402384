/**
 * 16-bit integers packed two to an int32 word (little-endian: voxel 2w in the low half of word w)
 * widened to float32 on tfjs' WebGPU backend, one thread per value: device-images.ts uploads CT
 * voxels this way (half the bytes of float32, no conversion on the host).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { runWebgpuProgram } from './run-webgpu-program.ts';

class Widen16Program implements WebGPUProgram {
  variableNames = ['P'];
  uniforms = 'count : i32,';
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];

  constructor(
    count: number,
    private readonly signed: boolean,
  ) {
    this.outputShape = [count];
    this.dispatch = [Math.ceil(count / 64), 1, 1];
    this.shaderKey = `samWiden16_${signed ? 'i' : 'u'}`;
  }

  getUserCode(): string {
    // int16: shift the half to the top, then an arithmetic shift back (sign-extends); uint16: mask
    const value = this.signed
      ? 'select(w >> 16u, (w << 16u) >> 16u, (index & 1) == 0)'
      : 'select((w >> 16u) & 0xffff, w & 0xffff, (index & 1) == 0)';
    return `
      fn main(index : i32) {
        if (index >= uniforms.count) {
          return;
        }
        let w = P[index / 2];
        setOutputAtIndex(index, f32(${value}));
      }`;
  }
}

/** `count` 16-bit values packed in `words` (int16 when `signed`, else uint16) as a float32 tensor [count]. */
export function widen16OnDevice(words: Int32Array, count: number, signed: boolean): tf.Tensor1D {
  if (words.length * 2 < count)
    throw new Error(`widen16OnDevice: ${words.length} words hold fewer than ${count} values`);
  const packed = tf.tensor1d(words, 'int32');
  try {
    return runWebgpuProgram(
      new Widen16Program(count, signed),
      [packed],
      [{ type: 'int32', data: [count] }],
    ) as tf.Tensor1D;
  } finally {
    packed.dispose();
  }
}
