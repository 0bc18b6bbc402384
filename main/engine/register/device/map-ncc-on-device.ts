/**
 * The cascade's stage checks (map-ncc.ts) with their dense work on the GPU: both images clipped,
 * box-smoothed at full resolution and resampled onto 4 mm grids (prepare-on-device.ts, as the deform
 * stage prepares its images), and the smoothed moving image read through each map at every point of
 * the fixed 4 mm grid (warp-on-device.ts's map and sampler: the affine plus each correction read with
 * the 'border' rule; trilinear, border values up to half a voxel beyond the outermost centres, and a
 * sentinel outside that extent, which marks the point as outside). Only the 4 mm images and samples
 * come back (about 0.6 MB each for a chest); the NCC and local NCC are then the host's (map-ncc.ts
 * nccOfSamples / lnccOfSamples), so both paths score the same way. float32 positions: a point within
 * about 1e-4 mm of the moving image's extent may count as inside where the host says outside.
 * On the host, smoothing the two full-resolution images and sampling through the maps took 2.1 s of a
 * 2 mm chest pair's cascade on an H200's machine (session 21), more than the GPU's whole deform stage.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Affine3x4 } from '../affine-fit.ts';
import type { Field } from '../field/field.ts';
import type { Volume } from '../../volume/volume.ts';
import type { DeviceImages } from '../../compute/device-images.ts';
import { maxTensorBytes } from '../../compute/tf-backend.ts';
import { smoothedPairGrids, smoothedPairOf, type MapSamples, type SmoothedPair } from '../map-ncc.ts';
import { prepareImageOnDevice } from './prepare-on-device.ts';
import { readAndDispose } from './flat-program.ts';
import { warpSlab } from './warp-on-device.ts';

/** What the sampler writes outside the moving image's extent (no smoothed CT value comes near it). */
const OUTSIDE = -1e30;

/** map-ncc.ts smoothedPair with the images prepared on the GPU; null when one does not fit a device buffer (the caller makes it on the host). */
export async function smoothedPairOnDevice(
  fixed: Volume,
  moving: Volume,
  fixedMask: Volume,
  images?: DeviceImages,
  spacingMm = 4,
  smoothMm = 4,
): Promise<SmoothedPair | null> {
  const { fixedGrid, movingGrid, pair } = smoothedPairGrids(fixed, moving, spacingMm);
  const f = await prepareImageOnDevice(fixed, fixedGrid, images, smoothMm, pair);
  if (!f) return null;
  const m = await prepareImageOnDevice(moving, movingGrid, images, smoothMm, pair);
  if (!m) return null;
  return smoothedPairOf(fixedGrid, f, movingGrid, m, fixedMask);
}

/**
 * map-ncc.ts movingThroughMaps (every point of the fixed grid) on the GPU: one dispatch per map; null
 * when the smoothed moving image, a correction or the samples do not fit one device buffer.
 */
export async function movingThroughMapsOnDevice(
  pair: SmoothedPair,
  affine: Affine3x4,
  maps: Field[][],
): Promise<MapSamples | null> {
  if (tf.getBackend() !== 'webgpu')
    throw new Error(`movingThroughMapsOnDevice needs the webgpu backend (active: ${tf.getBackend()})`);
  const cap = maxTensorBytes() ?? 2 ** 31;
  const N = pair.fixed.data.length;
  const fields = [...new Set(maps.flat())];
  if (pair.moving.data.length * 4 > cap || N * 4 > cap || fields.some((c) => c.data.length * 4 > cap)) return null;
  const M = tf.tensor1d(pair.moving.data);
  // each correction uploaded once (the maps share the earlier stages' corrections)
  const F = new Map(fields.map((c) => [c, tf.tensor1d(c.data)]));
  try {
    const outputs = maps.map((corrections) =>
      warpSlab(
        pair.fixed,
        M,
        pair.moving,
        affine,
        corrections.map((c) => F.get(c)!),
        corrections,
        OUTSIDE,
        0,
        N,
        'image',
      ),
    );
    const J = await Promise.all(outputs.map((o) => readAndDispose(o)));
    const inside = new Uint8Array(N).fill(1);
    for (const Jm of J)
      for (let v = 0; v < N; v++)
        if (Jm[v] <= OUTSIDE / 2) {
          inside[v] = 0;
          // (the host samples the border value there; a point outside is never scored, and the local
          // NCC's windows that hold one are dropped, so any finite value will do)
          Jm[v] = 0;
        }
    return { J, inside };
  } finally {
    M.dispose();
    for (const t of F.values()) t.dispose();
  }
}
