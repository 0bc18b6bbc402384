/**
 * Self-supervised training data of the SAM embedding network: pairs of patches cut from one CT
 * at independent random scales, overlapping by the official SAM rules (ComputeAugParam_sample),
 * and the positive pairs between them: the same physical points (inside the body) mapped to the
 * nearest embedding voxel of each patch, computed from the patch geometries in world space.
 *
 * Conventions:
 * - A CT is first prepared (prepareCt): resampled to 2 mm on an LPS-aligned grid (x -> L, y -> P,
 *   z -> S, the official network's input orientation), body mask computed on that grid.
 * - A patch is a Geometry of size (x, y, z) = (96, 96, 32) and spacing 2*s mm; its image is a
 *   Volume<Float32Array> normalised as the official RescaleIntensity, whose data (i fastest) is
 *   directly the tensor [z, y, x] = [32, 96, 96] the network takes.
 * - Embedding grids: see embeddingGrid(), the only place that knows how an output voxel of a
 *   given stride sits on the patch.
 * - Flat embedding voxel index = i + ni * (j + nj * k), the order of a [z, y, x, C] tensor.
 */
import { indexToWorld, indexToWorldMatrix, worldToIndex, column, dot, sub, type Geometry } from '../volume/geometry.ts';
import { resample } from '../volume/resample.ts';
import { gridWithSpacing } from '../volume/resample.ts';
import { normalizeForNetwork, SAM_NORMALIZATION, type NetworkNormalization } from '../volume/intensity.ts';
import { bodyMask, type BodyMaskOptions } from '../volume/mask.ts';
import { IDENTITY3, type Mat3, type Vec3, type Volume } from '../volume/volume.ts';
import type { Rng } from './rng.ts';

/** Stride of a network output in input voxels, in (z, y, x) order as the tensors are. */
export type Stride = [number, number, number];

export interface EmbeddingStrides {
  global: Stride;
  local: Stride;
}

/** The SAM network's output strides (z, y, x): global (4, 16, 16), local (2, 2, 2). */
export const SAM_STRIDES: EmbeddingStrides = { global: [4, 16, 16], local: [2, 2, 2] };

/**
 * THE embedding-grid convention (change it here only): the output voxel (a, b, c) = (z, y, x) of
 * stride (sz, sy, sx) covers the input voxels [c*sx, (c+1)*sx) x ..., its centre at patch index
 * ((c+0.5)*sx - 0.5, (b+0.5)*sy - 0.5, (a+0.5)*sz - 0.5); the grid has ceil(n / s) voxels per axis.
 * Returned as a Geometry so that every index <-> world conversion goes through geometry.ts.
 */
export function embeddingGrid(patch: Geometry, stride: Stride): Geometry {
  const s: Vec3 = [stride[2], stride[1], stride[0]]; // (x, y, z) = (i, j, k)
  return {
    size: [0, 1, 2].map((a) => Math.ceil(patch.size[a] / s[a])) as Vec3,
    spacing: [0, 1, 2].map((a) => patch.spacing[a] * s[a]) as Vec3,
    origin: indexToWorld(patch, [(s[0] - 1) / 2, (s[1] - 1) / 2, (s[2] - 1) / 2]),
    direction: [...patch.direction] as Mat3,
  };
}

/** Flat index of the embedding voxel nearest to a world point (clamped into the grid). */
export function nearestVoxel(grid: Geometry, world: Vec3): number {
  const idx = worldToIndex(grid, world);
  const r = idx.map((v, a) => Math.min(grid.size[a] - 1, Math.max(0, Math.round(v))));
  return r[0] + grid.size[0] * (r[1] + grid.size[1] * r[2]);
}

/** World positions (mm) of every voxel centre of a grid, flat order, xyz interleaved. */
export function gridWorldPositions(g: Geometry): Float32Array {
  const m = indexToWorldMatrix(g);
  const [ni, nj, nk] = g.size;
  const out = new Float32Array(ni * nj * nk * 3);
  let o = 0;
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++) {
        out[o++] = m[0] * i + m[1] * j + m[2] * k + m[3];
        out[o++] = m[4] * i + m[5] * j + m[6] * k + m[7];
        out[o++] = m[8] * i + m[9] * j + m[10] * k + m[11];
      }
  return out;
}

export interface PreparedCt {
  /** HU on the 2 mm grid. */
  image: Volume;
  /** Body mask (0/1) on the same grid. */
  mask: Volume<Uint8Array>;
}

export interface PrepareOptions {
  /** Grid spacing in mm (default 2, as the official Resample). */
  spacingMm?: number;
  /** Direction of the grid (default identity: LPS, the official network's input orientation). */
  direction?: Mat3;
  mask?: BodyMaskOptions;
}

/** Resample a CT (HU) to the 2 mm training grid (outside filled with -1024 HU) and compute its body mask. */
export function prepareCt(volume: Volume, options: PrepareOptions = {}): PreparedCt {
  const sp = options.spacingMm ?? 2;
  const grid = gridWithSpacing(volume, [sp, sp, sp], options.direction ?? IDENTITY3);
  const image = resample(volume, grid, { fill: -1024 });
  return { image, mask: bodyMask(image, options.mask) };
}

export interface PatchPairOptions {
  /** Patch size (x, y, z) in voxels (default 96 x 96 x 32). */
  patchSize?: Vec3;
  /** Range of the random scale of each patch (default [0.8, 1.2]); patch spacing = grid spacing * scale. */
  scaleRange?: [number, number];
  /** Probability of placing the two patches independently (official 0.2); otherwise they share a seed point. */
  independentProbability?: number;
  /** Crop box = ceil(ceil(patchSize * s) * cropEnlarge) grid voxels (official 1.05). */
  cropEnlarge?: number;
  /** Grid voxels left free at each border of the volume (official 1). */
  rangeMargin?: number;
  /** Margin (x, y, z) of the shared seed point from the borders (official 10, 10, 4). */
  seedMargin?: Vec3;
  /** Positive pairs kept per term (official after_select_pos_number 100). */
  nPos?: number;
  /** Candidate points drawn in the overlap (official pre_select_pos_number 2000). */
  nPreselect?: number;
  strides?: EmbeddingStrides;
  /** A global positive is kept only when its two global voxel centres are closer than this (official 25 mm). */
  globalPositiveDistanceMm?: number;
  /** ... and closer than this along the patch z axis (official coarse_z_thres 6 mm). */
  globalZThresMm?: number;
  normalization?: NetworkNormalization;
}

export interface PatchSpec {
  geometry: Geometry;
  scale: number;
  /** Crop box on the prepared grid (index, voxels), the patch is centred in it. */
  cropStart: Vec3;
  cropSize: Vec3;
}

export interface Patch extends PatchSpec {
  /** Normalised network input; data is the [z, y, x] tensor. */
  image: Volume<Float32Array>;
}

export interface PositiveSet {
  /** Flat embedding-voxel index in patch A / patch B, one per positive. */
  a: Int32Array;
  b: Int32Array;
  /** The positive's world point (mm), xyz interleaved. */
  world: Float64Array;
}

export interface PositivePairs {
  strides: EmbeddingStrides;
  local: PositiveSet;
  global: PositiveSet;
}

export interface PatchPair {
  a: Patch;
  b: Patch;
  /** True when the two patches were placed independently (they may then not overlap). */
  independent: boolean;
  positives: PositivePairs;
}

const DEFAULTS = {
  patchSize: [96, 96, 32] as Vec3,
  scaleRange: [0.8, 1.2] as [number, number],
  independentProbability: 0.2,
  cropEnlarge: 1.05,
  rangeMargin: 1,
  seedMargin: [10, 10, 4] as Vec3,
  nPos: 100,
  nPreselect: 2000,
  strides: SAM_STRIDES,
  globalPositiveDistanceMm: 25,
  globalZThresMm: 6,
  normalization: SAM_NORMALIZATION,
};

/** Patch geometry of the given scale centred in a crop box of the grid. */
function patchGeometry(grid: Geometry, size: Vec3, scale: number, cropStart: Vec3, cropSize: Vec3): Geometry {
  const spacing = grid.spacing.map((s) => s * scale) as Vec3;
  const centre = indexToWorld(grid, [0, 1, 2].map((a) => cropStart[a] + (cropSize[a] - 1) / 2) as Vec3);
  const atOrigin: Geometry = { size, spacing, origin: [0, 0, 0], direction: grid.direction };
  const half = indexToWorld(atOrigin, size.map((n) => (n - 1) / 2) as Vec3);
  return { size: [...size] as Vec3, spacing, origin: sub(centre, half), direction: [...grid.direction] as Mat3 };
}

/**
 * The two patch geometries, by ComputeAugParam_sample: independent scales; with probability
 * independentProbability both crop boxes are placed uniformly (they may not overlap), otherwise
 * a seed point is drawn and each box is placed so that its patch contains it (half a voxel
 * inside), so the two patches overlap. A volume too small for a box along an axis gets the box
 * centred (the patch then reaches outside, filled with air).
 */
export function samplePatchGeometries(
  grid: Geometry,
  rng: Rng,
  options: PatchPairOptions = {},
): { a: PatchSpec; b: PatchSpec; independent: boolean } {
  const o = { ...DEFAULTS, ...options };
  const scales = [rng.uniform(o.scaleRange[0], o.scaleRange[1]), rng.uniform(o.scaleRange[0], o.scaleRange[1])];
  const crops = scales.map((s) => o.patchSize.map((n) => Math.ceil(Math.ceil(n * s) * o.cropEnlarge)) as Vec3);
  const n = grid.size;
  const lo = o.rangeMargin;
  const hi = n.map((v) => v - o.rangeMargin);
  const randint = (a: number, b: number, fallback: number): number => (b > a ? rng.int(a, b) : fallback);
  const independent = rng.next() <= o.independentProbability;
  const starts: Vec3[] = [];
  if (independent) {
    for (const crop of crops)
      starts.push([0, 1, 2].map((a) => randint(lo, hi[a] - crop[a], Math.floor((n[a] - crop[a]) / 2))) as Vec3);
  } else {
    const seed = [0, 1, 2].map((a) => randint(lo + o.seedMargin[a], hi[a] - o.seedMargin[a], Math.floor(n[a] / 2)));
    // Official: start in [seed - crop, seed) (the crop box contains the seed). Here the patch
    // itself (centred in its box, 1/1.05 of it) must contain the seed, so that it always overlaps.
    for (let v = 0; v < 2; v++) {
      const crop = crops[v];
      starts.push(
        [0, 1, 2].map((a) => {
          const ext = o.patchSize[a] * scales[v];
          const c0 = seed[a] - (crop[a] - 1) / 2;
          const first = Math.max(Math.ceil(c0 - ext / 2 + 0.5), lo);
          const last = Math.min(Math.floor(c0 + ext / 2 - 0.5), hi[a] - crop[a] - 1);
          return randint(first, last + 1, Math.floor((n[a] - crop[a]) / 2));
        }) as Vec3,
      );
    }
  }
  const spec = (v: number): PatchSpec => ({
    geometry: patchGeometry(grid, o.patchSize, scales[v], starts[v], crops[v]),
    scale: scales[v],
    cropStart: starts[v],
    cropSize: crops[v],
  });
  return { a: spec(0), b: spec(1), independent };
}

/** Resample a patch from the prepared CT (trilinear, air outside) and normalise it for the network. */
export function extractPatch(
  ct: PreparedCt,
  geometry: Geometry,
  normalization: NetworkNormalization = SAM_NORMALIZATION,
): Volume<Float32Array> {
  const hu = resample(ct.image, geometry, { fill: -1024, outputType: 'float32' });
  return normalizeForNetwork(hu, normalization);
}

/** Is a continuous index inside the patch's extent [-0.5, n - 0.5) on every axis? */
function inside(g: Geometry, idx: Vec3): boolean {
  return idx.every((v, a) => v >= -0.5 && v < g.size[a] - 0.5);
}

function inMask(mask: Volume<Uint8Array>, p: Vec3): boolean {
  const idx = worldToIndex(mask, p).map(Math.round);
  if (idx.some((v, a) => v < 0 || v >= mask.size[a])) return false;
  return mask.data[idx[0] + mask.size[0] * (idx[1] + mask.size[1] * idx[2])] !== 0;
}

/**
 * Positive pairs between two patches: up to nPreselect points drawn uniformly in their overlap
 * (the world-space intersection of the patch extents) and inside the body mask; each mapped to
 * the nearest embedding voxel of each patch. Local: the first nPos distinct (a, b) voxel pairs.
 * Global: the first nPos distinct pairs whose voxel centres pass the official coarse rules
 * (closer than globalPositiveDistanceMm, and than globalZThresMm along the patch z axis).
 * No overlap, or no body in it: no positives.
 */
export function findPositives(
  a: Geometry,
  b: Geometry,
  mask: Volume<Uint8Array>,
  rng: Rng,
  options: PatchPairOptions = {},
): PositivePairs {
  const o = { ...DEFAULTS, ...options };
  const grids = {
    local: [embeddingGrid(a, o.strides.local), embeddingGrid(b, o.strides.local)],
    global: [embeddingGrid(a, o.strides.global), embeddingGrid(b, o.strides.global)],
  };
  // Bounding box of B's extent in A's index space, intersected with A's extent.
  const lo: Vec3 = [-0.5, -0.5, -0.5];
  const hi = a.size.map((v) => v - 0.5) as Vec3;
  const blo: Vec3 = [Infinity, Infinity, Infinity];
  const bhi: Vec3 = [-Infinity, -Infinity, -Infinity];
  for (let c = 0; c < 8; c++) {
    const corner = [0, 1, 2].map((ax) => (c & (1 << ax) ? b.size[ax] - 0.5 : -0.5)) as Vec3;
    const inA = worldToIndex(a, indexToWorld(b, corner));
    for (let ax = 0; ax < 3; ax++) {
      blo[ax] = Math.min(blo[ax], inA[ax]);
      bhi[ax] = Math.max(bhi[ax], inA[ax]);
    }
  }
  for (let ax = 0; ax < 3; ax++) {
    lo[ax] = Math.max(lo[ax], blo[ax]);
    hi[ax] = Math.min(hi[ax], bhi[ax]);
  }
  const empty = (): PositiveSet => ({ a: new Int32Array(0), b: new Int32Array(0), world: new Float64Array(0) });
  if (lo.some((v, ax) => !(v < hi[ax]))) return { strides: o.strides, local: empty(), global: empty() };

  const zAxis = column(a.direction, 2);
  const local = { a: [] as number[], b: [] as number[], w: [] as number[], seen: new Set<number>() };
  const global = { a: [] as number[], b: [] as number[], w: [] as number[], seen: new Set<number>() };
  const maxTries = 20 * o.nPreselect;
  let found = 0;
  for (let t = 0; t < maxTries && found < o.nPreselect; t++) {
    if (local.a.length >= o.nPos && global.a.length >= o.nPos) break;
    const idxA = [0, 1, 2].map((ax) => rng.uniform(lo[ax], hi[ax])) as Vec3;
    const p = indexToWorld(a, idxA);
    if (!inside(b, worldToIndex(b, p)) || !inMask(mask, p)) continue;
    found++;
    if (local.a.length < o.nPos) {
      const va = nearestVoxel(grids.local[0], p);
      const vb = nearestVoxel(grids.local[1], p);
      const key = va * 4294967296 + vb;
      if (!local.seen.has(key)) {
        local.seen.add(key);
        local.a.push(va);
        local.b.push(vb);
        local.w.push(...p);
      }
    }
    if (global.a.length < o.nPos) {
      const va = nearestVoxel(grids.global[0], p);
      const vb = nearestVoxel(grids.global[1], p);
      const key = va * 4294967296 + vb;
      if (global.seen.has(key)) continue;
      const ca = voxelCentre(grids.global[0], va);
      const cb = voxelCentre(grids.global[1], vb);
      const d = sub(ca, cb);
      if (Math.hypot(...d) >= o.globalPositiveDistanceMm || Math.abs(dot(d, zAxis)) >= o.globalZThresMm) continue;
      global.seen.add(key);
      global.a.push(va);
      global.b.push(vb);
      global.w.push(...p);
    }
  }
  const pack = (s: typeof local): PositiveSet => ({
    a: Int32Array.from(s.a),
    b: Int32Array.from(s.b),
    world: Float64Array.from(s.w),
  });
  return { strides: o.strides, local: pack(local), global: pack(global) };
}

/** World position of the centre of flat voxel v of a grid. */
export function voxelCentre(g: Geometry, v: number): Vec3 {
  const i = v % g.size[0];
  const j = Math.floor(v / g.size[0]) % g.size[1];
  const k = Math.floor(v / (g.size[0] * g.size[1]));
  return indexToWorld(g, [i, j, k]);
}

/** One training pair from a prepared CT: geometries, resampled patches and positives. */
export function samplePatchPair(ct: PreparedCt, rng: Rng, options: PatchPairOptions = {}): PatchPair {
  const o = { ...DEFAULTS, ...options };
  const g = samplePatchGeometries(ct.image, rng, o);
  const positives = findPositives(g.a.geometry, g.b.geometry, ct.mask, rng, o);
  return {
    a: { ...g.a, image: extractPatch(ct, g.a.geometry, o.normalization) },
    b: { ...g.b, image: extractPatch(ct, g.b.geometry, o.normalization) },
    independent: g.independent,
    positives,
  };
}
