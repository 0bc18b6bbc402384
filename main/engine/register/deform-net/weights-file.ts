/**
 * The SAM-deform network file (.samw, as the SAM weights file sam/weights-file.ts, with its own magic):
 * one file holds the network's configuration and all its weights.
 *
 * Layout (all integers little-endian):
 *   offset 0   4 bytes   magic "SAMD"
 *   offset 4   uint32    format version (1)
 *   offset 8   uint32    header length N in bytes
 *   offset 12  N bytes   header, UTF-8 JSON:
 *                          { "config": DeformNetConfig (deform-net/config.ts),
 *                            "tensors": [{ "name", "shape": number[], "dtype": "float32", "offset" }],
 *                            "dataBytes", "dataCrc32": CRC-32 (zlib) of the data section,
 *                            "meta": free-form (training provenance) }
 *   zero padding to a multiple of 8 bytes (D0), then each tensor's float32 values, little-endian,
 *   row-major in its tfjs shape (kernels [3, 3, 3, cin, cout]) at D0 + offset, in the canonical order
 *   of deformWeightSpecs; the file ends at D0 + dataBytes.
 * Writes are atomic (temporary file, then rename); reading checks everything and throws a
 * VolumeReadError "<file>: <problem>".
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { VolumeReadError } from '../../errors.ts';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import { crc32 } from '../../sam/weights-file.ts';
import { validateDeformNetConfig, type DeformNetConfig } from './config.ts';
import { checkDeformWeights, deformWeightSpecs, type DeformNetWeights } from './network.ts';

export const DEFORM_MAGIC = 'SAMD';
export const DEFORM_VERSION = 1;

const align8 = (n: number) => Math.ceil(n / 8) * 8;

export function encodeDeformNet(
  config: DeformNetConfig,
  values: Record<string, Float32Array>,
  meta: Record<string, unknown> = {},
): Uint8Array[] {
  validateDeformNetConfig(config);
  const tensors: { name: string; shape: number[]; dtype: 'float32'; offset: number }[] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  let crc = 0;
  for (const s of deformWeightSpecs(config)) {
    const v = values[s.name];
    const bytes = new Uint8Array(v.length * 4);
    const dv = new DataView(bytes.buffer);
    v.forEach((x, q) => dv.setFloat32(4 * q, x, true));
    crc = crc32(bytes, crc);
    chunks.push(bytes);
    tensors.push({ name: s.name, shape: s.shape, dtype: 'float32', offset });
    offset += bytes.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify({ config, tensors, dataBytes: offset, dataCrc32: crc, meta }));
  const pre = new Uint8Array(align8(12 + json.byteLength));
  pre.set(new TextEncoder().encode(DEFORM_MAGIC), 0);
  const dv = new DataView(pre.buffer);
  dv.setUint32(4, DEFORM_VERSION, true);
  dv.setUint32(8, json.byteLength, true);
  pre.set(json, 12);
  return [pre, ...chunks];
}

export function decodeDeformNet(
  bytes: Uint8Array,
  file: string,
): {
  config: DeformNetConfig;
  values: Map<string, { shape: number[]; data: Float32Array }>;
  meta: Record<string, unknown>;
} {
  const fail = (p: string): never => {
    throw new VolumeReadError(file, p);
  };
  if (bytes.byteLength < 12) fail('truncated deform network file (no header)');
  const magic = new TextDecoder().decode(bytes.subarray(0, 4));
  if (magic === 'SAMW') fail('a SAM embedding model (sam train), not a SAM-deform network: it goes to --weights');
  if (magic !== DEFORM_MAGIC) fail(`not a SAM-deform network file (magic is not '${DEFORM_MAGIC}')`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(4, true);
  if (version !== DEFORM_VERSION) fail(`unsupported deform network format version ${version}`);
  const n = dv.getUint32(8, true);
  if (12 + n > bytes.byteLength) fail('truncated deform network file (header)');
  let h: {
    config: DeformNetConfig;
    tensors: { name: string; shape: number[]; dtype: string; offset: number }[];
    dataBytes: number;
    dataCrc32: number;
    meta: Record<string, unknown>;
  };
  try {
    h = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, 12 + n)));
  } catch (e) {
    return fail(`corrupt deform network header (${(e as Error).message})`);
  }
  if (!h || typeof h.config !== 'object' || !Array.isArray(h.tensors) || !Number.isInteger(h.dataBytes))
    fail('corrupt deform network header (missing config, tensors or dataBytes)');
  try {
    validateDeformNetConfig(h.config);
  } catch (e) {
    fail(`invalid configuration in the deform network header: ${(e as Error).message}`);
  }
  const d0 = align8(12 + n);
  if (bytes.byteLength !== d0 + h.dataBytes)
    fail(`deform network file is ${bytes.byteLength} bytes, its header says ${d0 + h.dataBytes}`);
  const data = bytes.subarray(d0);
  if (crc32(data) !== h.dataCrc32 >>> 0) fail('corrupt deform network data (CRC-32 mismatch)');
  const specs = deformWeightSpecs(h.config);
  if (h.tensors.length !== specs.length)
    fail(`lists ${h.tensors.length} tensors, the configuration has ${specs.length}`);
  const values = new Map<string, { shape: number[]; data: Float32Array }>();
  let expected = 0;
  specs.forEach((s, q) => {
    const t = h.tensors[q];
    if (!t || t.name !== s.name || JSON.stringify(t.shape) !== JSON.stringify(s.shape) || t.dtype !== 'float32')
      fail(`tensor ${q} is ${JSON.stringify(t?.name)} [${t?.shape}], expected '${s.name}' [${s.shape}] float32`);
    if (t.offset !== expected) fail(`tensor '${t.name}' at offset ${t.offset}, expected ${expected}`);
    const len = s.shape.reduce((a, b) => a * b, 1);
    const ddv = new DataView(data.buffer, data.byteOffset + t.offset, len * 4);
    const v = new Float32Array(len);
    for (let k = 0; k < len; k++) v[k] = ddv.getFloat32(4 * k, true);
    if (!v.every(Number.isFinite)) fail(`tensor '${t.name}' holds non-finite values`);
    values.set(s.name, { shape: s.shape, data: v });
    expected += len * 4;
  });
  if (expected !== h.dataBytes) fail(`data is ${h.dataBytes} bytes, the tensors need ${expected}`);
  return { config: h.config, values, meta: typeof h.meta === 'object' && h.meta ? h.meta : {} };
}

export async function saveDeformNet(
  path: string,
  config: DeformNetConfig,
  weights: DeformNetWeights,
  meta: Record<string, unknown> = {},
): Promise<void> {
  checkDeformWeights(config, weights);
  const values: Record<string, Float32Array> = {};
  for (const s of deformWeightSpecs(config)) values[s.name] = (await weights[s.name].data()) as Float32Array;
  writeFileAtomic(path, encodeDeformNet(config, values, meta));
}

export function loadDeformNet(path: string): {
  config: DeformNetConfig;
  weights: DeformNetWeights;
  meta: Record<string, unknown>;
} {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new VolumeReadError(path, `cannot read the deform network file (${(e as Error).message})`, { cause: e });
  }
  const d = decodeDeformNet(bytes, path);
  const weights: DeformNetWeights = {};
  for (const [name, t] of d.values) weights[name] = tf.tensor(t.data, t.shape, 'float32');
  return { config: d.config, weights, meta: d.meta };
}
