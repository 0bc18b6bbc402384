/**
 * The SAM-deform network as a cascade stage: on the deform grid G (the fixed body's bounding box plus a
 * margin, at the network's spacing, grown to a multiple of its stride), the network reads the fixed
 * image, the moving image and features after the earlier stages, and predicts x -> x + u(x); the stage
 * returns that map, followed by the earlier stages, as a correction added in moving space (inputs.ts
 * correctionField), which the instance optimisation then refines (SAME++: network + instance
 * optimisation). Fields: mm, LPS, on G (field/field.ts conventions).
 */
import * as tf from '@tensorflow/tfjs-core';
import { CancelledError, InputError } from '../../errors.ts';
import type { Geometry } from '../../volume/geometry.ts';
import { gridWithSpacing } from '../../volume/resample.ts';
import type { Vec3, Volume } from '../../volume/volume.ts';
import type { Field } from '../field/field.ts';
import { bodyGrid } from '../deform/sam-deform.ts';
import { sizeMultiple, type DeformNetConfig } from './config.ts';
import { basePoints, buildSample, correctionField, padGrid, sampleTensors, voxelToWorld } from './inputs.ts';
import { lncc } from './losses.ts';
import { warp } from './layers.ts';
import { deformForward, type DeformNetWeights } from './network.ts';

export interface DeformNet {
  config: DeformNetConfig;
  weights: DeformNetWeights;
  /** Where it was read from (QA). */
  file?: string;
}

export interface DeformNetStageResult {
  field: Field;
  stats: {
    file?: string;
    grid: { size: Vec3; spacingMm: number };
    /** Mean |u| of the network's displacement over the counted voxels, mm. */
    meanDisplacementMm: number;
    lnccBefore: number;
    lnccAfter: number;
  };
}

export async function deformNetStage(
  fixed: Volume,
  moving: Volume,
  u0: (grid: Geometry) => Field,
  fixedMask: Volume,
  features: { fixed: Volume<Float32Array>; moving: Volume<Float32Array> },
  net: DeformNet,
  o: { signal?: AbortSignal; onProgress?: (stage: string, done: number, total: number) => void } = {},
): Promise<DeformNetStageResult> {
  const s = net.config.spacingMm;
  const G = padGrid(bodyGrid(gridWithSpacing(fixed, [s, s, s]), fixedMask, 4), sizeMultiple(net.config));
  o.onProgress?.('deform network: inputs', 0, 2);
  const sample = buildSample({
    grid: G,
    fixed,
    moving,
    base: basePoints(G, u0(G)),
    fixedMask,
    features,
    corrRadius: net.config.corrRadius,
  });
  if (sample.featureChannels !== net.config.featureChannels)
    throw new InputError(
      net.file ?? 'deform network',
      `reads ${net.config.featureChannels} feature channels, the cascade gives ${sample.featureChannels}`,
    );
  if (o.signal?.aborted) throw new CancelledError('SAM-deform network');
  o.onProgress?.('deform network: forward', 1, 2);
  const { input, mask } = sampleTensors(sample);
  try {
    const out = deformForward(net.weights, input, net.config);
    const [before, after] = tf.tidy(() => [
      lncc(input.fixed, input.moving, 2, mask),
      lncc(input.fixed, warp(input.moving, out.displacement), 2, mask),
    ]);
    const u = (await out.displacement.data()) as Float32Array;
    const lb = (await before.data())[0];
    const la = (await after.data())[0];
    tf.dispose([out.velocity, out.displacement, before, after]);
    const uWorld = voxelToWorld(G, u);
    let sum = 0;
    let cnt = 0;
    for (let v = 0; v < sample.mask.length; v++)
      if (sample.mask[v]) {
        sum += Math.hypot(uWorld[3 * v], uWorld[3 * v + 1], uWorld[3 * v + 2]);
        cnt++;
      }
    o.onProgress?.('deform network', 2, 2);
    return {
      field: correctionField(G, sample.base, uWorld),
      stats: {
        file: net.file,
        grid: { size: [...G.size] as Vec3, spacingMm: s },
        meanDisplacementMm: cnt ? sum / cnt : 0,
        lnccBefore: -lb,
        lnccAfter: -la,
      },
    };
  } finally {
    tf.dispose([input.fixed, input.moving, input.correlation, mask]);
  }
}
