/**
 * The SAM-deform network's inputs on the deform grid G, shared by training (train-reg) and the cascade:
 * the fixed image on G, the moving image and the moving SAM features read where the earlier stages send
 * each voxel (b(x) = x + u0(x), world mm), the fixed SAM features on G, and the voxel weights (fixed
 * body, and b(x) well inside the moving image: as the instance optimisation's window centres).
 * Flat arrays are i fastest, channels interleaved: exactly the NDHWC [1, K, J, I, C] layout of tfjs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { indexToWorldMatrix, worldToIndexMatrix, type Geometry } from '../../volume/geometry.ts';
import { gridWithSpacing, resample } from '../../volume/resample.ts';
import { trilinearAt } from '../../volume/interpolate.ts';
import { makeVolume, type Vec3, type Volume } from '../../volume/volume.ts';
import { fieldSampler, type Field } from '../field/field.ts';
import { pairResolution } from '../deform/pair-resolution.ts';
import { prepareImage } from '../deform/sam-deform.ts';
import type { DeformNetInput } from './network.ts';
import { correlationVolume } from './layers.ts';

export interface DeformNetSample {
  /** G: size a multiple of the network's sizeMultiple. */
  grid: Geometry;
  fixed: Float32Array;
  moving: Float32Array;
  fixedFeatures: Float32Array;
  movingFeatures: Float32Array;
  featureChannels: number;
  /** The SAM local-feature correlation of fixed and moving features (layers.ts correlationVolume). */
  correlation: Float32Array;
  correlationChannels: number;
  mask: Float32Array;
  /** b(x) per voxel of G, world mm (3 per voxel). */
  base: Float32Array;
}

/** The grid grown at its high faces to sizes that are multiples of m. */
export function padGrid(g: Geometry, m: number): Geometry {
  return {
    ...g,
    size: g.size.map((n) => Math.max(m, Math.ceil(n / m) * m)) as Vec3,
    spacing: [...g.spacing] as Vec3,
    origin: [...g.origin] as Vec3,
  };
}

/** b(x) = x + u0(x) at the voxel centres of G, world mm. */
export function basePoints(G: Geometry, u0: Field): Float32Array {
  const N = G.size[0] * G.size[1] * G.size[2];
  const out = new Float32Array(3 * N);
  const toW = indexToWorldMatrix(G);
  const s = fieldSampler(u0, 'border');
  const u = new Float64Array(3);
  for (let k = 0, q = 0; k < G.size[2]; k++)
    for (let j = 0; j < G.size[1]; j++)
      for (let i = 0; i < G.size[0]; i++, q += 3) {
        const x = toW[0] * i + toW[1] * j + toW[2] * k + toW[3];
        const y = toW[4] * i + toW[5] * j + toW[6] * k + toW[7];
        const z = toW[8] * i + toW[9] * j + toW[10] * k + toW[11];
        s.sample(x, y, z, u);
        out[q] = x + u[0];
        out[q + 1] = y + u[1];
        out[q + 2] = z + u[2];
      }
  return out;
}

export interface SampleSources {
  grid: Geometry;
  fixed: Volume;
  moving: Volume;
  /** b(x) per voxel of `grid` (basePoints). */
  base: Float32Array;
  fixedMask: Volume;
  /** Unit-normalised feature channels of both images (embedding-features.ts). */
  features: { fixed: Volume<Float32Array>; moving: Volume<Float32Array> };
  /** Where a moving point is read in features.moving (default: the point itself). */
  movingFeatureMap?: (p: Vec3) => Vec3;
  /** b(x) closer than this to the moving image's faces does not count (mm, default 20). */
  fovMarginMm?: number;
  /** Correlation radius in voxels of G (the network's corrRadius). */
  corrRadius: number;
}

export function buildSample(src: SampleSources): DeformNetSample {
  const G = src.grid;
  const N = G.size[0] * G.size[1] * G.size[2];
  const s = G.spacing[0];
  // both to the same resolution along each world axis (deform/pair-resolution.ts), as the deform stage
  const pair = pairResolution(src.fixed, src.moving);
  const fixed = prepareImage(src.fixed, G, s, pair);
  const movingGrid = gridWithSpacing(src.moving, [s, s, s]);
  const M = prepareImage(src.moving, movingGrid, s, pair);
  const toM = worldToIndexMatrix(movingGrid);
  const maskG = resample(src.fixedMask, G, { interpolation: 'nearest', outputType: 'uint8' }).data;
  const C = src.features.fixed.components;
  const fixedFeatures = resample(src.features.fixed, G, { fill: 0, outputType: 'float32' }).data as Float32Array;
  const fm = src.features.moving;
  const toF = worldToIndexMatrix(fm);
  const moving = new Float32Array(N);
  const movingFeatures = new Float32Array(N * C);
  const mask = new Float32Array(N);
  const margin = [0, 1, 2].map((a) =>
    Math.min((src.fovMarginMm ?? 20) / movingGrid.spacing[a], 0.25 * (movingGrid.size[a] - 1)),
  );
  const val = new Float64Array(Math.max(C, 1));
  const b = src.base;
  for (let v = 0, q = 0; v < N; v++, q += 3) {
    const X = b[q];
    const Y = b[q + 1];
    const Z = b[q + 2];
    const x = toM[0] * X + toM[1] * Y + toM[2] * Z + toM[3];
    const y = toM[4] * X + toM[5] * Y + toM[6] * Z + toM[7];
    const z = toM[8] * X + toM[9] * Y + toM[10] * Z + toM[11];
    moving[v] = trilinearAt(M, movingGrid.size, 1, x, y, z, 'fill', val) ? val[0] : -1;
    const inside =
      x >= margin[0] &&
      y >= margin[1] &&
      z >= margin[2] &&
      x <= movingGrid.size[0] - 1 - margin[0] &&
      y <= movingGrid.size[1] - 1 - margin[1] &&
      z <= movingGrid.size[2] - 1 - margin[2];
    mask[v] = maskG[v] && inside ? 1 : 0;
    const p = src.movingFeatureMap ? src.movingFeatureMap([X, Y, Z]) : [X, Y, Z];
    const fx = toF[0] * p[0] + toF[1] * p[1] + toF[2] * p[2] + toF[3];
    const fy = toF[4] * p[0] + toF[5] * p[1] + toF[6] * p[2] + toF[7];
    const fz = toF[8] * p[0] + toF[9] * p[1] + toF[10] * p[2] + toF[11];
    if (trilinearAt(fm.data, fm.size, C, fx, fy, fz, 'fill', val))
      for (let c = 0; c < C; c++) movingFeatures[v * C + c] = val[c];
  }
  const correlation = correlationVolume(fixedFeatures, movingFeatures, G.size, C, src.corrRadius);
  const correlationChannels = (2 * src.corrRadius + 1) ** 3;
  return {
    grid: G,
    fixed,
    moving,
    fixedFeatures,
    movingFeatures,
    featureChannels: C,
    correlation,
    correlationChannels,
    mask,
    base: b,
  };
}

/** The sample as the network's input tensors (NDHWC [1, K, J, I, C]) and the weight tensor [1, K, J, I, 1]. */
export function sampleTensors(s: DeformNetSample): { input: DeformNetInput; mask: tf.Tensor5D } {
  const [ni, nj, nk] = s.grid.size;
  const shape = (c: number) => [1, nk, nj, ni, c] as [number, number, number, number, number];
  return {
    input: {
      fixed: tf.tensor5d(s.fixed, shape(1)),
      moving: tf.tensor5d(s.moving, shape(1)),
      correlation: tf.tensor5d(s.correlation, shape(s.correlationChannels)),
    },
    mask: tf.tensor5d(s.mask, shape(1)),
  };
}

/** A displacement in voxel units of G (channels di, dj, dk) as world mm: D diag(spacing) u. */
export function voxelToWorld(G: Geometry, u: Float32Array): Float32Array {
  const out = new Float32Array(u.length);
  const d = G.direction;
  const [si, sj, sk] = G.spacing;
  for (let q = 0; q < u.length; q += 3) {
    const a = u[q] * si;
    const b = u[q + 1] * sj;
    const c = u[q + 2] * sk;
    out[q] = d[0] * a + d[1] * b + d[2] * c;
    out[q + 1] = d[3] * a + d[4] * b + d[5] * c;
    out[q + 2] = d[6] * a + d[7] * b + d[8] * c;
  }
  return out;
}

/**
 * The network's map x -> x + u(x) (u world mm on G), followed by the earlier stages' b, as a correction
 * added in moving space (stage-field.ts): w(x) = b(x + u(x)) - b(x), b read trilinearly from its values
 * on G ('linear' outside: b is affine-like at the faces).
 */
export function correctionField(G: Geometry, base: Float32Array, uWorld: Float32Array): Field {
  const toW = indexToWorldMatrix(G);
  const N = G.size[0] * G.size[1] * G.size[2];
  const u0 = new Float32Array(3 * N);
  for (let k = 0, q = 0; k < G.size[2]; k++)
    for (let j = 0; j < G.size[1]; j++)
      for (let i = 0; i < G.size[0]; i++, q += 3) {
        u0[q] = base[q] - (toW[0] * i + toW[1] * j + toW[2] * k + toW[3]);
        u0[q + 1] = base[q + 1] - (toW[4] * i + toW[5] * j + toW[6] * k + toW[7]);
        u0[q + 2] = base[q + 2] - (toW[8] * i + toW[9] * j + toW[10] * k + toW[11]);
      }
  const u0Field = makeVolume({ ...G, components: 3, data: u0, meta: { description: 'u0' } }) as Field;
  const s = fieldSampler(u0Field, 'linear');
  const w = new Float32Array(3 * N);
  const t = new Float64Array(3);
  for (let k = 0, q = 0; k < G.size[2]; k++)
    for (let j = 0; j < G.size[1]; j++)
      for (let i = 0; i < G.size[0]; i++, q += 3) {
        const x = toW[0] * i + toW[1] * j + toW[2] * k + toW[3] + uWorld[q];
        const y = toW[4] * i + toW[5] * j + toW[6] * k + toW[7] + uWorld[q + 1];
        const z = toW[8] * i + toW[9] * j + toW[10] * k + toW[11] + uWorld[q + 2];
        s.sample(x, y, z, t);
        w[q] = x + t[0] - base[q];
        w[q + 1] = y + t[1] - base[q + 1];
        w[q + 2] = z + t[2] - base[q + 2];
      }
  return makeVolume({
    ...G,
    size: [...G.size] as Vec3,
    components: 3,
    data: w,
    meta: { description: 'SAM-deform network correction' },
  }) as Field;
}
