/** Typed arrays on SharedArrayBuffers: what worker threads read and write without a copy per thread. */
import {
  allocateVoxels,
  makeVolume,
  type Volume,
  type VolumeMeta,
  type VoxelArray,
  type VoxelType,
} from '../volume/volume.ts';

type Typed = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

/** A copy of the array on a SharedArrayBuffer, of the same type. */
export function sharedCopy<T extends Typed>(a: T): T {
  const out = new (a.constructor as new (b: SharedArrayBuffer) => T)(new SharedArrayBuffer(a.byteLength));
  out.set(a as never);
  return out;
}

/**
 * The volume's geometry with its voxels copied onto a SharedArrayBuffer, for worker threads; its meta
 * reduced to `meta` (what the threads read).
 */
export function sharedVolume(v: Volume, meta: Partial<VolumeMeta> = {}): Volume {
  return makeVolume({
    size: v.size,
    spacing: v.spacing,
    origin: v.origin,
    direction: v.direction,
    components: v.components,
    data: sharedCopy(v.data),
    meta,
  });
}

/** A zeroed voxel array of `type` and length n on a SharedArrayBuffer. */
export function sharedVoxels(type: VoxelType, n: number): VoxelArray {
  const make = allocateVoxels(type, 0).constructor as (new (b: SharedArrayBuffer) => VoxelArray) & {
    BYTES_PER_ELEMENT: number;
  };
  return new make(new SharedArrayBuffer(n * make.BYTES_PER_ELEMENT));
}

/**
 * The volume with its voxels in ordinary memory (a copy when they are on shared memory): for messages
 * to other processes, which cannot take a SharedArrayBuffer.
 */
export function inOwnMemory<V extends Volume>(v: V): V {
  return v.data.buffer instanceof SharedArrayBuffer ? { ...v, data: v.data.slice() } : v;
}
