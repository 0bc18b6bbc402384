/**
 * The SAM weights file: one file holds a network's configuration and all its weights.
 *
 * Layout (all integers little-endian):
 *   offset 0   4 bytes   magic "SAMW"
 *   offset 4   uint32    format version (1)
 *   offset 8   uint32    header length N in bytes
 *   offset 12  N bytes   header, UTF-8 JSON:
 *                          { "config": SamConfig,
 *                            "tensors": [{ "name", "shape": number[], "dtype": "float32", "offset" }],
 *                            "dataBytes": total data length, "dataCrc32": CRC-32 of the data section,
 *                            "meta": free-form object (training provenance...) }
 *   then zero padding to the next multiple of 8 bytes: the data section starts there (D0);
 *   each tensor is prod(shape) float32 values, little-endian, row-major in its tfjs shape
 *   (conv kernels [kz, ky, kx, cin, cout]), at D0 + offset (offsets are multiples of 4, in the
 *   canonical order of weightSpecs); the file ends exactly at D0 + dataBytes.
 * Writes are atomic (temporary file, then rename). Reading checks everything and reports a
 * VolumeReadError "<file>: <problem>".
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { InputError, VolumeReadError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { validateSamConfig, type SamConfig } from './config.ts';
import { checkWeights, weightSpecs, type SamWeights } from './network.ts';

export const WEIGHTS_MAGIC = 'SAMW';
export const WEIGHTS_VERSION = 1;

export interface WeightsHeader {
  config: SamConfig;
  tensors: { name: string; shape: number[]; dtype: 'float32'; offset: number }[];
  dataBytes: number;
  dataCrc32: number;
  meta: Record<string, unknown>;
}

export interface DecodedWeights {
  config: SamConfig;
  /** Values by weight name, in canonical order. */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  meta: Record<string, unknown>;
}

const LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Encode configuration and weight values into the file's bytes (chunks, to avoid one big copy). */
export function encodeWeights(
  config: SamConfig,
  values: Map<string, Float32Array> | Record<string, Float32Array>,
  meta: Record<string, unknown> = {},
): Uint8Array[] {
  validateSamConfig(config);
  const get = (n: string) => (values instanceof Map ? values.get(n) : values[n]);
  const tensors: WeightsHeader['tensors'] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  let crc = 0;
  for (const s of weightSpecs(config)) {
    const v = get(s.name);
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (!v) throw new InputError('SAM weights', `missing weight '${s.name}'`);
    if (v.length !== n) throw new InputError('SAM weights', `weight '${s.name}' has ${v.length} values, expected ${n}`);
    const bytes = float32Bytes(v);
    crc = crc32(bytes, crc);
    chunks.push(bytes);
    tensors.push({ name: s.name, shape: s.shape, dtype: 'float32', offset });
    offset += bytes.byteLength;
  }
  const header: WeightsHeader = { config, tensors, dataBytes: offset, dataCrc32: crc, meta };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const pre = new Uint8Array(align8(12 + json.byteLength));
  pre.set(new TextEncoder().encode(WEIGHTS_MAGIC), 0);
  const dv = new DataView(pre.buffer);
  dv.setUint32(4, WEIGHTS_VERSION, true);
  dv.setUint32(8, json.byteLength, true);
  pre.set(json, 12);
  return [pre, ...chunks];
}

/** Decode and check a weights file's bytes; `file` names it in errors. */
export function decodeWeights(bytes: Uint8Array, file: string): DecodedWeights {
  const fail = (problem: string): never => {
    throw new VolumeReadError(file, problem);
  };
  if (bytes.byteLength < 12) fail(`truncated SAM weights file (${bytes.byteLength} bytes, no header)`);
  const magic = new TextDecoder().decode(bytes.subarray(0, 4));
  if (magic === 'SAMD')
    fail('a SAM-deform network (sam train-reg), not a SAM embedding model: it goes to --deform-net of sam register');
  if (/\.onnx$/i.test(file))
    fail(`an ONNX export: the embedding model is the .samw file it was exported from (sam export-onnx)`);
  if (magic !== WEIGHTS_MAGIC) fail(`not a SAM weights file (magic is not '${WEIGHTS_MAGIC}')`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(4, true);
  if (version !== WEIGHTS_VERSION)
    fail(`unsupported SAM weights format version ${version} (this build reads ${WEIGHTS_VERSION})`);
  const n = dv.getUint32(8, true);
  if (12 + n > bytes.byteLength) fail(`truncated SAM weights file (header of ${n} bytes, file of ${bytes.byteLength})`);
  let h: WeightsHeader;
  try {
    h = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, 12 + n)));
  } catch (e) {
    return fail(`corrupt SAM weights header (${(e as Error).message})`);
  }
  if (
    typeof h !== 'object' ||
    h === null ||
    typeof h.config !== 'object' ||
    !Array.isArray(h.tensors) ||
    !Number.isInteger(h.dataBytes) ||
    !Number.isInteger(h.dataCrc32)
  )
    fail('corrupt SAM weights header (missing config, tensors, dataBytes or dataCrc32)');
  try {
    validateSamConfig(h.config);
  } catch (e) {
    fail(`invalid configuration in SAM weights header: ${(e as Error).message}`);
  }
  const d0 = align8(12 + n);
  if (bytes.byteLength < d0 + h.dataBytes)
    fail(`truncated SAM weights file (${bytes.byteLength} bytes, expected ${d0 + h.dataBytes})`);
  if (bytes.byteLength > d0 + h.dataBytes)
    fail(`${bytes.byteLength - d0 - h.dataBytes} unexpected bytes after the SAM weights data`);
  const data = bytes.subarray(d0, d0 + h.dataBytes);
  if (crc32(data) !== h.dataCrc32 >>> 0) fail('corrupt SAM weights data (CRC-32 mismatch)');
  const specs = weightSpecs(h.config);
  if (h.tensors.length !== specs.length)
    fail(`SAM weights file lists ${h.tensors.length} tensors, configuration '${h.config.name}' has ${specs.length}`);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  let expectedOffset = 0;
  specs.forEach((s, i) => {
    const t = h.tensors[i];
    const same =
      t &&
      t.name === s.name &&
      Array.isArray(t.shape) &&
      t.shape.length === s.shape.length &&
      t.shape.every((v, a) => v === s.shape[a]);
    if (!same)
      fail(`SAM weights tensor ${i} is ${JSON.stringify(t?.name)} [${t?.shape}], expected '${s.name}' [${s.shape}]`);
    if (t.dtype !== 'float32') fail(`SAM weights tensor '${t.name}' has dtype ${t.dtype}, expected float32`);
    const len = s.shape.reduce((a, b) => a * b, 1) * 4;
    if (t.offset !== expectedOffset)
      fail(`SAM weights tensor '${t.name}' at offset ${t.offset}, expected ${expectedOffset}`);
    const values = bytesToFloat32(data.subarray(t.offset, t.offset + len));
    if (!values.every(Number.isFinite)) fail(`SAM weights tensor '${t.name}' holds non-finite values`);
    tensors.set(s.name, { shape: s.shape, data: values });
    expectedOffset += len;
  });
  if (expectedOffset !== h.dataBytes) fail(`SAM weights data is ${h.dataBytes} bytes, tensors need ${expectedOffset}`);
  return { config: h.config, tensors, meta: typeof h.meta === 'object' && h.meta !== null ? h.meta : {} };
}

/** Write weights with their configuration to `path`, atomically. */
export async function saveWeights(
  path: string,
  config: SamConfig,
  weights: SamWeights,
  meta: Record<string, unknown> = {},
): Promise<void> {
  checkWeights(config, weights);
  const values = new Map<string, Float32Array>();
  for (const s of weightSpecs(config)) values.set(s.name, (await weights[s.name].data()) as Float32Array);
  writeFileAtomic(path, encodeWeights(config, values, meta));
}

/** Read a weights file into tensors (on the active backend) with its configuration. */
export function loadWeights(path: string): { config: SamConfig; weights: SamWeights; meta: Record<string, unknown> } {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    // a training run's folder: its model is the file model.samw inside
    if ((e as NodeJS.ErrnoException).code === 'EISDIR')
      throw new VolumeReadError(
        path,
        existsSync(join(path, 'model.samw'))
          ? `is a folder, not a weights file: a sam train run? its model is ${join(path, 'model.samw')}`
          : 'is a folder, not a weights file (.samw)',
        { cause: e },
      );
    throw new VolumeReadError(path, `cannot read SAM weights file (${(e as Error).message})`, { cause: e });
  }
  const d = decodeWeights(bytes, path);
  const weights: SamWeights = {};
  for (const [name, t] of d.tensors) weights[name] = tf.tensor(t.data, t.shape, 'float32');
  return { config: d.config, weights, meta: d.meta };
}

/**
 * Refuses a checkpoint's optimiser state (opt-m.samw, opt-v.samw: the same layout as the weights,
 * momentum values in place of weights) where a model is expected.
 */
export function checkIsModel(meta: Record<string, unknown>, path: string): void {
  const kind = typeof meta.kind === 'string' ? meta.kind : '';
  if (kind.startsWith('optimizer'))
    throw new VolumeReadError(
      path,
      `optimiser state of a training checkpoint (${kind}), not a model: use the weights.samw beside it or the run's model.samw`,
    );
}

/** A model's weights file (loadWeights, refusing a checkpoint's optimiser state). */
export function loadModel(path: string): ReturnType<typeof loadWeights> {
  const m = loadWeights(path);
  try {
    checkIsModel(m.meta, path);
  } catch (e) {
    for (const t of Object.values(m.weights)) t.dispose();
    throw e;
  }
  return m;
}

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

function float32Bytes(v: Float32Array): Uint8Array {
  if (LE) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  const out = new Uint8Array(v.length * 4);
  const dv = new DataView(out.buffer);
  v.forEach((x, i) => dv.setFloat32(i * 4, x, true));
  return out;
}

function bytesToFloat32(b: Uint8Array): Float32Array {
  const out = new Float32Array(b.byteLength / 4);
  if (LE) new Uint8Array(out.buffer).set(b);
  else {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
  }
  return out;
}

let CRC_TABLE: Uint32Array | undefined;

/** CRC-32 (IEEE, as zlib), continuing from `crc`. */
export function crc32(b: Uint8Array, crc = 0): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  let c = ~crc >>> 0;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
