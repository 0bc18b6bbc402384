/**
 * Training pairs for the SAM-deform network (`sam train-reg`), made from real CTs by known transforms
 * (bench/synthetic-pair.ts, as bench-reg and eval-match): a crop of the deform grid G (4 mm) inside the
 * body of one CT is the fixed image; the moving image is the same region of that CT seen through a
 * random affine and a smooth deformation (Gaussian bumps), with independent noise.
 * Pre-registration: the known affine part of the transform stands in for the cascade's affine stage
 * (running SAM-affine and SAM-coarse per training pair would cost more than the training step on a
 * CPU), so the network learns the remaining smooth deformation (up to maxDeformationMm), i.e. the
 * part SAM-coarse and SAM-deform address in the cascade.
 * SAM features: the CT's local embeddings are computed once per CT (embedding-features.ts principal
 * components); the moving image's features are the CT's read through the known map (moving point y ->
 * CT point movingToFixed(y)) rather than recomputed on the moving image: an approximation that assumes
 * embeddings follow the anatomy (what SAM is trained for).
 * Labels (optional, e.g. TotalSegmentator organ maps): the up to `maxLabels` most frequent labels in
 * the fixed crop, one-hot on G, and the moving labels read through the known map.
 */
import {
  applyAffine,
  indexToWorld,
  indexToWorldMatrix,
  worldToIndexMatrix,
  type Geometry,
  invert3,
} from '../../volume/geometry.ts';
import { gridWithSpacing, resample } from '../../volume/resample.ts';
import { bodyMask } from '../../volume/mask.ts';
import type { Mat3, Vec3, Volume } from '../../volume/volume.ts';
import { makeSyntheticPair, type SyntheticPairOptions } from '../../bench/synthetic-pair.ts';
import type { Rng } from '../../train/rng.ts';
import { bodyGrid } from '../deform/sam-deform.ts';
import { buildSample, type DeformNetSample } from './inputs.ts';

export interface RegTrainingCase {
  source: string;
  ct: Volume;
  /** Organ labels on any grid (nearest neighbour), when known. */
  labels?: Volume;
  /** Unit-normalised SAM local-feature channels of the CT (embedding-features.ts). */
  features: Volume<Float32Array>;
  /** The body's part of the CT's deform grid. */
  bodyGrid: Geometry;
}

/** The transform ranges of the training pairs (smaller than bench-reg's: what remains after an affine). */
export const TRAIN_TRANSFORM: Partial<SyntheticPairOptions> = {
  maxRotationDeg: 6,
  maxScale: 0.06,
  maxShear: 0.02,
  maxTranslationMm: 10,
  bumps: 3,
  maxDeformationMm: 8,
  bumpSigmaMm: [20, 40],
  noiseHu: 15,
  fovKeep: [1, 1],
  fovKeepInPlane: [1, 1],
};

export interface RegSampleOptions {
  /** Crop of G (i, j, k voxels; multiples of the network's sizeMultiple; default 32,32,32). */
  crop?: Vec3;
  spacingMm: number;
  /** Spacing of the pair's images before they are brought to G (default 2, as the cascade's input). */
  pairSpacingMm?: number;
  transform?: Partial<SyntheticPairOptions>;
  corrRadius: number;
  maxLabels?: number;
}

export interface RegTrainingSample {
  sample: DeformNetSample;
  /** truth(x) per voxel of G (world mm; 3 per voxel): where x really is in the moving image. */
  truth: Float32Array;
  /** The pre-registration b (affine, fixed -> moving) as a 3x4 matrix. */
  affine: number[];
  labels?: { fixed: Float32Array; moving: Float32Array; count: number };
}

export function caseBodyGrid(ct: Volume, spacingMm: number): Geometry {
  return bodyGrid(gridWithSpacing(ct, [spacingMm, spacingMm, spacingMm]), bodyMask(ct), 0);
}

export function makeTrainingSample(c: RegTrainingCase, rng: Rng, o: RegSampleOptions): RegTrainingSample {
  const s = o.spacingMm;
  const crop = o.crop ?? [32, 32, 32];
  const B = c.bodyGrid;
  // the crop's first voxel, uniformly inside the body box (centred where the box is smaller)
  const start = [0, 1, 2].map((a) =>
    B.size[a] > crop[a] ? rng.int(0, B.size[a] - crop[a] + 1) : -Math.floor((crop[a] - B.size[a]) / 2),
  ) as Vec3;
  const G: Geometry = {
    size: [...crop] as Vec3,
    spacing: [s, s, s],
    origin: indexToWorld(B, start),
    direction: [...B.direction] as Mat3,
  };
  // the CT around G at the pair spacing, with a margin for the transform to draw from
  const ps = o.pairSpacingMm ?? 2;
  const margin = 24;
  const dir = G.direction;
  const sub: Geometry = {
    size: crop.map((n) => Math.ceil(((n - 1) * s + 2 * margin) / ps) + 1) as Vec3,
    spacing: [ps, ps, ps],
    origin: [0, 1, 2].map((r) => G.origin[r] - margin * (dir[r * 3] + dir[r * 3 + 1] + dir[r * 3 + 2])) as Vec3,
    direction: [...dir] as Mat3,
  };
  const subCt = resample(c.ct, sub, { fill: -1024, outputType: 'float32' });
  const pair = makeSyntheticPair(subCt, { ...TRAIN_TRANSFORM, ...o.transform, seed: rng.uint32() });
  const { linear, centre, translation } = pair.params;
  // the affine part of truth: y = L^-1 (x - c - t) + c
  const Li = invert3(linear);
  const ct = [0, 1, 2].map((r) => centre[r] + translation[r]);
  const affine = [0, 1, 2].flatMap((r) => [
    Li[3 * r],
    Li[3 * r + 1],
    Li[3 * r + 2],
    centre[r] - (Li[3 * r] * ct[0] + Li[3 * r + 1] * ct[1] + Li[3 * r + 2] * ct[2]),
  ]) as [number, number, number, number, number, number, number, number, number, number, number, number];
  const N = crop[0] * crop[1] * crop[2];
  const base = new Float32Array(3 * N);
  const truth = new Float32Array(3 * N);
  const toW = indexToWorldMatrix(G);
  for (let k = 0, q = 0; k < crop[2]; k++)
    for (let j = 0; j < crop[1]; j++)
      for (let i = 0; i < crop[0]; i++, q += 3) {
        const x = applyAffine(toW, [i, j, k]);
        base.set(applyAffine(affine, x), q);
        truth.set(pair.truth(x), q);
      }
  const sample = buildSample({
    grid: G,
    fixed: pair.fixed,
    moving: pair.moving,
    base,
    fixedMask: bodyMask(pair.fixed),
    features: { fixed: c.features, moving: c.features },
    movingFeatureMap: pair.movingToFixed,
    corrRadius: o.corrRadius,
    fovMarginMm: 8,
  });
  let labels: RegTrainingSample['labels'];
  if (c.labels) {
    const lf = resample(c.labels, G, { interpolation: 'nearest', fill: 0, outputType: 'uint16' }).data;
    const counts = new Map<number, number>();
    for (const l of lf) if (l > 0) counts.set(l, (counts.get(l) ?? 0) + 1);
    const keep = [...counts]
      .filter(([, n]) => n >= 8)
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, o.maxLabels ?? 8)
      .map(([l]) => l);
    if (keep.length) {
      const L = keep.length;
      const fixed = new Float32Array(N * L);
      const moving = new Float32Array(N * L);
      const toL = worldToIndexMatrix(c.labels);
      const [li, lj, lk] = c.labels.size;
      for (let v = 0; v < N; v++) {
        const a = keep.indexOf(lf[v]);
        if (a >= 0) fixed[v * L + a] = 1;
        const y = pair.movingToFixed([base[3 * v], base[3 * v + 1], base[3 * v + 2]]);
        const idx = applyAffine(toL, y).map(Math.round);
        if (idx[0] >= 0 && idx[1] >= 0 && idx[2] >= 0 && idx[0] < li && idx[1] < lj && idx[2] < lk) {
          const b = keep.indexOf(c.labels.data[idx[0] + li * (idx[1] + lj * idx[2])]);
          if (b >= 0) moving[v * L + b] = 1;
        }
      }
      labels = { fixed, moving, count: L };
    }
  }
  return { sample, truth, affine, labels };
}
