/**
 * The weight gradient of a 3D convolution as one matrix product per kernel tap, and a conv3d whose
 * gradient uses it.
 *
 * tfjs' own Conv3DBackpropFilterV2 kernels give each filter element one thread (tfjs-webgpu) or one
 * loop (tfjs-cpu) that walks the whole volume: a 3x3x3x16x16 filter is 6,912 threads each summing
 * millions of products, the measured bottleneck of training on WebGPU (0.03-0.5 TFLOP/s on an H100
 * against 2-3 for the forward pass). Here, for every tap (a, b, c) of the kernel,
 *
 *   dW[a, b, c, :, :] = X_abc^T dY,   X_abc [N, Cin] = the input shifted by the tap and strided,
 *                                     dY [N, Cout] = the output gradient, N = B * Do * Ho * Wo,
 *
 * which tfjs runs as its tuned matrix products (on WebGPU the split-K program, built for long inner
 * dimensions). The padding and strides are tfjs' own (backend_util.computeConv3DInfo), so the result
 * equals the built-in kernel's up to float rounding (test/unit/conv3d-filter-grad.test.ts).
 *
 * Layout: NDHWC tensors [B, D, H, W, C], filters [kd, kh, kw, Cin, Cout] (tfjs' conv3d order). Every
 * op runs at rank 2 to 4 (tfjs-webgpu cannot index rank-5 coordinates; see network.ts).
 */
import * as tf from '@tensorflow/tfjs-core';

export type Vec3 = [number, number, number];

/** The input shifted by every kernel tap, padded with zeros and strided like the convolution. */
function tapSlices(
  x: tf.Tensor5D,
  kernel: Vec3,
  info: tf.backend_util.Conv3DInfo,
): { slices: (tap: Vec3) => tf.Tensor2D; dispose: () => void } {
  const [b, d, h, w, c] = x.shape;
  const { front, top, left } = info.padInfo;
  const [sd, sh, sw] = [info.strideDepth, info.strideHeight, info.strideWidth];
  const [od, oh, ow] = [info.outDepth, info.outHeight, info.outWidth];
  // padded extent: every tap's strided window must fit
  const needD = (od - 1) * sd + kernel[0];
  const needH = (oh - 1) * sh + kernel[1];
  const needW = (ow - 1) * sw + kernel[2];
  const backD = Math.max(0, needD - front - d);
  const bottom = Math.max(0, needH - top - h);
  const right = Math.max(0, needW - left - w);
  const hw = tf.pad(tf.reshape(x, [b * d, h, w, c]) as tf.Tensor4D, [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ]);
  const H = h + top + bottom;
  const W = w + left + right;
  const padded = tf.pad(tf.reshape(hw, [b, d, H * W * c]) as tf.Tensor3D, [
    [0, 0],
    [front, backD],
    [0, 0],
  ]);
  hw.dispose();
  return {
    slices: ([ta, tb, tc]) =>
      tf.tidy(() => {
        const dz = tf.stridedSlice(padded, [0, ta, 0], [b, ta + (od - 1) * sd + 1, H * W * c], [1, sd, 1]);
        const yx = tf.stridedSlice(
          tf.reshape(dz, [b * od, H, W, c]),
          [0, tb, tc, 0],
          [b * od, tb + (oh - 1) * sh + 1, tc + (ow - 1) * sw + 1, c],
          [1, sh, sw, 1],
        );
        return tf.reshape(yx, [-1, c]) as tf.Tensor2D;
      }),
    dispose: () => padded.dispose(),
  };
}

/** dL/dW of conv3d(x, W, strides, pad) given dy = dL/d(output): [kd, kh, kw, Cin, Cout]. */
export function conv3dFilterGradByTaps(
  x: tf.Tensor5D,
  dy: tf.Tensor5D,
  filterShape: [number, number, number, number, number],
  strides: Vec3,
  pad: 'same' | 'valid',
): tf.Tensor5D {
  const [kd, kh, kw, cin, cout] = filterShape;
  const info = tf.backend_util.computeConv3DInfo(x.shape, filterShape, strides, 1, pad);
  if (dy.shape[1] !== info.outDepth || dy.shape[2] !== info.outHeight || dy.shape[3] !== info.outWidth)
    throw new Error(`conv3d filter gradient: dy ${dy.shape} does not match the convolution's output`);
  const taps = tapSlices(x, [kd, kh, kw], info);
  try {
    const dy2 = tf.reshape(dy, [-1, cout]) as tf.Tensor2D;
    const parts: tf.Tensor2D[] = [];
    for (let a = 0; a < kd; a++)
      for (let b = 0; b < kh; b++)
        for (let c = 0; c < kw; c++) {
          const xs = taps.slices([a, b, c]);
          parts.push(tf.matMul(xs, dy2, true, false));
          xs.dispose();
        }
    const stacked = tf.stack(parts);
    tf.dispose(parts);
    dy2.dispose();
    const out = tf.reshape(stacked, [kd, kh, kw, cin, cout]) as tf.Tensor5D;
    stacked.dispose();
    return out;
  } finally {
    taps.dispose();
  }
}

/** A conv3d weight gradient: dL/dW from x and dy = dL/d(output), the filter's shape, strides and padding. */
export type Conv3dFilterGrad = (
  x: tf.Tensor5D,
  dy: tf.Tensor5D,
  filterShape: [number, number, number, number, number],
  strides: Vec3,
  pad: 'same' | 'valid',
) => tf.Tensor5D;

/**
 * tf.conv3d with the same value, and gradients: input by tfjs' Conv3DBackpropInputV2
 * (conv3dTranspose), filter by `filterGrad`.
 */
export function conv3dWithFilterGrad(
  x: tf.Tensor5D,
  filter: tf.Tensor5D,
  strides: Vec3,
  pad: 'same' | 'valid',
  filterGrad: Conv3dFilterGrad,
): tf.Tensor5D {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xi, wi] = args as [tf.Tensor5D, tf.Tensor5D];
    const save = args[2] as tf.GradSaveFunc;
    const value = tf.conv3d(xi, wi, strides, pad);
    save([xi, wi]);
    const gradFunc = (dy: tf.Tensor5D, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [tf.Tensor5D, tf.Tensor5D];
      return [
        tf.conv3dTranspose(dy, ws, xs.shape, strides, pad),
        filterGrad(xs, dy, ws.shape as [number, number, number, number, number], strides, pad),
      ];
    };
    return { value, gradFunc };
  });
  return f(x, filter) as tf.Tensor5D;
}

/** tf.conv3d whose filter gradient is conv3dFilterGradByTaps. */
export function conv3dTapGrad(x: tf.Tensor5D, filter: tf.Tensor5D, strides: Vec3, pad: 'same' | 'valid'): tf.Tensor5D {
  return conv3dWithFilterGrad(x, filter, strides, pad, conv3dFilterGradByTaps);
}
