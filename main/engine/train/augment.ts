/**
 * Intensity augmentation of one normalised patch (each view of a pair independently, so the
 * embedding learns to ignore it): Gaussian noise, Gaussian blur, and a random linear intensity
 * change. Patches are [z][y][x] with x fastest. All randomness comes from the given Rng.
 */
import type { Rng } from './rng.ts';

export interface AugmentOptions {
  /** Probability and standard deviation range (normalised units; air is -50) of additive noise. */
  noiseProb?: number;
  noiseStd?: [number, number];
  /** Probability and sigma range (voxels) of a separable Gaussian blur. */
  blurProb?: number;
  blurSigma?: [number, number];
  /** Probability and ranges of v -> v * scale + shift. */
  intensityProb?: number;
  intensityScale?: [number, number];
  intensityShift?: [number, number];
}

export const DEFAULT_AUGMENT: Required<AugmentOptions> = {
  noiseProb: 0.5,
  noiseStd: [0, 5],
  blurProb: 0.2,
  blurSigma: [0.5, 1.5],
  intensityProb: 0.5,
  intensityScale: [0.9, 1.1],
  intensityShift: [-10, 10],
};

export const NO_AUGMENT: Required<AugmentOptions> = { ...DEFAULT_AUGMENT, noiseProb: 0, blurProb: 0, intensityProb: 0 };

/** Augment in place; size is [x, y, z] voxels (the patch Volume's size). */
export function augmentPatch(
  data: Float32Array,
  size: [number, number, number],
  rng: Rng,
  o: AugmentOptions = {},
): void {
  const a = { ...DEFAULT_AUGMENT, ...o };
  if (rng.next() < a.blurProb) blur(data, size, rng.uniform(a.blurSigma[0], a.blurSigma[1]));
  if (rng.next() < a.intensityProb) {
    const s = rng.uniform(a.intensityScale[0], a.intensityScale[1]);
    const t = rng.uniform(a.intensityShift[0], a.intensityShift[1]);
    for (let n = 0; n < data.length; n++) data[n] = data[n] * s + t;
  }
  if (rng.next() < a.noiseProb) {
    const std = rng.uniform(a.noiseStd[0], a.noiseStd[1]);
    for (let n = 0; n < data.length; n += 2) {
      // Box-Muller: two normal deviates per two uniforms
      const u = Math.max(rng.next(), 1e-12);
      const r = std * Math.sqrt(-2 * Math.log(u));
      const th = 2 * Math.PI * rng.next();
      data[n] += r * Math.cos(th);
      if (n + 1 < data.length) data[n + 1] += r * Math.sin(th);
    }
  }
}

/** Separable Gaussian blur with edge replication. */
export function blur(data: Float32Array, size: [number, number, number], sigma: number): void {
  const rad = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float64Array(2 * rad + 1);
  let sum = 0;
  for (let t = -rad; t <= rad; t++) sum += k[t + rad] = Math.exp(-(t * t) / (2 * sigma * sigma));
  for (let t = 0; t < k.length; t++) k[t] /= sum;
  const strides = [1, size[0], size[0] * size[1]];
  const line = new Float64Array(Math.max(...size));
  for (let axis = 0; axis < 3; axis++) {
    const len = size[axis];
    if (len === 1) continue;
    const st = strides[axis];
    const [b0, b1] = [0, 1, 2].filter((b) => b !== axis);
    for (let u = 0; u < size[b1]; u++)
      for (let v = 0; v < size[b0]; v++) {
        const base = u * strides[b1] + v * strides[b0];
        for (let t = 0; t < len; t++) line[t] = data[base + t * st];
        for (let t = 0; t < len; t++) {
          let acc = 0;
          for (let q = -rad; q <= rad; q++) acc += k[q + rad] * line[Math.min(len - 1, Math.max(0, t + q))];
          data[base + t * st] = acc;
        }
      }
  }
}
