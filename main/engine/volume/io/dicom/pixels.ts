/**
 * From stored pixel bytes to values: byte order, BitsStored / HighBit (mask the stored bits,
 * sign-extend them when PixelRepresentation is 1), then RescaleSlope / RescaleIntercept.
 *
 * Output type: Int16Array when every slice has slope 1 and an integer intercept and the values
 * fit in int16 (typical CT, HU exactly); otherwise Float32Array. The int16 choice is checked
 * on the actual values: a slice that does not fit promotes the whole volume to float32.
 * MONOCHROME1 values are not inverted (after rescale they keep their meaning, e.g. HU).
 */
import type { PixelFormat } from './types.ts';

export const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reusable buffers for converting one frame at a time. */
export interface Scratch {
  int: Int32Array;
  wide: Float64Array | null;
}

export function makeScratch(pixels: number): Scratch {
  return { int: new Int32Array(pixels), wide: null };
}

/** A view of `raw` as `size`-byte samples in host order (copied when unaligned or byte-swapped). */
function samples(raw: Uint8Array, size: 2 | 4, littleEndian: boolean, count: number): Uint8Array {
  let bytes = raw.subarray(0, count * size);
  if (bytes.byteOffset % size !== 0 || littleEndian !== hostIsLittleEndian) bytes = new Uint8Array(bytes);
  if (littleEndian !== hostIsLittleEndian) {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (size === 2) b.swap16();
    else b.swap32();
  }
  return bytes;
}

/**
 * The stored values of one frame (bits masked, sign applied). Returns scratch.int for
 * 8/16-bit data and a Float64Array for 32-bit data (whose unsigned values exceed int32).
 */
export function storedValues(
  raw: Uint8Array,
  fmt: PixelFormat,
  littleEndian: boolean,
  count: number,
  scratch: Scratch,
): Int32Array | Float64Array {
  const { bitsAllocated: ba, bitsStored: bs, highBit, pixelRepresentation: pr } = fmt;
  const shift = highBit + 1 - bs;
  if (ba === 32) {
    if (!scratch.wide || scratch.wide.length < count) scratch.wide = new Float64Array(count);
    const out = scratch.wide;
    const b = samples(raw, 4, littleEndian, count);
    const u = new Uint32Array(b.buffer, b.byteOffset, count);
    const div = 2 ** shift;
    const mod = 2 ** bs;
    for (let n = 0; n < count; n++) {
      let v = Math.floor(u[n] / div) % mod;
      if (pr === 1 && v >= mod / 2) v -= mod;
      out[n] = v;
    }
    return out;
  }
  const out = scratch.int;
  const src: Uint8Array | Int8Array | Uint16Array | Int16Array =
    ba === 8
      ? pr === 1 && shift === 0 && bs === 8
        ? new Int8Array(raw.buffer, raw.byteOffset, count)
        : raw.subarray(0, count)
      : (() => {
          const b = samples(raw, 2, littleEndian, count);
          return pr === 1 && shift === 0 && bs === 16
            ? new Int16Array(b.buffer, b.byteOffset, count)
            : new Uint16Array(b.buffer, b.byteOffset, count);
        })();
  if (bs === ba && shift === 0) {
    for (let n = 0; n < count; n++) out[n] = src[n];
    return out;
  }
  const mask = (1 << bs) - 1;
  if (pr === 1) {
    const sign = 1 << (bs - 1);
    for (let n = 0; n < count; n++) out[n] = (((src[n] >>> shift) & mask) ^ sign) - sign;
  } else {
    for (let n = 0; n < count; n++) out[n] = (src[n] >>> shift) & mask;
  }
  return out;
}

/** Possible range of stored values for a format. */
export function storedRange(fmt: PixelFormat): [number, number] {
  const bs = fmt.bitsStored;
  return fmt.pixelRepresentation === 1 ? [-(2 ** (bs - 1)), 2 ** (bs - 1) - 1] : [0, 2 ** bs - 1];
}

/** The output voxels of a series, written one frame at a time. */
export class VoxelSink {
  data: Int16Array | Float32Array;
  constructor(
    readonly length: number,
    integer: boolean,
  ) {
    this.data = integer ? new Int16Array(length) : new Float32Array(length);
  }

  get isInteger(): boolean {
    return this.data instanceof Int16Array;
  }

  /** Switch to float32, keeping the values written so far. */
  promote(): void {
    if (!(this.data instanceof Int16Array)) return;
    const f = new Float32Array(this.length);
    f.set(this.data);
    this.data = f;
  }

  /** Write values * slope + intercept at `offset`. */
  put(values: Int32Array | Float64Array, count: number, slope: number, intercept: number, offset: number): void {
    const d = this.data;
    if (d instanceof Int16Array && slope === 1 && Number.isInteger(intercept)) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let n = 0; n < count; n++) {
        const v = values[n] + intercept;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        d[offset + n] = v;
      }
      if (lo >= -32768 && hi <= 32767) return;
      this.promote();
    } else if (d instanceof Int16Array) {
      this.promote();
    }
    const f = this.data;
    for (let n = 0; n < count; n++) f[offset + n] = values[n] * slope + intercept;
  }
}
