/**
 * The display copy of a volume: int16 HU, one buffer shared by the three slice views. CT fits int16
 * exactly (air -1024 .. bone/metal 3071+); other types are rounded and clamped to the int16 range.
 * A warped image's copy marks where the warp had no moving data (DISPLAY_NO_DATA), so that the views
 * and the comparison composites tell "no data" from air and from a mismatch.
 */
import type { Volume } from '../volume/volume.ts';

/** The display value of a warped voxel whose mapped point lies outside the moving image. */
export const DISPLAY_NO_DATA = -32768;

export function displayVoxels(v: Volume): Int16Array {
  if (v.components !== 1) throw new RangeError('only scalar volumes can be displayed');
  if (v.data instanceof Int16Array) return v.data;
  const out = new Int16Array(v.data.length);
  const d = v.data;
  for (let n = 0; n < d.length; n++) {
    const x = Math.round(d[n]);
    out[n] = x > 32767 ? 32767 : x < -32768 ? -32768 : Number.isNaN(x) ? -1024 : x;
  }
  return out;
}

/**
 * The display copy of a warped image: DISPLAY_NO_DATA where `coverage` is 0 (register/field/coverage.ts),
 * the voxel's value elsewhere (at least -32767). Never writes into the volume's own voxels.
 */
export function warpedDisplayVoxels(warped: Volume, coverage: Uint8Array): Int16Array {
  const base = displayVoxels(warped);
  if (coverage.length !== base.length) throw new RangeError('the coverage mask is not on the warped grid');
  const out = base === warped.data ? new Int16Array(base.length) : base;
  for (let n = 0; n < base.length; n++)
    out[n] = coverage[n] ? (base[n] === DISPLAY_NO_DATA ? -32767 : base[n]) : DISPLAY_NO_DATA;
  return out;
}
