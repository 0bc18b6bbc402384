/**
 * NRRD reader: `.nrrd` (header + attached data) and `.nhdr` (header; data in the file named by
 * "data file", relative to the header's folder).
 *
 * Supported: magic NRRD0001..NRRD0005; type (all scalar C type names; 64-bit integers become
 * float64 with a warning); dimension 2 or 3, or 3 / 4 with a leading vector axis (kind vector,
 * 3-vector, covariant-vector, normal, RGB-color, ... or "space directions" entry "none") read as
 * components; sizes; encoding raw, gzip / gz, ascii / text / txt; endian; byte skip (-1 for raw:
 * data at the end of the file) and line skip.
 *
 * Geometry: with a "space" (left-posterior-superior / LPS, right-anterior-superior / RAS,
 * left-anterior-superior / LAS, and their 3-letter forms) or "space dimension: 3", "space
 * directions" gives one vector per spatial axis (direction x spacing, in space coordinates) and
 * "space origin" the position of voxel (0, 0, 0); both are converted to LPS (RAS: x, y negated;
 * LAS: y negated). "space dimension" without a named space is taken as LPS with a warning.
 * Without any space, legacy per-axis "spacings" give an axis-aligned grid at origin 0 (warning).
 * Vector components of a 3-vector axis are converted to LPS like the directions (float data).
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { wrapReadErrors } from '../../errors.ts';
import { allocateVoxels, makeVolume, type Mat3, type Vec3, type Volume, type VoxelArray } from '../volume.ts';
import {
  assertGeometry,
  checkedCount,
  checkSpacing,
  elementsFromBytes,
  fail,
  geometryFromColumns,
  inflateBounded,
  latin1,
  readFileBytes,
  voxelTypeFor,
  ELEMENT_SIZE,
  MAX_DATA_BYTES,
  type ElementType,
} from './bytes.ts';

const TYPE_NAMES: [ElementType, string[]][] = [
  ['int8', ['signed char', 'int8', 'int8_t']],
  ['uint8', ['uchar', 'unsigned char', 'uint8', 'uint8_t']],
  ['int16', ['short', 'short int', 'signed short', 'signed short int', 'int16', 'int16_t']],
  ['uint16', ['ushort', 'unsigned short', 'unsigned short int', 'uint16', 'uint16_t']],
  ['int32', ['int', 'signed int', 'int32', 'int32_t']],
  ['uint32', ['uint', 'unsigned int', 'uint32', 'uint32_t']],
  ['int64', ['longlong', 'long long', 'long long int', 'signed long long', 'signed long long int', 'int64', 'int64_t']],
  ['uint64', ['ulonglong', 'unsigned long long', 'unsigned long long int', 'uint64', 'uint64_t']],
  ['float32', ['float']],
  ['float64', ['double']],
];
const TYPES = new Map(TYPE_NAMES.flatMap(([t, names]) => names.map((n) => [n, t] as [string, ElementType])));

/** Sign of each LPS axis for the named spaces (multiply space coordinates to get LPS). */
const SPACES: Record<string, Vec3> = {
  'left-posterior-superior': [1, 1, 1],
  lps: [1, 1, 1],
  'right-anterior-superior': [-1, -1, 1],
  ras: [-1, -1, 1],
  'left-anterior-superior': [1, -1, 1],
  las: [1, -1, 1],
};
const VECTOR_KINDS = new Set([
  'vector',
  '3-vector',
  'covariant-vector',
  'normal',
  '2-vector',
  '4-vector',
  'list',
  'point',
  'rgb-color',
  'rgba-color',
  'hsv-color',
  'xyz-color',
]);

/** Header fields (lower-case keys) and where the attached data start. */
function parseHeader(file: string, b: Uint8Array): { fields: Map<string, string>; dataStart: number } {
  const first = latin1(b, 0, Math.min(b.length, 16)).split('\n')[0].trim();
  if (!/^NRRD000[1-5]$/.test(first)) fail(file, `not a NRRD file (magic "${first.slice(0, 12)}")`);
  const fields = new Map<string, string>();
  let pos = b.indexOf(0x0a) + 1;
  const limit = Math.min(b.length, 1 << 20);
  while (pos > 0 && pos < limit) {
    let end = b.indexOf(0x0a, pos);
    if (end < 0) end = b.length;
    const line = latin1(b, pos, end).replace(/\r$/, '');
    pos = end + 1;
    if (line === '') return { fields, dataStart: pos };
    if (line.startsWith('#') || line.includes(':=')) continue; // comment / key-value pair
    const colon = line.indexOf(': ');
    if (colon <= 0) fail(file, `malformed NRRD header line "${line.slice(0, 60).replace(/[^\x20-\x7e]/g, '?')}"`);
    fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 2).trim());
  }
  return { fields, dataStart: b.length }; // header without a blank line: detached data only
}

/** "(x,y,z)" vectors (or "none") of a space directions / space origin field. */
function vectors(file: string, text: string, what: string): (Vec3 | null)[] {
  const out: (Vec3 | null)[] = [];
  for (const m of text.matchAll(/\(([^)]*)\)|(none)/gi)) {
    if (m[2]) {
      out.push(null);
      continue;
    }
    const v = m[1].split(',').map((x) => Number(x.trim()));
    if (v.length !== 3 || !v.every(Number.isFinite))
      fail(file, `invalid ${what} "${text.slice(0, 80)}" (3-D vectors expected)`);
    out.push(v as Vec3);
  }
  return out;
}

/** Read a `.nrrd` or `.nhdr` file (see the file comment). Throws VolumeReadError. */
export function readNrrd(path: string): Volume {
  return wrapReadErrors(path, () => {
    const bytes = readFileBytes(path);
    const { fields, dataStart } = parseHeader(path, bytes);
    const warnings: string[] = [];
    const req = (k: string) => fields.get(k) ?? fail(path, `missing required field "${k}"`);
    const type = TYPES.get(req('type').toLowerCase());
    if (!type) return fail(path, `unsupported type "${fields.get('type')}"`);
    const dim = Number(req('dimension'));
    const sizes = req('sizes').split(/\s+/).map(Number);
    if (!Number.isInteger(dim) || dim < 2 || dim > 4 || sizes.length !== dim)
      fail(
        path,
        `dimension ${fields.get('dimension')} with sizes "${fields.get('sizes')}" is not supported (2-D, 3-D, or a vector axis then 3-D)`,
      );
    const kinds = (fields.get('kinds') ?? '').toLowerCase().split(/\s+/).filter(Boolean);
    if (kinds.length && kinds.length !== dim) fail(path, `kinds has ${kinds.length} entries, dimension is ${dim}`);
    const spaceName = fields.get('space')?.toLowerCase();
    const spaceDim = fields.get('space dimension');
    if (spaceName !== undefined && !SPACES[spaceName])
      fail(path, `space "${fields.get('space')}" is not supported (LPS, RAS or LAS)`);
    if (spaceDim !== undefined && spaceDim !== '3') fail(path, `space dimension ${spaceDim} is not supported (3)`);
    const dirText = fields.get('space directions');
    const dirs = dirText !== undefined ? vectors(path, dirText, 'space directions') : null;
    if (dirs && dirs.length !== dim) fail(path, `space directions has ${dirs.length} entries, dimension is ${dim}`);
    // a leading non-spatial axis holds the components
    const vectorAxis =
      dim === 4 || (kinds.length > 0 && VECTOR_KINDS.has(kinds[0])) || (dirs !== null && dirs[0] === null);
    const components = vectorAxis ? sizes[0] : 1;
    const spatial = vectorAxis ? sizes.slice(1) : sizes;
    if (spatial.length < 2 || spatial.length > 3) fail(path, `${spatial.length} spatial axes are not supported`);
    const size: Vec3 = [spatial[0], spatial[1], spatial[2] ?? 1];
    const count = checkedCount(path, [components, ...spatial], 'sizes');
    if (components > 16) fail(path, `${components} components per voxel are not supported`);
    const dataBytes = count * ELEMENT_SIZE[type];
    if (dataBytes > MAX_DATA_BYTES) fail(path, `image of ${count} ${type} values is too large`);

    // geometry
    let signs: Vec3 = [1, 1, 1];
    let columns: Mat3;
    let origin: Vec3 = [0, 0, 0];
    if (spaceName !== undefined || spaceDim !== undefined) {
      if (spaceName === undefined)
        warnings.push('NRRD space dimension without a named space: coordinates taken as LPS');
      else signs = SPACES[spaceName];
      const sd = (dirs ?? fail(path, 'missing "space directions"')).slice(vectorAxis ? 1 : 0);
      if (sd.some((d) => d === null)) fail(path, 'space directions: "none" for a spatial axis');
      const cols = sd as Vec3[];
      if (cols.length === 2) cols.push([0, 0, 1]);
      columns = [0, 1, 2].flatMap((r) => cols.map((c) => c[r] * signs[r])) as Mat3;
      const ot = fields.get('space origin');
      if (ot !== undefined) {
        const o = vectors(path, ot, 'space origin');
        if (o.length !== 1 || !o[0]) fail(path, `invalid space origin "${ot.slice(0, 80)}"`);
        origin = [o[0][0] * signs[0], o[0][1] * signs[1], o[0][2] * signs[2]];
      } else warnings.push('NRRD without space origin: origin 0');
    } else {
      const st = fields.get('spacings');
      const sp = (st ?? '1 1 1 1')
        .split(/\s+/)
        .map(Number)
        .slice(vectorAxis ? 1 : 0);
      const spacing = [sp[0], sp[1], spatial.length === 3 ? sp[2] : 1];
      checkSpacing(path, spacing, 'spacings');
      warnings.push(
        st === undefined
          ? 'NRRD without space or spacings: unit spacing, identity orientation'
          : 'NRRD without space: axis-aligned grid from spacings, origin 0',
      );
      columns = [spacing[0], 0, 0, 0, spacing[1], 0, 0, 0, spacing[2]];
    }
    const geom = geometryFromColumns(path, columns, origin, warnings, 'space directions');

    // data
    const enc = req('encoding').toLowerCase();
    const endian = fields.get('endian')?.toLowerCase();
    if (
      ELEMENT_SIZE[type] > 1 &&
      enc !== 'ascii' &&
      enc !== 'text' &&
      enc !== 'txt' &&
      endian !== 'little' &&
      endian !== 'big'
    )
      fail(path, `missing or invalid endian "${endian ?? ''}"`);
    const dataFile = fields.get('data file') ?? fields.get('datafile');
    let src: Uint8Array = bytes;
    let srcName = path;
    let start = dataStart;
    if (dataFile !== undefined) {
      if (/^LIST\b/i.test(dataFile) || /%/.test(dataFile) || /\s/.test(dataFile.trim()))
        fail(path, `data file "${dataFile.slice(0, 80)}" is not supported (one file name)`);
      srcName = isAbsolute(dataFile) ? dataFile : resolve(dirname(path), dataFile);
      src = readFileBytes(srcName);
      start = 0;
    } else if (dataStart >= bytes.length && !fields.has('data file'))
      fail(path, 'no data: header without a blank line and no "data file"');
    const lineSkip = Number(fields.get('line skip') ?? '0');
    if (!Number.isInteger(lineSkip) || lineSkip < 0) fail(path, `invalid line skip ${fields.get('line skip')}`);
    for (let i = 0; i < lineSkip; i++) {
      const nl = src.indexOf(0x0a, start);
      if (nl < 0) fail(srcName, 'truncated: line skip past the end of the data file');
      start = nl + 1;
    }
    const byteSkip = Number(fields.get('byte skip') ?? '0');
    if (!Number.isInteger(byteSkip) || byteSkip < -1) fail(path, `invalid byte skip ${fields.get('byte skip')}`);
    let data: VoxelArray;
    const conv = voxelTypeFor(type);
    if (conv.warning) warnings.push(conv.warning);
    if (enc === 'raw') {
      start = byteSkip === -1 ? src.length - dataBytes : start + byteSkip;
      if (start < 0 || start + dataBytes > src.length)
        fail(
          srcName,
          `truncated data: ${Math.max(0, src.length - Math.max(start, 0))} bytes, sizes ${sizes.join('x')} ${type} needs ${dataBytes}`,
        );
      data = elementsFromBytes(srcName, src, start, count, type, endian !== 'big');
    } else if (enc === 'gzip' || enc === 'gz') {
      if (byteSkip === -1) fail(path, 'byte skip -1 is only allowed with raw encoding');
      const raw = inflateBounded(
        srcName,
        'gzip data',
        src.subarray(Math.min(src.length, start + byteSkip)),
        dataBytes,
        'auto',
        1 << 20,
      );
      data = elementsFromBytes(srcName, raw, 0, count, type, endian !== 'big');
    } else if (enc === 'ascii' || enc === 'text' || enc === 'txt') {
      const tokens = latin1(src, Math.min(src.length, start + Math.max(0, byteSkip)))
        .split(/[\s,]+/)
        .filter(Boolean);
      if (tokens.length < count) fail(srcName, `truncated ascii data: ${tokens.length} values, sizes need ${count}`);
      data = allocateVoxels(conv.type, count);
      for (let i = 0; i < count; i++) {
        const x = Number(tokens[i]);
        if (Number.isNaN(x) && !/^nan$/i.test(tokens[i]))
          fail(srcName, `invalid number "${tokens[i].slice(0, 20)}" in ascii data`);
        data[i] = x;
      }
    } else return fail(path, `encoding "${enc}" is not supported (raw, gzip, ascii)`);

    if (components === 3 && (signs[0] < 0 || signs[1] < 0)) {
      if (data instanceof Float32Array || data instanceof Float64Array)
        for (let i = 0; i < data.length; i += 3) for (let a = 0; a < 2; a++) data[i + a] *= signs[a];
      else warnings.push('integer 3-vectors left in the file space (not converted to LPS)');
    }
    assertGeometry(path, { size, ...geom });
    return makeVolume({ size, ...geom, components, data, meta: { source: path, warnings } });
  });
}
