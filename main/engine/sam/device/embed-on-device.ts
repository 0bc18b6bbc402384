/**
 * Whole-volume SAM embedding that stays on the tfjs device: the same embeddings as
 * sam/embed-volume.ts embedVolume (same grids, same tiles, tiled equals untiled), but the input is
 * made on the device (network-input.ts), tiles are cut from it and their interiors assembled there,
 * and nothing is read back: on a GPU the 128-channel float32 local embedding of a chest CT is about
 * 570 MB, and moving it to the CPU took longer than the network itself on the H100 (README, issue 4).
 * match-on-device.ts matches points against these tensors and reads back only its answers;
 * toHost() copies them into EmbeddedVolumes for everything else.
 *
 * Layout: each level's `data` is a [V, C] float32 tensor, voxel order i fastest (the Volume order:
 * the network's channel-last [d, h, w, C] output flattened), with the EmbeddingVolume geometry of
 * embed-volume.ts (embeddingGrid of the LPS network grid). The caller owns the result: dispose() it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CancelledError, DeviceLimitError } from '../../errors.ts';
import { maxTensorBytes, onHardwareGpu, outOfMemoryDuring } from '../../compute/tf-backend.ts';
import { embeddingGrid } from '../../train/patch-pairs.ts';
import type { Geometry } from '../../volume/geometry.ts';
import { requireCt } from '../../volume/intensity.ts';
import { makeVolume, type Vec3, type Volume } from '../../volume/volume.ts';
import { outputStrides, type SamConfig } from '../config.ts';
import {
  DEFAULT_TILE_BYTES,
  checkTilesFit,
  embeddingFloat32,
  networkGrid,
  planTiles,
  tileOutputRange,
  type EmbeddedVolume,
  type EmbedProgress,
  type EmbeddingVolume,
  type Tile,
} from '../embed-volume.ts';
import { checkWeights, forward, type SamWeights } from '../network.ts';
import { networkInputFromDevice, networkInputOnDevice } from './network-input.ts';
import type { DeviceImages } from '../../compute/device-images.ts';

export interface DeviceEmbeddingLevel extends Geometry {
  components: number;
  /** Stride (z, y, x) in network-grid voxels. */
  stride: Vec3;
  /** [V, C], i fastest. */
  data: tf.Tensor2D;
}

export interface DeviceEmbedded {
  global: DeviceEmbeddingLevel;
  local: DeviceEmbeddingLevel;
  /** The tfjs backend holding the tensors. */
  backend: string;
  /** Tensors derived from these embeddings by their users (e.g. the matcher's upsampled global level). */
  derived: Map<string, tf.Tensor>;
  /** Source file or description, for messages. */
  source: string;
  dispose(): void;
}

export interface EmbedOnDeviceOptions {
  spacingMm?: number;
  /** Tile interiors (z, y, x), network-grid voxels (default: planned from maxTileBytes). */
  tile?: Vec3;
  /**
   * Memory budget of one tile's network run (default GPU_TILE_BYTES on a GPU, retried with 2.5e9 if
   * the GPU runs out of memory; 2.5e9 on a software adapter).
   */
  maxTileBytes?: number;
  margin?: Vec3;
  /** Largest tensor, bytes (default: the device's buffer cap, compute/tf-backend.ts maxTensorBytes). */
  maxTensorBytes?: number;
  onProgress?: (p: EmbedProgress) => void;
  signal?: AbortSignal;
  /** The volume's voxels on the device from this cache (uploaded once per registration). */
  images?: DeviceImages;
  /**
   * Embed this image instead of the volume's own voxels: one made from the volume and already on the
   * device (float32 HU, i fastest, on `geometry`; left to the caller), e.g. the moving image warped
   * through the affine (register/device/warp-on-device.ts affineWarpOnDevice). The volume then gives
   * only the name and the CT check.
   */
  image?: { geometry: Geometry; voxels: tf.Tensor1D };
}

/**
 * Default tile budget on a hardware GPU: the small network embeds a 2 mm chest CT (250x250x141) in one
 * tile, where 2.5e9 cuts it into 9 tiles that recompute their margins (3.2x the work, 2.6 s instead of
 * 0.23 s per volume in the cascade on an H200). A GPU with less memory runs out of it: the
 * embedding is then made again with DEFAULT_TILE_BYTES.
 */
export const GPU_TILE_BYTES = 8e9;

/** Embed a whole CT (HU) with the tfjs network on the active backend; the result stays there. */
export async function embedVolumeOnDevice(
  volume: Volume,
  model: { config: SamConfig; weights: SamWeights },
  options: EmbedOnDeviceOptions = {},
): Promise<DeviceEmbedded> {
  const source = volume.meta.source ?? 'volume';
  let budget = options.maxTileBytes ?? (onHardwareGpu() ? GPU_TILE_BYTES : DEFAULT_TILE_BYTES);
  let r = await outOfMemoryDuring(() => embedInTiles(volume, model, budget, options));
  if (r.outOfMemory && options.maxTileBytes === undefined && budget > DEFAULT_TILE_BYTES) {
    r.value.dispose();
    budget = DEFAULT_TILE_BYTES;
    r = await outOfMemoryDuring(() => embedInTiles(volume, model, budget, options));
  }
  if (!r.outOfMemory) return r.value;
  r.value.dispose();
  throw new DeviceLimitError(
    source,
    `the GPU ran out of memory embedding it in tiles of at most ${(budget / 1e9).toFixed(1)} GB (${r.outOfMemory.split('\n')[0]}): ` +
      `give a smaller tile budget (--tile-bytes) or embed on the CPU (--device onnx)`,
  );
}

async function embedInTiles(
  volume: Volume,
  model: { config: SamConfig; weights: SamWeights },
  maxTileBytes: number,
  options: EmbedOnDeviceOptions,
): Promise<DeviceEmbedded> {
  requireCt(volume);
  const { config, weights } = model;
  checkWeights(config, weights);
  const grid = networkGrid(options.image?.geometry ?? volume, options.spacingMm ?? 2);
  const size: Vec3 = [grid.size[2], grid.size[1], grid.size[0]];
  const strides = outputStrides(config);
  const cap = options.maxTensorBytes ?? maxTensorBytes();
  const tiles = planTiles(config, size, {
    tile: options.tile,
    maxTileBytes,
    margin: options.margin,
    maxTensorBytes: cap,
  });
  checkTilesFit(config, tiles, cap, volume.meta.source ?? 'volume');
  // each level is one tensor here (and the matcher adds the global level upsampled to the local grid)
  for (const [what, stride] of [
    ['local', strides.local],
    ['global', strides.global],
  ] as const) {
    const g = embeddingGrid(grid, stride);
    const bytes = g.size[0] * g.size[1] * g.size[2] * config.embedDim * 4;
    if (cap !== undefined && bytes > cap)
      throw new DeviceLimitError(
        volume.meta.source ?? 'volume',
        `its ${what} embedding (${g.size.join('x')} x ${config.embedDim}) needs ${(bytes / 2 ** 20).toFixed(0)} MB in one ` +
          `buffer; this device allows ${(cap / 2 ** 20).toFixed(0)} MB (WebGPU maxStorageBufferBindingSize): embed it in ` +
          `tiles read back to the CPU instead (embedVolume; sam match --device onnx)`,
      );
  }
  const input = options.image
    ? await imageInput(options.image, volume, grid, cap)
    : networkInputOnDevice(volume, grid, cap, options.images);
  // interiors of each tile's outputs, by tile position (z, y, x) for assembling by concatenation
  const pieces = { global: new Map<string, tf.Tensor4D>(), local: new Map<string, tf.Tensor4D>() };
  const starts = [0, 1, 2].map((a) => [...new Set(tiles.map((t) => t.start[a]))].sort((p, q) => p - q));
  const key = (t: Tile) => t.start.map((s, a) => starts[a].indexOf(s)).join(',');
  try {
    for (let n = 0; n < tiles.length; n++) {
      if (options.signal?.aborted) throw new CancelledError('embedding');
      const tile = tiles[n];
      const out = tf.tidy(() => {
        const block = tf.slice(
          input,
          tile.inStart,
          tile.inEnd.map((e, a) => e - tile.inStart[a]),
        );
        const o = forward(weights, tf.expandDims(tf.expandDims(block, 0), -1) as tf.Tensor5D, config);
        return {
          global: interior(o.global, tile, strides.global, size),
          local: interior(o.local, tile, strides.local, size),
        };
      });
      pieces.global.set(key(tile), out.global);
      pieces.local.set(key(tile), out.local);
      options.onProgress?.({ tile: n + 1, tiles: tiles.length });
      // let the event loop run between tiles (progress, cancellation)
      await new Promise((r) => setImmediate(r));
    }
  } catch (e) {
    for (const m of Object.values(pieces)) tf.dispose([...m.values()]);
    throw e;
  } finally {
    input.dispose();
  }
  const counts = starts.map((s) => s.length);
  const level = (which: 'global' | 'local', stride: Vec3): DeviceEmbeddingLevel => {
    const g = embeddingGrid(grid, stride);
    const data = tf.tidy(() => {
      const rows: tf.Tensor4D[] = [];
      for (let z = 0; z < counts[0]; z++) {
        const planes: tf.Tensor4D[] = [];
        for (let y = 0; y < counts[1]; y++) {
          const row = Array.from({ length: counts[2] }, (_, x) => pieces[which].get(`${z},${y},${x}`)!);
          planes.push(row.length === 1 ? row[0] : tf.concat(row, 2));
        }
        rows.push(planes.length === 1 ? planes[0] : tf.concat(planes, 1));
      }
      const whole = rows.length === 1 ? rows[0] : tf.concat(rows, 0);
      const [d, h, w, c] = whole.shape;
      if (d !== g.size[2] || h !== g.size[1] || w !== g.size[0])
        throw new Error(`assembled ${which} embedding [${whole.shape}] does not match its grid ${g.size.join('x')}`);
      return tf.reshape(whole, [d * h * w, c]) as tf.Tensor2D;
    });
    tf.dispose([...pieces[which].values()]);
    return { ...g, components: config.embedDim, stride: [...stride] as Vec3, data };
  };
  return deviceEmbedded(level('global', strides.global), level('local', strides.local), volume.meta.source ?? 'volume');
}

/** The network input of an image on the device; an oblique one is read back and resampled on the CPU. */
async function imageInput(
  image: { geometry: Geometry; voxels: tf.Tensor1D },
  volume: Volume,
  grid: Geometry,
  cap: number | undefined,
): Promise<tf.Tensor3D> {
  const n = image.geometry.size[0] * image.geometry.size[1] * image.geometry.size[2];
  if (image.voxels.size !== n)
    throw new Error(`embedVolumeOnDevice: ${image.voxels.size} voxels for a ${n}-voxel image`);
  const onDevice = networkInputFromDevice(image.geometry, image.voxels, grid);
  if (onDevice) return onDevice;
  const { size, spacing, origin, direction } = image.geometry;
  const data = (await image.voxels.data()) as Float32Array;
  const v = makeVolume({ size, spacing, origin, direction, data, meta: { source: volume.meta.source } });
  return networkInputOnDevice(v, grid, cap);
}

/** The part of a tile's output [1, d, h, w, C] inside the tile's interior, as [d', h', w', C]. */
function interior(out: tf.Tensor5D, tile: Tile, s: Vec3, size: Vec3): tf.Tensor4D {
  const { lo, hi, off } = tileOutputRange(tile, s, [0, 1, 2].map((a) => Math.ceil(size[a] / s[a])) as Vec3);
  const [, d, h, w, c] = out.shape;
  const o4 = tf.reshape(out, [d, h, w, c]);
  return tf.slice(
    o4,
    [lo[0] - off[0], lo[1] - off[1], lo[2] - off[2], 0],
    [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2], c],
  ) as tf.Tensor4D;
}

/**
 * Resolves once the device has computed the embeddings (tfjs queues GPU work and returns at once):
 * one dispatch that reads both levels, one number read back. For honest timings and progress messages.
 */
export async function whenComputed(e: DeviceEmbedded): Promise<void> {
  // one element of each level, added on the device: that dispatch reads both outputs, so it runs after
  // everything that wrote them, and one number comes back. (A sum over every element did the same
  // with tfjs' reduction, which gives a whole-tensor sum one workgroup: 141 M values of a chest's local
  // level read by 512 threads, latency-bound, of the order of 0.1 s on a GPU.)
  const last = (t: tf.Tensor2D) => tf.slice(t, [t.shape[0] - 1, t.shape[1] - 1], [1, 1]);
  const done = tf.tidy(() => tf.add(last(e.global.data), last(e.local.data)));
  try {
    await done.data();
  } finally {
    done.dispose();
  }
}

/** Upload embeddings (e.g. from the disk cache) to the active tfjs backend; the caller disposes them. */
export function toDevice(e: EmbeddedVolume): DeviceEmbedded {
  const one = (v: EmbeddingVolume): DeviceEmbeddingLevel => ({
    size: [...v.size] as Vec3,
    spacing: [...v.spacing] as Vec3,
    origin: [...v.origin] as Vec3,
    direction: [...v.direction] as Geometry['direction'],
    components: v.components,
    stride: [...v.stride] as Vec3,
    data: tf.tensor2d(embeddingFloat32(v), [v.data.length / v.components, v.components]),
  });
  return deviceEmbedded(one(e.global), one(e.local), e.global.meta.source ?? 'embedding');
}

/** The two levels on the active backend, with the derived-tensor cache and disposal. */
function deviceEmbedded(global: DeviceEmbeddingLevel, local: DeviceEmbeddingLevel, source: string): DeviceEmbedded {
  const derived = new Map<string, tf.Tensor>();
  return {
    global,
    local,
    backend: tf.getBackend(),
    derived,
    source,
    dispose() {
      tf.dispose([global.data, local.data, ...derived.values()]);
      derived.clear();
    },
  };
}

/** Copy device embeddings into float32 EmbeddingVolumes (the CPU matcher's and the cache's form). */
export async function toHost(e: DeviceEmbedded, description = 'SAM embedding'): Promise<EmbeddedVolume> {
  const one = async (l: DeviceEmbeddingLevel, what: string): Promise<EmbeddingVolume> => {
    const data = (await l.data.data()) as Float32Array;
    const v = makeVolume({
      size: l.size,
      spacing: l.spacing,
      origin: l.origin,
      direction: l.direction,
      components: l.components,
      data,
      meta: { source: e.source, description: `${description} (${what})` },
    });
    return { ...v, storage: 'float32', stride: [...l.stride] as Vec3 };
  };
  return { global: await one(e.global, 'global'), local: await one(e.local, 'local') };
}
