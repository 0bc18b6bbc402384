/**
 * The SAM-deform objective of deform/deform-loss.ts on the tfjs device (a GPU through WebGPU, or any
 * tfjs backend): the same terms on the same grid G, in float32, differentiated by tfjs' autodiff
 * instead of the hand-written gradient:
 *   loss = LNCC(I, M(b + w)) + featureWeight · F(w) + alpha · mean_x Σ_axes |Δ_axis w / h|^2
 * Tensors: w and b are [N, 3] (world mm, voxels of G in the Volume order, i fastest); images on G are
 * [nk, nj, ni, C]; sampled images are [V, C] with their size and world -> index map (sample-on-device.ts).
 * deviceProblem() uploads a host DeformProblem once (or takes over one whose images are on the device
 * already); the caller disposes it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { sumAll } from '../../compute/sum-all.ts';
import type { Affine3x4 } from '../../volume/geometry.ts';
import type { DeformProblem } from '../deform/deform-loss.ts';
import { boxSumOnDevice } from './box-sum-on-device.ts';
import { boxSum3dWgsl } from './deform-wgsl.ts';
import { sampleWorldOnDevice } from './sample-on-device.ts';

interface DeviceImage {
  data: tf.Tensor2D;
  size: readonly number[];
  toIndex: Affine3x4;
}

export interface DeviceDeformProblem {
  size: readonly number[];
  spacing: readonly number[];
  base: tf.Tensor2D;
  moving: DeviceImage;
  /** The fixed image's window terms on G, [nk, nj, ni, 1] each; varI = S_II - S_I^2 / n. */
  windows: {
    r: number;
    eps: number;
    I: tf.Tensor4D;
    n: tf.Tensor4D;
    sI: tf.Tensor4D;
    varI: tf.Tensor4D;
    weight: tf.Tensor4D;
    weightSum: number;
  };
  alpha: number;
  features?: { fixed: tf.Tensor2D; moving: DeviceImage; weight: number };
  dispose(): void;
}

export interface DeviceDeformTerms {
  loss: tf.Scalar;
  similarity: tf.Scalar;
  feature: tf.Scalar;
  smoothness: tf.Scalar;
}

/**
 * A problem whose images are tensors already (sam-deform.ts on WebGPU makes them there: no read-back
 * and upload again): the fixed image on G ([N], i fastest), the moving image ([V, C]) and, with the
 * feature term, the fixed features on G ([N, C]); the rest as in the host's DeformProblem.
 */
export interface DeformProblemOnDevice {
  size: readonly number[];
  spacing: readonly number[];
  base: Float32Array;
  windows: { r: number; eps: number; I: tf.Tensor; weight: Float32Array | null; weightSum: number };
  /** The moving image's voxels (any shape: read as [V, channels]). */
  moving: { data: tf.Tensor; channels: number; size: readonly number[]; toIndex: Affine3x4 };
  alpha: number;
  features?: { fixed: tf.Tensor2D; moving: DeformProblem['moving']; weight: number };
}

/** Whether a problem's images are on the device (DeformProblemOnDevice) rather than host arrays. */
export function imagesOnDevice(p: DeformProblem | DeformProblemOnDevice): p is DeformProblemOnDevice {
  return p.windows.I instanceof tf.Tensor;
}

/**
 * Upload a host problem (deform/deform-loss.ts) to the active tfjs backend, or take over a problem whose
 * images are on the device (WebGPU only; its tensors are the result's, disposed with it).
 */
export function deviceProblem(p: DeformProblem | DeformProblemOnDevice): DeviceDeformProblem {
  if (imagesOnDevice(p)) return fromImagesOnDevice(p);
  if (tf.getBackend() === 'webgpu') {
    const F = p.features;
    const N = p.size[0] * p.size[1] * p.size[2];
    const tensors: tf.Tensor[] = [];
    const keep = <T extends tf.Tensor>(t: T): T => (tensors.push(t), t);
    try {
      return fromImagesOnDevice({
        ...p,
        windows: { ...p.windows, I: keep(tf.tensor1d(p.windows.I)) },
        moving: { ...p.moving, data: keep(tf.tensor1d(p.moving.data)) },
        features: F && { ...F, fixed: keep(tf.tensor2d(F.fixed, [N, F.fixed.length / N])) },
      });
    } catch (e) {
      tf.dispose(tensors);
      throw e;
    }
  }
  const [ni, nj, nk] = p.size;
  const N = ni * nj * nk;
  const onG = (a: ArrayLike<number>) => tf.tensor4d(Float32Array.from(a), [nk, nj, ni, 1]);
  const f = p.windows;
  const tensors: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T): T => (tensors.push(t), t);
  const I = keep(onG(f.I));
  const n = keep(onG(f.n));
  const sI = keep(onG(f.sI));
  const varIHost = new Float32Array(N);
  for (let v = 0; v < N; v++) varIHost[v] = f.sII[v] - (f.sI[v] * f.sI[v]) / f.n[v];
  const varI = keep(tf.tensor4d(varIHost, [nk, nj, ni, 1]));
  const moving = keep(tf.tensor2d(p.moving.data, [p.moving.data.length / p.moving.channels, p.moving.channels]));
  const F = p.features;
  return assemble(p, { I, n, sI, varI }, moving, F && keep(tf.tensor2d(F.fixed, [N, F.fixed.length / N])), tensors);
}

/** The WebGPU problem from images on the device: the fixed image's window sums made there. */
function fromImagesOnDevice(p: DeformProblemOnDevice): DeviceDeformProblem {
  const [ni, nj, nk] = p.size;
  const f = p.windows;
  const tensors: tf.Tensor[] = [f.I, p.moving.data, ...(p.features ? [p.features.fixed] : [])];
  const keep = <T extends tf.Tensor>(t: T): T => (tensors.push(t), t);
  try {
    const I = keep(tf.reshape(f.I, [nk, nj, ni, 1]) as tf.Tensor4D);
    const moving = keep(tf.reshape(p.moving.data, [-1, p.moving.channels]) as tf.Tensor2D);
    // the window sums on the GPU (float32 sums of 2r + 1 values per axis) instead of the host's float64
    // box sums (the largest part of the deform stage's preparation on a GPU machine's host)
    const [n, sI, varI] = tf.tidy(() => {
      const ones = boxSum3dWgsl(tf.onesLike(I), f.r);
      const s = boxSum3dWgsl(I, f.r);
      const ss = boxSum3dWgsl(tf.square(I) as tf.Tensor4D, f.r);
      return [ones, s, tf.sub(ss, tf.div(tf.square(s), ones)) as tf.Tensor4D];
    });
    [n, sI, varI].forEach(keep);
    return assemble(p, { I, n, sI, varI }, moving, p.features?.fixed, tensors);
  } catch (e) {
    tf.dispose(tensors);
    throw e;
  }
}

/** The device problem around the fixed windows' tensors; `tensors` (disposed with it) gets the rest. */
function assemble(
  p: DeformProblem | DeformProblemOnDevice,
  w: { I: tf.Tensor4D; n: tf.Tensor4D; sI: tf.Tensor4D; varI: tf.Tensor4D },
  moving: tf.Tensor2D,
  featuresFixed: tf.Tensor2D | undefined,
  tensors: tf.Tensor[],
): DeviceDeformProblem {
  const [ni, nj, nk] = p.size;
  const N = ni * nj * nk;
  const keep = <T extends tf.Tensor>(t: T): T => (tensors.push(t), t);
  const f = p.windows;
  const out: DeviceDeformProblem = {
    size: p.size,
    spacing: p.spacing,
    base: keep(tf.tensor2d(p.base, [N, 3])),
    moving: { data: moving, size: p.moving.size, toIndex: p.moving.toIndex },
    windows: {
      r: f.r,
      eps: f.eps,
      ...w,
      weight: keep(f.weight ? tf.tensor4d(Float32Array.from(f.weight), [nk, nj, ni, 1]) : tf.ones([nk, nj, ni, 1])),
      weightSum: f.weightSum,
    },
    alpha: p.alpha,
    dispose: () => tf.dispose(tensors),
  };
  if (p.features && featuresFixed) {
    const F = p.features;
    const C = F.moving.channels;
    out.features = {
      fixed: featuresFixed,
      moving: {
        data: keep(tf.tensor2d(F.moving.data, [F.moving.data.length / C, C])),
        size: F.moving.size,
        toIndex: F.moving.toIndex,
      },
      weight: F.weight,
    };
  }
  return out;
}

/** Local NCC loss of J [nk, nj, ni, 1] against the fixed windows (deform/local-ncc.ts). */
function lnccOnDevice(p: DeviceDeformProblem, J: tf.Tensor4D): tf.Scalar {
  const f = p.windows;
  const sums = boxSumOnDevice(tf.concat([J, tf.square(J), tf.mul(f.I, J)], 3), f.r);
  const [sJ, sJJ, sIJ] = tf.split(sums, 3, 3) as tf.Tensor4D[];
  const cross = tf.sub(sIJ, tf.div(tf.mul(f.sI, sJ), f.n));
  const varJ = tf.sub(sJJ, tf.div(tf.square(sJ), f.n));
  const D = tf.mul(tf.add(f.varI, f.eps), tf.add(varJ, f.eps));
  const total = sumAll(tf.div(tf.mul(f.weight, tf.square(cross)), D));
  return tf.div(total, -f.weightSum) as tf.Scalar;
}

/** Diffusion term: alpha / N · Σ_axes Σ (forward difference / h)^2 of w [nk, nj, ni, 3]. */
function diffusionOnDevice(p: DeviceDeformProblem, w4: tf.Tensor4D): tf.Scalar {
  const [ni, nj, nk] = p.size;
  const N = ni * nj * nk;
  const terms: tf.Scalar[] = [];
  // tensor axis 2 is i, 1 is j, 0 is k
  const axes: [number, number][] = [
    [2, 0],
    [1, 1],
    [0, 2],
  ];
  for (const [t, a] of axes) {
    const len = w4.shape[t];
    if (len < 2) continue;
    const size = [...w4.shape];
    size[t] = len - 1;
    const lo = [0, 0, 0, 0];
    const hi = [0, 0, 0, 0];
    hi[t] = 1;
    const d = tf.sub(tf.slice(w4, hi, size), tf.slice(w4, lo, size));
    terms.push(tf.mul(sumAll(tf.square(d)), 1 / (p.spacing[a] * p.spacing[a])) as tf.Scalar);
  }
  return tf.mul(tf.addN(terms), p.alpha / N) as tf.Scalar;
}

/** The loss terms at w [N, 3] (differentiable in w). */
export function deformTermsOnDevice(p: DeviceDeformProblem, w: tf.Tensor2D): DeviceDeformTerms {
  const [ni, nj, nk] = p.size;
  const N = ni * nj * nk;
  const points = tf.add(p.base, w) as tf.Tensor2D;
  const J = sampleWorldOnDevice(p.moving.data, p.moving.size, p.moving.toIndex, points);
  const similarity = lnccOnDevice(p, tf.reshape(J, [nk, nj, ni, 1]));
  let feature = tf.scalar(0);
  let loss = similarity;
  if (p.features && p.features.weight > 0) {
    const F = p.features;
    const g = sampleWorldOnDevice(F.moving.data, F.moving.size, F.moving.toIndex, points);
    feature = tf.div(sumAll(tf.mul(F.fixed, g)), -N) as tf.Scalar;
    loss = tf.add(loss, tf.mul(feature, F.weight)) as tf.Scalar;
  }
  const smoothness = diffusionOnDevice(p, tf.reshape(w, [nk, nj, ni, 3]));
  return { loss: tf.add(loss, smoothness) as tf.Scalar, similarity, feature, smoothness };
}

/** The loss at w and its gradient [N, 3]. */
export function deformLossAndGradientOnDevice(
  p: DeviceDeformProblem,
  w: tf.Tensor2D,
): { value: tf.Scalar; grad: tf.Tensor2D } {
  return tf.valueAndGrad((x: tf.Tensor) => deformTermsOnDevice(p, x as tf.Tensor2D).loss)(w) as {
    value: tf.Scalar;
    grad: tf.Tensor2D;
  };
}
