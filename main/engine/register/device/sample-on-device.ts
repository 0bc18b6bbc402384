/**
 * Trilinear sampling on the tfjs device, differentiable with respect to the sampling positions: the
 * twin of sampleWithGradient in deform/deform-loss.ts. The image is [V, C] (voxels in the Volume order,
 * i fastest; channels last) with size [ni, nj, nk]; positions are continuous indices [N, 3] (x = i,
 * y = j, z = k). Border rule: a position is clamped into [0, n - 1] per axis and the derivative along
 * a clamped axis is zero (clipByValue's gradient), the lower corner is min(floor, n - 2), so the value
 * and the derivative equal the host code's. Axes need at least 2 voxels.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Affine3x4 } from '../../volume/geometry.ts';
import { trilinearWorldWgsl } from './deform-wgsl.ts';
import { maxTensorBytes } from '../../compute/tf-backend.ts';

/** World points [N, 3] (mm) to continuous indices through a world -> index affine. */
export function worldToIndexOnDevice(points: tf.Tensor2D, toIndex: Affine3x4): tf.Tensor2D {
  const m = toIndex;
  return tf.tidy(() => {
    // idx_a = Σ_r m[a][r] X_r + m[a][3]: P [N,3] times the transposed 3x3 part
    const rt = tf.tensor2d([m[0], m[4], m[8], m[1], m[5], m[9], m[2], m[6], m[10]], [3, 3]);
    return tf.add(tf.matMul(points, rt), tf.tensor2d([m[3], m[7], m[11]], [1, 3])) as tf.Tensor2D;
  });
}

/** The value [N, C] and its derivatives along x, y, z ([N, C] each) at continuous indices [N, 3]. */
function trilinearWithDerivatives(image: tf.Tensor2D, size: readonly number[], index: tf.Tensor2D): tf.Tensor[] {
  const [ni, nj] = size;
  return tf.tidy(() => {
    const cols = tf.split(index, 3, 1);
    const lower: tf.Tensor[] = [];
    const frac: tf.Tensor[] = [];
    const inside: tf.Tensor[] = [];
    for (let a = 0; a < 3; a++) {
      const c = tf.clipByValue(cols[a], 0, size[a] - 1);
      const f0 = tf.minimum(tf.floor(c), size[a] - 2);
      lower.push(f0);
      frac.push(tf.sub(c, f0));
      // the derivative along a clamped axis is zero (host: cx = 0 outside [0, n - 1])
      inside.push(tf.cast(tf.logicalAnd(tf.greaterEqual(cols[a], 0), tf.lessEqual(cols[a], size[a] - 1)), 'float32'));
    }
    const sj = ni;
    const sk = ni * nj;
    const lin = tf.cast(
      tf.reshape(tf.add(tf.add(lower[0], tf.mul(lower[1], sj)), tf.mul(lower[2], sk)), [-1]),
      'int32',
    );
    const at = (off: number) => tf.gather(image, off ? tf.add(lin, tf.scalar(off, 'int32')) : lin);
    const [fx, fy, fz] = frac;
    const lerp = (a: tf.Tensor, b: tf.Tensor, f: tf.Tensor) => tf.add(a, tf.mul(tf.sub(b, a), f));
    const v000 = at(0);
    const v100 = at(1);
    const v010 = at(sj);
    const v110 = at(sj + 1);
    const v001 = at(sk);
    const v101 = at(sk + 1);
    const v011 = at(sk + sj);
    const v111 = at(sk + sj + 1);
    const c00 = lerp(v000, v100, fx);
    const c10 = lerp(v010, v110, fx);
    const c01 = lerp(v001, v101, fx);
    const c11 = lerp(v011, v111, fx);
    const c0 = lerp(c00, c10, fy);
    const c1 = lerp(c01, c11, fy);
    const value = lerp(c0, c1, fz);
    const dx0 = lerp(tf.sub(v100, v000), tf.sub(v110, v010), fy);
    const dx1 = lerp(tf.sub(v101, v001), tf.sub(v111, v011), fy);
    const dX = tf.mul(inside[0], lerp(dx0, dx1, fz));
    const dY = tf.mul(inside[1], lerp(tf.sub(c10, c00), tf.sub(c11, c01), fz));
    const dZ = tf.mul(inside[2], tf.sub(c1, c0));
    return [value, dX, dY, dZ];
  });
}

/**
 * Trilinear samples [N, C] of `image` [V, C] (size [ni, nj, nk]) at continuous indices [N, 3];
 * differentiable in the indices (the image is a constant). The gradient is the interpolant's exact
 * derivative, written out (customGrad): tfjs' tape cannot differentiate through the integer corner
 * indices, and this is cheaper than its generic backward pass anyway.
 */
export function sampleTrilinearOnDevice(image: tf.Tensor2D, size: readonly number[], index: tf.Tensor2D): tf.Tensor2D {
  const [ni, nj, nk] = size;
  if (ni < 2 || nj < 2 || nk < 2)
    throw new Error(`trilinear sampling needs 2 voxels per axis (size ${size.join('x')})`);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[1] as tf.GradSaveFunc;
    const [value, dX, dY, dZ] = trilinearWithDerivatives(image, size, args[0] as tf.Tensor2D);
    save([dX, dY, dZ]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.concat(
          saved.map((d) => tf.sum(tf.mul(dy, d), 1, true)),
          1,
        ),
    };
  });
  return f(index) as tf.Tensor2D;
}

/**
 * Trilinear samples [N, C] of `image` [V, C] (size [ni, nj, nk], world -> index `toIndex`) at world
 * points [N, 3] (mm), differentiable in the points. On WebGPU one dispatch computes the values and
 * their world-space derivatives (deform-wgsl.ts); elsewhere the op-by-op sampler above.
 */
export function sampleWorldOnDevice(
  image: tf.Tensor2D,
  size: readonly number[],
  toIndex: Affine3x4,
  points: tf.Tensor2D,
): tf.Tensor2D {
  // the packed [N, 4, C] output must fit one device buffer; else the op-by-op sampler
  const packedBytes = points.shape[0] * 4 * image.shape[1] * 4;
  if (tf.getBackend() !== 'webgpu' || packedBytes > (maxTensorBytes() ?? Infinity))
    return sampleTrilinearOnDevice(image, size, worldToIndexOnDevice(points, toIndex));
  const [ni, nj, nk] = size;
  if (ni < 2 || nj < 2 || nk < 2)
    throw new Error(`trilinear sampling needs 2 voxels per axis (size ${size.join('x')})`);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[1] as tf.GradSaveFunc;
    const p = args[0] as tf.Tensor2D;
    const [N, C] = [p.shape[0], image.shape[1]];
    const packed = trilinearWorldWgsl(image, size, toIndex, p);
    const value = tf.reshape(tf.slice(packed, [0, 0, 0], [N, 1, C]), [N, C]);
    const derivatives = tf.slice(packed, [0, 1, 0], [N, 3, C]);
    packed.dispose();
    save([derivatives]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.sum(tf.mul(tf.reshape(dy, [N, 1, C]), saved[0]), 2),
    };
  });
  return f(points) as tf.Tensor2D;
}
