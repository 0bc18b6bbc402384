/**
 * MetaImage reader and writer: `.mha` (header and data in one file, ElementDataFile = LOCAL) and
 * `.mhd` (header) + a separate data file named by ElementDataFile, relative to the header's
 * folder (`.raw`, or `.zraw` when compressed).
 *
 * Conventions (those of ITK's MetaImageIO):
 * - MetaImage world is LPS mm already: Offset (synonyms Origin, Position) is the world position
 *   of voxel (0, 0, 0), ElementSpacing the voxel size.
 * - TransformMatrix (synonyms Rotation, Orientation) holds NDims x NDims numbers whose
 *   consecutive groups of NDims are the direction COLUMNS (ITK: SetDirection(ii, values
 *   ii*N .. ii*N+N-1) sets the world direction of index axis ii). Our direction is row-major
 *   with axes as columns, so the numbers are transposed when read and written.
 * - AnatomicalOrientation is ignored (it is informative and often stale, e.g. "RAI" beside any
 *   TransformMatrix); the matrix is authoritative, as in ITK.
 * - NDims 2 gives a one-slice volume (nk = 1); NDims 3 the usual volume.
 * - ElementNumberOfChannels > 1: interleaved components, as in the Volume.
 * - CompressedData = True: zlib (gzip also accepted); CompressedDataSize bounds the stream when
 *   present. HeaderSize skips bytes before the data; HeaderSize = -1 means the data are the last
 *   bytes of the data file (uncompressed only). BinaryDataByteOrderMSB (or ElementByteOrderMSB)
 *   = True means big-endian data.
 * - Refused clearly: BinaryData = False (ASCII data), ElementDataFile = LIST or file patterns,
 *   ObjectType other than Image, NDims other than 2 / 3, array element types.
 *
 * The writer writes ITK's key order with every number in shortest round-trip form, so voxels
 * and geometry round-trip bit-exactly, and write -> read -> write gives identical bytes.
 */
import { deflateSync } from 'node:zlib';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { VolumeWriteError, wrapReadErrors } from '../../errors.ts';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import { geometryProblem } from '../geometry.ts';
import { makeVolume, voxelTypeOf, type Mat3, type Vec3, type Volume, type VoxelType } from '../volume.ts';
import {
  assertGeometry,
  checkedCount,
  checkedDirection,
  checkOrigin,
  checkSpacing,
  elementsFromBytes,
  fail,
  formatNumber,
  inflateBounded,
  latin1,
  littleEndianBytes,
  parseNumbers,
  readFileBytes,
  voxelTypeFor,
  ELEMENT_SIZE,
  MAX_DATA_BYTES,
  type ElementType,
} from './bytes.ts';

const TYPES: Record<string, ElementType> = {
  MET_CHAR: 'int8',
  MET_UCHAR: 'uint8',
  MET_SHORT: 'int16',
  MET_USHORT: 'uint16',
  MET_INT: 'int32',
  MET_UINT: 'uint32',
  MET_LONG: 'int32',
  MET_ULONG: 'uint32',
  MET_LONG_LONG: 'int64',
  MET_ULONG_LONG: 'uint64',
  MET_FLOAT: 'float32',
  MET_DOUBLE: 'float64',
};
const MET_OF: Record<VoxelType, string> = {
  int8: 'MET_CHAR',
  uint8: 'MET_UCHAR',
  int16: 'MET_SHORT',
  uint16: 'MET_USHORT',
  int32: 'MET_INT',
  uint32: 'MET_UINT',
  float32: 'MET_FLOAT',
  float64: 'MET_DOUBLE',
};

/** Header fields by lower-case key, and the byte offset just after the ElementDataFile line. */
function parseHeader(file: string, b: Uint8Array): { fields: Map<string, string>; dataStart: number } {
  const fields = new Map<string, string>();
  let pos = 0;
  const limit = Math.min(b.length, 1 << 20);
  while (pos < limit) {
    let end = b.indexOf(0x0a, pos);
    if (end < 0 || end > limit) end = Math.min(b.length, limit);
    const line = latin1(b, pos, end).replace(/\r$/, '');
    pos = end + 1;
    if (line.trim() === '') continue;
    const eq = line.indexOf('=');
    const key = eq > 0 ? line.slice(0, eq).trim() : '';
    if (!/^[A-Za-z_][\w]*$/.test(key))
      fail(
        file,
        fields.size === 0
          ? 'not a MetaImage file (no "Key = Value" header)'
          : `header without ElementDataFile (malformed line "${line.slice(0, 40).replace(/[^\x20-\x7e]/g, '?')}")`,
      );
    fields.set(key.toLowerCase(), line.slice(eq + 1).trim());
    if (key.toLowerCase() === 'elementdatafile') return { fields, dataStart: Math.min(pos, b.length) };
  }
  return fail(file, 'MetaImage header without ElementDataFile (truncated or not a MetaImage)');
}

function get(fields: Map<string, string>, ...keys: string[]): string | undefined {
  for (const k of keys) {
    const v = fields.get(k.toLowerCase());
    if (v !== undefined) return v;
  }
  return undefined;
}

function bool(file: string, fields: Map<string, string>, key: string, ...alt: string[]): boolean {
  const v = get(fields, key, ...alt);
  if (v === undefined) return false;
  if (/^(true|1)$/i.test(v)) return true;
  if (/^(false|0)$/i.test(v)) return false;
  return fail(file, `invalid ${key} "${v}" (True or False)`);
}

function numbers(
  file: string,
  fields: Map<string, string>,
  count: number,
  keys: string[],
  fallback: number[],
): number[] {
  const v = get(fields, ...keys);
  if (v === undefined) return fallback;
  const n = parseNumbers(v, count);
  if (!n) fail(file, `invalid ${keys[0]} "${v.slice(0, 80)}" (expected ${count} numbers)`);
  return n;
}

/** Read a `.mha` or `.mhd` file (see the file comment for conventions). Throws VolumeReadError. */
export function readMetaImage(path: string): Volume {
  return wrapReadErrors(path, () => {
    const bytes = readFileBytes(path);
    const { fields, dataStart } = parseHeader(path, bytes);
    const warnings: string[] = [];
    const objectType = get(fields, 'ObjectType');
    if (objectType !== undefined && objectType.toLowerCase() !== 'image')
      fail(path, `ObjectType ${objectType} is not an Image`);
    const ndimText = get(fields, 'NDims');
    if (ndimText === undefined) fail(path, 'missing NDims');
    const nd = Number(ndimText);
    if (nd !== 2 && nd !== 3) fail(path, `NDims ${ndimText} is not supported (2 or 3)`);
    const dimText = get(fields, 'DimSize');
    if (dimText === undefined) fail(path, 'missing DimSize');
    const dims = parseNumbers(dimText, nd);
    if (!dims) fail(path, `invalid DimSize "${dimText.slice(0, 80)}" (expected ${nd} numbers)`);
    const ncText = get(fields, 'ElementNumberOfChannels') ?? '1';
    const components = Number(ncText);
    if (!Number.isInteger(components) || components < 1 || components > 16)
      fail(path, `invalid ElementNumberOfChannels ${ncText}`);
    const size: Vec3 = [dims[0], dims[1], nd === 3 ? dims[2] : 1];
    const count = checkedCount(path, [...size, components], 'DimSize');
    const typeText = get(fields, 'ElementType');
    if (typeText === undefined) fail(path, 'missing ElementType');
    const type = TYPES[typeText.toUpperCase()];
    if (!type) fail(path, `unsupported ElementType ${typeText}`);
    const dataBytes = count * ELEMENT_SIZE[type];
    if (dataBytes > MAX_DATA_BYTES) fail(path, `image of ${count} ${type} values is too large`);

    // geometry (2-D values are embedded in 3-D: k axis = +z, spacing 1, origin z 0)
    const spacing2 = numbers(path, fields, nd, ['ElementSpacing', 'ElementSize'], Array(nd).fill(1));
    const origin2 = numbers(path, fields, nd, ['Offset', 'Origin', 'Position'], Array(nd).fill(0));
    const ident = nd === 3 ? [1, 0, 0, 0, 1, 0, 0, 0, 1] : [1, 0, 0, 1];
    const tm = numbers(path, fields, nd * nd, ['TransformMatrix', 'Rotation', 'Orientation'], ident);
    const spacing: Vec3 = [spacing2[0], spacing2[1], nd === 3 ? spacing2[2] : 1];
    const origin: Vec3 = [origin2[0], origin2[1], nd === 3 ? origin2[2] : 0];
    checkSpacing(path, spacing, 'ElementSpacing');
    checkOrigin(path, origin);
    // consecutive groups of nd numbers are columns: transpose into our row-major matrix
    const t = (c: number, r: number) => tm[c * nd + r];
    const d: Mat3 =
      nd === 3
        ? [t(0, 0), t(1, 0), t(2, 0), t(0, 1), t(1, 1), t(2, 1), t(0, 2), t(1, 2), t(2, 2)]
        : [t(0, 0), t(1, 0), 0, t(0, 1), t(1, 1), 0, 0, 0, 1];
    const direction = checkedDirection(path, d, warnings, 'TransformMatrix');

    if (get(fields, 'BinaryData') !== undefined && !bool(path, fields, 'BinaryData'))
      fail(path, 'ASCII MetaImage data (BinaryData = False) is not supported');
    const msb = bool(path, fields, 'BinaryDataByteOrderMSB', 'ElementByteOrderMSB');
    const compressed = bool(path, fields, 'CompressedData');
    const dataFile = get(fields, 'ElementDataFile') ?? '';
    let src: Uint8Array = bytes;
    let start = dataStart;
    let srcName = path;
    if (dataFile.toUpperCase() !== 'LOCAL') {
      if (dataFile === '' || /^LIST\b/i.test(dataFile) || dataFile.includes('%') || /\s\d+\s+\d+/.test(dataFile))
        fail(path, `ElementDataFile "${dataFile.slice(0, 80)}" is not supported (LOCAL or one file name)`);
      srcName = isAbsolute(dataFile) ? dataFile : resolve(dirname(path), dataFile);
      src = readFileBytes(srcName);
      start = 0;
    }
    const hsText = get(fields, 'HeaderSize');
    if (hsText !== undefined) {
      const hs = Number(hsText);
      if (!Number.isInteger(hs) || hs < -1) fail(path, `invalid HeaderSize ${hsText}`);
      if (hs === -1) {
        if (compressed) fail(path, 'HeaderSize = -1 with compressed data is not supported');
        start = src.length - dataBytes;
        if (start < 0) fail(srcName, `truncated data: ${src.length} bytes, the header describes ${dataBytes}`);
      } else start += hs;
    }
    if (start > src.length) fail(srcName, `truncated: data should start at byte ${start}, the file has ${src.length}`);
    let raw: Uint8Array = src.subarray(start);
    if (compressed) {
      const csText = get(fields, 'CompressedDataSize');
      if (csText !== undefined) {
        const cs = Number(csText);
        if (!Number.isInteger(cs) || cs < 1) fail(path, `invalid CompressedDataSize ${csText}`);
        if (cs > raw.length)
          fail(srcName, `truncated: CompressedDataSize ${cs}, only ${raw.length} bytes follow the header`);
        raw = raw.subarray(0, cs);
      }
      raw = inflateBounded(srcName, 'compressed data', raw, dataBytes, 'auto');
    } else if (raw.length < dataBytes)
      fail(
        srcName,
        `truncated data: ${raw.length} bytes, DimSize ${dims.join('x')}${components > 1 ? ` x ${components}` : ''} ${typeText} needs ${dataBytes}`,
      );
    const conv = voxelTypeFor(type);
    if (conv.warning) warnings.push(conv.warning);
    const data = elementsFromBytes(srcName, raw, 0, count, type, !msb);
    assertGeometry(path, { size, spacing, origin, direction });
    return makeVolume({ size, spacing, origin, direction, components, data, meta: { source: path, warnings } });
  });
}

export interface MetaImageWriteOptions {
  /** Paths that must never be overwritten (the inputs). */
  protect?: string[];
  /** zlib-compress the voxels: default true for .mha, false for .mhd. */
  compress?: boolean;
}

/** Header text and data bytes of a volume; `dataFile` is 'LOCAL' or the data file's name. */
export function encodeMetaImage(
  vol: Volume,
  compress: boolean,
  dataFile: string,
): { header: string; data: Uint8Array } {
  const problem = geometryProblem(vol);
  if (problem) throw new Error(problem);
  const type = voxelTypeOf(vol.data);
  const raw = littleEndianBytes(vol.data);
  const data = compress ? deflateSync(raw) : raw;
  const d = vol.direction;
  const nums = (a: number[]) => a.map(formatNumber).join(' ');
  const lines = [
    'ObjectType = Image',
    'NDims = 3',
    'BinaryData = True',
    'BinaryDataByteOrderMSB = False',
    `CompressedData = ${compress ? 'True' : 'False'}`,
    ...(compress ? [`CompressedDataSize = ${data.length}`] : []),
    // columns of the direction, one after the other (see the file comment)
    `TransformMatrix = ${nums([d[0], d[3], d[6], d[1], d[4], d[7], d[2], d[5], d[8]])}`,
    `Offset = ${nums(vol.origin)}`,
    'CenterOfRotation = 0 0 0',
    `ElementSpacing = ${nums(vol.spacing)}`,
    `DimSize = ${vol.size.join(' ')}`,
    ...(vol.components > 1 ? [`ElementNumberOfChannels = ${vol.components}`] : []),
    `ElementType = ${MET_OF[type]}`,
    `ElementDataFile = ${dataFile}`,
  ];
  return { header: lines.join('\n') + '\n', data };
}

/**
 * Write `.mha` (LOCAL data) or `.mhd` + `.raw` / `.zraw` (data file beside the header, written
 * first), atomically. Throws VolumeWriteError.
 */
export function writeMetaImage(path: string, vol: Volume, options: MetaImageWriteOptions = {}): void {
  const lower = path.toLowerCase();
  const mha = lower.endsWith('.mha');
  if (!mha && !lower.endsWith('.mhd'))
    throw new VolumeWriteError(path, 'a MetaImage file name must end in .mha or .mhd');
  const compress = options.compress ?? mha;
  const dataName = mha ? 'LOCAL' : basename(path).replace(/\.mhd$/i, compress ? '.zraw' : '.raw');
  let enc: { header: string; data: Uint8Array };
  try {
    enc = encodeMetaImage(vol, compress, dataName);
  } catch (e) {
    throw new VolumeWriteError(path, `cannot encode as MetaImage (${(e as Error).message})`, { cause: e });
  }
  const header = Buffer.from(enc.header, 'latin1');
  if (mha) return writeFileAtomic(path, [header, enc.data], { protect: options.protect });
  writeFileAtomic(join(dirname(path), dataName), enc.data, { protect: options.protect });
  writeFileAtomic(path, header, { protect: options.protect });
}
