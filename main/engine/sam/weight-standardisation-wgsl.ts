/**
 * The scaled weight standardisation of network.ts (effectiveKernel) on tfjs' WebGPU backend as one
 * WGSL dispatch, and its gradient as two: per output channel c over its fan-in f,
 *   d = W - mean(W),  S = sum(d^2),  r = 1 / sqrt(S + 1e-4),  W' = scale * gain[c] * r * d;
 *   dL/dW = scale g r (G - mean(G)) - scale g r^3 d sum(G d),  dL/dg = scale r sum(G d)
 * (G = dL/dW', dy in the programs). The inputs are named W, gain and dy: tfjs names each input's
 * shape uniform after it with a lower-case initial, so g and G would collide. tfjs ops take about 11 dispatches for the forward and twice that for the gradient, for
 * every convolution of every forward pass: some 700 of an iteration's dispatches in SAM training, and
 * half of a whole-volume embedding's. One workgroup per output channel; kernels [kd, kh, kw, cin, cout]
 * (cout fastest), as tfjs lays them out.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { runWebgpuProgram } from '../compute/run-webgpu-program.ts';
import { workgroupReduceWgsl } from '../compute/wgsl-workgroup-reduce.ts';

const THREADS = 256;
const EPS = 1e-4;

/** WGSL shared by the three programs: the channel's moments over its fan-in. */
const MOMENTS = `
${workgroupReduceWgsl('channelSum', THREADS, 'a + b')}

// mean and r = 1 / sqrt(sum (W - mean)^2 + eps) of output channel c
fn moments(c : i32, t : u32) -> vec2<f32> {
  let fanIn = uniforms.fanIn;
  let cout = uniforms.cout;
  var s = 0.0;
  for (var f = i32(t); f < fanIn; f += ${THREADS}) { s += W[f * cout + c]; }
  let mean = channelSum(s, t) / f32(fanIn);
  var q = 0.0;
  for (var f = i32(t); f < fanIn; f += ${THREADS}) {
    let d = W[f * cout + c] - mean;
    q += d * d;
  }
  return vec2<f32>(mean, inverseSqrt(channelSum(q, t) + ${EPS}));
}`;

/** One workgroup per output channel c; every program starts from the channel's moments m = (mean, r). */
class ChannelProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [THREADS, 1, 1];
  uniforms = 'fanIn : i32, cout : i32, scale : f32,';

  constructor(
    outputShape: number[],
    cout: number,
    readonly variableNames: string[],
    readonly shaderKey: string,
    private readonly body: string,
  ) {
    this.outputShape = outputShape;
    this.dispatch = [1, cout, 1];
  }

  getUserCode(): string {
    return `${MOMENTS}
fn main() {
  let c = i32(workgroupId.y);
  let t = localIndex;
  let cout = uniforms.cout;
  let fanIn = uniforms.fanIn;
  let m = moments(c, t);
${this.body}
}`;
  }
}

/** W' (inputs W, gain). */
const STANDARDISE = `
  let s = uniforms.scale * gain[c] * m.y;
  for (var f = i32(t); f < fanIn; f += ${THREADS}) {
    let i = f * cout + c;
    result[i] = (W[i] - m.x) * s;
  }`;

/** dL/dW (inputs W, gain, dy). */
const KERNEL_GRAD = `
  var sg = 0.0;
  var sgd = 0.0;
  for (var f = i32(t); f < fanIn; f += ${THREADS}) {
    let i = f * cout + c;
    sg += dy[i];
    sgd += dy[i] * (W[i] - m.x);
  }
  let meanG = channelSum(sg, t) / f32(fanIn);
  let gd = channelSum(sgd, t);
  let a = uniforms.scale * gain[c] * m.y;
  let b = a * m.y * m.y * gd;
  for (var f = i32(t); f < fanIn; f += ${THREADS}) {
    let i = f * cout + c;
    result[i] = a * (dy[i] - meanG) - b * (W[i] - m.x);
  }`;

/** dL/dgain (inputs W, dy). */
const GAIN_GRAD = `
  var sgd = 0.0;
  for (var f = i32(t); f < fanIn; f += ${THREADS}) {
    let i = f * cout + c;
    sgd += dy[i] * (W[i] - m.x);
  }
  let gd = channelSum(sgd, t);
  if (t == 0u) { result[c] = uniforms.scale * m.y * gd; }`;

function run(program: WebGPUProgram, inputs: tf.Tensor[], fanIn: number, cout: number, scale: number): tf.Tensor {
  return runWebgpuProgram(program, inputs, [
    { type: 'int32', data: [fanIn] },
    { type: 'int32', data: [cout] },
    { type: 'float32', data: [scale] },
  ]);
}

/** The gain's gradient [cout] in the gain's shape (no Reshape kernel when that is [cout] too). */
const gainShaped = (grad: tf.Tensor, g: tf.Tensor): tf.Tensor => (g.rank === 1 ? grad : tf.reshape(grad, g.shape));

/**
 * scale * g * (W - mean) / sqrt(sum (W - mean)^2 + 1e-4) per output channel (the last axis of the
 * kernel), differentiable in W and g; WebGPU only (network.ts takes tfjs ops elsewhere).
 */
export function standardisedKernelWgsl(kernel: tf.Tensor5D, gain: tf.Tensor, scale: number): tf.Tensor5D {
  const cout = kernel.shape[4];
  const fanIn = kernel.size / cout;
  if (gain.size !== cout) throw new RangeError(`gain of ${gain.size} for a kernel of ${cout} output channels`);
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [w, g] = args as [tf.Tensor5D, tf.Tensor];
    const value = run(
      new ChannelProgram(w.shape, cout, ['W', 'gain'], 'samWeightStandardise', STANDARDISE),
      [w, g],
      fanIn,
      cout,
      scale,
    ) as tf.Tensor5D;
    const gradFunc = (dy: tf.Tensor5D) => [
      run(
        new ChannelProgram(w.shape, cout, ['W', 'gain', 'dy'], 'samWeightStandardiseGradW', KERNEL_GRAD),
        [w, g, dy],
        fanIn,
        cout,
        scale,
      ),
      gainShaped(
        run(
          new ChannelProgram([cout], cout, ['W', 'dy'], 'samWeightStandardiseGradG', GAIN_GRAD),
          [w, dy],
          fanIn,
          cout,
          scale,
        ),
        g,
      ),
    ];
    return { value, gradFunc };
  });
  return f(kernel, gain) as tf.Tensor5D;
}
