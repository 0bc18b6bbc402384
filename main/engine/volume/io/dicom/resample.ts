/**
 * Bringing slices that are not on a regular grid (gantry tilt, uneven spacing, interpolated
 * gaps) onto one, as dcm2niix does: each output slice lies at a regular position along the
 * slice normal; its voxels are sampled in the two bracketing input slices at the same in-plane
 * world position (bilinear, which undoes the per-slice shift of a tilted gantry) and linearly
 * interpolated between them along the normal. Where no input slice covers a voxel, the
 * minimum value of the input is used (the scanner's own outside-the-field value or air).
 * Integer data stay integer (rounded).
 */
import type { Resampling } from './geometry.ts';

type Voxels = Int16Array | Float32Array;

/** Accumulate weight * slice `s` sampled at (i - shiftI, j - shiftJ) into acc / wsum. */
function addShifted(
  src: Voxels,
  ni: number,
  nj: number,
  s: number,
  shiftI: number,
  shiftJ: number,
  weight: number,
  acc: Float64Array,
  wsum: Float32Array,
): void {
  const base = s * ni * nj;
  const di = -shiftI;
  const dj = -shiftJ;
  const iu = Math.floor(di);
  let fu = di - iu;
  const jv = Math.floor(dj);
  let fv = dj - jv;
  if (fu < 1e-9) fu = 0;
  if (fv < 1e-9) fv = 0;
  for (let j = 0; j < nj; j++) {
    const v0 = j + jv;
    const v1 = fv > 0 ? v0 + 1 : v0;
    if (v0 < 0 || v1 > nj - 1) continue;
    const r0 = base + v0 * ni;
    const r1 = base + v1 * ni;
    const out = j * ni;
    const iStart = Math.max(0, -iu);
    const iEnd = Math.min(ni - 1, ni - 1 - iu - (fu > 0 ? 1 : 0));
    for (let i = iStart; i <= iEnd; i++) {
      const u0 = i + iu;
      const u1 = fu > 0 ? u0 + 1 : u0;
      const a = src[r0 + u0] + fu * (src[r0 + u1] - src[r0 + u0]);
      const b = src[r1 + u0] + fu * (src[r1 + u1] - src[r1 + u0]);
      acc[out + i] += weight * (a + fv * (b - a));
      wsum[out + i] += weight;
    }
  }
}

export function resampleSlices(src: Voxels, ni: number, nj: number, r: Resampling): Voxels {
  const nIn = r.inputZ.length;
  const nOut = r.outputZ.length;
  const plane = ni * nj;
  const out: Voxels = src instanceof Int16Array ? new Int16Array(plane * nOut) : new Float32Array(plane * nOut);
  let fill = Infinity;
  for (let n = 0; n < src.length; n++) if (src[n] < fill) fill = src[n];
  if (!Number.isFinite(fill)) fill = 0;
  const acc = new Float64Array(plane);
  const wsum = new Float32Array(plane);
  const round = out instanceof Int16Array;
  let s = 0;
  for (let k = 0; k < nOut; k++) {
    const z = r.outputZ[k];
    while (s < nIn - 2 && r.inputZ[s + 1] < z) s++;
    const z0 = r.inputZ[s];
    const z1 = r.inputZ[Math.min(s + 1, nIn - 1)];
    let t = z1 > z0 ? (z - z0) / (z1 - z0) : 0;
    t = Math.min(1, Math.max(0, t));
    if (Math.abs(t) < 1e-6) t = 0;
    if (Math.abs(1 - t) < 1e-6) t = 1;
    acc.fill(0);
    wsum.fill(0);
    if (t < 1) addShifted(src, ni, nj, s, r.shiftI[s], r.shiftJ[s], 1 - t, acc, wsum);
    if (t > 0) addShifted(src, ni, nj, s + 1, r.shiftI[s + 1], r.shiftJ[s + 1], t, acc, wsum);
    const o = k * plane;
    for (let n = 0; n < plane; n++) {
      const v = wsum[n] > 1e-6 ? acc[n] / wsum[n] : fill;
      out[o + n] = round ? Math.max(-32768, Math.min(32767, Math.round(v))) : v;
    }
  }
  return out;
}
