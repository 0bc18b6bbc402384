/**
 * The display copy of a volume: int16 HU, one buffer shared by the three slice views. CT fits int16
 * exactly (air -1024 .. bone/metal 3071+); other types are rounded and clamped to the int16 range.
 */
import type { Volume } from '../volume/volume.ts';

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
