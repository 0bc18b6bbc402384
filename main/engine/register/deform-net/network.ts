/**
 * The SAM-deform network as a pure function of a weights record (as sam/network.ts): forward(weights,
 * input, config) gives the stationary velocity and its integrated displacement. Architecture
 * (VoxelMorph's U-Net, SAME++'s inputs; config.ts): an optional 1x1x1 stem that mixes the input
 * channels, encoder convs (level 0 at full resolution, then one
 * stride-2 conv per level), decoder (nearest upsampling by 2, concatenation with the encoder level of
 * the same resolution, conv), extra full-resolution convs, LeakyReLU(0.2) after every conv but the
 * last, and a 3-channel 'flow' conv initialised near zero (normal, std 1e-5, as VoxelMorph) so that an
 * untrained network starts at the identity.
 * Tensors: NDHWC [1, K, J, I, channels]; velocity and displacement in voxel units of G, channels
 * (di, dj, dk). K, J, I must be multiples of sizeMultiple(config).
 */
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../../errors.ts';
import { initValues } from '../../sam/network.ts';
import { deformConvs, inputChannels, sizeMultiple, validateDeformNetConfig, type DeformNetConfig } from './config.ts';
import { conv3, downsample2, integrateVelocity, upsample2, upsampleLinear2 } from './layers.ts';

export type DeformNetWeights = Record<string, tf.Tensor>;

export interface DeformWeightSpec {
  name: string;
  shape: number[];
  init: 'he' | 'zero' | 'flow';
}

export function deformWeightSpecs(c: DeformNetConfig): DeformWeightSpec[] {
  return deformConvs(c).flatMap((l) => [
    {
      name: `${l.name}.w`,
      shape: [l.kernel, l.kernel, l.kernel, l.cin, l.cout],
      init: l.name === 'flow' ? 'flow' : 'he',
    },
    { name: `${l.name}.b`, shape: [l.cout], init: 'zero' },
  ]);
}

/** Deterministic initialisation: each tensor depends only on (seed, name). */
export function createDeformWeights(c: DeformNetConfig, seed = 0): DeformNetWeights {
  validateDeformNetConfig(c);
  const out: DeformNetWeights = {};
  for (const s of deformWeightSpecs(c)) {
    let v: Float32Array;
    if (s.init === 'zero') v = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    else {
      v = initValues({ name: `deform.${s.name}`, shape: s.shape, init: 'he' }, seed);
      if (s.init === 'flow') {
        // He std is sqrt(2 / fanIn): rescale to std 1e-5
        const std = Math.sqrt(2 / (v.length / 3)); // fan-in = values / output channels
        for (let q = 0; q < v.length; q++) v[q] *= 1e-5 / std;
      }
    }
    out[s.name] = tf.tensor(v, s.shape, 'float32');
  }
  return out;
}

export function checkDeformWeights(c: DeformNetConfig, w: DeformNetWeights, source = 'deform network weights'): void {
  const specs = deformWeightSpecs(c);
  for (const s of specs) {
    const t = w[s.name];
    if (!t) throw new InputError(source, `missing weight '${s.name}'`);
    if (t.shape.length !== s.shape.length || t.shape.some((d, q) => d !== s.shape[q]))
      throw new InputError(source, `weight '${s.name}' has shape [${t.shape}], expected [${s.shape}]`);
  }
  const extra = Object.keys(w).filter((k) => !specs.some((s) => s.name === k));
  if (extra.length) throw new InputError(source, `unexpected weights: ${extra.slice(0, 5).join(', ')}`);
}

export function disposeDeformWeights(w: DeformNetWeights): void {
  for (const t of Object.values(w)) t.dispose();
}

export interface DeformNetInput {
  /** [1, K, J, I, 1] fixed image, normalised (prepareImage). */
  fixed: tf.Tensor5D;
  /** [1, K, J, I, 1] moving image after the earlier stages, normalised. */
  moving: tf.Tensor5D;
  /** [1, K, J, I, (2r+1)^3] the SAM local-feature correlation (layers.ts correlationVolume). */
  correlation: tf.Tensor5D;
}

export interface DeformNetOutput {
  /** [1, K, J, I, 3] stationary velocity (voxel units, di, dj, dk). */
  velocity: tf.Tensor5D;
  /** [1, K, J, I, 3] its integrated displacement (scaling and squaring). */
  displacement: tf.Tensor5D;
}

const leaky = (x: tf.Tensor5D) => tf.leakyRelu(x, 0.2) as tf.Tensor5D;

export function deformForward(w: DeformNetWeights, input: DeformNetInput, c: DeformNetConfig): DeformNetOutput {
  const shape = input.fixed.shape;
  const m = sizeMultiple(c);
  if (shape[0] !== 1) throw new InputError('deform network input', `batch 1 only, got ${shape[0]}`);
  if (shape.slice(1, 4).some((n) => n % m !== 0))
    throw new InputError('deform network input', `grid [${shape.slice(1, 4)}] is not a multiple of ${m}`);
  return tf.tidy(() => {
    let x = tf.concat([input.fixed, input.moving, input.correlation], 4) as tf.Tensor5D;
    if (x.shape[4] !== inputChannels(c)) throw new Error('deform network: input channel count');
    const convs = deformConvs(c);
    const layer = (name: string, v: tf.Tensor5D, act = true) => {
      const spec = convs.find((l) => l.name === name)!;
      const y = conv3(v, w[`${name}.w`], w[`${name}.b`], spec.stride);
      return act ? leaky(y) : y;
    };
    if (c.stem > 0) x = layer('stem', x);
    const skips: tf.Tensor5D[] = [];
    c.encoder.forEach((_, l) => {
      x = layer(`enc${l}`, x);
      skips.push(x);
    });
    for (let d = 0; d < c.decoder.length; d++) {
      const skip = skips[skips.length - 2 - d];
      x = layer(`dec${d}`, tf.concat([upsample2(x), skip], 4) as tf.Tensor5D);
    }
    c.full.forEach((_, f) => (x = layer(`full${f}`, x)));
    const velocity = layer('flow', x, false);
    const displacement = velocityToDisplacement(velocity, c);
    return { velocity, displacement };
  });
}

/**
 * The displacement of a stationary velocity [1, K, J, I, 3] (voxel units): VoxelMorph's int_downsize 2,
 * integrated at half resolution by scaling and squaring, upsampled trilinearly (x2 in voxel units).
 */
export function velocityToDisplacement(velocity: tf.Tensor5D, c: DeformNetConfig): tf.Tensor5D {
  return tf.tidy(
    () =>
      tf.mul(
        upsampleLinear2(integrateVelocity(tf.mul(downsample2(velocity), 0.5) as tf.Tensor5D, c.integrationSteps)),
        2,
      ) as tf.Tensor5D,
  );
}
