/**
 * deform/embedding-features.ts on embeddings that live on the GPU (sam/device/): the principal
 * components of the same sampled fixed voxels, their mean and covariance computed on the device
 * (C + C x C numbers read back) and the axes on the host, the projection and the per-voxel normalisation run on the device, and
 * only the k reduced channels are read back (k = 8: 1/16 of the 128-channel local level, which is
 * about 600 MB for a 2 mm chest CT).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DeviceEmbedded, DeviceEmbeddingLevel } from '../../sam/device/embed-on-device.ts';
import type { Volume } from '../../volume/volume.ts';
import { readAndDispose } from './flat-program.ts';
import { pcaStep, principalAxes, reducedVolume, type PrincipalComponents } from '../deform/embedding-features.ts';

async function project(level: DeviceEmbeddingLevel, pc: PrincipalComponents): Promise<Volume<Float32Array>> {
  const k = pc.axes.length;
  const C = level.components;
  const reduced = tf.tidy(() => {
    const axes = tf.tensor2d(
      Float32Array.from({ length: C * k }, (_, n) => pc.axes[n % k][Math.floor(n / k)]),
      [C, k],
    );
    const centred = tf.sub(level.data, tf.tensor2d(Float32Array.from(pc.mean), [1, C]));
    const d = tf.matMul(centred, axes);
    const norm = tf.sqrt(tf.sum(tf.square(d), 1, true));
    return tf.where(tf.greater(norm, 0), tf.div(d, tf.maximum(norm, 1e-30)), tf.zerosLike(d));
  });
  return reducedVolume(level, await readAndDispose(reduced), k);
}

/** Reduced, unit-normalised local-embedding channels of both images (embeddingFeatures' answer). */
export async function embeddingFeaturesOnDevice(
  embeddings: { fixed: DeviceEmbedded; moving: DeviceEmbedded },
  k = 8,
): Promise<{ fixed: Volume<Float32Array>; moving: Volume<Float32Array> }> {
  const f = embeddings.fixed.local;
  const n = f.data.shape[0];
  const C = f.components;
  const step = pcaStep(n);
  // the sampled voxels' mean and covariance on the device (a [C, C] product instead of about 20000
  // x C x C multiply-adds on the CPU: 0.4 s on this 2-core machine), in float32; C x C read back
  const moments = tf.tidy(() => {
    const x = tf.gather(f.data, tf.range(0, n, step, 'int32'));
    const mean = tf.mean(x, 0, true);
    const centred = tf.sub(x, mean);
    return tf.concat([mean, tf.matMul(centred, centred, true, false)], 0);
  });
  const m = await readAndDispose(moments);
  const pc: PrincipalComponents = {
    mean: Float64Array.from(m.subarray(0, C)),
    axes: principalAxes(m.subarray(C), C, Math.min(k, C)),
  };
  return { fixed: await project(f, pc), moving: await project(embeddings.moving.local, pc) };
}
