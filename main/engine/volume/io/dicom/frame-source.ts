/**
 * Fetching the stored bytes of one frame: uncompressed frames are read straight from their
 * place in the file (only those bytes), deflated files are inflated once, and compressed
 * frames are cut out of the fragments and decoded (codecs.ts). The current file stays open
 * (and its fragments parsed) while consecutive frames come from it.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { VolumeReadError } from '../../../errors.ts';
import { decodeFrame } from './codecs.ts';
import { frameCodestream, parseFragments, splitFrames, type Fragments } from './encapsulated.ts';
import { parseDicom } from './parse.ts';
import type { FileHeader, FrameInfo } from './types.ts';

export interface FrameBytes {
  bytes: Uint8Array;
  littleEndian: boolean;
}

export class FrameSource {
  private fd = -1;
  private fdFile = '';
  private cached: {
    file: string;
    fragments?: Fragments;
    frames?: ReturnType<typeof splitFrames>;
    inflated?: Uint8Array;
  } | null = null;
  private buffer = new Uint8Array(0);

  async read(frame: FrameInfo): Promise<FrameBytes> {
    const h = frame.header;
    const fmt = h.format;
    const frameBytes = fmt.rows * fmt.columns * (fmt.bitsAllocated / 8);
    if (h.syntax.encoding === 'native') {
      if (h.deflated) {
        const data = this.inflated(h);
        const start = h.pixel.valueOffset + frame.frameIndex * frameBytes;
        if (start + frameBytes > data.length)
          throw new VolumeReadError(h.file, 'truncated Pixel Data in the deflated data set');
        return { bytes: data.subarray(start, start + frameBytes), littleEndian: true };
      }
      if (this.buffer.length < frameBytes) this.buffer = new Uint8Array(new ArrayBuffer(frameBytes));
      const got = this.readAt(h, h.pixel.valueOffset + frame.frameIndex * frameBytes, this.buffer, frameBytes);
      if (got < frameBytes)
        throw new VolumeReadError(
          h.file,
          `truncated Pixel Data: frame ${frame.frameIndex + 1} has ${got} of ${frameBytes} bytes (file changed since it was scanned?)`,
        );
      return { bytes: this.buffer.subarray(0, frameBytes), littleEndian: h.syntax.littleEndian };
    }
    const c = this.fragments(h);
    const code = frameCodestream(c.fragments!, c.frames!, frame.frameIndex);
    return { bytes: await decodeFrame(h.syntax, code, fmt, h.file), littleEndian: true };
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.fdFile = '';
    this.cached = null;
  }

  private open(h: FileHeader): number {
    if (this.fdFile !== h.file) {
      if (this.fd >= 0) closeSync(this.fd);
      this.fd = -1;
      try {
        this.fd = openSync(h.file, 'r');
      } catch (e) {
        throw new VolumeReadError(h.file, `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      this.fdFile = h.file;
    }
    return this.fd;
  }

  private readAt(h: FileHeader, position: number, into: Uint8Array, length: number): number {
    const fd = this.open(h);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, into, got, length - got, position + got);
      if (n <= 0) break;
      got += n;
    }
    return got;
  }

  private inflated(h: FileHeader): Uint8Array {
    if (this.cached?.file === h.file && this.cached.inflated) return this.cached.inflated;
    const whole = readFileSync(h.file);
    const parsed = parseDicom(new Uint8Array(whole.buffer, whole.byteOffset, whole.byteLength), {
      file: h.file,
      fileSize: whole.byteLength,
      complete: true,
    });
    const data = parsed.dataset.bytes;
    this.cached = { file: h.file, inflated: data };
    return data;
  }

  private fragments(h: FileHeader): { fragments?: Fragments; frames?: ReturnType<typeof splitFrames> } {
    if (this.cached?.file === h.file && this.cached.fragments) return this.cached;
    let bytes: Uint8Array;
    let littleEndian = h.syntax.littleEndian;
    if (h.deflated) {
      bytes = this.inflated(h).subarray(h.pixel.valueOffset);
      littleEndian = true;
    } else {
      const length = h.fileSize - h.pixel.valueOffset;
      bytes = new Uint8Array(length);
      const got = this.readAt(h, h.pixel.valueOffset, bytes, length);
      if (got < length) bytes = bytes.subarray(0, got);
    }
    const fragments = parseFragments(bytes, littleEndian, h.file);
    const frames = splitFrames(fragments, h.numberOfFrames, h.syntax.encoding, h.file);
    this.cached = { file: h.file, fragments, frames };
    return this.cached;
  }
}
