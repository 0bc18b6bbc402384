/**
 * DICOM RLE Lossless (1.2.840.10008.1.2.5) decoding, by hand: a 64-byte header with the number
 * of segments and their offsets, one PackBits segment per byte plane (most significant first).
 * Returns the frame's samples as little-endian bytes of BitsAllocated width.
 */
import { VolumeReadError } from '../../../errors.ts';
import type { PixelFormat } from './types.ts';

export function decodeRle(frame: Uint8Array, fmt: PixelFormat, file: string): Uint8Array {
  const bytesPerSample = fmt.bitsAllocated / 8;
  const count = fmt.rows * fmt.columns;
  if (frame.length < 64)
    throw new VolumeReadError(file, `RLE frame of ${frame.length} bytes is shorter than its 64-byte header`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const segments = view.getUint32(0, true);
  if (segments !== bytesPerSample)
    throw new VolumeReadError(
      file,
      `RLE frame has ${segments} segments, ${bytesPerSample} expected for ${fmt.bitsAllocated}-bit greyscale`,
    );
  const offsets: number[] = [];
  for (let s = 0; s < segments; s++) offsets.push(view.getUint32(4 + 4 * s, true));
  const out = new Uint8Array(count * bytesPerSample);
  for (let s = 0; s < segments; s++) {
    const start = offsets[s];
    const end = s + 1 < segments ? offsets[s + 1] : frame.length;
    if (start < 64 || start > end || end > frame.length)
      throw new VolumeReadError(
        file,
        `corrupt RLE header: segment ${s + 1} offsets ${start}..${end} outside the ${frame.length}-byte frame`,
      );
    // Segment 0 holds the most significant bytes; output is little-endian.
    const lane = bytesPerSample - 1 - s;
    let i = start;
    let o = 0;
    while (o < count && i < end) {
      const h = frame[i++];
      if (h < 128) {
        const n = Math.min(h + 1, count - o, end - i);
        for (let r = 0; r < n; r++) out[(o + r) * bytesPerSample + lane] = frame[i + r];
        i += h + 1;
        o += n;
      } else if (h > 128) {
        if (i >= end) break;
        const v = frame[i++];
        const n = Math.min(257 - h, count - o);
        for (let r = 0; r < n; r++) out[(o + r) * bytesPerSample + lane] = v;
        o += n;
      }
      // h === 128: no operation
    }
    if (o < count)
      throw new VolumeReadError(file, `corrupt RLE data: segment ${s + 1} decodes to ${o} of ${count} bytes`);
  }
  return out;
}
