/**
 * SAM-deform by instance optimisation (no trained network needed): a dense displacement w on a coarse
 * fixed-aligned grid G (default 4 mm, the SAM local-embedding spacing, cropped to the fixed body's
 * bounding box plus a margin; outside it w continues as its border value) is optimised with Adam, starting
 * from the earlier stages' map b(x) = x + u0(x), to minimise deform-loss.ts: local NCC of the fixed and
 * warped moving intensities (+ the SAM local-embedding similarity when embeddings are given) plus
 * diffusion smoothness. The total map is x -> b(x) + w(x), so w is a correction added in moving space
 * (stage-field.ts). Both images are box-smoothed to G's scale and clipped to [-1000, 1000] HU / 1000.
 * Folding is watched: after the optimisation the Jacobian of u0 + w is checked on G, and w is smoothed
 * (box filter) until no voxel folds (or `maxSmoothing` passes). w is kept only if it lowered the
 * objective below w = 0 (stats.kept). AbortSignal is checked every iteration.
 * Two levels (2s, then s) by default; the gradient is box-smoothed before each step (a preconditioner);
 * the step is Adam's momentum over one shared second moment, clipped to the learning rate.
 * Only window centres inside the fixed body, well inside the moving field of view (fovMarginMm) and
 * whose window stays inside the fixed image (fixedFaceMarginMm) count: near either image's cut faces
 * the similarity misleads.
 */
import * as tf from '@tensorflow/tfjs-core';
import { indexToWorld, indexToWorldMatrix, worldToIndexMatrix, type Geometry } from '../../volume/geometry.ts';
import { gridWithSpacing, linearScalarFootprint, resample, targetToSourceIndex } from '../../volume/resample.ts';
import { makeVolume, type Vec3, type Volume } from '../../volume/volume.ts';
import { gridToGridAffine, type Field } from '../field/field.ts';
import { jacobianDeterminant } from '../field/jacobian.ts';
import { jacobianSummaryOnDevice } from '../device/jacobian-on-device.ts';
import { prepareImageTensorOnDevice } from '../device/prepare-on-device.ts';
import { pairResolution, smoothingRadii, type PairResolution } from './pair-resolution.ts';
import type { DeviceImages } from '../../compute/device-images.ts';
import { resampleToTensorOnDevice } from '../device/resample-on-device.ts';
import { boxMeanWhere, smoothField } from './box-sum.ts';
import type { DeformEval, DeformProblem, SampledImage } from './deform-loss.ts';
import { hostDeformOptimiser } from './deform-optimiser.ts';
import { BoxSumThreads } from './box-sum-threads.ts';
import { deviceDeformOptimiser } from '../device/deform-optimiser-on-device.ts';
import type { DeformProblemOnDevice } from '../device/deform-loss-on-device.ts';
import { defaultLnccEps, fixedWindows, windowWeightSum } from './local-ncc.ts';
import { stageField } from '../stage-field.ts';
import { profiler } from '../../util/profile.ts';

export interface SamDeformOptions {
  /** Spacing of G, mm (default 4). */
  spacingMm?: number;
  /** Adam iterations per level (default 40). */
  iterations?: number;
  /** Adam step, mm (default 0.4, cosine-decayed to a tenth). */
  learningRate?: number;
  /** Diffusion weight (default 5). */
  alpha?: number;
  /** LNCC window radius in voxels of G (default 2). */
  windowRadius?: number;
  /** Feature channels (e.g. SAM local embeddings, unit-normalised) of both images, and their weight. */
  features?: { fixed: Volume<Float32Array>; moving: Volume<Float32Array>; weight: number };
  /** Box-smoothing passes (radius 1) of the gradient before each Adam step (default 2). */
  gradientSmoothing?: number;
  /**
   * Window centres that the earlier stages send closer than this to the moving image's faces do not
   * count (mm, default 40; at most a quarter of the moving extent, at least one window radius).
   */
  fovMarginMm?: number;
  /**
   * Window centres whose window reaches closer than this to the fixed image's faces do not count (mm,
   * default half of G's spacing). A window cut by the fixed face, over images smoothed differently at
   * it, pulled the field across the face: on a 2 mm chest pair (README, larger motion #32) the last
   * sixth of the fixed slices went from 0.29 mm after the coarse stage to 1.25 mm, -1.9 mm along z on
   * average; with the margin the pair's TRE 0.35 -> 0.15 mm, and the four chest pairs 0.28 / 0.23 /
   * 0.23 / 0.34 -> 0.20 / 0.23 / 0.23 / 0.26 mm.
   */
  fixedFaceMarginMm?: number;
  /**
   * The moving image's sampling grid is this many times finer than G (default 2), smoothed to G's
   * scale all the same. On G's own spacing, trilinear sampling between the coarse nodes blurs by the
   * sub-voxel position, and the LNCC drew sampled points towards the moving grid's nodes (where the
   * image is sharpest): about 0.1 mm of TRE on the chest pairs, and a floor under which the stage made
   * a good coarse result worse (session 15: four 2 mm chest pairs 0.41 / 0.35 / 0.34 / 0.48 -> 0.33 /
   * 0.26 / 0.24 / 0.36 mm; a 30-degree pair 0.45 -> 0.25 mm, its coarse result 0.33; 3 times finer
   * no better than 2).
   */
  movingOversample?: number;
  /** 'adam-global' (default): Adam with one shared second moment and clipped steps; 'adam': per-parameter Adam. */
  optimizer?: 'adam-global' | 'adam';
  /** Optimise at twice the spacing first (default true). */
  multilevel?: boolean;
  /** The coarse level's Adam step relative to learningRate (default 2). */
  coarseLevelRate?: number;
  /** Box-smoothing passes of w allowed to remove folds (default 4). */
  maxSmoothing?: number;
  /**
   * Run the optimisation on the active tfjs backend (register/device/: a GPU through WebGPU) instead
   * of the host's JavaScript (default false; the cascade turns it on when the tfjs backend is a GPU).
   */
  onDevice?: boolean;
  /** With onDevice on WebGPU: the images' voxels on the device from this cache (the cascade's). */
  deviceImages?: DeviceImages;
  /**
   * On the host: worker threads of the optimisation's box sums (default one per core, at most 4; 1:
   * none). The result does not depend on it.
   */
  threads?: number;
  onProgress?: (stage: string, done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface SamDeformResult {
  /** w on G (mm, LPS). */
  field: Field;
  stats: {
    grid: { size: Vec3; spacingMm: number };
    iterations: number;
    lossStart: number;
    lossEnd: number;
    lnccStart: number;
    lnccEnd: number;
    smoothingPasses: number;
    /**
     * false: the optimised w did not lower the objective below w = 0 (the earlier stages' map), and
     * the stage returns w = 0 (lossEnd, lnccEnd are then the start's).
     */
    kept: boolean;
    /**
     * Set by the cascade (map-ncc.ts lnccThroughMaps): the images' local NCC without the objective's
     * reward for contrast (varJ undamped), in the fixed body, through the earlier stages' map and
     * with this stage's field; the field is used only when it raised it (a field that only raises
     * the objective by adding contrast in low-contrast windows, e.g. on a scan registered to itself,
     * is not).
     */
    nccBefore?: number;
    nccAfter?: number;
    used?: boolean;
    foldedPercentOnGrid: number;
    /** Where the optimisation ran: 'host' or 'tfjs-<backend>'. */
    optimisedOn: string;
    /** Seconds spent preparing both levels, optimising (both levels), checking folds. */
    seconds: { prepare: number; optimise: number; foldCheck: number };
  };
}

/**
 * The CT clipped to [-1000, 1000] HU, normalised, box-smoothed to the scale `smoothMm` (default the
 * grid's spacing) and read on `grid`. The box's radius along each axis comes from pair-resolution.ts:
 * with `pair` (the two images' voxel sizes, pairResolution) both images of a pair reach the same
 * resolution along each world axis, whatever their voxel sizes.
 */
export function prepareImage(
  v: Volume,
  grid: Geometry,
  smoothMm = grid.spacing[0],
  pair?: PairResolution,
): Float32Array {
  const n = v.data.length;
  const clipped = new Float32Array(n);
  for (let q = 0; q < n; q++) clipped[q] = Math.max(-1000, Math.min(1000, v.data[q])) / 1000;
  const r = smoothingRadii(v, smoothMm, pair);
  // the box means only where the resampling reads them (the same values there; a fine image on a
  // coarse grid reads a fraction of its voxels)
  const src = r.some((x) => x > 0)
    ? boxMeanWhere(clipped, v.size, r, linearScalarFootprint(v.size, targetToSourceIndex(grid, v), grid.size))
    : clipped;
  return resample({ ...v, data: src, components: 1 }, grid, { fill: -1, outputType: 'float32' }).data as Float32Array;
}

/** The part of `grid` that covers the mask's nonzero voxels, with `margin` voxels around (the air around the body carries no information). */
export function bodyGrid(grid: Geometry, mask: Volume, margin: number): Geometry {
  return bodyGridAndMask(grid, mask, margin).grid;
}

/** bodyGrid and the mask on it (nearest neighbour), from one resampling of the mask. */
export function bodyGridAndMask(grid: Geometry, mask: Volume, margin: number): { grid: Geometry; mask: Uint8Array } {
  const m = resample(mask, grid, { interpolation: 'nearest', outputType: 'uint8' }).data as Uint8Array;
  const [ni, nj, nk] = grid.size;
  const lo = [ni, nj, nk];
  const hi = [-1, -1, -1];
  for (let k = 0, v = 0; k < nk; k++)
    for (let j = 0; j < nj; j++, v += ni) {
      // the row's first and last nonzero voxel
      const row = m.subarray(v, v + ni);
      let first = 0;
      while (first < ni && row[first] === 0) first++;
      if (first === ni) continue;
      let last = ni - 1;
      while (row[last] === 0) last--;
      if (first < lo[0]) lo[0] = first;
      if (last > hi[0]) hi[0] = last;
      if (j < lo[1]) lo[1] = j;
      if (j > hi[1]) hi[1] = j;
      if (k < lo[2]) lo[2] = k;
      if (k > hi[2]) hi[2] = k;
    }
  if (hi[0] < 0) return { grid, mask: m };
  const start = lo.map((v) => Math.max(0, v - margin)) as Vec3;
  const end = hi.map((v, a) => Math.min(grid.size[a] - 1, v + margin));
  const size = end.map((v, a) => Math.max(2, v - start[a] + 1)) as Vec3;
  // the crop of m (size at least 2 per axis: a face may lie beyond the grid, read as 0)
  const crop = new Uint8Array(size[0] * size[1] * size[2]);
  const rowLength = Math.min(size[0], ni - start[0]);
  for (let k = 0; k < size[2] && start[2] + k < nk; k++)
    for (let j = 0; j < size[1] && start[1] + j < nj; j++) {
      const from = start[0] + ni * (start[1] + j + nj * (start[2] + k));
      crop.set(m.subarray(from, from + rowLength), size[0] * (j + size[1] * k));
    }
  return {
    grid: {
      size,
      spacing: [...grid.spacing] as Vec3,
      origin: indexToWorld(grid, start),
      direction: [...grid.direction] as Geometry['direction'],
    },
    mask: crop,
  };
}

/**
 * base (displacements on G, LPS mm) += each voxel's world position, making it the earlier stages' map
 * b(x); the weight of a voxel set to 0 where b(x) lands within `margin` (voxels of the moving grid) of
 * the moving grid's faces.
 */
function addPositionsAndWeigh(
  base: Float32Array,
  weight: Float32Array,
  G: Geometry,
  toW: number[],
  toM: number[],
  movingSize: readonly number[],
  margin: number[],
): void {
  const [ni, nj, nk] = G.size;
  const [w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11] = toW;
  const [m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11] = toM;
  const [lo0, lo1, lo2] = margin;
  const hi0 = movingSize[0] - 1 - margin[0];
  const hi1 = movingSize[1] - 1 - margin[1];
  const hi2 = movingSize[2] - 1 - margin[2];
  for (let k = 0, q = 0, v = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, q += 3, v++) {
        // (in the order of indexToWorld's sums)
        base[q] += w0 * i + w1 * j + w2 * k + w3;
        base[q + 1] += w4 * i + w5 * j + w6 * k + w7;
        base[q + 2] += w8 * i + w9 * j + w10 * k + w11;
        // (the stored float32 values)
        const x = base[q];
        const y = base[q + 1];
        const z = base[q + 2];
        const c0 = m0 * x + m1 * y + m2 * z + m3;
        const c1 = m4 * x + m5 * y + m6 * z + m7;
        const c2 = m8 * x + m9 * y + m10 * z + m11;
        if (c0 < lo0 || c0 > hi0 || c1 < lo1 || c1 > hi1 || c2 < lo2 || c2 > hi2) weight[v] = 0;
      }
}

/**
 * weight 0 for the window centres of G within marginMm of the fixed image's faces (along each axis
 * at most a quarter of the fixed extent, so that a short scan keeps its middle).
 */
export function weighFixedFaces(weight: Float32Array, G: Geometry, fixed: Geometry, marginMm: number): void {
  const margin = [0, 1, 2].map((a) => Math.min(marginMm, 0.25 * (fixed.size[a] - 1) * fixed.spacing[a]));
  // G's index to the fixed image's continuous index
  const m = gridToGridAffine(G, fixed);
  const [ni, nj, nk] = G.size;
  const near = (a: number, c: number) => Math.min(c, fixed.size[a] - 1 - c) * fixed.spacing[a] < margin[a];
  if (m[1] === 0 && m[2] === 0 && m[4] === 0 && m[6] === 0 && m[8] === 0 && m[9] === 0) {
    // G on the fixed image's axes (as gridWithSpacing makes it): fixed index a depends on G's index a
    // alone, so each axis's faces are found once (the same sums as the general loop)
    const faces = [ni, nj, nk].map((n, a) =>
      Uint8Array.from({ length: n }, (_, t) => (near(a, m[5 * a] * t + m[4 * a + 3]) ? 1 : 0)),
    );
    const [fi, fj, fk] = faces;
    for (let k = 0, v = 0; k < nk; k++)
      for (let j = 0; j < nj; j++, v += ni) {
        if (fk[k] || fj[j]) {
          weight.fill(0, v, v + ni);
          continue;
        }
        for (let i = 0; i < ni; i++) if (fi[i]) weight[v + i] = 0;
      }
    return;
  }
  for (let k = 0, v = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, v++) {
        if (!weight[v]) continue;
        for (let a = 0; a < 3; a++) {
          const c = m[4 * a] * i + m[4 * a + 1] * j + m[4 * a + 2] * k + m[4 * a + 3];
          if (Math.min(c, fixed.size[a] - 1 - c) * fixed.spacing[a] < margin[a]) {
            weight[v] = 0;
            break;
          }
        }
      }
}

function sampled(v: Volume, data: Float32Array, channels: number): SampledImage {
  return { data, size: v.size, channels, toIndex: worldToIndexMatrix(v) };
}

interface Level {
  G: Geometry;
  /** On WebGPU its images are tensors there (DeformProblemOnDevice), the optimiser's to dispose. */
  problem: DeformProblem | DeformProblemOnDevice;
}

/** The WGSL parts (image preparation, fold check) run when the optimisation runs on WebGPU. */
function onWebgpu(o: SamDeformOptions): boolean {
  return !!o.onDevice && tf.getBackend() === 'webgpu';
}

/** The objective on the grid of spacing s (see the header). */
async function buildLevel(
  fixed: Volume,
  moving: Volume,
  u0: (grid: Geometry) => Field | Promise<Field>,
  fixedMask: Volume,
  s: number,
  o: SamDeformOptions,
): Promise<Level> {
  const rw = o.windowRadius ?? 2;
  const prof = profiler(`deform level ${s} mm`);
  const { grid: G, mask: maskG } = bodyGridAndMask(gridWithSpacing(fixed, [s, s, s]), fixedMask, rw + 2);
  const N = G.size[0] * G.size[1] * G.size[2];
  // on the GPU when the optimisation runs there (and the image fits one buffer)
  // both images to the same resolution along each world axis (pair-resolution.ts)
  const pair = pairResolution(fixed, moving);
  // on WebGPU the images stay there for the optimiser (made on the host when one does not fit a buffer)
  const onGpu = onWebgpu(o);
  const made: tf.Tensor[] = [];
  const prepare = (v: Volume, g: Geometry): Float32Array | tf.Tensor1D => {
    const t = onGpu
      ? (prepareImageTensorOnDevice(v, g, o.deviceImages, s, pair) ?? tf.tensor1d(prepareImage(v, g, s, pair)))
      : null;
    if (t) made.push(t);
    return t ?? prepareImage(v, g, s, pair);
  };
  try {
    prof.mark('grid and mask');
    const I = prepare(fixed, G);
    prof.mark('fixed image');
    // the moving image smoothed to the same scale, kept on a grid `movingOversample` times finer
    const ms = s / Math.max(1, o.movingOversample ?? 2);
    const movingGrid = gridWithSpacing(moving, [ms, ms, ms]);
    const M = prepare(moving, movingGrid);
    prof.mark('moving image');
    const weight = new Float32Array(N);
    for (let v = 0; v < N; v++) weight[v] = maskG[v] ? 1 : 0;
    const base = (await u0(G)).data;
    prof.mark('earlier stages on the grid');
    const toW = indexToWorldMatrix(G);
    const toM = worldToIndexMatrix(movingGrid);
    // (measured on the chest pairs: errors grew in a band 15-30 mm inside the moving image's cut faces
    // with a one-window margin; 40 mm removed that band and improved the interior too)
    // (in voxels of the moving grid)
    const fovMargin = [0, 1, 2].map((a) =>
      Math.max((rw * s) / ms, Math.min((o.fovMarginMm ?? 40) / ms, 0.25 * (movingGrid.size[a] - 1))),
    );
    // window centres count only inside the fixed body and where the earlier stages land inside the
    // moving image, a window's radius away from its faces (no information beyond the moving field of view)
    addPositionsAndWeigh(base, weight, G, toW, toM, movingGrid.size, fovMargin);
    // nor where the window reaches the fixed image's faces
    weighFixedFaces(weight, G, fixed, rw * s + (o.fixedFaceMarginMm ?? s / 2));
    prof.mark('weights');
    const F = o.features && o.features.weight > 0 ? o.features : undefined;
    const movingFeatures = F && sampled(F.moving, F.moving.data, F.moving.components);
    let problem: DeformProblem | DeformProblemOnDevice;
    if (I instanceof Float32Array) {
      problem = {
        size: G.size,
        spacing: G.spacing,
        base,
        windows: fixedWindows(I, G.size, rw, weight),
        moving: sampled({ ...movingGrid } as Volume, M as Float32Array, 1),
        alpha: o.alpha ?? 5,
        features: F && {
          fixed: resample(F.fixed, G, { fill: 0, outputType: 'float32' }).data as Float32Array,
          moving: movingFeatures!,
          weight: F.weight,
        },
      };
    } else {
      // the fixed features on G made there too
      const ff = F && (resampleToTensorOnDevice(F.fixed, G, 0) ?? resampleHere(F.fixed, G));
      if (ff) made.push(ff);
      problem = {
        size: G.size,
        spacing: G.spacing,
        base,
        windows: { r: rw, eps: defaultLnccEps(rw), I, weight, weightSum: windowWeightSum(weight, N) },
        moving: { data: M as tf.Tensor1D, channels: 1, size: movingGrid.size, toIndex: toM },
        alpha: o.alpha ?? 5,
        features: F && { fixed: ff!, moving: movingFeatures!, weight: F.weight },
      };
    }
    if (F) prof.mark('fixed features');
    prof.done(`grid ${G.size.join('x')}`);
    return { G, problem };
  } catch (e) {
    tf.dispose(made);
    throw e;
  }
}

/** The fixed features resampled on the host onto G, uploaded ([N, C]). */
function resampleHere(features: Volume, G: Geometry): tf.Tensor2D {
  const data = resample(features, G, { fill: 0, outputType: 'float32' }).data as Float32Array;
  return tf.tensor2d(data, [data.length / features.components, features.components]);
}

/**
 * Optimise w. `u0` gives the earlier stages' displacement on a grid (stage-field.ts); `fixedMask` is the
 * fixed body (window centres outside it do not count).
 */
export async function samDeform(
  fixed: Volume,
  moving: Volume,
  u0: (grid: Geometry) => Field | Promise<Field>,
  fixedMask: Volume,
  o: SamDeformOptions = {},
): Promise<SamDeformResult> {
  // on the host the iterations' box sums go to worker threads (the same numbers on any number)
  const boxSums = o.onDevice ? null : BoxSumThreads.start(o.threads);
  try {
    return await deformLevels(fixed, moving, u0, fixedMask, o, boxSums);
  } finally {
    boxSums?.dispose();
  }
}

async function deformLevels(
  fixed: Volume,
  moving: Volume,
  u0: (grid: Geometry) => Field | Promise<Field>,
  fixedMask: Volume,
  o: SamDeformOptions,
  boxSums: BoxSumThreads | null,
): Promise<SamDeformResult> {
  const s = o.spacingMm ?? 4;
  const iterations = o.iterations ?? 40;
  const lr0 = o.learningRate ?? 0.4;
  const smoothing = o.gradientSmoothing ?? 2;
  // coarse level first (twice the spacing, 8 times fewer voxels), its w carried to the fine level
  const seconds = { prepare: 0, optimise: 0, foldCheck: 0 };
  const lap = (t0: number) => (performance.now() - t0) / 1000;
  // (a level's images are on the device only when the optimisation runs there: onWebgpu)
  const optimiserFor = (problem: Level['problem']) =>
    o.onDevice ? deviceDeformOptimiser(problem, o) : hostDeformOptimiser(problem as DeformProblem, { ...o, boxSums });
  let init: Field | null = null;
  const prof = profiler('sam-deform');
  if (o.multilevel ?? true) {
    let t0 = performance.now();
    const c = await buildLevel(fixed, moving, u0, fixedMask, 2 * s, o);
    seconds.prepare += lap(t0);
    prof.mark('prepare coarse level');
    t0 = performance.now();
    const wc = new Float32Array(c.problem.base.length);
    const opt = optimiserFor(c.problem);
    try {
      await opt.optimise(wc, iterations, (o.coarseLevelRate ?? 2) * lr0, smoothing, 'optimise (coarse level)');
    } finally {
      opt.dispose();
    }
    seconds.optimise += lap(t0);
    prof.mark('optimise coarse level');
    init = makeVolume({ ...c.G, components: 3, data: wc, meta: { description: 'w (coarse level)' } }) as Field;
  }
  let t0 = performance.now();
  const { G, problem } = await buildLevel(fixed, moving, u0, fixedMask, s, o);
  const base = problem.base;
  const toW = indexToWorldMatrix(G);
  const N = G.size[0] * G.size[1] * G.size[2];
  // (the optimiser takes over the level's device images: made first, disposed on every path below)
  const opt = optimiserFor(problem);
  prof.mark('optimiser set up');
  let start: DeformEval;
  let end: DeformEval;
  let w: Float32Array;
  let field: Field;
  let passes = 0;
  let foldedPercent: number;
  let folded: () => number | Promise<number>;
  try {
    // the coarse level's w read on G (stageField with the identity affine adds nothing else)
    w = init ? stageField(G, [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], [init]).data : new Float32Array(3 * N);
    prof.mark('prepare');
    seconds.prepare += lap(t0);
    t0 = performance.now();
    start = await opt.evaluate(init ? new Float32Array(3 * N) : w);
    prof.mark('evaluate (start)');
    await opt.optimise(w, iterations, lr0, smoothing, 'optimise');
    prof.mark('optimise');
    seconds.optimise += lap(t0);
    t0 = performance.now();
    // fold check on G: u0 + w must not fold
    field = makeVolume({
      ...G,
      components: 3,
      data: w,
      meta: { description: 'SAM-deform correction' },
    }) as Field;
    const total = makeVolume({ ...G, components: 3, data: new Float32Array(3 * N), meta: { warnings: [] } }) as Field;
    folded = () => {
      for (let k = 0, q = 0; k < G.size[2]; k++)
        for (let j = 0; j < G.size[1]; j++)
          for (let i = 0; i < G.size[0]; i++, q += 3) {
            total.data[q] = base[q] + w[q] - (toW[0] * i + toW[1] * j + toW[2] * k + toW[3]);
            total.data[q + 1] = base[q + 1] + w[q + 1] - (toW[4] * i + toW[5] * j + toW[6] * k + toW[7]);
            total.data[q + 2] = base[q + 2] + w[q + 2] - (toW[8] * i + toW[9] * j + toW[10] * k + toW[11]);
          }
      return onWebgpu(o)
        ? jacobianSummaryOnDevice(total).then((j) => j.foldedPercent)
        : jacobianDeterminant(total).foldedPercent;
    };
    foldedPercent = await folded();
    while (foldedPercent > 0 && passes < (o.maxSmoothing ?? 4)) {
      smoothField(w, G.size);
      passes++;
      foldedPercent = await folded();
    }
    seconds.foldCheck = lap(t0);
    prof.mark('fold check');
    end = await opt.evaluate(w);
  } finally {
    opt.dispose();
  }
  prof.mark('evaluate (end)');
  // w is kept only when it lowered the stage's own objective (similarity + smoothness) below the
  // earlier stages' map: where that map is already the optimum (a scan registered to itself), Adam's
  // steps add only noise
  const kept = end.loss < start.loss;
  if (!kept) {
    w.fill(0);
    end = start;
    passes = 0;
    foldedPercent = await folded();
  }
  prof.done(`grid ${G.size.join('x')}, ${iterations} iterations a level`);
  return {
    field,
    stats: {
      grid: { size: [...G.size] as Vec3, spacingMm: s },
      iterations,
      lossStart: start.loss,
      lossEnd: end.loss,
      lnccStart: -start.similarity,
      lnccEnd: -end.similarity,
      smoothingPasses: passes,
      kept,
      foldedPercentOnGrid: foldedPercent,
      optimisedOn: o.onDevice ? `tfjs-${tf.getBackend()}` : 'host',
      seconds,
    },
  };
}
