/**
 * CT volumes' voxels as float32 tensors on the tfjs device, each uploaded once per registration: the
 * GPU cascade reads the fixed and moving images in the embedding's network input, both levels of the
 * deform stage's preparation and the final warp, and each used to convert the voxels to float32 on the
 * host and upload them again (seven uploads of two images). Tensors are kept out of any tf.tidy scope
 * and live until dispose(); callers must not dispose what get() returns.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Volume } from '../volume/volume.ts';
import type { Geometry } from '../volume/geometry.ts';
import { HOST_LITTLE_ENDIAN } from '../volume/io/bytes.ts';
import { widen16OnDevice } from './widen16-wgsl.ts';

export class DeviceImages {
  private readonly tensors = new Map<Volume, tf.Tensor1D>();

  /** The volume's voxels (all components, interleaved) as a float32 tensor on the device. */
  get(v: Volume): tf.Tensor1D {
    let t = this.tensors.get(v);
    if (!t || t.isDisposed) {
      t = tf.keep(uploadVoxels(v));
      this.tensors.set(v, t);
    }
    return t;
  }

  /** Hold `voxels` (a float32 tensor [voxels], kept here until dispose) as the volume's copy. */
  put(v: Volume, voxels: tf.Tensor1D): void {
    this.tensors.get(v)?.dispose();
    this.tensors.set(v, tf.keep(voxels));
  }

  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
    this.tensors.clear();
  }
}

/**
 * A volume's voxels as a float32 tensor on the device: from `images` when given (kept there: the
 * caller must not dispose it), else uploaded now (the caller's to dispose, or its tf.tidy's).
 */
export function voxelsOnDevice(v: Volume, images?: DeviceImages): tf.Tensor1D {
  return images ? images.get(v) : uploadVoxels(v);
}

/**
 * The voxels uploaded as a float32 tensor. 16-bit integer voxels (CT's usual type) go up as they are,
 * two to an int32 word, and are widened on the GPU (one dispatch): half the bytes to copy and no host
 * conversion to float32 (on an H200's machine about 50 ms a 2 mm chest: the conversion, the staging
 * buffer and the copy).
 */
function uploadVoxels(v: Volume): tf.Tensor1D {
  const d = v.data;
  if (tf.getBackend() === 'webgpu' && HOST_LITTLE_ENDIAN && (d instanceof Int16Array || d instanceof Uint16Array)) {
    // the words over the voxels' own bytes where they are 4-byte aligned and whole, else a copy
    const aligned = d.byteOffset % 4 === 0 && d.length % 2 === 0 && !(d.buffer instanceof SharedArrayBuffer);
    let words: Int32Array;
    if (aligned) words = new Int32Array(d.buffer, d.byteOffset, d.length / 2);
    else {
      const copy = new Uint16Array(d.length + (d.length % 2));
      copy.set(new Uint16Array(d.buffer, d.byteOffset, d.length));
      words = new Int32Array(copy.buffer);
    }
    return widen16OnDevice(words, d.length, d instanceof Int16Array);
  }
  return tf.tensor1d(float32Voxels(v));
}

/** The voxels as float32 (the array itself when it already is). */
function float32Voxels(v: Volume): Float32Array {
  return v.data instanceof Float32Array ? v.data : Float32Array.from(v.data as ArrayLike<number>);
}

/**
 * A volume whose voxels exist only on the device (`voxels`, held by `images` from now on): its
 * geometry on the host, for programs that read it through `images`; reading its `data` on the host
 * throws an error that names it (nothing may fall back to host loops over it silently).
 */
export function deviceOnlyVolume(geometry: Geometry, voxels: tf.Tensor1D, images: DeviceImages, name: string): Volume {
  const v = {
    size: [...geometry.size],
    spacing: [...geometry.spacing],
    origin: [...geometry.origin],
    direction: [...geometry.direction],
    components: 1,
    meta: { warnings: [], source: name },
  } as unknown as Volume;
  Object.defineProperty(v, 'data', {
    get() {
      throw new Error(`${name} exists only on the GPU; its voxels cannot be read on the host here`);
    },
  });
  images.put(v, voxels);
  return v;
}
