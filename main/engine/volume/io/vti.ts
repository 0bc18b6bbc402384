/**
 * VTK XML ImageData (`.vti`) reader, and a small writer (used by the tests and for export).
 *
 * Read: VTKFile type="ImageData", byte_order Little/BigEndian, header_type UInt32/UInt64,
 * compressor "" or vtkZLibDataCompressor; ImageData WholeExtent / Origin / Spacing / Direction;
 * one Piece; the PointData array named by the PointData "Scalars" attribute, else the first.
 * Array formats: "ascii", "binary" (inline base64) and "appended" (AppendedData encoding "raw"
 * or "base64"). Binary data = a header (byte count, or for zlib: nblocks, blocksize,
 * lastblocksize, compressed block sizes) then the data; in base64 the header and the data may be
 * encoded as one stream or as two (VTK writes two): both are accepted. Types Int8..Float64 (64-bit
 * integers become float64 with a warning).
 *
 * Geometry conventions (VTK >= 9): world = Origin + Direction * (Spacing * ijk) where ijk runs
 * over the extent, so a WholeExtent not starting at 0 puts voxel (0, 0, 0) of the Volume at
 * Origin + Direction * (Spacing * extentStart). Direction is written row-major (vtkMatrix3x3
 * order: columns are the axes). VTK has no patient coordinate convention: the coordinates are
 * taken as LPS world, as vtk.js, ITK and VolView do.
 *
 * A vtk.js "HTTP data set" folder (`*.vti/index.json` + data/, as in vtk.js's examples) is not
 * an XML file: readVti hands such a folder to readVtkJsDataSet (vtkjs-dataset.ts).
 */
import { statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { deflateSync } from 'node:zlib';
import { VolumeWriteError, wrapReadErrors } from '../../errors.ts';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import { geometryProblem, indexToWorld } from '../geometry.ts';
import {
  allocateVoxels,
  makeVolume,
  voxelTypeOf,
  type Mat3,
  type Vec3,
  type Volume,
  type VoxelType,
} from '../volume.ts';
import { readVtkJsDataSet } from './vtkjs-dataset.ts';
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
  swapBytes,
  voxelTypeFor,
  ELEMENT_SIZE,
  MAX_DATA_BYTES,
  MAX_INFLATE_RATIO,
  type ElementType,
} from './bytes.ts';

const TYPES: Record<string, ElementType> = {
  Int8: 'int8',
  UInt8: 'uint8',
  Int16: 'int16',
  UInt16: 'uint16',
  Int32: 'int32',
  UInt32: 'uint32',
  Int64: 'int64',
  UInt64: 'uint64',
  Float32: 'float32',
  Float64: 'float64',
};
const VTK_OF: Record<VoxelType, string> = {
  int8: 'Int8',
  uint8: 'UInt8',
  int16: 'Int16',
  uint16: 'UInt16',
  int32: 'Int32',
  uint32: 'UInt32',
  float32: 'Float32',
  float64: 'Float64',
};

/** Attributes of the first `<tag ...>` in the text, with the tag's end position; null when absent. */
function element(
  text: string,
  tag: string,
  from = 0,
): { attrs: Map<string, string>; start: number; end: number; selfClosing: boolean } | null {
  const re = new RegExp(`<${tag}\\b((?:\\s+[\\w:.-]+\\s*=\\s*(?:"[^"]*"|'[^']*'))*)\\s*(/?)>`, 'g');
  re.lastIndex = from;
  const m = re.exec(text);
  if (!m) return null;
  const attrs = new Map<string, string>();
  for (const a of m[1].matchAll(/([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) attrs.set(a[1], a[2] ?? a[3]);
  return { attrs, start: m.index, end: m.index + m[0].length, selfClosing: m[2] === '/' };
}

/** Read a `.vti` file (or a vtk.js data set folder); see the file comment. Throws VolumeReadError. */
export function readVti(path: string): Volume {
  return wrapReadErrors(path, () => {
    let isDir = false;
    try {
      isDir = statSync(path).isDirectory();
    } catch {
      fail(path, 'no such file');
    }
    if (isDir) return readVtkJsDataSet(path);
    if (basename(path) === 'index.json') return readVtkJsDataSet(dirname(path));
    const bytes = readFileBytes(path);
    const appendedAt = bytes.indexOf('<AppendedData');
    const text = latin1(bytes, 0, appendedAt >= 0 ? appendedAt : bytes.length);
    const file = element(text, 'VTKFile');
    if (!file || !/^\s*(<\?xml[^>]*\?>\s*)?(<!--[\s\S]*?-->\s*)*$/.test(text.slice(0, file.start)))
      fail(path, 'not a VTK XML file (no <VTKFile> element)');
    const warnings: string[] = [];
    const fa = file.attrs;
    if (fa.get('type') !== 'ImageData') fail(path, `VTK XML type "${fa.get('type')}" is not ImageData`);
    const order = fa.get('byte_order') ?? 'LittleEndian';
    if (order !== 'LittleEndian' && order !== 'BigEndian') fail(path, `invalid byte_order "${order}"`);
    const le = order === 'LittleEndian';
    const headerType = fa.get('header_type') ?? 'UInt32';
    if (headerType !== 'UInt32' && headerType !== 'UInt64') fail(path, `invalid header_type "${headerType}"`);
    const hsize = headerType === 'UInt64' ? 8 : 4;
    const compressor = fa.get('compressor') ?? '';
    if (compressor !== '' && compressor !== 'vtkZLibDataCompressor')
      fail(path, `compressor ${compressor} is not supported (only vtkZLibDataCompressor)`);

    const image = element(text, 'ImageData', file.end);
    if (!image) return fail(path, 'missing <ImageData> element');
    const ia = image.attrs;
    const ext = parseNumbers(ia.get('WholeExtent') ?? '', 6);
    if (!ext || !ext.every(Number.isInteger))
      return fail(path, `missing or invalid WholeExtent "${ia.get('WholeExtent') ?? ''}"`);
    const size: Vec3 = [ext[1] - ext[0] + 1, ext[3] - ext[2] + 1, ext[5] - ext[4] + 1];
    const spacing = (parseNumbers(ia.get('Spacing') ?? '1 1 1', 3) ??
      fail(path, `invalid Spacing "${ia.get('Spacing')}"`)) as Vec3;
    const origin0 = (parseNumbers(ia.get('Origin') ?? '0 0 0', 3) ??
      fail(path, `invalid Origin "${ia.get('Origin')}"`)) as Vec3;
    const dir = (parseNumbers(ia.get('Direction') ?? '1 0 0 0 1 0 0 0 1', 9) ??
      fail(path, `invalid Direction "${ia.get('Direction')}"`)) as Mat3;
    checkSpacing(path, spacing, 'Spacing');
    checkOrigin(path, origin0);
    const direction = checkedDirection(path, dir, warnings, 'Direction');
    const pieces = text.match(/<Piece\b/g)?.length ?? 0;
    if (pieces !== 1)
      fail(path, pieces === 0 ? 'no <Piece> element' : `${pieces} pieces: only single-piece files are supported`);
    const piece = element(text, 'Piece', image.end);
    if (!piece) return fail(path, 'malformed <Piece> element');
    const pext = piece.attrs.get('Extent');
    if (pext !== undefined && parseNumbers(pext, 6)?.join(' ') !== ext.join(' '))
      fail(path, `Piece Extent "${pext}" differs from WholeExtent: partial pieces are not supported`);

    // the point-data array
    const pd = element(text, 'PointData', piece.end);
    if (!pd || pd.selfClosing) return fail(path, 'no PointData arrays');
    const pdEnd = text.indexOf('</PointData>', pd.end);
    const pdText = text.slice(0, pdEnd < 0 ? text.length : pdEnd);
    const wanted = pd.attrs.get('Scalars');
    let arr: ReturnType<typeof element> = null;
    for (let at = pd.end, a = element(pdText, 'DataArray', at); a; a = element(pdText, 'DataArray', at)) {
      if (!arr || (wanted !== undefined && a.attrs.get('Name') === wanted && arr.attrs.get('Name') !== wanted)) arr = a;
      at = a.end;
    }
    if (!arr) return fail(path, 'no PointData arrays');
    const aa = arr.attrs;
    const type = TYPES[aa.get('type') ?? ''];
    if (!type) return fail(path, `unsupported DataArray type "${aa.get('type')}"`);
    const nc = Number(aa.get('NumberOfComponents') ?? '1');
    if (!Number.isInteger(nc) || nc < 1 || nc > 16)
      fail(path, `invalid NumberOfComponents ${aa.get('NumberOfComponents')}`);
    const count = checkedCount(path, [...size, nc], 'extent');
    const need = count * ELEMENT_SIZE[type];
    if (need > MAX_DATA_BYTES) fail(path, `image of ${count} ${type} values is too large`);
    const content = () => {
      if (arr.selfClosing) return '';
      const close = text.indexOf('</DataArray>', arr.end);
      return close < 0 ? fail(path, 'unterminated <DataArray>') : text.slice(arr.end, close);
    };

    const format = aa.get('format') ?? 'ascii';
    const conv = voxelTypeFor(type);
    if (conv.warning) warnings.push(conv.warning);
    let data;
    if (format === 'ascii') {
      const tokens = content().trim().split(/\s+/).filter(Boolean);
      if (tokens.length !== count)
        fail(path, `ascii DataArray has ${tokens.length} values, extent ${size.join('x')} x ${nc} needs ${count}`);
      data = allocateVoxels(conv.type, count);
      for (let i = 0; i < count; i++) {
        const x = Number(tokens[i]);
        if (Number.isNaN(x)) fail(path, `invalid number "${tokens[i].slice(0, 20)}" in ascii DataArray`);
        data[i] = x;
      }
    } else {
      let payload: Uint8Array;
      if (format === 'binary') payload = decodeBase64Array(path, content(), hsize, le, compressor !== '', need);
      else if (format === 'appended') {
        if (appendedAt < 0) fail(path, 'DataArray format="appended" but no <AppendedData>');
        const ap = element(latin1(bytes, appendedAt, Math.min(bytes.length, appendedAt + 4096)), 'AppendedData');
        if (!ap) return fail(path, 'malformed <AppendedData> element');
        let base = appendedAt + ap.end;
        while (base < bytes.length && bytes[base] !== 0x5f /* _ */ && /\s/.test(String.fromCharCode(bytes[base])))
          base++;
        if (bytes[base] !== 0x5f) fail(path, 'AppendedData does not start with "_"');
        base++;
        const offset = Number(aa.get('offset') ?? '0');
        if (!Number.isInteger(offset) || offset < 0 || base + offset > bytes.length)
          fail(
            path,
            `invalid DataArray offset ${aa.get('offset')} (the appended data holds ${bytes.length - base} bytes)`,
          );
        const enc = ap.attrs.get('encoding') ?? 'raw';
        if (enc === 'base64') {
          const endTag = bytes.indexOf('</AppendedData>', base);
          payload = decodeBase64Array(
            path,
            latin1(bytes, base + offset, endTag < 0 ? bytes.length : endTag),
            hsize,
            le,
            compressor !== '',
            need,
          );
        } else if (enc === 'raw')
          payload = decodeRawArray(path, bytes.subarray(base + offset), hsize, le, compressor !== '', need);
        else return fail(path, `AppendedData encoding "${enc}" is not supported`);
      } else return fail(path, `DataArray format "${format}" is not supported`);
      data = elementsFromBytes(path, payload, 0, count, type, le);
    }
    const origin = indexToWorld({ size, spacing, origin: origin0, direction }, [ext[0], ext[2], ext[4]]);
    assertGeometry(path, { size, spacing, origin, direction });
    const name = aa.get('Name');
    return makeVolume({
      size,
      spacing,
      origin,
      direction,
      components: nc,
      data,
      meta: { source: path, description: name, warnings },
    });
  });
}

/** Unsigned header integer of `hsize` bytes. */
function uint(file: string, b: Uint8Array, off: number, hsize: number, le: boolean): number {
  if (off + hsize > b.length) fail(file, 'truncated DataArray header');
  const v = new DataView(b.buffer, b.byteOffset + off, hsize);
  const x = hsize === 8 ? Number(v.getBigUint64(0, le)) : v.getUint32(0, le);
  return x;
}

/** Data bytes of a binary array from its header + data bytes (raw appended, or decoded base64). */
function decodeRawArray(
  file: string,
  b: Uint8Array,
  hsize: number,
  le: boolean,
  compressed: boolean,
  need: number,
): Uint8Array {
  if (!compressed) {
    const n = uint(file, b, 0, hsize, le);
    if (n !== need) fail(file, `DataArray holds ${n} bytes, the extent needs ${need}`);
    if (hsize + n > b.length) fail(file, `truncated DataArray: ${Math.max(0, b.length - hsize)} of ${n} bytes`);
    return b.subarray(hsize, hsize + n);
  }
  const nb = uint(file, b, 0, hsize, le);
  const bs = uint(file, b, hsize, hsize, le);
  const last = uint(file, b, 2 * hsize, hsize, le);
  if ((3 + nb) * hsize > b.length) fail(file, `truncated or corrupt compression header (${nb} blocks)`);
  const total = nb === 0 ? 0 : (nb - 1) * bs + (last === 0 ? bs : last);
  if (total !== need || (nb > 0 && (bs < 1 || last > bs)))
    fail(
      file,
      `compressed DataArray describes ${total} bytes (${nb} blocks of ${bs}, last ${last}), the extent needs ${need}`,
    );
  const sizes = Array.from({ length: nb }, (_, i) => uint(file, b, (3 + i) * hsize, hsize, le));
  let pos = (3 + nb) * hsize;
  const stored = sizes.reduce((s, x) => s + x, 0);
  if (pos + stored > b.length) fail(file, `truncated compressed DataArray: ${b.length - pos} of ${stored} bytes`);
  if (need > stored * MAX_INFLATE_RATIO + nb * 1024)
    fail(file, `compressed blocks of ${stored} bytes cannot hold ${need} bytes`);
  const out = new Uint8Array(need);
  for (let i = 0; i < nb; i++) {
    const want = i === nb - 1 && last !== 0 ? last : bs;
    const block = inflateBounded(file, `block ${i + 1} of ${nb}`, b.subarray(pos, pos + sizes[i]), want, 'zlib');
    out.set(block.subarray(0, want), i * bs);
    pos += sizes[i];
  }
  return out;
}

/** Decode strict base64 (no whitespace inside); refuses any other character. */
function b64(file: string, s: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 === 1) fail(file, 'invalid base64 data in DataArray');
  return Buffer.from(s, 'base64');
}

/** Base64 array: header and data encoded as one stream or as two (see the file comment). */
function decodeBase64Array(
  file: string,
  text: string,
  hsize: number,
  le: boolean,
  compressed: boolean,
  need: number,
): Uint8Array {
  const s = text.replace(/\s+/g, '');
  const chars = (n: number) => Math.ceil(n / 3) * 4;
  let hbytes = hsize;
  if (compressed) {
    const first = b64(file, s.slice(0, chars(3 * hsize)));
    hbytes = (3 + uint(file, first, 0, hsize, le)) * hsize;
  }
  const hc = chars(hbytes);
  if (hc > s.length) fail(file, 'truncated base64 DataArray header');
  if (hc > MAX_DATA_BYTES) fail(file, 'corrupt base64 DataArray header');
  let bin: Uint8Array;
  if (hbytes % 3 !== 0 && s[hc - 1] === '=') {
    // two streams: header, then data (as VTK writes them)
    const header = b64(file, s.slice(0, hc));
    const rest = s.slice(hc);
    const dataBytes = compressed ? sumBlocks(file, header, hsize, le) : uint(file, header, 0, hsize, le);
    if (chars(dataBytes) > rest.length) fail(file, `truncated base64 DataArray (${dataBytes} bytes announced)`);
    bin = Buffer.concat([header.subarray(0, hbytes), b64(file, rest.slice(0, chars(dataBytes)))]);
  } else {
    const header = b64(file, s.slice(0, hc));
    const dataBytes = compressed ? sumBlocks(file, header, hsize, le) : uint(file, header, 0, hsize, le);
    if (chars(hbytes + dataBytes) > s.length) fail(file, `truncated base64 DataArray (${dataBytes} bytes announced)`);
    bin = b64(file, s.slice(0, chars(hbytes + dataBytes)));
  }
  return decodeRawArray(file, bin, hsize, le, compressed, need);
}

function sumBlocks(file: string, header: Uint8Array, hsize: number, le: boolean): number {
  const nb = uint(file, header, 0, hsize, le);
  let sum = 0;
  for (let i = 0; i < nb; i++) sum += uint(file, header, (3 + i) * hsize, hsize, le);
  return sum;
}

export interface VtiWriteOptions {
  /** 'appended' (default), 'binary' (inline base64) or 'ascii'. */
  format?: 'appended' | 'binary' | 'ascii';
  /** AppendedData encoding: 'raw' (default) or 'base64'. */
  encoding?: 'raw' | 'base64';
  /** zlib-compress binary data (vtkZLibDataCompressor; default true). */
  compress?: boolean;
  /** Uncompressed block size for compression (default 32768). */
  blockSize?: number;
  headerType?: 'UInt32' | 'UInt64';
  bigEndian?: boolean;
  /** Write the grid with this extent start (origin shifted to keep the same world positions). */
  extentStart?: Vec3;
  protect?: string[];
}

/** Bytes of a `.vti` file for a volume (Direction row-major, coordinates LPS as read). */
export function encodeVti(vol: Volume, o: VtiWriteOptions = {}): Uint8Array {
  const problem = geometryProblem(vol);
  if (problem) throw new Error(problem);
  const format = o.format ?? 'appended';
  const compress = format !== 'ascii' && (o.compress ?? true);
  const hsize = o.headerType === 'UInt64' ? 8 : 4;
  const le = !o.bigEndian;
  const st = o.extentStart ?? [0, 0, 0];
  const origin = indexToWorld(vol, [-st[0], -st[1], -st[2]]);
  const ext = [0, 1, 2].flatMap((a) => [st[a], st[a] + vol.size[a] - 1]).join(' ');
  const ints = (xs: number[]) => {
    const b = new Uint8Array(xs.length * hsize);
    const v = new DataView(b.buffer);
    xs.forEach((x, i) => (hsize === 8 ? v.setBigUint64(i * hsize, BigInt(x), le) : v.setUint32(i * hsize, x, le)));
    return b;
  };
  let body = '';
  let appended: Uint8Array[] = [];
  if (format === 'ascii') body = Array.from(vol.data, (x) => String(x)).join(' ');
  else {
    let raw = littleEndianBytes(vol.data);
    if (!le) swapBytes((raw = raw.slice()), vol.data.BYTES_PER_ELEMENT);
    let parts: Uint8Array[];
    if (!compress) parts = [ints([raw.length]), raw];
    else {
      const bs = o.blockSize ?? 32768;
      const blocks: Uint8Array[] = [];
      for (let p = 0; p < raw.length; p += bs) blocks.push(deflateSync(raw.subarray(p, p + bs)));
      const last = raw.length % bs;
      parts = [ints([blocks.length, bs, last, ...blocks.map((b) => b.length)]), ...blocks];
    }
    const [header, ...rest] = parts;
    if (format === 'binary' || o.encoding === 'base64') {
      // header and data as two base64 streams, as VTK writes them
      const text = Buffer.from(header).toString('base64') + Buffer.concat(rest).toString('base64');
      if (format === 'binary') body = text;
      else appended = [Buffer.from(text, 'latin1')];
    } else appended = parts;
  }
  const fmt = format === 'appended' ? 'appended" offset="0' : format;
  const xml = [
    '<?xml version="1.0"?>',
    `<VTKFile type="ImageData" version="1.0" byte_order="${le ? 'LittleEndian' : 'BigEndian'}" header_type="UInt${hsize * 8}"${compress ? ' compressor="vtkZLibDataCompressor"' : ''}>`,
    `  <ImageData WholeExtent="${ext}" Origin="${origin.map(formatNumber).join(' ')}" Spacing="${vol.spacing.map(formatNumber).join(' ')}" Direction="${vol.direction.map(formatNumber).join(' ')}">`,
    `    <Piece Extent="${ext}">`,
    '      <PointData Scalars="Scalars">',
    `        <DataArray type="${VTK_OF[voxelTypeOf(vol.data)]}" Name="Scalars" NumberOfComponents="${vol.components}" format="${fmt}">${body}</DataArray>`,
    '      </PointData>',
    '      <CellData>',
    '      </CellData>',
    '    </Piece>',
    '  </ImageData>',
  ].join('\n');
  const tail =
    format === 'appended'
      ? [`\n  <AppendedData encoding="${o.encoding ?? 'raw'}">\n   _`, ...appended, '\n  </AppendedData>\n</VTKFile>\n']
      : ['\n</VTKFile>\n'];
  return Buffer.concat([xml, ...tail].map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
}

/** Write a `.vti` file atomically. Throws VolumeWriteError. */
export function writeVti(path: string, vol: Volume, options: VtiWriteOptions = {}): void {
  let bytes: Uint8Array;
  try {
    bytes = encodeVti(vol, options);
  } catch (e) {
    throw new VolumeWriteError(path, `cannot encode as VTI (${(e as Error).message})`, { cause: e });
  }
  writeFileAtomic(path, bytes, { protect: options.protect });
}
