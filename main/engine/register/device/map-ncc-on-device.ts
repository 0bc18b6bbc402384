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
import { sumAll } from '../../compute/sum-all.ts';
import type { Affine3x4 } from '../affine-fit.ts';
import type { Field } from '../field/field.ts';
import type { Volume } from '../../volume/volume.ts';
import type { DeviceImages } from '../../compute/device-images.ts';
import { maxTensorBytes } from '../../compute/tf-backend.ts';
import { smoothedPairGrids, smoothedPairOf, type MapSamples, type SmoothedPair } from '../map-ncc.ts';
import { prepareImageOnDevice } from './prepare-on-device.ts';
import { readAndDispose } from './flat-program.ts';
import { warpSlab } from './warp-on-device.ts';
import { boxSumOnDevice } from './box-sum-on-device.ts';
import { defaultLnccEps } from '../deform/local-ncc.ts';

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
 * The smoothed moving image through each map at every point of the fixed grid, on the device: one
 * [N] tensor per map (OUTSIDE where the map leaves the moving image), which the caller disposes; null
 * when the smoothed moving image, a correction or the samples do not fit one device buffer.
 */
function samplesOnDevice(pair: SmoothedPair, affine: Affine3x4, maps: Field[][]): tf.Tensor1D[] | null {
  if (tf.getBackend() !== 'webgpu')
    throw new Error(`the stage checks on the device need the webgpu backend (active: ${tf.getBackend()})`);
  const cap = maxTensorBytes() ?? 2 ** 31;
  const N = pair.fixed.data.length;
  const fields = [...new Set(maps.flat())];
  if (pair.moving.data.length * 4 > cap || N * 4 > cap || fields.some((c) => c.data.length * 4 > cap)) return null;
  const M = tf.tensor1d(pair.moving.data);
  // each correction uploaded once (the maps share the earlier stages' corrections)
  const F = new Map(fields.map((c) => [c, tf.tensor1d(c.data)]));
  try {
    return maps.map((corrections) =>
      tf.tidy(() =>
        tf.reshape(
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
          [N],
        ),
      ),
    );
  } finally {
    M.dispose();
    for (const t of F.values()) t.dispose();
  }
}

/** map-ncc.ts movingThroughMaps (every point of the fixed grid) on the GPU, read back; null when it does not fit (samplesOnDevice). */
export async function movingThroughMapsOnDevice(
  pair: SmoothedPair,
  affine: Affine3x4,
  maps: Field[][],
): Promise<MapSamples | null> {
  const samples = samplesOnDevice(pair, affine, maps);
  if (!samples) return null;
  const N = pair.fixed.data.length;
  const J = await Promise.all(samples.map((o) => readAndDispose(o)));
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
}

/**
 * map-ncc.ts lnccThroughMaps on the GPU: the samples and the local sums stay there (float32 box
 * sums of the values less the fixed body's mean, so that the sums of squares and products keep their
 * digits; the host sums in float64), and only each map's total and the window count come back. Null
 * when it does not fit (samplesOnDevice), or the sums would not fit one device buffer.
 */
export async function lnccThroughMapsOnDevice(
  pair: SmoothedPair,
  affine: Affine3x4,
  maps: Field[][],
  r = 2,
): Promise<number[] | null> {
  const { fixed, mask } = pair;
  const N = fixed.data.length;
  const channels = 4 + 3 * maps.length;
  if (N * channels * 4 > (maxTensorBytes() ?? 2 ** 31)) return null;
  const samples = samplesOnDevice(pair, affine, maps);
  if (!samples) return null;
  let c = 0;
  let inBody = 0;
  for (let v = 0; v < N; v++)
    if (mask[v]) {
      c += fixed.data[v];
      inBody++;
    }
  c = inBody ? c / inBody : 0;
  const [ni, nj, nk] = fixed.size;
  const eps = defaultLnccEps(r);
  const sums = tf.tidy(() => {
    const I = tf.sub(tf.tensor1d(fixed.data), c);
    const inside = samples.map((J) => tf.greater(J, OUTSIDE / 2));
    const valid = inside.reduce((a, b) => tf.logicalAnd(a, b));
    // (a tensor of zeros, not the scalar 0: tfjs broadcast the scalar on the CPU, 288 ms of three
    // H200 cascades' host profile)
    const Js = samples.map((J, m) => {
      const x = tf.sub(J, c);
      return tf.where(inside[m], x, tf.zerosLike(x));
    });
    const columns = [tf.onesLike(I), I, tf.square(I), tf.cast(valid, 'float32')];
    for (const J of Js) columns.push(J, tf.square(J), tf.mul(I, J));
    const S = boxSumOnDevice(tf.reshape(tf.stack(columns, 1), [nk, nj, ni, channels]) as tf.Tensor4D, r);
    const at = (k: number) => tf.reshape(tf.slice(S, [0, 0, 0, k], [nk, nj, ni, 1]), [N]);
    const n = at(0);
    const sI = at(1);
    const varI = tf.sub(at(2), tf.div(tf.square(sI), n));
    // windows centred in the fixed body whose every point has data through every map
    const sel = tf.logicalAnd(tf.cast(tf.tensor1d(mask, 'int32'), 'bool'), tf.greaterEqual(at(3), tf.sub(n, 0.5)));
    const out = Js.map((_, m) => {
      const sJ = at(4 + 3 * m);
      const cross = tf.sub(at(6 + 3 * m), tf.div(tf.mul(sI, sJ), n));
      const varJ = tf.sub(at(5 + 3 * m), tf.div(tf.square(sJ), n));
      const cc = tf.div(tf.square(cross), tf.mul(tf.add(varI, eps), varJ));
      return sumAll(tf.where(tf.logicalAnd(sel, tf.greater(varJ, 1e-12)), cc, tf.zerosLike(cc)));
    });
    return tf.stack([...out, sumAll(tf.cast(sel, 'float32'))]);
  });
  tf.dispose(samples);
  const d = await readAndDispose(sums);
  const count = d[maps.length];
  return maps.map((_, m) => (count ? d[m] / count : NaN));
}
