/**
 * deform/sam-deform.ts prepareImage on the GPU: the CT clipped to [-1000, 1000] HU and scaled by 1/1000,
 * box-smoothed to the scale `smoothMm` with the same radii per axis (deform/pair-resolution.ts;
 * box-sum-on-device.ts)
 * and resampled trilinearly onto the deform grid with -1 outside (resample-on-device.ts). It replaces
 * the host's smoothing of the whole full-resolution image, the largest part of the deform stage's
 * preparation. Returns null when the image does not fit one device buffer (the caller prepares it on
 * the host). `images`: the CT's voxels from that cache (uploaded once per registration).
 */
import * as tf from '@tensorflow/tfjs-core';
import { maxTensorBytes } from '../../compute/tf-backend.ts';
import type { Geometry } from '../../volume/geometry.ts';
import type { Volume } from '../../volume/volume.ts';
import { boxMeanAxesOnDevice } from './box-sum-on-device.ts';
import { smoothingRadii, type PairResolution } from '../deform/pair-resolution.ts';
import { readAndDispose } from './flat-program.ts';
import { resampleTensorOnDevice } from './resample-on-device.ts';
import { voxelsOnDevice, type DeviceImages } from '../../compute/device-images.ts';

export async function prepareImageOnDevice(
  v: Volume,
  grid: Geometry,
  images?: DeviceImages,
  smoothMm = grid.spacing[0],
  pair?: PairResolution,
): Promise<Float32Array | null> {
  const t = prepareImageTensorOnDevice(v, grid, images, smoothMm, pair);
  return t && (await readAndDispose(t));
}

/**
 * prepareImageOnDevice left on the device: the grid's values as a [N] tensor (i fastest) that the caller
 * disposes (sam-deform.ts keeps the deform level's images there: no read-back and upload again).
 */
export function prepareImageTensorOnDevice(
  v: Volume,
  grid: Geometry,
  images?: DeviceImages,
  smoothMm = grid.spacing[0],
  pair?: PairResolution,
): tf.Tensor1D | null {
  const cap = maxTensorBytes() ?? 2 ** 31;
  const [gi, gj, gk] = grid.size;
  const N = gi * gj * gk;
  // the image (and its smoothed copy) and the resampled image in one buffer each
  if (v.components !== 1 || v.data.length * 4 > cap || N * 4 > cap) return null;
  const [ni, nj, nk] = v.size;
  const r = smoothingRadii(v, smoothMm, pair);
  const src = tf.tidy(() => {
    const voxels = tf.reshape(voxelsOnDevice(v, images), [nk, nj, ni, 1]);
    const x = tf.div(tf.clipByValue(voxels, -1000, 1000), 1000);
    return tf.reshape(r.some((a) => a > 0) ? boxMeanAxesOnDevice(x as tf.Tensor4D, r) : x, [-1]);
  });
  try {
    const out = resampleTensorOnDevice(src, v, 1, grid, -1);
    try {
      return tf.reshape(out, [N]) as tf.Tensor1D;
    } finally {
      out.dispose();
    }
  } finally {
    src.dispose();
  }
}
