/**
 * Box sums on the tfjs device, the twin of deform/box-sum.ts: for x of shape [nk, nj, ni, C] (the
 * Volume order, i fastest, channels last), out(x) = Σ x(y) over |y - x| <= r per spatial axis, windows
 * truncated at the grid's faces (zero padding gives exactly the truncated sum). Per axis: pad r zeros
 * on both sides and add the 2r + 1 shifted slices (one addN), so every output is a sum of 2r + 1
 * float32 values per axis, not a running sum.
 * The truncated box sum is its own adjoint, and the gradient says so (customGrad): backpropagation
 * costs one more box sum instead of the transposes of the pads and slices.
 */
import * as tf from '@tensorflow/tfjs-core';
import { boxSum3dWgsl, boxSumAxisWgsl } from './deform-wgsl.ts';

function alongAxis(x: tf.Tensor4D, axis: 0 | 1 | 2, r: number): tf.Tensor4D {
  if (r <= 0) return x.clone();
  const padding: [number, number][] = [
    [0, 0],
    [0, 0],
    [0, 0],
    [0, 0],
  ];
  padding[axis] = [r, r];
  const padded = tf.pad(x, padding);
  const slices: tf.Tensor4D[] = [];
  for (let t = 0; t <= 2 * r; t++) {
    const begin = [0, 0, 0, 0];
    begin[axis] = t;
    slices.push(tf.slice(padded, begin, x.shape));
  }
  return tf.addN(slices);
}

function boxSumForward(x: tf.Tensor4D, r: number): tf.Tensor4D {
  // on WebGPU one or two dispatches (deform-wgsl.ts boxSum3dWgsl), elsewhere pads and slices
  if (tf.getBackend() === 'webgpu') return boxSum3dWgsl(x, r);
  return tf.tidy(() => alongAxis(alongAxis(alongAxis(x, 2, r), 1, r), 0, r));
}

/** Truncated-window box sum of radius r over the three spatial axes of [nk, nj, ni, C]. */
export function boxSumOnDevice(x: tf.Tensor4D, r: number): tf.Tensor4D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: boxSumForward(args[0] as tf.Tensor4D, r),
    gradFunc: (dy: tf.Tensor) => boxSumForward(dy as tf.Tensor4D, r),
  }));
  return f(x) as tf.Tensor4D;
}

/**
 * Box mean of radius r (the sum over the truncated window divided by its voxel count), not
 * differentiated. On WebGPU the per-axis means (the count is a product over the axes) in one or two
 * dispatches; elsewhere the box sum divided by the box sum of ones.
 */
export function boxMeanOnDevice(x: tf.Tensor4D, r: number): tf.Tensor4D {
  // one dispatch for radius 1 (the gradient's smoothing), two for more: the three axis passes' numbers
  if (tf.getBackend() === 'webgpu') return boxSum3dWgsl(x, r, true);
  return tf.tidy(() => tf.div(boxSumForward(x, r), boxSumForward(tf.ones([x.shape[0], x.shape[1], x.shape[2], 1]), r)));
}

/** Box mean of radius r along one spatial axis (tensor axis 2 = i, 1 = j, 0 = k). */
function boxMeanAlongOnDevice(x: tf.Tensor4D, axis: 0 | 1 | 2, r: number): tf.Tensor4D {
  if (tf.getBackend() === 'webgpu') return boxSumAxisWgsl(x, axis, r, true) as tf.Tensor4D;
  return tf.tidy(() => tf.div(alongAxis(x, axis, r), alongAxis(tf.onesLike(x), axis, r)));
}

/**
 * Box mean with a radius per spatial axis (i, j, k) of [nk, nj, ni, C]: boxMeanOnDevice when the three
 * are equal, otherwise one pass per axis with a radius above 0.
 */
export function boxMeanAxesOnDevice(x: tf.Tensor4D, r: readonly [number, number, number]): tf.Tensor4D {
  if (r[0] === r[1] && r[1] === r[2]) return boxMeanOnDevice(x, r[0]);
  return tf.tidy(() => {
    let y: tf.Tensor4D = x;
    // tensor axes: 2 = i, 1 = j, 0 = k
    for (const [axis, radius] of [
      [2, r[0]],
      [1, r[1]],
      [0, r[2]],
    ] as const)
      if (radius > 0) y = boxMeanAlongOnDevice(y, axis, radius);
    return y;
  });
}

/** The optimisers' preconditioner: the radius-1 box mean of a gradient [N, 3] on a grid of `size`, `passes` times. */
export function smoothGradientOnDevice(g: tf.Tensor2D, size: readonly number[], passes: number): tf.Tensor2D {
  const [ni, nj, nk] = size;
  return tf.tidy(() => {
    let x = tf.reshape(g, [nk, nj, ni, 3]) as tf.Tensor4D;
    for (let s = 0; s < passes; s++) x = boxMeanOnDevice(x, 1);
    return tf.reshape(x, [ni * nj * nk, 3]) as tf.Tensor2D;
  });
}
