/**
 * Whole-volume SAM embedding: a CT of any size in, its global and local embedding volumes out,
 * each a Volume whose geometry places every embedding voxel at its world position (LPS mm).
 *
 * Pipeline: requireCt -> resample to the network grid -> normalizeForNetwork -> tiles -> engine.
 * - Network grid: `spacingMm` (default 2) isotropic, LPS-aligned (direction = identity, x -> L,
 *   y -> P, z -> S), covering the volume's bounding box, air (-1024 HU) outside: the orientation the
 *   network is trained on (train/patch-pairs.ts prepareCt); the network is not rotation invariant, so
 *   the volume's own (possibly oblique or flipped) direction is not used.
 * - Embedding grids: train/patch-pairs.ts embeddingGrid (output voxel n of stride s centred on input
 *   voxel s*n + (s-1)/2): origin = world centre of output voxel 0, spacing = spacingMm * stride,
 *   direction = the network grid's. Data is the engine's channel-last output: components = C, i fastest.
 * - Tiling: tile origins on multiples of the total stride, so every tile's output grid is a sub-grid of
 *   the whole volume's; each tile is grown by a margin of at least the receptive-field radius
 *   (receptiveRadius, from the configuration) on every side that is not the volume's edge, and only
 *   its interior is kept. An output voxel then sees exactly the inputs it would see untiled, so tiled
 *   equals untiled (test/unit/embed-tiling.test.ts). Tiles are chosen to fit a memory budget with the
 *   least recomputation (planTiles).
 * - Storage: float32, or float16 (`fp16`): data is then a Uint16Array of IEEE half bits; read it with
 *   readEmbedding / embeddingFloat32 (never as numbers directly).
 */
import { totalmem } from 'node:os';
import { CancelledError, DeviceLimitError } from '../errors.ts';
import type { EmbeddingEngine } from '../compute/embedding-engine.ts';
import { embeddingGrid } from '../train/patch-pairs.ts';
import { requireCt, normalizeForNetwork } from '../volume/intensity.ts';
import { gridWithSpacing, resample } from '../volume/resample.ts';
import type { Geometry } from '../volume/geometry.ts';
import { IDENTITY3, makeVolume, type Vec3, type Volume } from '../volume/volume.ts';
import { convLayers, levelStrides, outputStrides, widestConvChannelsPerVoxel, type SamConfig } from './config.ts';

export type EmbeddingStorage = 'float32' | 'float16';

export interface EmbeddingVolume extends Volume<Float32Array | Uint16Array> {
  /** 'float16': data holds IEEE half-precision bits (Uint16Array). */
  storage: EmbeddingStorage;
  /** Stride (z, y, x) of this grid in network-grid voxels. */
  stride: Vec3;
}

export interface EmbeddedVolume {
  global: EmbeddingVolume;
  local: EmbeddingVolume;
}

export interface EmbedProgress {
  tile: number;
  tiles: number;
}

export interface EmbedOptions {
  /** Network grid spacing in mm (default 2). */
  spacingMm?: number;
  /** Tile interior (z, y, x) in network-grid voxels, rounded up to multiples of the total stride. */
  tile?: Vec3;
  /**
   * Memory budget of one tile's network run in bytes, estimated by bytesPerInputVoxel (default
   * defaultTileBytes(): 40% of the machine's memory; used when `tile` is not given). Larger tiles
   * recompute less of their margins.
   */
  maxTileBytes?: number;
  /** Margin (z, y, x) in network-grid voxels (default: the receptive-field radius; tests only). */
  margin?: Vec3;
  /** Largest tensor of one run, bytes (default: the engine's maxTensorBytes, e.g. WebGPU's buffer cap). */
  maxTensorBytes?: number;
  fp16?: boolean;
  onProgress?: (p: EmbedProgress) => void;
  signal?: AbortSignal;
}

type Axis3 = [number, number, number];

/**
 * Receptive-field radius (z, y, x), in network-grid voxels from an output voxel's centre, of the
 * local and global outputs: a bound on how far an input voxel that influences it can be, walking the
 * network as forward() does (stem, pooling, convs, nearest upsampling).
 */
export function receptiveRadius(config: SamConfig): { local: Vec3; global: Vec3 } {
  const layers = new Map(convLayers(config).map((l) => [l.name, l]));
  const S = levelStrides(config);
  const axis = (a: number): [number, number] => {
    const k = (name: string) => (layers.get(name)?.kernel[a] ?? 1) - 1;
    let s = config.stem.stride[a];
    let r = (config.stem.kernel[a] - 1) / 2;
    const level: number[] = [];
    config.stages.forEach((st, i) => {
      r += ((st.down[a] - 1) / 2) * s;
      s *= st.down[a];
      for (let b = 0; b < st.blocks; b++) r += ((k(`s${i + 1}.b${b}.conv1`) + k(`s${i + 1}.b${b}.conv2`)) / 2) * s;
      r += ((st.postPool[a] - 1) / 2) * s;
      s *= st.postPool[a];
      level.push(r);
    });
    let t = level[config.local.levels - 1];
    for (let l = config.local.levels - 1; l >= 1; l--) {
      const down = t + (k(`local.td${l}`) / 2) * S[l][a];
      t = Math.max(level[l - 1], down + (S[l][a] - S[l - 1][a]) / 2);
    }
    config.local.out.forEach((_, i) => (t += (k(`local.out${i}`) / 2) * S[0][a]));
    let g = level[level.length - 1];
    config.global.out.forEach((_, i) => (g += (k(`global.out${i}`) / 2) * S[S.length - 1][a]));
    return [t, g];
  };
  const r = [0, 1, 2].map(axis);
  return { local: r.map((x) => x[0]) as Vec3, global: r.map((x) => x[1]) as Vec3 };
}

/** Rough peak bytes of tfjs tensors per network-grid voxel (calibrated on tiny and small, tfjs-cpu). */
export function bytesPerInputVoxel(config: SamConfig): number {
  const per = (s: Vec3) => 1 / (s[0] * s[1] * s[2]);
  let sum = 0;
  for (const l of convLayers(config)) sum += l.cout * per(l.outStride);
  // forward() keeps its intermediates until it returns: ~3 tensors per conv, 4 for the L2 normalisation
  return 4 * (3 * sum + 4 * config.embedDim * per(outputStrides(config).local)) + 32;
}

/**
 * Bytes per input voxel of the largest single tensor of a run (the tile's input, the widest layer's
 * output, the local embedding), with 15% for the padding to whole strides and the stem's margins:
 * with a backend that caps one buffer (WebGPU: maxTensorBytes() in compute/tf-backend.ts), tiles
 * must keep this under the cap.
 */
export function largestTensorBytesPerVoxel(config: SamConfig): number {
  const s = outputStrides(config).local;
  return 4 * Math.max(1, config.embedDim / (s[0] * s[1] * s[2]), widestConvChannelsPerVoxel(config)) * 1.15;
}

/**
 * Refuses a plan whose largest tile would not fit the device's buffer cap: there is no smaller correct
 * tile (each needs its receptive-field margins: for the `small` network at least about 44x208x208
 * input voxels, 141 MB for its local embedding), and a WebGPU device computes garbage rather than
 * throwing when a tensor exceeds the cap.
 */
export function checkTilesFit(
  config: SamConfig,
  tiles: Tile[],
  maxTensorBytes: number | undefined,
  source: string,
): void {
  const voxels = Math.max(...tiles.map((t) => [0, 1, 2].reduce((v, a) => v * (t.inEnd[a] - t.inStart[a]), 1)));
  checkBlockFits(config, voxels, maxTensorBytes, source);
}

/** Refuses one network run over `voxels` input voxels whose largest tensor would exceed the cap. */
export function checkBlockFits(
  config: SamConfig,
  voxels: number,
  maxTensorBytes: number | undefined,
  source: string,
): void {
  const need = voxels * largestTensorBytesPerVoxel(config);
  if (maxTensorBytes !== undefined && need > maxTensorBytes)
    throw new DeviceLimitError(
      source,
      `one tile of the '${config.name}' network needs a ${(need / 2 ** 20).toFixed(0)} MB tensor; this device holds at ` +
        `most ${(maxTensorBytes / 2 ** 20).toFixed(0)} MB in one buffer (WebGPU maxStorageBufferBindingSize): embed on ` +
        `the CPU instead (--device onnx)`,
    );
}

export interface Tile {
  /** Network input block [inStart, inEnd) (z, y, x). */
  inStart: Axis3;
  inEnd: Axis3;
  /** Kept interior [start, end) (z, y, x), in network-grid voxels. */
  start: Axis3;
  end: Axis3;
}

/** Smallest default memory budget of one tile (and the budget where the machine's memory is unknown). */
export const DEFAULT_TILE_BYTES = 2.5e9;

/**
 * Default memory budget of one tile on the CPU: 40% of the machine's memory, at least
 * DEFAULT_TILE_BYTES. Tiles recompute their margins (the receptive field: about 100 voxels for the
 * paper-size network), so a budget that splits a volume into many small tiles multiplies the work
 * (the paper-size network on the 2 mm chest: 36 tiles at 2.5 GB with ONNX Runtime's estimate, one
 * tile at 6.4 GB, i.e. on a 16 GB machine).
 */
export function defaultTileBytes(): number {
  return Math.max(DEFAULT_TILE_BYTES, 0.4 * totalmem());
}

const ceilTo = (v: number, m: number) => Math.ceil(v / m) * m;

/** Tiles of an input of `size` (z, y, x): given interiors, or the cheapest that fits the budget. */
export function planTiles(
  config: SamConfig,
  size: Axis3,
  options: { tile?: Vec3; maxTileBytes?: number; margin?: Vec3; bytesPerVoxel?: number; maxTensorBytes?: number } = {},
): Tile[] {
  const T = outputStrides(config).total;
  const R = receptiveRadius(config);
  const M = [0, 1, 2].map((a) => ceilTo(options.margin?.[a] ?? Math.max(R.local[a], R.global[a]), T[a]));
  let interior: number[];
  if (options.tile) interior = options.tile.map((v, a) => Math.max(T[a], ceilTo(v, T[a])));
  else {
    // input voxels of one tile: within the memory budget, and every tensor within one buffer's cap
    const budget = Math.min(
      (options.maxTileBytes ?? defaultTileBytes()) / (options.bytesPerVoxel ?? bytesPerInputVoxel(config)),
      (options.maxTensorBytes ?? Infinity) / largestTensorBytesPerVoxel(config),
    );
    const choices = [0, 1, 2].map((a) => {
      const out: { I: number; tiles: number; maxIn: number; work: number }[] = [];
      const full = ceilTo(size[a], T[a]);
      for (let n = 1; n <= full / T[a]; n++) {
        const I = ceilTo(full / n, T[a]);
        if (out.length && out[out.length - 1].I === I) continue;
        const tiles = Math.ceil(size[a] / I);
        let work = 0;
        let maxIn = 0;
        for (let t = 0; t < tiles; t++) {
          const w = Math.min(size[a], t * I + I + M[a]) - Math.max(0, t * I - M[a]);
          work += w;
          maxIn = Math.max(maxIn, ceilTo(w, T[a]));
        }
        out.push({ I, tiles, maxIn, work });
      }
      return out;
    });
    let best: { I: number[]; work: number; maxIn: number } | undefined;
    for (const z of choices[0])
      for (const y of choices[1])
        for (const x of choices[2]) {
          const maxIn = z.maxIn * y.maxIn * x.maxIn;
          const work = z.work * y.work * x.work;
          const fits = maxIn <= budget;
          if (!best || (fits && (best.maxIn > budget || work < best.work)) || (!fits && maxIn < best.maxIn))
            best = { I: [z.I, y.I, x.I], work, maxIn };
        }
    interior = best!.I;
  }
  const per = [0, 1, 2].map((a) => {
    const out: [number, number, number, number][] = [];
    for (let s = 0; s < size[a]; s += interior[a])
      out.push([
        Math.max(0, s - M[a]),
        Math.min(size[a], s + interior[a] + M[a]),
        s,
        Math.min(size[a], s + interior[a]),
      ]);
    return out;
  });
  const tiles: Tile[] = [];
  for (const z of per[0])
    for (const y of per[1])
      for (const x of per[2])
        tiles.push({
          inStart: [z[0], y[0], x[0]],
          inEnd: [z[1], y[1], x[1]],
          start: [z[2], y[2], x[2]],
          end: [z[3], y[3], x[3]],
        });
  return tiles;
}

/** The LPS-aligned network grid of a volume (see the header). */
export function networkGrid(volume: Geometry, spacingMm = 2) {
  return gridWithSpacing(volume, [spacingMm, spacingMm, spacingMm], IDENTITY3);
}

/** Embed a whole CT (HU). */
export async function embedVolume(
  volume: Volume,
  engine: EmbeddingEngine,
  options: EmbedOptions = {},
): Promise<EmbeddedVolume> {
  requireCt(volume);
  const config = engine.config;
  const grid = networkGrid(volume, options.spacingMm ?? 2);
  const hu = resample(volume, grid, { fill: -1024, outputType: 'float32' });
  const input = normalizeForNetwork(hu).data;
  const size: Axis3 = [grid.size[2], grid.size[1], grid.size[0]];
  const strides = outputStrides(config);
  const C = config.embedDim;
  const fp16 = options.fp16 ?? false;
  const make = (stride: Vec3, what: string): EmbeddingVolume => {
    const g = embeddingGrid(grid, stride);
    const n = g.size[0] * g.size[1] * g.size[2] * C;
    const v = makeVolume({
      ...g,
      components: C,
      // on shared memory: the match threads read it without a copy (sam/match-threads.ts)
      data: fp16 ? new Uint16Array(new SharedArrayBuffer(2 * n)) : new Float32Array(new SharedArrayBuffer(4 * n)),
      meta: { source: volume.meta.source, description: `SAM ${what} embedding (${config.name})` },
    });
    return { ...v, storage: fp16 ? 'float16' : 'float32', stride: [...stride] as Vec3 };
  };
  const out = { global: make(strides.global, 'global'), local: make(strides.local, 'local') };
  const cap = options.maxTensorBytes ?? engine.maxTensorBytes;
  const tiles = planTiles(config, size, { ...options, bytesPerVoxel: engine.bytesPerInputVoxel, maxTensorBytes: cap });
  checkTilesFit(config, tiles, cap, volume.meta.source ?? 'volume');
  for (let t = 0; t < tiles.length; t++) {
    if (options.signal?.aborted) throw new CancelledError('embedding');
    const tile = tiles[t];
    const block = extractBlock(input, size, tile.inStart, tile.inEnd);
    const r = await engine.run(block.data, block.size);
    if (options.signal?.aborted) throw new CancelledError('embedding');
    place(out.global, r.global, r.globalSize, tile, strides.global, C);
    place(out.local, r.local, r.localSize, tile, strides.local, C);
    options.onProgress?.({ tile: t + 1, tiles: tiles.length });
  }
  return out;
}

/** Copy the block [s, e) (z, y, x) of an x-fastest [D, H, W] array. */
function extractBlock(src: Float32Array, size: Axis3, s: Axis3, e: Axis3): { data: Float32Array; size: Vec3 } {
  const bs: Vec3 = [e[0] - s[0], e[1] - s[1], e[2] - s[2]];
  const data = new Float32Array(bs[0] * bs[1] * bs[2]);
  let o = 0;
  for (let z = s[0]; z < e[0]; z++)
    for (let y = s[1]; y < e[1]; y++) {
      const from = (z * size[1] + y) * size[2] + s[2];
      data.set(src.subarray(from, from + bs[2]), o);
      o += bs[2];
    }
  return { data, size: bs };
}

/**
 * The output voxels of a tile's interior at stride s (z, y, x): [lo, hi) in the whole output grid of
 * `outSize` voxels, and `off`, the whole-grid index of the tile's own output voxel 0.
 */
export function tileOutputRange(tile: Tile, s: Vec3, outSize: Axis3): { lo: number[]; hi: number[]; off: number[] } {
  return {
    lo: [0, 1, 2].map((a) => tile.start[a] / s[a]),
    hi: [0, 1, 2].map((a) => Math.min(outSize[a], Math.ceil(tile.end[a] / s[a]))),
    off: [0, 1, 2].map((a) => tile.inStart[a] / s[a]),
  };
}

/** Write a tile's output voxels that lie in its interior into the whole-volume embedding. */
function place(dst: EmbeddingVolume, src: Float32Array, srcSize: Vec3, tile: Tile, s: Vec3, C: number): void {
  const dsz: Axis3 = [dst.size[2], dst.size[1], dst.size[0]];
  const { lo, hi, off } = tileOutputRange(tile, s, dsz);
  const rowLen = (hi[2] - lo[2]) * C;
  const f16 = dst.storage === 'float16';
  const d = dst.data;
  for (let z = lo[0]; z < hi[0]; z++)
    for (let y = lo[1]; y < hi[1]; y++) {
      const from = (((z - off[0]) * srcSize[1] + (y - off[1])) * srcSize[2] + (lo[2] - off[2])) * C;
      const to = ((z * dsz[1] + y) * dsz[2] + lo[2]) * C;
      if (!f16) (d as Float32Array).set(src.subarray(from, from + rowLen), to);
      else for (let n = 0; n < rowLen; n++) d[to + n] = toHalf(src[from + n]);
    }
}

// ---- float16 storage ----

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half bits of a number (round to nearest even; overflow to infinity). */
export function toHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

let HALF_TABLE: Float32Array | undefined;

/** Float32 value of every half bit pattern (index = the 16 bits). */
export function halfTable(): Float32Array {
  if (HALF_TABLE) return HALF_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return (HALF_TABLE = t);
}

/** The C values of flat voxel `voxel` into `out` (float32 whatever the storage). */
export function readEmbedding(ev: EmbeddingVolume, voxel: number, out = new Float32Array(ev.components)): Float32Array {
  const C = ev.components;
  const base = voxel * C;
  if (ev.storage === 'float32') out.set((ev.data as Float32Array).subarray(base, base + C));
  else {
    const t = halfTable();
    for (let c = 0; c < C; c++) out[c] = t[ev.data[base + c]];
  }
  return out;
}

/** All values as float32 (the data itself when stored as float32, a converted copy otherwise). */
export function embeddingFloat32(ev: EmbeddingVolume): Float32Array {
  if (ev.storage === 'float32') return ev.data as Float32Array;
  const t = halfTable();
  const out = new Float32Array(ev.data.length);
  for (let n = 0; n < out.length; n++) out[n] = t[ev.data[n]];
  return out;
}
