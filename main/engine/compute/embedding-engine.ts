/**
 * The contract every inference engine of the SAM network implements (tfjs on any backend,
 * ONNX Runtime on any execution provider), so whole-volume embedding, matching and registration
 * never depend on which one runs.
 *
 * Layout: one block of the normalised 2 mm CT, no batch axis, z slowest and x fastest
 * ([D, H, W] = [nk, nj, ni] of a Volume whose data is i-fastest). Outputs are channel-last
 * ([d, h, w, C], L2-normalised per voxel) with the network's strides (z, y, x); output voxel n
 * along an axis of stride s is centred on input voxel s * n + (s - 1) / 2 (see sam/network.ts).
 */
import type { SamConfig, Vec3 } from '../sam/config.ts';

export interface EngineOutput {
  /** [gd, gh, gw, C] */
  global: Float32Array;
  globalSize: Vec3;
  /** [ld, lh, lw, C] */
  local: Float32Array;
  localSize: Vec3;
}

export interface EmbeddingEngine {
  /** e.g. 'tfjs-cpu', 'tfjs-webgpu', 'onnxruntime-cpu', 'onnxruntime-cuda'. */
  readonly name: string;
  readonly config: SamConfig;
  /**
   * Peak memory per input voxel of one run, in bytes, when the engine knows it better than the tfjs
   * estimate (sam/embed-volume.ts bytesPerInputVoxel); whole-volume embedding sizes its tiles by it.
   */
  readonly bytesPerInputVoxel?: number;
  /**
   * The largest tensor one run may hold, bytes, where the device caps a buffer (WebGPU's
   * maxStorageBufferBindingSize); whole-volume embedding keeps every tile under it.
   */
  readonly maxTensorBytes?: number;
  /**
   * Seconds for the network alone on a block of this size ([D, H, W]), the outputs reduced on the
   * device so that nothing but a scalar is read back (benchmarks: separates the network from the
   * transfer of its outputs). Optional.
   */
  timeNetwork?(size: Vec3): Promise<number>;
  /** Run the network on one block; size is [D, H, W]. */
  run(input: Float32Array, size: Vec3): Promise<EngineOutput>;
  dispose(): Promise<void> | void;
}
