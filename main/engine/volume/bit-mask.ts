/**
 * Binary volumes packed one bit per voxel, for the box erosion and dilation of the body mask
 * (mask.ts): 32 voxels per operation instead of one. Layout: each row along i (the contiguous index
 * axis) is ceil(ni / 32) 32-bit words, voxel i in bit i % 32 of word i / 32; rows follow in the
 * volume's order (j fastest, then k). Bits past ni in a row's last word are padding: their value is
 * undefined between operations.
 */

export interface BitVolume {
  /** ni, nj, nk */
  size: [number, number, number];
  /** words per row: ceil(ni / 32) */
  wordsPerRow: number;
  bits: Int32Array;
}

function emptyBits(size: readonly number[]): BitVolume {
  const wordsPerRow = Math.ceil(size[0] / 32);
  return {
    size: [size[0], size[1], size[2]],
    wordsPerRow,
    bits: new Int32Array(wordsPerRow * size[1] * size[2]),
  };
}

/** Voxels whose value (first of `components` per voxel) is above `threshold`, packed. */
export function packAbove(
  data: ArrayLike<number>,
  size: readonly number[],
  threshold: number,
  components = 1,
): BitVolume {
  const out = emptyBits(size);
  const ni = size[0];
  const W = out.wordsPerRow;
  const rows = size[1] * size[2];
  const bits = out.bits;
  for (let row = 0, p = 0; row < rows; row++) {
    const base = row * W;
    for (let w = 0, i = 0; w < W; w++) {
      let x = 0;
      const end = Math.min(ni, i + 32);
      for (let b = 0; i < end; i++, b++, p += components) if (data[p] > threshold) x |= 1 << b;
      bits[base + w] = x;
    }
  }
  return out;
}

/** A 0/1 (or 0/nonzero) byte mask, packed. */
export function packMask(mask: Uint8Array, size: readonly number[]): BitVolume {
  return packAbove(mask, size, 0);
}

/** The packed volume as a 0/1 byte mask. */
export function unpack(v: BitVolume): Uint8Array {
  const [ni, nj, nk] = v.size;
  const W = v.wordsPerRow;
  const out = new Uint8Array(ni * nj * nk);
  for (let row = 0, p = 0; row < nj * nk; row++) {
    const base = row * W;
    for (let w = 0, i = 0; w < W; w++) {
      const x = v.bits[base + w];
      const end = Math.min(ni, i + 32);
      if (x === 0) {
        // out is zero-filled: skip the word
        p += end - i;
        i = end;
        continue;
      }
      if (x === -1 && end - i === 32) {
        out.fill(1, p, p + 32);
        p += 32;
        i = end;
        continue;
      }
      for (let b = 0; i < end; i++, b++, p++) out[p] = (x >>> b) & 1;
    }
  }
  return out;
}

/**
 * Erosion ('min') or dilation ('max') by a box of half-widths `radii` (voxels), separably, each
 * window clipped to the volume (as mask.ts boxFilter: erosion needs all ones in the clipped window,
 * dilation any one).
 */
export function boxFilterBits(v: BitVolume, radii: readonly number[], op: 'min' | 'max'): BitVolume {
  let cur = v;
  for (let a = 0; a < 3; a++) {
    const r = Math.floor(radii[a]);
    if (r <= 0 || v.size[a] === 1) continue;
    const next = emptyBits(v.size);
    if (a === 0) filterRows(cur, next, r, op);
    else {
      const inner = a === 1 ? v.wordsPerRow : v.wordsPerRow * v.size[1];
      filterLines(cur.bits, next.bits, inner, v.size[a], r, op);
    }
    cur = next;
  }
  return cur;
}

/**
 * Along i: each output bit the AND / OR of the row's bits i - r .. i + r, bits outside the row counting
 * as the operation's identity (1 for AND, 0 for OR), which clips the window.
 */
function filterRows(src: BitVolume, dst: BitVolume, r: number, op: 'min' | 'max'): void {
  const W = src.wordsPerRow;
  const ni = src.size[0];
  const rows = src.size[1] * src.size[2];
  const identity = op === 'min' ? -1 : 0;
  // the last word's padding bits set to the identity
  const tail = ni % 32;
  const padMask = tail === 0 ? 0 : ~((1 << tail) - 1);
  const row = new Int32Array(W);
  const word = (x: number) => (x >= 0 && x < W ? row[x] : identity);
  const min = op === 'min';
  for (let n = 0; n < rows; n++) {
    const base = n * W;
    for (let w = 0; w < W; w++) row[w] = src.bits[base + w];
    if (padMask) row[W - 1] = min ? row[W - 1] | padMask : row[W - 1] & ~padMask;
    for (let w = 0; w < W; w++) {
      const cur = row[w];
      let acc = cur;
      if (r < 32) {
        // shifts within this word and its neighbours
        const next = w + 1 < W ? row[w + 1] : identity;
        const prev = w > 0 ? row[w - 1] : identity;
        for (let d = 1; d <= r; d++) {
          // bit i of `up` is bit i + d of the row; bit i of `down` is bit i - d
          const up = (cur >>> d) | (next << (32 - d));
          const down = (cur << d) | (prev >>> (32 - d));
          acc = min ? acc & up & down : acc | up | down;
        }
      } else
        for (let d = 1; d <= r; d++) {
          const q = d >> 5;
          const b = d & 31;
          const up = b === 0 ? word(w + q) : (word(w + q) >>> b) | (word(w + q + 1) << (32 - b));
          const down = b === 0 ? word(w - q) : (word(w - q) << b) | (word(w - q - 1) >>> (32 - b));
          acc = min ? acc & up & down : acc | up | down;
        }
      dst.bits[base + w] = acc;
    }
  }
}

/**
 * Along j or k: lines of `len` rows `inner` words apart (blocks of inner * len words), each output
 * row the AND / OR of the rows within r of it that exist (the window clipped at the faces).
 */
function filterLines(src: Int32Array, dst: Int32Array, inner: number, len: number, r: number, op: 'min' | 'max'): void {
  const block = inner * len;
  const min = op === 'min';
  for (let b0 = 0; b0 < src.length; b0 += block)
    for (let t = 0; t < len; t++) {
      const o = b0 + t * inner;
      const lo = b0 + Math.max(0, t - r) * inner;
      const hi = b0 + Math.min(len - 1, t + r) * inner;
      for (let q = 0; q < inner; q++) {
        let acc = src[lo + q];
        if (min) for (let p = lo + inner + q; p <= hi + q; p += inner) acc &= src[p];
        else for (let p = lo + inner + q; p <= hi + q; p += inner) acc |= src[p];
        dst[o + q] = acc;
      }
    }
}
