/**
 * Intensity operations: clipping, the network's normalisation, and the check that a volume is CT
 * in Hounsfield units before the CT-only stages use it.
 */
import { InputError } from '../errors.ts';
import { withData, type Volume } from './volume.ts';

/** Clip every value into [lo, hi], keeping the voxel type. */
export function clipIntensity(volume: Volume, lo: number, hi: number): Volume {
  const out = volume.data.slice();
  for (let n = 0; n < out.length; n++) {
    const v = out[n];
    out[n] = v < lo ? lo : v > hi ? hi : v;
  }
  return withData(volume, out);
}

export interface NetworkNormalization {
  /** HU window clipped before scaling (official SAM config: [-1024, 3071]). */
  inMin: number;
  inMax: number;
  /** Linear map of the window onto [outMin, outMax] (official: [0, 255]) ... */
  outMin: number;
  outMax: number;
  /** ... then minus this bias (official: 50). */
  bias: number;
}

/** The official SAM configuration's RescaleIntensity: clip [-1024, 3071] HU, map to [0, 255], subtract 50. */
export const SAM_NORMALIZATION: NetworkNormalization = { inMin: -1024, inMax: 3071, outMin: 0, outMax: 255, bias: 50 };

/** Float32 network input from HU, as the official SAM pipeline computes it. */
export function normalizeForNetwork(volume: Volume, n: NetworkNormalization = SAM_NORMALIZATION): Volume<Float32Array> {
  const src = volume.data;
  const out = new Float32Array(src.length);
  const scale = (n.outMax - n.outMin) / (n.inMax - n.inMin);
  for (let i = 0; i < src.length; i++) {
    let v = src[i];
    v = v < n.inMin ? n.inMin : v > n.inMax ? n.inMax : v;
    out[i] = (v - n.inMin) * scale + n.outMin - n.bias;
  }
  return withData(volume, out);
}

/** How many voxels are NaN or infinite. */
export function countNonFinite(volume: Volume): number {
  const d = volume.data;
  if (!(d instanceof Float32Array || d instanceof Float64Array)) return 0;
  let n = 0;
  for (let q = 0; q < d.length; q++) if (!Number.isFinite(d[q])) n++;
  return n;
}

/**
 * NaN or infinite voxels (a resampling's "no data", a masked export) read as air, -1024 HU: every
 * stage compares, smooths and interpolates values, and one NaN spreads (the stage checks' NCC became
 * NaN and let a stage through unchecked). The same volume when there are none; the count either way.
 */
export function nonFiniteAsAir(volume: Volume): { volume: Volume; count: number } {
  const count = countNonFinite(volume);
  if (count === 0) return { volume, count };
  const out = volume.data.slice();
  for (let q = 0; q < out.length; q++) if (!Number.isFinite(out[q])) out[q] = -1024;
  return { volume: withData(volume, out), count };
}

export interface CtCheck {
  ok: boolean;
  reason: string;
}

/**
 * Is this CT in HU? The modality must be CT where the format records it (DICOM), and the values
 * must look like HU in every format: a CT in HU has air near -1000 (at least 1% of voxels in
 * -1100..-900; whole scans have tens of percent). A DICOM series that says CT but stores raw values
 * without its RescaleIntercept (air near 0, as the Slicer CTHead test series) fails too: using it as
 * HU would silently shift every value by about 1024.
 */
export function checkCt(volume: Volume): CtCheck {
  if (volume.components !== 1) return { ok: false, reason: `has ${volume.components} components, not a scalar CT` };
  const mod = volume.meta.modality;
  if (mod && mod !== 'CT') return { ok: false, reason: `modality is ${mod}, not CT` };
  const d = volume.data;
  const step = Math.max(1, Math.floor(d.length / 200000));
  let air = 0;
  let n = 0;
  let min = Infinity;
  let max = -Infinity;
  // a label map or mask: few non-negative integers, constant over regions (a labelled voxel's
  // neighbour along i has its label; in an image its value differs by the noise)
  const distinct = new Set<number>();
  let integers = true;
  let labelled = 0;
  let sameNext = 0;
  for (let i = 0; i < d.length; i += step, n++) {
    const v = d[i];
    if (v <= -900 && v >= -1100) air++;
    if (v < min) min = v;
    if (v > max) max = v;
    if (integers && Number.isInteger(v) && distinct.size <= 256) distinct.add(v);
    else integers = false;
    if (v !== 0 && i + 1 < d.length) {
      labelled++;
      if (d[i + 1] === v) sameNext++;
    }
  }
  const frac = air / n;
  const pct = (frac * 100).toFixed(frac < 0.01 ? 2 : 1);
  // no negative values at all: stored values never rescaled to HU, or labels; negative ones but
  // little air: a field of view with almost no air (a single slice, a tight crop), which the body mask needs
  const labels = integers && min >= 0 && distinct.size <= 256 && sameNext >= 0.8 * labelled;
  const why = labels
    ? `${distinct.size} distinct integer values in ${min}..${max}: a label map or mask, not an image`
    : min >= 0
      ? `no value below 0: stored values not rescaled to HU (a missing RescaleIntercept?), or not a CT (MR, PET)`
      : min > -500
        ? `lowest value ${Math.round(min)}, nothing near air's -1000 HU: not a CT (MR, PET?) or values not in HU`
        : `lowest value ${Math.round(min)}: the field of view holds almost no air around the body (a single slice or a tight crop?)`;
  if (frac < 0.01)
    return {
      ok: false,
      reason:
        mod === 'CT'
          ? `modality is CT but only ${pct}% of voxels lie in the air range -1100..-900 HU; ${why}`
          : `${why} (${pct}% of voxels in the air range -1100..-900 HU)`,
    };
  return { ok: true, reason: `${mod === 'CT' ? 'modality CT, ' : ''}HU range plausible (${pct}% air)` };
}

/** Throw an InputError naming the input when the volume is not CT in HU. */
export function requireCt(volume: Volume, name = volume.meta.source ?? 'volume'): void {
  const c = checkCt(volume);
  if (!c.ok) throw new InputError(name, `not a CT in Hounsfield units: ${c.reason}`);
}
