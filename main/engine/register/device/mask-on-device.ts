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

/**
 * WGSL uniforms of a per-row reduction over a slab of the cascade's warp (masked-ncc-on-device.ts,
 * overlap-ncc-on-device.ts): the grid's dims, the slab's first fixed slice k0 and its rows, the packed
 * mask's words per row, the slab's channels and the row of slice k0 in the slab (rowOffset).
 */
export const SLAB_ROW_UNIFORMS =
  'dims : vec3<i32>, k0 : i32, rows : i32, wordsPerRow : i32, channels : i32, rowOffset : i32,';

/** The values of SLAB_ROW_UNIFORMS, in its order. */
export function slabRowUniforms(
  mask: MaskOnDevice,
  k0: number,
  rows: number,
  channels: number,
  rowOffset: number,
): { type: string; data: number[] }[] {
  return [
    { type: 'int32', data: [...mask.packed.size] },
    { type: 'int32', data: [k0] },
    { type: 'int32', data: [rows] },
    { type: 'int32', data: [mask.packed.wordsPerRow] },
    { type: 'int32', data: [channels] },
    { type: 'int32', data: [rowOffset] },
  ];
}
