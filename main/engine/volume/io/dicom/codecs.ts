/**
 * Decoding one compressed frame to stored samples (little-endian, BitsAllocated wide):
 * JPEG 2000 (OpenJPEG), JPEG-LS (CharLS) and JPEG baseline (libjpeg-turbo) through the
 * Cornerstone WebAssembly codecs, JPEG lossless through jpeg-lossless-decoder-js, RLE by hand.
 *
 * The WASM codecs are loaded lazily, once, with createRequire (they are CommonJS emscripten
 * factories); their .wasm is handed to them as bytes so they need not find it themselves.
 * Before a codec sees a frame, the image size in the codestream header is checked against
 * Rows/Columns, so a corrupt header cannot make it allocate a huge image.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { VolumeReadError } from '../../../errors.ts';
import { decodeRle } from './rle.ts';
import { describeTransferSyntax, type TransferSyntax } from './transfer-syntax.ts';
import type { PixelFormat } from './types.ts';

const requireCjs = createRequire(import.meta.url);

interface FrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned?: boolean;
}
interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): FrameInfo;
  delete(): void;
}
type WasmModule = Record<string, new () => WasmDecoder>;

const modules = new Map<string, Promise<WasmModule>>();

function loadWasm(pkg: string): Promise<WasmModule> {
  let m = modules.get(pkg);
  if (!m) {
    m = (async () => {
      const exported = requireCjs(`${pkg}/decodewasmjs`) as unknown;
      const factory = (typeof exported === 'function' ? exported : (exported as { default: unknown }).default) as (
        args: object,
      ) => Promise<WasmModule>;
      const wasmBinary = readFileSync(requireCjs.resolve(`${pkg}/decodewasm`));
      const noop = (): void => {};
      return factory({ wasmBinary, print: noop, printErr: noop });
    })();
    modules.set(pkg, m);
    m.catch(() => modules.delete(pkg));
  }
  return m;
}

/** Size (and precision) in a JPEG / JPEG-LS codestream: the first SOF marker before SOS. */
function jpegFrameHeader(
  b: Uint8Array,
): { width: number; height: number; precision: number; components: number } | null {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) return null;
    const marker = b[p + 1];
    if (marker === 0xff) {
      p++;
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      p += 2;
      continue;
    }
    const len = (b[p + 2] << 8) | b[p + 3];
    const isSof =
      (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) || marker === 0xf7;
    if (isSof) {
      if (p + 10 > b.length) return null;
      return {
        precision: b[p + 4],
        height: (b[p + 5] << 8) | b[p + 6],
        width: (b[p + 7] << 8) | b[p + 8],
        components: b[p + 9],
      };
    }
    if (marker === 0xda || len < 2) return null;
    p += 2 + len;
  }
  return null;
}

/** Size in a JPEG 2000 codestream (SIZ marker), also inside a JP2 file. */
function j2kSize(b: Uint8Array): { width: number; height: number; components: number } | null {
  const lim = Math.min(b.length - 40, 1 << 16);
  for (let p = 0; p < lim; p++) {
    if (b[p] === 0xff && b[p + 1] === 0x4f && b[p + 2] === 0xff && b[p + 3] === 0x51) {
      const v = new DataView(b.buffer, b.byteOffset + p + 4);
      const xs = v.getUint32(4);
      const ys = v.getUint32(8);
      const xo = v.getUint32(12);
      const yo = v.getUint32(16);
      return { width: xs - xo, height: ys - yo, components: v.getUint16(36) };
    }
  }
  return null;
}

function checkSize(
  found: { width: number; height: number; components: number } | null,
  fmt: PixelFormat,
  what: string,
  file: string,
): void {
  if (!found) throw new VolumeReadError(file, `corrupt ${what} frame: no readable image header in the codestream`);
  if (found.width !== fmt.columns || found.height !== fmt.rows)
    throw new VolumeReadError(
      file,
      `${what} frame is ${found.width}x${found.height} but Columns x Rows say ${fmt.columns}x${fmt.rows}`,
    );
  if (found.components !== 1)
    throw new VolumeReadError(file, `${what} frame has ${found.components} components; only greyscale is read`);
}

/** Copy decoded samples (1 or 2 bytes each, host order) out of the codec into BitsAllocated-wide bytes. */
function toStored(
  decoded: Uint8Array,
  bytesPerSample: number,
  signed: boolean,
  fmt: PixelFormat,
  what: string,
  file: string,
): Uint8Array {
  const count = fmt.rows * fmt.columns;
  const outBytes = fmt.bitsAllocated / 8;
  if (decoded.byteLength < count * bytesPerSample)
    throw new VolumeReadError(
      file,
      `${what} decoder returned ${decoded.byteLength} bytes, ${count * bytesPerSample} expected`,
    );
  if (bytesPerSample === outBytes) return decoded.slice(0, count * outBytes);
  const out = new Uint8Array(count * outBytes);
  const ov = new DataView(out.buffer);
  const src =
    bytesPerSample === 1
      ? signed
        ? new Int8Array(decoded.buffer, decoded.byteOffset, count)
        : decoded.subarray(0, count)
      : (() => {
          const a = decoded.slice(0, count * 2);
          return signed ? new Int16Array(a.buffer, 0, count) : new Uint16Array(a.buffer, 0, count);
        })();
  if (outBytes < bytesPerSample)
    throw new VolumeReadError(file, `${what} frame has more bits per sample than BitsAllocated ${fmt.bitsAllocated}`);
  for (let n = 0; n < count; n++) {
    if (outBytes === 2) ov.setInt16(n * 2, src[n], true);
    else ov.setInt32(n * 4, src[n], true);
  }
  return out;
}

async function decodeWasm(
  pkg: string,
  cls: string,
  what: string,
  data: Uint8Array,
  fmt: PixelFormat,
  file: string,
): Promise<Uint8Array> {
  let mod: WasmModule;
  try {
    mod = await loadWasm(pkg);
  } catch (e) {
    throw new VolumeReadError(file, `cannot load the ${what} decoder (${(e as Error).message})`);
  }
  let dec: WasmDecoder | null = null;
  try {
    dec = new mod[cls]();
    dec.getEncodedBuffer(data.length).set(data);
    dec.decode();
    const info = dec.getFrameInfo();
    if (info.width !== fmt.columns || info.height !== fmt.rows || info.componentCount !== 1)
      throw new VolumeReadError(
        file,
        `${what} frame decoded to ${info.width}x${info.height}x${info.componentCount}, expected ${fmt.columns}x${fmt.rows} greyscale`,
      );
    const bps = info.bitsPerSample <= 8 ? 1 : 2;
    const d = dec.getDecodedBuffer();
    const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    return toStored(bytes, bps, info.isSigned === true, fmt, what, file);
  } catch (e) {
    if (e instanceof VolumeReadError) throw e;
    // An emscripten abort leaves the module unusable: load a fresh one next time.
    modules.delete(pkg);
    throw new VolumeReadError(file, `corrupt ${what} frame (${e instanceof Error ? e.message : String(e)})`);
  } finally {
    try {
      dec?.delete();
    } catch {
      modules.delete(pkg);
    }
  }
}

interface LosslessDecoder {
  decode(buffer: ArrayBuffer, offset: number, length: number, numBytes: number): Uint8Array | Uint16Array;
}

function decodeJpegLossless(data: Uint8Array, fmt: PixelFormat, file: string): Uint8Array {
  const h = jpegFrameHeader(data);
  checkSize(h && { ...h }, fmt, 'JPEG lossless', file);
  const { Decoder } = requireCjs('jpeg-lossless-decoder-js') as { Decoder: new () => LosslessDecoder };
  const bytes = fmt.bitsAllocated === 8 ? 1 : 2;
  let out: Uint8Array | Uint16Array;
  try {
    const copy = data.slice();
    out = new Decoder().decode(copy.buffer, 0, copy.length, bytes);
  } catch (e) {
    throw new VolumeReadError(file, `corrupt JPEG lossless frame (${e instanceof Error ? e.message : String(e)})`);
  }
  const u8 = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  return toStored(u8, bytes, false, fmt, 'JPEG lossless', file);
}

/** Decode one frame's codestream into stored samples of BitsAllocated width, little-endian. */
export async function decodeFrame(
  syntax: TransferSyntax,
  data: Uint8Array,
  fmt: PixelFormat,
  file: string,
): Promise<Uint8Array> {
  switch (syntax.encoding) {
    case 'rle':
      return decodeRle(data, fmt, file);
    case 'jpeg2000':
      checkSize(j2kSize(data), fmt, 'JPEG 2000', file);
      return decodeWasm('@cornerstonejs/codec-openjpeg', 'J2KDecoder', 'JPEG 2000', data, fmt, file);
    case 'jpegls':
      checkSize(jpegFrameHeader(data), fmt, 'JPEG-LS', file);
      return decodeWasm('@cornerstonejs/codec-charls', 'JpegLSDecoder', 'JPEG-LS', data, fmt, file);
    case 'jpeg-baseline': {
      const h = jpegFrameHeader(data);
      checkSize(h, fmt, 'JPEG', file);
      if (h && h.precision > 8)
        throw new VolumeReadError(
          file,
          `${h.precision}-bit JPEG (${describeTransferSyntax(syntax.uid)}) is not supported: only 8-bit JPEG can be decoded`,
        );
      return decodeWasm('@cornerstonejs/codec-libjpeg-turbo-8bit', 'JPEGDecoder', 'JPEG', data, fmt, file);
    }
    case 'jpeg-lossless':
      return decodeJpegLossless(data, fmt, file);
    default:
      throw new VolumeReadError(file, `unsupported transfer syntax ${describeTransferSyntax(syntax.uid)}`);
  }
}
