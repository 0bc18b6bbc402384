/**
 * The SAM-deform network's configuration (SAME++'s learned deformable stage, VoxelMorph-style):
 * a small U-Net on the deform grid G (default 4 mm, the grid of the instance optimisation and of the
 * SAM local embeddings) whose input is, per voxel of G,
 *   channel 0        the fixed CT, clipped to [-1000, 1000] HU / 1000 (sam-deform.ts prepareImage)
 *   channel 1        the moving CT after the earlier stages (affine, coarse), normalised the same way
 *   channels 2..     the SAM local-feature correlation: cosine of the fixed local embedding at x with
 *                    the warped moving one at x + d, d over the (2r+1)^3 neighbouring voxels of G
 *                    (r = corrRadius; 27 channels for r = 1), layers.ts correlationVolume
 * and whose output is a stationary velocity field (3 channels, voxel units of G along i, j, k),
 * integrated by scaling and squaring in `integrationSteps` steps (layers.ts integrateVelocity) at half
 * resolution and upsampled trilinearly, as VoxelMorph (int_downsize 2).
 * Layout (tfjs): NDHWC [batch, k, j, i, channels].
 */
import { InputError } from '../../errors.ts';

export interface DeformNetConfig {
  name: string;
  /**
   * Channels of a 1x1x1 conv that mixes the input channels first (0: none). The correlation's 27
   * channels would otherwise make the first 3x3x3 conv the most expensive layer by far on a CPU.
   */
  stem: number;
  /** Channels of the encoder levels; level l has stride 2^l (level 0: full resolution of G). */
  encoder: number[];
  /** Channels of the decoder convs after each upsampling (one per level above 0), then extra full-resolution convs. */
  decoder: number[];
  /** Extra full-resolution convs after the decoder (VoxelMorph's "remaining" convs). */
  full: number[];
  /** SAM local-feature channels the correlation reads (principal components, embedding-features.ts). */
  featureChannels: number;
  /** Neighbourhood radius of the correlation in voxels of G (1: 27 displacements). */
  corrRadius: number;
  /** Scaling-and-squaring steps (7: the velocity is divided by 128, then composed with itself 7 times). */
  integrationSteps: number;
  /** Spacing of G in mm. */
  spacingMm: number;
}

export const DEFORM_NET_CONFIGS: Record<string, DeformNetConfig> = {
  small: {
    name: 'small',
    stem: 8,
    encoder: [8, 16, 16],
    decoder: [16, 8],
    full: [8],
    featureChannels: 8,
    corrRadius: 1,
    integrationSteps: 7,
    spacingMm: 4,
  },
  tiny: {
    name: 'tiny',
    stem: 4,
    encoder: [4, 4],
    decoder: [4],
    full: [],
    featureChannels: 8,
    corrRadius: 1,
    integrationSteps: 7,
    spacingMm: 4,
  },
};

export function getDeformNetConfig(name: string): DeformNetConfig {
  const c = DEFORM_NET_CONFIGS[name];
  if (!c)
    throw new InputError(
      'deform network',
      `unknown configuration '${name}' (${Object.keys(DEFORM_NET_CONFIGS).join(', ')})`,
    );
  return structuredClone(c);
}

/** Input channels of the first encoder conv. */
export function inputChannels(c: DeformNetConfig): number {
  return 2 + (2 * c.corrRadius + 1) ** 3;
}

/** Spatial sizes must be multiples of this (one stride-2 conv per encoder level above 0; integration at half resolution). */
export function sizeMultiple(c: DeformNetConfig): number {
  return Math.max(2, 2 ** (c.encoder.length - 1));
}

export function validateDeformNetConfig(c: DeformNetConfig): void {
  const fail = (p: string): never => {
    throw new InputError('deform network configuration', p);
  };
  const positive = (a: unknown) => Array.isArray(a) && a.every((v) => Number.isInteger(v) && v > 0);
  if (typeof c !== 'object' || c === null) fail('not an object');
  if (typeof c.name !== 'string') fail('name is not a string');
  if (!Number.isInteger(c.stem) || c.stem < 0) fail('stem: a channel count (0: none)');
  if (!positive(c.encoder) || c.encoder.length < 1) fail('encoder: a list of positive channel counts');
  if (!positive(c.decoder) || c.decoder.length !== c.encoder.length - 1)
    fail('decoder: one positive channel count per encoder level above the first');
  if (!Array.isArray(c.full) || !positive(c.full)) fail('full: a list of positive channel counts');
  if (!Number.isInteger(c.featureChannels) || c.featureChannels < 1) fail('featureChannels: a positive integer');
  if (!Number.isInteger(c.corrRadius) || c.corrRadius < 0 || c.corrRadius > 3) fail('corrRadius: 0 to 3');
  if (!Number.isInteger(c.integrationSteps) || c.integrationSteps < 0 || c.integrationSteps > 12)
    fail('integrationSteps: 0 to 12');
  if (!(c.spacingMm > 0)) fail('spacingMm: a positive number');
}

export interface DeformConvSpec {
  name: string;
  cin: number;
  cout: number;
  stride: 1 | 2;
  /** Kernel size (3, or 1 for the stem). */
  kernel: 1 | 3;
}

/** Every conv of the network in canonical order (the weights file's order). */
export function deformConvs(c: DeformNetConfig): DeformConvSpec[] {
  const out: DeformConvSpec[] = [];
  let cin = inputChannels(c);
  if (c.stem > 0) {
    out.push({ name: 'stem', cin, cout: c.stem, stride: 1, kernel: 1 });
    cin = c.stem;
  }
  c.encoder.forEach((ch, l) => {
    out.push({ name: `enc${l}`, cin, cout: ch, stride: l === 0 ? 1 : 2, kernel: 3 });
    cin = ch;
  });
  // decoder: upsample the deeper level, concatenate the skip of the level above, conv
  for (let d = 0; d < c.decoder.length; d++) {
    const skip = c.encoder[c.encoder.length - 2 - d];
    out.push({ name: `dec${d}`, cin: cin + skip, cout: c.decoder[d], stride: 1, kernel: 3 });
    cin = c.decoder[d];
  }
  c.full.forEach((ch, f) => {
    out.push({ name: `full${f}`, cin, cout: ch, stride: 1, kernel: 3 });
    cin = ch;
  });
  out.push({ name: 'flow', cin, cout: 3, stride: 1, kernel: 3 });
  return out;
}
