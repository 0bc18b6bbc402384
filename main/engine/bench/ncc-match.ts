/**
 * The intensity baseline of point matching: normalised cross-correlation (NCC) template matching.
 * For each fixed point, a cube of fixed intensities around it (LPS-aligned, sampled trilinearly) is
 * compared with every position of a search window in the moving image, coarse to fine: first on a
 * `coarseSpacingMm` grid over +-searchRadiusMm around the start (default: the same world position),
 * then on a `fineSpacingMm` grid over +-1 coarse voxel around the best, with a parabolic sub-voxel
 * refinement. Intensities are clipped to [-1024, 2000] HU so that metal and bone edges do not dominate.
 *
 * Speed: the moving image's levels (resampled, clipped, padded) are made once per image and spacing and
 * kept while the image lives (a WeakMap on the Volume: the cascade calls this chunk by chunk), with the
 * box sums of the values and of their squares over the template cube, so that a candidate position costs
 * one multiply-add per template voxel (the template is zero-mean, so the cross term needs no mean).
 */
import { indexToWorld, worldToIndex, worldToIndexMatrix, applyAffine, type Geometry } from '../volume/geometry.ts';
import { gridWithSpacing, resample } from '../volume/resample.ts';
import { IDENTITY3, type Vec3, type Volume } from '../volume/volume.ts';
import { boxSum } from '../register/deform/box-sum.ts';
import { sharedCopy, sharedVoxels } from '../compute/shared-memory.ts';
import { sampleLinear } from './synthetic-pair.ts';

export interface NccOptions {
  /** Half-size of the template cube, mm (default 16). */
  templateRadiusMm?: number;
  /** Half-size of the coarse search window, mm (default 48). */
  searchRadiusMm?: number;
  coarseSpacingMm?: number;
  fineSpacingMm?: number;
  /** Where to centre each point's search in the moving image (default: the point itself). */
  initial?: Vec3[];
}

export interface NccMatch {
  location: Vec3;
  /** NCC at the match, in [-1, 1]. */
  score: number;
}

/**
 * Where nccMatch runs: worker threads (ncc-threads.ts) or the GPU (register/device/ncc-on-device.ts);
 * the same search, the same options. `size`: how many of this thread's points it matches side by
 * side (its threads; the GPU more), for the callers' chunk sizes.
 */
export interface NccMatcher {
  readonly size: number;
  match(fixed: Volume, moving: Volume, points: Vec3[], options?: NccOptions, signal?: AbortSignal): Promise<NccMatch[]>;
  dispose(): void;
}

/** The HU range NCC clips to (the search levels, templates and the climb's samples; the GPU's too). */
export const NCC_LO_HU = -1024;
export const NCC_HI_HU = 2000;
const LO = NCC_LO_HU;
const HI = NCC_HI_HU;

/** A moving image's search level (its arrays on SharedArrayBuffers: ncc-threads.ts shares them). */
export interface NccLevel {
  grid: Geometry;
  data: Float32Array;
  /** Padding (voxels) around the moving image's extent, filled with air; also the template radius. */
  pad: number;
  spacing: number;
  /** Sums of the values and of their squares over the (2 pad + 1)^3 cube around each voxel. */
  sum: Float64Array;
  sumSq: Float64Array;
}

const levels = new WeakMap<Volume, Map<string, NccLevel>>();

/** The level of an image for a spacing and template radius: made once, kept while the image lives. */
function cachedLevel(moving: Volume, spacing: number, pad: number): NccLevel {
  const byKey = levelsOf(moving);
  const key = nccLevelKey({ spacing, pad });
  let L = byKey.get(key);
  if (!L) {
    byKey.set(key, (L = level(moving, spacing, pad)));
    made++;
  }
  return L;
}

let made = 0;

/** The levels kept for an image, by nccLevelKey. */
function levelsOf(moving: Volume): Map<string, NccLevel> {
  let byKey = levels.get(moving);
  if (!byKey) levels.set(moving, (byKey = new Map()));
  return byKey;
}

/** A level's key among an image's levels (its spacing and template radius). */
export function nccLevelKey(L: Pick<NccLevel, 'spacing' | 'pad'>): string {
  return `${L.spacing}:${L.pad}`;
}

/** Search levels made in this thread so far (ncc-threads.ts checks that its threads make none). */
export function nccLevelsMade(): number {
  return made;
}

/** A search level's grid: LPS-aligned (identity direction), the given spacing, `pad` voxels beyond the image. */
export function nccLevelGrid(moving: Geometry, spacing: number, pad: number): Geometry {
  const g = gridWithSpacing(moving, [spacing, spacing, spacing], IDENTITY3);
  return {
    size: g.size.map((n) => n + 2 * pad) as Vec3,
    spacing: g.spacing,
    origin: indexToWorld(g, [-pad, -pad, -pad]),
    direction: g.direction,
  };
}

/** The moving image on an LPS grid of the given spacing, padded by `pad` voxels of air on each side. */
function level(moving: Volume, spacing: number, pad: number): NccLevel {
  const grid = nccLevelGrid(moving, spacing, pad);
  const v = resample(moving, grid, { fill: LO, outputType: 'float32' });
  const data = sharedCopy(v.data as Float32Array);
  for (let n = 0; n < data.length; n++) data[n] = Math.min(HI, Math.max(LO, data[n]));
  const sq = new Float64Array(data.length);
  for (let n = 0; n < data.length; n++) sq[n] = data[n] * data[n];
  const onShared = () => sharedVoxels('float64', data.length) as Float64Array;
  return {
    grid,
    data,
    pad,
    spacing,
    sum: boxSum(data, grid.size, pad, onShared()),
    sumSq: boxSum(sq, grid.size, pad, onShared()),
  };
}

/** The search levels nccMatch makes of `moving` for these options (made now unless cached). */
export function nccLevels(moving: Volume, options: NccOptions = {}): NccLevel[] {
  const { cs, fs, rc, rf } = nccSpacings(options);
  return [cachedLevel(moving, cs, rc), cachedLevel(moving, fs, rf)];
}

/** Levels of `moving` made elsewhere (another thread's, on shared memory), used by nccMatch from now on. */
export function adoptNccLevels(moving: Volume, made: NccLevel[]): void {
  const byKey = levelsOf(moving);
  for (const L of made) byKey.set(nccLevelKey(L), L);
}

/**
 * The search's sizes for these options: template radius tr (mm), level spacings cs, fs (mm), the
 * template radii in level voxels rc, rf and of the continuous refinement rr, and the search radii in
 * level voxels Rc (coarse window) and Rf (fine window around the coarse best).
 */
export function nccSpacings(options: NccOptions) {
  const tr = options.templateRadiusMm ?? 16;
  const cs = options.coarseSpacingMm ?? 4;
  const fs = options.fineSpacingMm ?? 2;
  const sr = options.searchRadiusMm ?? 48;
  return {
    tr,
    cs,
    fs,
    rc: Math.max(1, Math.round(tr / cs)),
    rf: Math.max(1, Math.round(tr / fs)),
    rr: Math.max(1, Math.round(refineMm / fs)),
    Rc: Math.max(1, Math.round(sr / cs)),
    Rf: Math.max(1, Math.ceil(cs / fs)),
  };
}

/**
 * The fixed intensities (clipped) on the (2r + 1)^3 lattice of `spacing` around world point p
 * (i fastest, then j, then k), minus their mean, and their sum of squares.
 */
function zeroMeanTemplate(fixed: Volume, p: Vec3, spacing: number, r: number): { T: Float64Array; norm2: number } {
  const toFixed = worldToIndexMatrix(fixed);
  const n = (2 * r + 1) ** 3;
  const T = new Float64Array(n);
  let mean = 0;
  for (let c = -r, q = 0; c <= r; c++)
    for (let b = -r; b <= r; b++)
      for (let a = -r; a <= r; a++, q++) {
        const w: Vec3 = [p[0] + a * spacing, p[1] + b * spacing, p[2] + c * spacing];
        T[q] = Math.min(HI, Math.max(LO, sampleLinear(fixed, applyAffine(toFixed, w))));
        mean += T[q];
      }
  mean /= n;
  let norm2 = 0;
  for (let q = 0; q < n; q++) {
    T[q] -= mean;
    norm2 += T[q] * T[q];
  }
  return { T, norm2 };
}

/** Best NCC position on one level: candidates within +-radius voxels of `centre` (world). */
function searchLevel(fixed: Volume, p: Vec3, L: NccLevel, r: number, centre: Vec3, radius: number) {
  const [ni, nj] = L.grid.size;
  const { T, norm2 } = zeroMeanTemplate(fixed, p, L.spacing, r);
  const n = T.length;
  const tn = Math.sqrt(norm2);
  // the template's rows (fixed b, c; a = -r..r contiguous in i) as offsets in the level's flat index
  const w = 2 * r + 1;
  const rows = new Int32Array(w * w);
  for (let c = -r, q = 0; c <= r; c++) for (let b = -r; b <= r; b++, q++) rows[q] = -r + ni * (b + nj * c);
  const c0 = worldToIndex(L.grid, centre).map(Math.round);
  const lo = c0.map((v) => Math.max(L.pad, v - radius));
  const hi = c0.map((v, a) => Math.min(L.grid.size[a] - 1 - L.pad, v + radius));
  const d = L.data;
  if (r !== L.pad) throw new Error('ncc-match: the level was made for another template radius');
  const scoreAt = (i: number, j: number, k: number): number => {
    const base = i + ni * (j + nj * k);
    // (the sum in the template's order, row by row)
    let st = 0;
    for (let row = 0, q = 0; row < rows.length; row++) {
      const o = base + rows[row];
      for (let a = 0; a < w; a++, q++) st += T[q] * d[o + a];
    }
    const s1 = L.sum[base];
    const varI = L.sumSq[base] - (s1 * s1) / n;
    return varI > 1e-6 && tn > 0 ? st / (tn * Math.sqrt(varI)) : 0;
  };
  let best = -Infinity;
  let at: Vec3 = [c0[0], c0[1], c0[2]];
  for (let k = lo[2]; k <= hi[2]; k++)
    for (let j = lo[1]; j <= hi[1]; j++)
      for (let i = lo[0]; i <= hi[0]; i++) {
        const s = scoreAt(i, j, k);
        if (s > best) {
          best = s;
          at = [i, j, k];
        }
      }
  return { best, at, scoreAt };
}

export function nccMatch(fixed: Volume, moving: Volume, points: Vec3[], options: NccOptions = {}): NccMatch[] {
  const { cs, fs, rc, rf, rr, Rc, Rf } = nccSpacings(options);
  const coarse = cachedLevel(moving, cs, rc);
  const fine = cachedLevel(moving, fs, rf);
  return points.map((p, n) => {
    const start = options.initial?.[n] ?? p;
    if (!start.every(Number.isFinite)) return { location: [NaN, NaN, NaN] as Vec3, score: NaN };
    const c = searchLevel(fixed, p, coarse, rc, start, Rc);
    const q = indexToWorld(coarse.grid, c.at);
    const f = searchLevel(fixed, p, fine, rf, q, Rf);
    // the fine grid's best, then continuous: the template's own lattice moved over the moving image;
    // the search's start (the prediction of an earlier stage, or the point itself) is climbed from too
    const refined = refine(fixed, moving, p, [indexToWorld(fine.grid, f.at), start], fs, rr);
    return { location: refined, score: f.best };
  });
}

/** Half-size (mm) of the template used for the continuous refinement (its central part). */
const refineMm = 8;

/**
 * The match refined off the fine grid. The grid search compares the template (sampled on a lattice
 * around the fixed point) with the moving image resampled on its own grid: unless the two lattices
 * happen to line up, the interpolation differs between them, and a scan matched with itself lands
 * about a voxel off (median 0.9 mm on the elastix lung image). Here the moving image is sampled on
 * the template's lattice moved by y - p, so identical images give NCC 1 exactly at y = p: from each
 * start (the grid's best; the search's own start, e.g. the affine's prediction in the coarse stage) per
 * axis a parabola through y - h, y, y + h moves y (at most h), for h = spacing / 2, / 4, / 8, a move kept
 * only if the NCC does not fall; the end with the higher NCC wins (the grid's on a tie). The grid's
 * best alone left a tenth of a scan's self-matches over 5 mm away (flat or repetitive regions where
 * another grid node scored above the interpolated true position).
 */
function refine(fixed: Volume, moving: Volume, p: Vec3, starts: Vec3[], spacing: number, r: number): Vec3 {
  const toMoving = worldToIndexMatrix(moving);
  const { T, norm2: tn } = zeroMeanTemplate(fixed, p, spacing, r);
  const n = T.length;
  if (!(tn > 0)) return starts[0];
  // the template's offsets in moving-index units (the linear part of world -> index), so that an
  // evaluation is one matrix product for y and an addition per sample, with no allocation
  const delta = new Float64Array(3 * n);
  for (let c = -r, q = 0; c <= r; c++)
    for (let b = -r; b <= r; b++)
      for (let a = -r; a <= r; a++, q++)
        for (let r3 = 0; r3 < 3; r3++)
          delta[3 * q + r3] =
            toMoving[4 * r3] * (a * spacing) +
            toMoving[4 * r3 + 1] * (b * spacing) +
            toMoving[4 * r3 + 2] * (c * spacing);
  const at: Vec3 = [0, 0, 0];
  const nccAt = (y: Vec3): number => {
    const [b0, b1, b2] = applyAffine(toMoving, y);
    let sum = 0;
    let sumSq = 0;
    let cross = 0;
    for (let q = 0; q < n; q++) {
      at[0] = b0 + delta[3 * q];
      at[1] = b1 + delta[3 * q + 1];
      at[2] = b2 + delta[3 * q + 2];
      const v = Math.min(HI, Math.max(LO, sampleLinear(moving, at, LO)));
      sum += v;
      sumSq += v * v;
      cross += T[q] * v;
    }
    const varM = sumSq - (sum * sum) / n;
    return varM > 1e-6 ? cross / Math.sqrt(tn * varM) : 0;
  };
  let found: { y: Vec3; ncc: number } | null = null;
  for (const start of starts) {
    const climbed = climb(nccAt, start, spacing);
    // (the first start wins a tie)
    if (!found || climbed.ncc > found.ncc) found = climbed;
  }
  return found!.y;
}

/** Per-axis parabolic steps of h = spacing / 2, / 4, / 8 from `start`, each kept only where f does not fall. */
function climb(nccAt: (y: Vec3) => number, start: Vec3, spacing: number): { y: Vec3; ncc: number } {
  const y: Vec3 = [...start];
  let best = nccAt(y);
  for (let h = spacing / 2; h >= spacing / 8; h /= 2)
    for (let a = 0; a < 3; a++) {
      const s = [-1, 1].map((d) => {
        const z: Vec3 = [...y];
        z[a] += d * h;
        return nccAt(z);
      });
      const den = s[0] - 2 * best + s[1];
      let step = 0;
      if (den < 0) step = Math.max(-1, Math.min(1, (0.5 * (s[0] - s[1])) / den));
      else if (Math.max(s[0], s[1]) > best) step = s[0] > s[1] ? -1 : 1;
      if (step === 0) continue;
      const z: Vec3 = [...y];
      z[a] += step * h;
      const sz = nccAt(z);
      if (sz >= best) {
        y[a] = z[a];
        best = sz;
      }
    }
  return { y, ncc: best };
}
