/**
 * One slice of an int16 volume (i fastest) as grey RGBA pixels with the views' window/level mapping
 * (grey = (HU - level) / window + 1/2, clamped), for the spyglass lens, which draws the warped slice
 * with a 2-D canvas instead of a second WebGL layer. Columns run along the lower in-plane index axis,
 * rows along the higher one. Pure function (no DOM).
 */

export interface SlicePixels {
  width: number;
  height: number;
  /** Index axes along the columns and the rows. */
  colAxis: 0 | 1 | 2;
  rowAxis: 0 | 1 | 2;
  rgba: Uint8ClampedArray<ArrayBuffer>;
}

export function sliceGreyPixels(
  voxels: Int16Array,
  size: readonly [number, number, number],
  axis: 0 | 1 | 2,
  slice: number,
  window: number,
  level: number,
): SlicePixels {
  const [colAxis, rowAxis] = ([0, 1, 2] as const).filter((a) => a !== axis) as [0 | 1 | 2, 0 | 1 | 2];
  const stride = [1, size[0], size[0] * size[1]];
  const width = size[colAxis];
  const height = size[rowAxis];
  const rgba = new Uint8ClampedArray(width * height * 4);
  const w = Math.max(1, window);
  const lo = level - w / 2;
  const base = slice * stride[axis];
  let p = 0;
  for (let r = 0; r < height; r++) {
    const row = base + r * stride[rowAxis];
    for (let c = 0; c < width; c++, p += 4) {
      const g = ((voxels[row + c * stride[colAxis]] - lo) / w) * 255;
      rgba[p] = rgba[p + 1] = rgba[p + 2] = g; // Uint8ClampedArray rounds and clamps
      rgba[p + 3] = 255;
    }
  }
  return { width, height, colAxis, rowAxis, rgba };
}
