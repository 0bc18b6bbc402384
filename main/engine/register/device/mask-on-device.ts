/**
 * A mask on the device for the per-row reductions of the cascade's warp (jacobian-stats-on-device.ts,
 * masked-ncc-on-device.ts): packed one bit per voxel (volume/bit-mask.ts), so that it goes up as an
 * eighth of a byte mask, once for both reductions.
 */
import * as tf from '@tensorflow/tfjs-core';
import { packMask, type BitVolume } from '../../volume/bit-mask.ts';
import type { Volume } from '../../volume/volume.ts';

export interface MaskOnDevice {
  packed: BitVolume;
  /** packed.bits as an int32 tensor (the programs' input MB). */
  bits: tf.Tensor;
  dispose(): void;
}

/** The mask's nonzero voxels, packed and uploaded (the caller disposes it). */
export function maskOnDevice(mask: Volume): MaskOnDevice {
  const packed = packMask(mask.data as Uint8Array, mask.size);
  const bits = tf.tensor1d(packed.bits, 'int32');
  return { packed, bits, dispose: () => bits.dispose() };
}

/**
 * WGSL: whether voxel i of grid row `row` is set in the packed mask (the program's input MB and
 * uniform wordsPerRow).
 */
export const MASK_BIT_WGSL = `
      fn inMask(row : i32, i : i32) -> bool {
        return ((MB[row * uniforms.wordsPerRow + i / 32] >> u32(i % 32)) & 1) != 0;
      }`;
