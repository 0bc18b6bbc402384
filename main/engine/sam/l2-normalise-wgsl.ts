/**
 * The embeddings' L2 normalisation along channels (network.ts l2normalize) on tfjs' WebGPU backend
 * as one WGSL dispatch, and its gradient as one more: per row (voxel) n of x [N, C],
 *   s = sum_c x^2,  r = 1 / sqrt(max(s, 1e-12)),  y = r x;
 *   dL/dx = r dy - r^3 x sum_c(dy x) where s > 1e-12, else r dy
 * (the clamp's side has no dependence on s). tfjs ops take 6 dispatches forward and about 12 for
 * the gradient, and the gradient of their tf.sum fills a [N, C] array of ones on the host and
 * uploads it (tfjs' Sum gradient): 19 MB per iteration for the local embeddings of 2 pairs of
 * 96x96x32 patches. One thread per row, channels summed in order.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { runWebgpuProgram } from '../compute/run-webgpu-program.ts';

const THREADS = 64;
const EPS = 1e-12;

class RowNormProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [THREADS, 1, 1];
  uniforms = 'rows : i32, channels : i32,';

  constructor(
    rows: number,
    channels: number,
    readonly variableNames: string[],
    readonly shaderKey: string,
    private readonly body: string,
  ) {
    this.outputShape = [rows, channels];
    this.dispatch = [Math.ceil(rows / THREADS), 1, 1];
  }

  getUserCode(): string {
    return `
fn main(index : i32) {
  let n = index;
  if (n >= uniforms.rows) { return; }
  let c = uniforms.channels;
  let o = n * c;
  var s = 0.0;
  for (var k = 0; k < c; k++) { let v = x[o + k]; s += v * v; }
  let r = 1.0 / sqrt(max(s, ${EPS.toExponential()}));
${this.body}
}`;
  }
}

const FORWARD = `
  for (var k = 0; k < c; k++) { result[o + k] = x[o + k] * r; }`;

const GRADIENT = `
  var p = 0.0;
  for (var k = 0; k < c; k++) { p += dy[o + k] * x[o + k]; }
  // the clamp's side: r does not depend on x there
  let q = select(0.0, r * r * r * p, s > ${EPS.toExponential()});
  for (var k = 0; k < c; k++) { result[o + k] = r * dy[o + k] - q * x[o + k]; }`;

const uniforms = (rows: number, c: number) => [
  { type: 'int32', data: [rows] },
  { type: 'int32', data: [c] },
];

/** x / |x| along the last axis of x [N, C], differentiable: one dispatch forward, one backward (WebGPU only). */
export function l2NormaliseRowsWgsl(x: tf.Tensor2D): tf.Tensor2D {
  const [rows, c] = x.shape;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const v = args[0] as tf.Tensor2D;
    (args[1] as tf.GradSaveFunc)([v]);
    const value = runWebgpuProgram(
      new RowNormProgram(rows, c, ['x'], 'samL2Normalise', FORWARD),
      [v],
      uniforms(rows, c),
    ) as tf.Tensor2D;
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) =>
      runWebgpuProgram(
        new RowNormProgram(rows, c, ['x', 'dy'], 'samL2NormaliseGrad', GRADIENT),
        [saved[0], dy],
        uniforms(rows, c),
      );
    return { value, gradFunc };
  });
  return f(x) as tf.Tensor2D;
}
