/**
 * The QA's similarity number: normalised cross-correlation of two images on the same grid inside a
 * mask (two passes in float64: means, then centred sums). The GPU cascade computes the same from
 * per-row co-moments (device/masked-ncc-on-device.ts).
 */
/** Normalised cross-correlation of a and b inside the mask's nonzero voxels. */
export function maskedNcc(a: ArrayLike<number>, b: ArrayLike<number>, mask: Uint8Array): number {
  let n = 0;
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < mask.length; i++)
    if (mask[i]) {
      n++;
      sa += a[i];
      sb += b[i];
    }
  const ma = sa / n;
  const mb = sb / n;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < mask.length; i++)
    if (mask[i]) {
      const x = a[i] - ma;
      const y = b[i] - mb;
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
  return ab / Math.sqrt(aa * bb || 1);
}
