/** Shared fixtures of the embedding and matching tests: a real CT on the 2 mm LPS network grid, tiny engines. */
import * as tf from '@tensorflow/tfjs-core';
import { initTfBackend } from '../../main/engine/compute/tf-backend.ts';
import { createTfjsEngine } from '../../main/engine/compute/tfjs-engine.ts';
import type { EmbeddingEngine } from '../../main/engine/compute/embedding-engine.ts';
import { getSamConfig } from '../../main/engine/sam/config.ts';
import { createWeights } from '../../main/engine/sam/network.ts';
import { networkGrid } from '../../main/engine/sam/embed-volume.ts';
import { readVolume } from '../../main/engine/volume/io/index.ts';
import { resample } from '../../main/engine/volume/resample.ts';
import type { Volume } from '../../main/engine/volume/volume.ts';
import { dataPath } from '../helpers.ts';

/** Thorax/abdomen CT, 122x101x112 at 3 mm, stored RAS-flipped (direction diag(-1, -1, 1)). */
export const EXAMPLE_CT = dataPath('TotalSegmentator', 'tests', 'reference_files', 'example_ct.nii.gz');

let ct: Promise<Volume> | undefined;

/** EXAMPLE_CT resampled onto its 2 mm LPS network grid (183x151x168), HU as float32. */
export function exampleCt2mm(): Promise<Volume> {
  ct ??= readVolume(EXAMPLE_CT).then((v) => resample(v, networkGrid(v, 2), { fill: -1024, outputType: 'float32' }));
  return ct;
}

/** The 'tiny' network at a fixed random initialisation, on tfjs-cpu. */
export async function tinyEngine(seed = 3): Promise<EmbeddingEngine> {
  await initTfBackend({ backend: 'cpu', gradients: false });
  const config = getSamConfig('tiny');
  return createTfjsEngine({ config, weights: createWeights(config, seed) });
}

export { tf };
