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
import { fixedWindows, lnccLoss } from '../deform/local-ncc.ts';
import { trilinearAt } from '../../volume/interpolate.ts';
import { deformForward, velocityToDisplacement, type DeformNetWeights } from './network.ts';
import type { VelocityRunner } from './onnx.ts';
import { inputChannels } from './config.ts';

export interface DeformNet {
  config: DeformNetConfig;
  weights: DeformNetWeights;
  /** Where it was read from (QA). */
  file?: string;
  /** The convolutional part on ONNX Runtime (onnx.ts); without it, tfjs runs the whole network. */
  velocity?: VelocityRunner;
}

export interface DeformNetStageResult {
  field: Field;
  stats: {
    file?: string;
    /** 'onnxruntime' or 'tfjs-<backend>'. */
    runtime: string;
    grid: { size: Vec3; spacingMm: number };
    /** Mean |u| of the network's displacement over the counted voxels, mm. */
    meanDisplacementMm: number;
    lnccBefore: number;
    lnccAfter: number;
  };
}

/** img(x + u(x)) on its own grid (u in voxel units, NDHWC; border values outside). */
function warpOnGrid(img: Float32Array, size: Vec3, u: Float32Array): Float32Array {
  const out = new Float32Array(img.length);
  const v = new Float64Array(1);
  for (let k = 0, q = 0; k < size[2]; k++)
    for (let j = 0; j < size[1]; j++)
      for (let i = 0; i < size[0]; i++, q++) {
        trilinearAt(img, size, 1, i + u[3 * q], j + u[3 * q + 1], k + u[3 * q + 2], 'border', v);
        out[q] = v[0];
      }
  return out;
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
    let out: { velocity: tf.Tensor5D; displacement: tf.Tensor5D };
    if (net.velocity) {
      // NDHWC input channels: fixed, moving, correlation (as deformForward's concatenation)
      const N = sample.mask.length;
      const C = inputChannels(net.config);
      const D = sample.correlationChannels;
      const x = new Float32Array(N * C);
      for (let v = 0; v < N; v++) {
        x[v * C] = sample.fixed[v];
        x[v * C + 1] = sample.moving[v];
        x.set(sample.correlation.subarray(v * D, v * D + D), v * C + 2);
      }
      const [ni, nj, nk] = G.size;
      const velocity = tf.tensor5d(await net.velocity(x, G.size), [1, nk, nj, ni, 3]);
      out = { velocity, displacement: velocityToDisplacement(velocity, net.config) };
    } else out = deformForward(net.weights, input, net.config);
    const u = (await out.displacement.data()) as Float32Array;
    tf.dispose([out.velocity, out.displacement]);
    // LNCC (window radius 2, counted voxels) before and after, on the CPU (local-ncc.ts)
    const windows = fixedWindows(sample.fixed, G.size, 2, sample.mask);
    const lb = lnccLoss(windows, sample.moving);
    const la = lnccLoss(windows, warpOnGrid(sample.moving, G.size, u));
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
        runtime: net.velocity ? 'onnxruntime' : `tfjs-${tf.getBackend()}`,
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
