/**
 * A pair made from the real TotalSegmentator abdomen CT by a known rotation, scale and shift (3 mm,
 * 10 HU noise, no deformation, the whole field of view): the NCC tests' pair (ncc-refine.test.ts,
 * ncc-match-wgsl.test.ts).
 */
import { makeSyntheticPair } from '../../main/engine/bench/synthetic-pair.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { EXAMPLE_CT } from './embed-fixtures.ts';

export async function rigidExamplePair() {
  const ct = await readVolume(EXAMPLE_CT);
  return makeSyntheticPair(ct, {
    seed: 4,
    maxRotationDeg: 6,
    maxScale: 0.05,
    maxTranslationMm: 15,
    maxDeformationMm: 0,
    bumps: 0,
    noiseHu: 10,
    fovKeep: [1, 1],
    fovKeepInPlane: [1, 1],
  });
}
