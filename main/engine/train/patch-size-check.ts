/**
 * Whether a training patch size makes sense for a network, before any data is read: every axis must
 * hold at least two voxels of the network's coarsest (global) level, or the global InfoNCE has no
 * negatives and trains nothing (a 16x16x4 patch gave a global loss of 0); and the activations kept
 * for the gradients must fit the host's memory when the backend computes there (a 2000x2000x500
 * patch was killed at 22 GB instead of being refused).
 *
 * Memory model, measured on this repository's CPU backend (`sam train --config small --iterations 1`,
 * peak RSS): 1.00 GB at 96x96x32 and 0.43 GB at 48x48x16, i.e. about 0.35 GB of fixed cost plus 8.8 times
 * the bytes of every convolution's float32 output, for each of the two patches of each pair.
 */
import { InputError } from '../errors.ts';
import { outputStrides, type SamConfig } from '../sam/config.ts';
import { forwardCost } from '../sam/flops.ts';
import type { Vec3 } from '../volume/volume.ts';

const FIXED_BYTES = 0.345e9;
const BYTES_PER_CONV_OUTPUT_BYTE = 8.8;

/** Estimated peak memory (bytes) of one training iteration: patch is x, y, z voxels. */
export function trainingMemoryEstimate(config: SamConfig, patch: Vec3, batchPairs: number): number {
  const cost = forwardCost(config, [patch[2], patch[1], patch[0]]);
  const outputs = cost.layers.reduce((a, l) => a + l.cout * l.outShape[0] * l.outShape[1] * l.outShape[2], 0);
  return FIXED_BYTES + BYTES_PER_CONV_OUTPUT_BYTE * 4 * outputs * 2 * batchPairs;
}

const gb = (b: number): string => `${(b / 1e9).toFixed(1)} GB`;

/**
 * Throws an InputError naming --patch when it is too small for the network, or (given the memory
 * the backend computes in, e.g. os.totalmem() for the CPU) too large to train.
 */
export function checkPatchSize(config: SamConfig, patch: Vec3, batchPairs: number, memoryBytes?: number): void {
  const [gz, gy, gx] = outputStrides(config).global;
  const min: Vec3 = [2 * gx, 2 * gy, 2 * gz];
  if (patch.some((n, a) => n < min[a]))
    throw new InputError(
      '--patch',
      `${patch.join(',')} is too small for the '${config.name}' network: at least ${min.join(',')} (x,y,z), two voxels of its coarsest level (stride ${gx}x${gy}x${gz}) per axis, or the global embedding has no negatives`,
    );
  if (memoryBytes === undefined) return;
  const need = trainingMemoryEstimate(config, patch, batchPairs);
  if (need > 0.9 * memoryBytes)
    throw new InputError(
      '--patch',
      `${patch.join(',')} with ${batchPairs} pair(s) per iteration needs about ${gb(need)} to train, more than this machine's ${gb(memoryBytes)}: choose a smaller patch (the default is 96,96,32)`,
    );
}

/**
 * On a GPU backend, whether every convolution's output for the iteration's 2 x batchPairs patches fits
 * one device buffer (`capBytes`, WebGPU's maxStorageBufferBindingSize: 128 MB on lavapipe, 2 GB on an
 * H200): past it the device rejects the dispatches one by one (hundreds of Dawn errors, then "Dispatch
 * size exceeds WebGPU limits") after the data have been read. Throws an InputError naming --patch.
 */
export function checkPatchFitsDevice(config: SamConfig, patch: Vec3, batchPairs: number, capBytes: number): void {
  const cost = forwardCost(config, [patch[2], patch[1], patch[0]]);
  const largest = Math.max(
    4 * patch[0] * patch[1] * patch[2],
    ...cost.layers.map((l) => 4 * l.cout * l.outShape[0] * l.outShape[1] * l.outShape[2]),
  );
  const need = largest * 2 * batchPairs;
  if (need > capBytes)
    throw new InputError(
      '--patch',
      `${patch.join(',')} with ${batchPairs} pair(s) per iteration needs a ${(need / 2 ** 20).toFixed(0)} MB tensor, more than this GPU holds in one buffer (${(capBytes / 2 ** 20).toFixed(0)} MB): choose a smaller patch (the default is 96,96,32) or --backend cpu`,
    );
}
