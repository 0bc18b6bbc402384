/**
 * Encapsulated (compressed) Pixel Data: the item list (Basic Offset Table, then fragments, then
 * a sequence delimiter) and which fragments make up each frame: all of them for one frame,
 * else the offset table, else one fragment per frame, else the codestream start markers.
 */
import { VolumeReadError } from '../../../errors.ts';
import { T } from './tags.ts';
import type { PixelEncoding } from './transfer-syntax.ts';

interface Fragment {
  /** Offset of the fragment's item tag, relative to the first fragment's item tag (BOT units). */
  itemOffset: number;
  /** Value offset and length in the bytes given to parseFragments. */
  offset: number;
  length: number;
}

export interface Fragments {
  bytes: Uint8Array;
  offsetTable: number[];
  fragments: Fragment[];
}

/** Parse the items of encapsulated Pixel Data; `bytes` starts at the Pixel Data value. */
export function parseFragments(bytes: Uint8Array, littleEndian: boolean, file: string): Fragments {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const items: Array<{ at: number; offset: number; length: number }> = [];
  for (;;) {
    if (pos + 8 > bytes.length) {
      // Some writers omit the final delimiter: accept it when at least one fragment was read.
      if (items.length > 1 && pos === bytes.length) break;
      throw new VolumeReadError(
        file,
        `truncated compressed Pixel Data (item at byte ${pos} of the Pixel Data runs past the end)`,
      );
    }
    const t = ((view.getUint16(pos, littleEndian) << 16) | view.getUint16(pos + 2, littleEndian)) >>> 0;
    const len = view.getUint32(pos + 4, littleEndian);
    if (t === T.SequenceDelimitation) break;
    if (t !== T.Item)
      throw new VolumeReadError(
        file,
        `corrupt compressed Pixel Data: expected an item at byte ${pos} of the Pixel Data`,
      );
    if (len === 0xffffffff || pos + 8 + len > bytes.length)
      throw new VolumeReadError(
        file,
        `corrupt compressed Pixel Data: fragment at byte ${pos} of the Pixel Data says ${len} bytes, past the end of the file`,
      );
    items.push({ at: pos, offset: pos + 8, length: len });
    pos += 8 + len;
  }
  if (items.length === 0) throw new VolumeReadError(file, 'compressed Pixel Data has no Basic Offset Table item');
  const bot = items[0];
  const offsetTable: number[] = [];
  for (let o = 0; o + 4 <= bot.length; o += 4) offsetTable.push(view.getUint32(bot.offset + o, littleEndian));
  const base = items.length > 1 ? items[1].at : 0;
  const fragments = items.slice(1).map((it) => ({ itemOffset: it.at - base, offset: it.offset, length: it.length }));
  if (fragments.length === 0) throw new VolumeReadError(file, 'compressed Pixel Data holds no fragments');
  return { bytes, offsetTable, fragments };
}

function startsFrame(b: Uint8Array, encoding: PixelEncoding): boolean {
  if (b.length < 2) return false;
  if (encoding === 'jpeg2000')
    return (
      (b[0] === 0xff && b[1] === 0x4f) ||
      (b.length >= 8 && b[4] === 0x6a && b[5] === 0x50 && b[6] === 0x20 && b[7] === 0x20)
    );
  return b[0] === 0xff && b[1] === 0xd8;
}

function concat(fr: Fragments, list: Fragment[]): Uint8Array {
  if (list.length === 1) return fr.bytes.subarray(list[0].offset, list[0].offset + list[0].length);
  const out = new Uint8Array(list.reduce((n, f) => n + f.length, 0));
  let o = 0;
  for (const f of list) {
    out.set(fr.bytes.subarray(f.offset, f.offset + f.length), o);
    o += f.length;
  }
  return out;
}

/** The fragments of every frame, computed once per file. */
export function splitFrames(
  fr: Fragments,
  numberOfFrames: number,
  encoding: PixelEncoding,
  file: string,
): Fragment[][] {
  const frags = fr.fragments;
  if (numberOfFrames === 1) return [frags];
  const bot = fr.offsetTable;
  if (bot.length === numberOfFrames && bot[0] === 0 && bot.every((o, n) => n === 0 || o > bot[n - 1])) {
    const frames: Fragment[][] = bot.map(() => []);
    let f = 0;
    for (const g of frags) {
      while (f + 1 < bot.length && g.itemOffset >= bot[f + 1]) f++;
      frames[f].push(g);
    }
    if (frames.every((l) => l.length > 0)) return frames;
  }
  if (frags.length === numberOfFrames) return frags.map((g) => [g]);
  if (encoding !== 'rle') {
    const frames: Fragment[][] = [];
    for (const g of frags) {
      if (frames.length === 0 || startsFrame(fr.bytes.subarray(g.offset, g.offset + g.length), encoding))
        frames.push([g]);
      else frames[frames.length - 1].push(g);
    }
    if (frames.length === numberOfFrames) return frames;
  }
  throw new VolumeReadError(
    file,
    `cannot tell which of the ${frags.length} compressed fragments belong to each of the ${numberOfFrames} frames`,
  );
}

/** The compressed bytes of one frame. */
export function frameCodestream(fr: Fragments, frames: Fragment[][], frameIndex: number): Uint8Array {
  return concat(fr, frames[frameIndex]);
}
