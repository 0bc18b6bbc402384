/** Small SAM-deform problems on smooth random images, shared by the host and device deform tests. */
import type { DeformProblem } from '../../main/engine/register/deform/deform-loss.ts';
import { fixedWindows } from '../../main/engine/register/deform/local-ncc.ts';
import type { Affine3x4 } from '../../main/engine/volume/geometry.ts';
import { makeSyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import type { Volume } from '../../main/engine/volume/volume.ts';

/** A smooth random image on size [ni, nj, nk] (sum of a few blobs), `channels` interleaved. */
export function blobs(size: readonly number[], r: () => number, channels = 1): Float32Array {
  const [ni, nj, nk] = size;
  const out = new Float32Array(ni * nj * nk * channels);
  const n = Math.max(ni, nj, nk);
  for (let c = 0; c < channels; c++)
    for (let b = 0; b < 6; b++) {
      const cx = r() * ni;
      const cy = r() * nj;
      const cz = r() * nk;
      const s = 1.5 + (r() * 2 * n) / 10;
      const a = r() - 0.5;
      for (let k = 0, v = 0; k < nk; k++)
        for (let j = 0; j < nj; j++)
          for (let i = 0; i < ni; i++, v++)
            out[v * channels + c] += a * Math.exp(-((i - cx) ** 2 + (j - cy) ** 2 + (k - cz) ** 2) / (2 * s * s));
    }
  return out;
}

/**
 * A problem on G = `size` at 2 mm (origin 0): a bent base map, intensity windows of radius 2, and 3
 * feature channels. The moving image and features lie on `movingSize` with the world -> index map
 * `toIndex` (default: the same 2 mm grid).
 */
export function blobProblem(
  r: () => number,
  size: readonly number[] = [10, 10, 10],
  movingSize: readonly number[] = size,
  toIndex: Affine3x4 = [0.5, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0.5, 0],
): { problem: DeformProblem; n: number; N: number } {
  const [ni, nj, nk] = size;
  const N = ni * nj * nk;
  const I = blobs(size, r);
  const M = blobs(movingSize, r);
  const C = 3;
  const fixedFeat = blobs(size, r, C);
  const movingFeat = blobs(movingSize, r, C);
  const base = new Float32Array(3 * N);
  for (let k = 0, v = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, v++) {
        base[3 * v] = 2 * i + 0.7 * Math.sin(j / 3);
        base[3 * v + 1] = 2 * j + 0.5 * Math.cos(k / 2);
        base[3 * v + 2] = 2 * k + 0.3;
      }
  const weight = new Float32Array(N).fill(1);
  const problem: DeformProblem = {
    size,
    spacing: [2, 2, 2],
    base,
    windows: fixedWindows(I, size, 2, weight),
    moving: { data: M, size: movingSize, channels: 1, toIndex },
    alpha: 0.5,
    features: { fixed: fixedFeat, moving: { data: movingFeat, size: movingSize, channels: C, toIndex }, weight: 0.3 },
  };
  return { problem, n: ni, N };
}

/** A pair made from `ct` by one smooth bump of up to 15 mm (no affine, full field of view), 10 HU noise. */
export function smoothDeformationPair(ct: Volume): ReturnType<typeof makeSyntheticPair> {
  return makeSyntheticPair(ct, {
    seed: 4,
    maxRotationDeg: 0,
    maxScale: 0,
    maxShear: 0,
    maxTranslationMm: 0,
    bumps: 1,
    maxDeformationMm: 15,
    bumpSigmaMm: [35, 45],
    noiseHu: 10,
    fovKeep: [1, 1],
    fovKeepInPlane: [1, 1],
  });
}
