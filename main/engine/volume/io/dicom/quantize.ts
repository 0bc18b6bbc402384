/**
 * Choosing how a volume's values are stored as int16 with RescaleSlope / RescaleIntercept for
 * writing: integer data that fit are stored exactly (slope 1); other data use the full int16
 * range so that every value comes back within half a quantum (slope / 2). Slope and intercept
 * are formatted as DICOM decimal strings (16 characters at most) first, and the stored values
 * are computed from the formatted numbers, so what a reader applies is exactly what was used.
 */
import type { VoxelArray } from '../../volume.ts';

export interface Quantization {
  slope: number;
  intercept: number;
  slopeText: string;
  interceptText: string;
  /** Values come back exactly. */
  exact: boolean;
}

/** A number as a DICOM DS string of at most 16 characters, as precise as that allows. */
export function formatDS(x: number): string {
  if (!Number.isFinite(x)) throw new RangeError(`cannot write ${x} as a decimal string`);
  if (Object.is(x, -0) || x === 0) return '0';
  for (let p = 15; p >= 1; p--) {
    let s = x.toPrecision(p);
    if (s.includes('e')) {
      const [m, e] = s.split('e');
      s = `${m.includes('.') ? m.replace(/0+$/, '').replace(/\.$/, '') : m}e${e}`;
    } else if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
    if (s.length <= 16) return s;
  }
  return x.toExponential(6);
}

export function chooseQuantization(data: VoxelArray): Quantization {
  let lo = Infinity;
  let hi = -Infinity;
  let integral = true;
  const integerTyped = !(data instanceof Float32Array || data instanceof Float64Array);
  for (let n = 0; n < data.length; n++) {
    const v = data[n];
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    if (!integerTyped && integral && v !== Math.round(v)) integral = false;
  }
  if (lo > hi) lo = hi = 0; // no finite value
  const exactQ = (intercept: number): Quantization => ({
    slope: 1,
    intercept,
    slopeText: '1',
    interceptText: String(intercept),
    exact: true,
  });
  if (integral) {
    if (lo >= -32768 && hi <= 32767) return exactQ(0);
    if (hi - lo <= 65535) return exactQ(lo + 32768);
  }
  if (hi === lo) {
    const interceptText = formatDS(lo);
    return { slope: 1, intercept: Number(interceptText), slopeText: '1', interceptText, exact: false };
  }
  // Leave a little room so that DS rounding of slope and intercept cannot push values out of range.
  const slopeText = formatDS((hi - lo) / 65000);
  const interceptText = formatDS((hi + lo) / 2);
  return { slope: Number(slopeText), intercept: Number(interceptText), slopeText, interceptText, exact: false };
}

/** Stored int16 values of `count` voxels from `offset`; NaN becomes the lowest storable value, infinities clamp. */
export function quantize(data: VoxelArray, offset: number, count: number, q: Quantization, out: Int16Array): void {
  const { slope, intercept } = q;
  for (let n = 0; n < count; n++) {
    const v = data[offset + n];
    let s = q.exact ? v - intercept : Math.round((v - intercept) / slope);
    if (Number.isNaN(s)) s = -32768;
    out[n] = s < -32768 ? -32768 : s > 32767 ? 32767 : s;
  }
}
