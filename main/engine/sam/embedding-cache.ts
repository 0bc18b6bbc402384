/**
 * On-disk cache of whole-volume embeddings (embed-volume.ts), keyed by what determines them: the
 * input (sha256 of the file bytes, or of a volume's data and geometry), the model (sha256 of the
 * weights file bytes, or of the configuration and seed of a random initialisation) and the embedding
 * options (grid spacing, storage). Tiling is not part of the key: tiled equals untiled.
 *
 * Folder: `dir` option, else $SAM_CACHE_DIR, else ~/.cache/sam-workstation. One file per entry,
 * `<key>.samemb`, written atomically (util/atomic-write.ts):
 *   8 bytes magic "SAMEMB01", uint32 LE header length N, N bytes UTF-8 JSON header
 *   { key, global: Entry, local: Entry } with Entry = { size, spacing, origin, direction, components,
 *   stride, storage, byteLength, crc32 }, zero padding to a multiple of 8, then the global data and
 *   the local data (little-endian float32 or float16 bits), each starting on a multiple of 8.
 * A missing, truncated or corrupt entry (bad magic, header, lengths or CRC) reads as a miss and is
 * deleted; the next embedding replaces it.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative } from 'node:path';
import { crc32 } from 'node:zlib';
import type { EmbeddingEngine } from '../compute/embedding-engine.ts';
import { writeFileAtomic, bytesOf } from '../util/atomic-write.ts';
import { makeVolume, type Volume } from '../volume/volume.ts';
import type { SamConfig } from './config.ts';
import { embedVolume, type EmbedOptions, type EmbeddedVolume, type EmbeddingVolume } from './embed-volume.ts';

const MAGIC = 'SAMEMB01';
/** Bump when the embedding pipeline changes what it computes (grid convention, normalisation...). */
export const EMBEDDING_FORMAT_VERSION = 1;

export function defaultCacheDir(): string {
  return process.env.SAM_CACHE_DIR || join(homedir(), '.cache', 'sam-workstation');
}

const sha256 = () => createHash('sha256');

/** sha256 (hex) of a file's bytes, or of a folder's (or a list of files') relative names and bytes. */
export function hashInputFiles(input: string | string[]): string {
  const h = sha256();
  const files: [string, string][] = [];
  const walk = (p: string, root: string) => {
    if (statSync(p).isDirectory()) for (const n of readdirSync(p).sort()) walk(join(p, n), root);
    else files.push([relative(root, p) || '.', p]);
  };
  for (const p of Array.isArray(input) ? [...input].sort() : [input]) walk(p, p);
  for (const [name, path] of files) {
    const b = readFileSync(path);
    h.update(`${name}\0${b.length}\0`);
    h.update(b);
  }
  return h.digest('hex');
}

/** sha256 (hex) of a volume's geometry, voxel type and data. */
export function hashVolume(v: Volume): string {
  const h = sha256();
  const g = { size: v.size, spacing: v.spacing, origin: v.origin, direction: v.direction, components: v.components };
  h.update(JSON.stringify({ ...g, type: v.data.constructor.name }));
  h.update(bytesOf(v.data));
  return h.digest('hex');
}

/** sha256 (hex) of a model: its weights file bytes, or its configuration and init seed (random init). */
export function hashModel(model: { weightsFile: string } | { config: SamConfig; seed: number }): string {
  const h = sha256();
  if ('weightsFile' in model) h.update(readFileSync(model.weightsFile));
  else h.update(`random-init\0${model.seed}\0${JSON.stringify(model.config)}`);
  return h.digest('hex');
}

/** The cache key of an embedding. */
export function embeddingKey(inputHash: string, modelHash: string, options: EmbedOptions = {}): string {
  const o = { v: EMBEDDING_FORMAT_VERSION, spacingMm: options.spacingMm ?? 2, fp16: options.fp16 ?? false };
  return sha256()
    .update(`${inputHash}\0${modelHash}\0${JSON.stringify(o)}`)
    .digest('hex');
}

interface Entry {
  size: number[];
  spacing: number[];
  origin: number[];
  direction: number[];
  components: number;
  stride: number[];
  storage: 'float32' | 'float16';
  byteLength: number;
  crc32: number;
}

const align8 = (n: number) => Math.ceil(n / 8) * 8;

export function cachePath(key: string, dir = defaultCacheDir()): string {
  return join(dir, `${key}.samemb`);
}

/** Store an embedding under `key`; returns the file path. */
export function writeCachedEmbedding(key: string, e: EmbeddedVolume, dir = defaultCacheDir()): string {
  const entry = (v: EmbeddingVolume): Entry => ({
    size: v.size,
    spacing: v.spacing,
    origin: v.origin,
    direction: v.direction,
    components: v.components,
    stride: v.stride,
    storage: v.storage,
    byteLength: v.data.byteLength,
    crc32: crc32(bytesOf(v.data)),
  });
  const header = new TextEncoder().encode(JSON.stringify({ key, global: entry(e.global), local: entry(e.local) }));
  const head = new Uint8Array(align8(12 + header.length));
  head.set(new TextEncoder().encode(MAGIC));
  new DataView(head.buffer).setUint32(8, header.length, true);
  head.set(header, 12);
  const pad = (n: number) => new Uint8Array(align8(n) - n);
  const g = bytesOf(e.global.data);
  const path = cachePath(key, dir);
  writeFileAtomic(path, [head, g, pad(g.length), bytesOf(e.local.data)]);
  return path;
}

/** The embedding stored under `key`, or null (missing or corrupt: a corrupt file is deleted). */
export function readCachedEmbedding(key: string, dir = defaultCacheDir()): EmbeddedVolume | null {
  const path = cachePath(key, dir);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return null;
  }
  const r = decode(bytes, key);
  if (!r) rmSync(path, { force: true });
  return r;
}

function decode(bytes: Uint8Array, key: string): EmbeddedVolume | null {
  try {
    if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) return null;
    const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
    if (12 + n > bytes.length) return null;
    const h = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + n))) as {
      key: string;
      global: Entry;
      local: Entry;
    };
    if (h.key !== key) return null;
    const g0 = align8(12 + n);
    const l0 = g0 + align8(h.global.byteLength);
    if (l0 + h.local.byteLength !== bytes.length) return null;
    const global = volumeOf(h.global, bytes.subarray(g0, g0 + h.global.byteLength));
    const local = volumeOf(h.local, bytes.subarray(l0, l0 + h.local.byteLength));
    return global && local ? { global, local } : null;
  } catch {
    return null;
  }
}

function volumeOf(e: Entry, b: Uint8Array): EmbeddingVolume | null {
  if (crc32(b) !== e.crc32 >>> 0) return null;
  // on shared memory, as embedVolume's (the match threads read it without a copy)
  const copy = new Uint8Array(new SharedArrayBuffer(b.length));
  copy.set(b);
  const data = e.storage === 'float16' ? new Uint16Array(copy.buffer) : new Float32Array(copy.buffer);
  const v = makeVolume({
    size: e.size as EmbeddingVolume['size'],
    spacing: e.spacing as EmbeddingVolume['spacing'],
    origin: e.origin as EmbeddingVolume['origin'],
    direction: e.direction as EmbeddingVolume['direction'],
    components: e.components,
    data,
  });
  return { ...v, storage: e.storage, stride: e.stride as EmbeddingVolume['stride'] };
}

export interface CachedEmbedOptions extends EmbedOptions {
  /** Hash of the input (hashInputFiles or hashVolume; default hashVolume of the volume). */
  inputHash?: string;
  /** Hash of the model (hashModel). */
  modelHash: string;
  cacheDir?: string;
  /** Skip reading (still writes). */
  refresh?: boolean;
}

/** embedVolume through the cache: a hit is read from disk, a miss is computed and stored. */
export async function embedVolumeCached(
  volume: Volume,
  engine: EmbeddingEngine,
  options: CachedEmbedOptions,
): Promise<EmbeddedVolume & { cached: boolean; key: string }> {
  const dir = options.cacheDir ?? defaultCacheDir();
  const key = embeddingKey(options.inputHash ?? hashVolume(volume), options.modelHash, options);
  const hit = options.refresh ? null : readCachedEmbedding(key, dir);
  if (hit) return { ...hit, cached: true, key };
  const e = await embedVolume(volume, engine, options);
  writeCachedEmbedding(key, e, dir);
  return { ...e, cached: false, key };
}
