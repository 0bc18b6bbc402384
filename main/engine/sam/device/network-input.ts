/**
 * The network input of a CT made on the tfjs device (a GPU through WebGPU, or any tfjs backend):
 * the volume resampled onto its 2 mm LPS network grid (sam/embed-volume.ts networkGrid) and
 * normalised as the network expects (volume/intensity.ts normalizeForNetwork), as a tensor
 * [D, H, W] (z, y, x) that stays on the device.
 *
 * It computes what `normalizeForNetwork(resample(volume, grid, { fill: -1024 }))` computes on the CPU,
 * so that whole-volume embedding on a GPU does not wait for a single-threaded resampling loop (about
 * 0.7 s for the 512x512x141 chest here, more than the network takes on an H100):
 * - When the volume's axes are the network grid's up to order and sign (identity directions, the
 *   RAS-flipped NIfTI convention, sagittal or coronal acquisitions: the index-to-index map is a
 *   signed permutation), trilinear interpolation separates into three 1-D passes, each a pair of
 *   gathers along one axis and a lerp, in the CPU code's order (x, then y, then z; a + (b - a) f).
 *   Points outside the voxel-centre hull (1e-6 voxel slack, as resample.ts) get the fill value.
 * - An oblique volume, or one larger than the device's buffer cap, is resampled on the CPU and
 *   uploaded (the same numbers, slower).
 * Equal to the CPU path within float32 rounding (test/unit/embed-on-device.test.ts, on a RAS-flipped
 * real CT).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Geometry } from '../../volume/geometry.ts';
import { normalizeForNetwork, SAM_NORMALIZATION } from '../../volume/intensity.ts';
import { resample, targetToSourceIndex } from '../../volume/resample.ts';
import type { Volume } from '../../volume/volume.ts';
import { voxelsOnDevice, type DeviceImages } from '../../compute/device-images.ts';

const FILL = -1024;

/** For each target axis, the source axis it reads (a signed permutation), or null when oblique. */
function axisMap(m: readonly number[]): [number, number, number] | null {
  const src: number[] = [];
  for (let a = 0; a < 3; a++) {
    const rows = [0, 1, 2].filter((r) => Math.abs(m[r * 4 + a]) > 1e-9);
    if (rows.length !== 1) return null;
    src.push(rows[0]);
  }
  return new Set(src).size === 3 ? (src as [number, number, number]) : null;
}

/** One axis's interpolation table: lower and upper source index, fraction, inside the hull. */
function axisTable(n: number, scale: number, offset: number, count: number) {
  const lo = new Int32Array(count);
  const hi = new Int32Array(count);
  const f = new Float32Array(count);
  const inside = new Float32Array(count);
  const eps = 1e-6;
  for (let t = 0; t < count; t++) {
    const x = scale * t + offset;
    inside[t] = x < -eps || x > n - 1 + eps ? 0 : 1;
    let x0 = Math.floor(x);
    x0 = Math.max(0, Math.min(x0, n - 2));
    const fx = n > 1 ? Math.min(1, Math.max(0, x - x0)) : 0;
    lo[t] = x0;
    hi[t] = n > 1 ? x0 + 1 : x0;
    f[t] = fx;
  }
  return { lo, hi, f, inside };
}

/**
 * Normalised network input [D, H, W] of a CT in HU on `grid` (the caller disposes it). `maxTensorBytes`:
 * the device's buffer cap; a source volume larger than it is resampled on the CPU. `images`: the
 * volume's voxels taken from (and left in) that cache instead of uploaded for this call.
 */
export function networkInputOnDevice(
  volume: Volume,
  grid: Geometry,
  maxTensorBytes = Infinity,
  images?: DeviceImages,
): tf.Tensor3D {
  const m = targetToSourceIndex(grid, volume);
  const sourceBytes = 4 * volume.size[0] * volume.size[1] * volume.size[2];
  const map = sourceBytes <= maxTensorBytes ? axisMap(m) : null;
  if (!map) {
    const [ti, tj, tk] = grid.size;
    const cpu = normalizeForNetwork(resample(volume, grid, { fill: FILL, outputType: 'float32' }));
    return tf.tensor3d(cpu.data, [tk, tj, ti]);
  }
  return separableInput(volume, () => voxelsOnDevice(volume, images), grid, m, map);
}

/**
 * The network input on `grid` of an image already on the device (float32 HU, i fastest, on `image`'s
 * geometry; left to the caller): networkInputOnDevice's numbers for the volume those voxels make.
 * Null when the image's axes are not the grid's up to order and sign (oblique: the caller reads the
 * voxels back and takes networkInputOnDevice's CPU path).
 */
export function networkInputFromDevice(image: Geometry, voxels: tf.Tensor1D, grid: Geometry): tf.Tensor3D | null {
  const m = targetToSourceIndex(grid, image);
  const map = axisMap(m);
  return map ? separableInput(image, () => voxels, grid, m, map) : null;
}

/** The separable trilinear resampling of the header, then clip and scale: [D, H, W] on the device. */
function separableInput(
  source: Geometry,
  voxels: () => tf.Tensor1D,
  grid: Geometry,
  m: readonly number[],
  map: [number, number, number],
): tf.Tensor3D {
  const n = SAM_NORMALIZATION;
  const scale = (n.outMax - n.outMin) / (n.inMax - n.inMin);
  const normalise = (x: tf.Tensor3D) =>
    tf.tidy(() => tf.sub(tf.mul(tf.sub(tf.clipByValue(x, n.inMin, n.inMax), n.inMin), scale), n.bias - n.outMin));
  return tf.tidy(() => {
    const shape: [number, number, number] = [source.size[2], source.size[1], source.size[0]];
    let x: tf.Tensor3D = tf.reshape(voxels(), shape);
    // tensor axis of source axis s is 2 - s; bring the source axis read by target axis a to tensor axis 2 - a
    const perm = [2 - map[2], 2 - map[1], 2 - map[0]];
    if (perm.some((p, q) => p !== q)) x = tf.transpose(x, perm);
    let mask: tf.Tensor | null = null;
    for (const a of [0, 1, 2]) {
      const s = map[a];
      const t = axisTable(source.size[s], m[s * 4 + a], m[s * 4 + 3], grid.size[a]);
      const axis = 2 - a;
      const shape = [1, 1, 1];
      shape[axis] = grid.size[a];
      const lo = tf.gather(x, tf.tensor1d(t.lo, 'int32'), axis);
      const hi = tf.gather(x, tf.tensor1d(t.hi, 'int32'), axis);
      const f = tf.tensor(t.f, shape);
      x = tf.add(lo, tf.mul(tf.sub(hi, lo), f)) as tf.Tensor3D;
      const inside = tf.tensor(t.inside, shape);
      mask = mask ? tf.mul(mask, inside) : inside;
    }
    // outside the hull: the fill value (the interpolated value there is finite: indices are clamped)
    const filled = tf.add(tf.mul(x, mask!), tf.mul(tf.sub(1, mask!), FILL)) as tf.Tensor3D;
    return normalise(filled);
  }) as tf.Tensor3D;
}
