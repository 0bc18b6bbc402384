/**
 * Registration confidence from SAM embeddings: per-voxel cosine similarity of the fixed image's
 * local embedding at x and the moving image's local embedding at x + u(x), i.e. of the fixed and
 * warped embeddings. The moving embeddings are SAMPLED at the mapped points (trilinear, renormalised:
 * sam/match.ts sampleEmbedding), not recomputed from the warped image: one embedding per input,
 * reused whatever the transform (a refit or another stage costs no network run), and no resampling
 * artefacts of the warped image in the embeddings. Where the transform is right the two embeddings
 * describe the same anatomy (similarity near that of true matches); where it is wrong they do not.
 *
 *  - computed on the fixed LOCAL embedding grid (4 mm for the shipped model), where u is sampled
 *    trilinearly from the field (clamped at its border); NaN where x + u(x) falls outside the moving
 *    embedding's extent (no information there);
 *  - resampled trilinearly onto the fixed grid as a float32 Volume (NaN beyond the embedding grid's
 *    voxel-centre hull or next to NaN);
 *  - voxels below `threshold` are flagged as likely misregistered (lowMask, fixed grid, inside the body);
 *  - summaries (on the fixed grid, over finite voxels of the body mask): whole body, axial thirds
 *    (superior / middle / inferior third of the body mask's extent along the superior axis),
 *    octants of the body's bounding box (left/right x anterior/posterior x superior/inferior, split
 *    at its centre), and per label of a label map when given (nearest-neighbour onto the fixed grid).
 */
import { InputError } from '../errors.ts';
import { checkField, fieldSampler } from '../register/field/field.ts';
import { halfTable, type EmbeddedVolume } from '../sam/embed-volume.ts';
import { sampleEmbedding } from '../sam/match.ts';
import { indexToWorldMatrix, sameGrid } from '../volume/geometry.ts';
import { bodyMask } from '../volume/mask.ts';
import { resample } from '../volume/resample.ts';
import { makeVolume, voxelCount, withData, type Vec3, type Volume } from '../volume/volume.ts';

/**
 * Default threshold on the local similarity. With the shipped small model, correctly mapped body
 * voxels of a synthetic pair score ~0.8-0.9 on average and voxels mapped ~10 mm off drop well
 * below 0.6 (test/unit/review-confidence.test.ts).
 */
export const DEFAULT_CONFIDENCE_THRESHOLD = 0.6;

export interface RegionSummary {
  name: string;
  /** Voxels counted (fixed grid, body mask, finite similarity). */
  voxels: number;
  meanSimilarity: number;
  /** Percentage of the counted voxels below the threshold. */
  percentBelow: number;
}

export interface ConfidenceSummary {
  threshold: number;
  body: RegionSummary;
  /** 'superior third', 'middle third', 'inferior third'. */
  thirds: RegionSummary[];
  /** e.g. 'left-anterior-superior'. */
  octants: RegionSummary[];
  /** Per nonzero label of the label map (name 'label N' or from `labelNames`). */
  labels: (RegionSummary & { label: number })[];
}

export interface ConfidenceResult {
  /** Similarity on the fixed local embedding grid (float32, NaN without information). */
  grid: Volume<Float32Array>;
  /** The same resampled on the fixed grid. */
  map: Volume<Float32Array>;
  /** 1 where the body voxel's similarity is below the threshold (fixed grid). */
  lowMask: Volume<Uint8Array>;
  /** The body mask the summaries count (fixed grid). */
  mask: Volume<Uint8Array>;
  summary: ConfidenceSummary;
}

export interface ConfidenceOptions {
  threshold?: number;
  /** Body mask on the fixed grid (default volume/mask.ts bodyMask(fixed)). */
  mask?: Volume;
  /** Label map (any grid; resampled nearest onto the fixed grid) for per-organ summaries. */
  labels?: Volume;
  labelNames?: Record<number, string>;
}

/** Similarity of fixed and moving local embeddings through the field, on the fixed local grid. */
export function confidenceGrid(embeddings: { fixed: EmbeddedVolume; moving: EmbeddedVolume }, field: Volume) {
  checkField(field);
  const fl = embeddings.fixed.local;
  const ml = embeddings.moving.local;
  if (fl.components !== ml.components)
    throw new InputError('SAM embeddings', 'fixed and moving embeddings have different channel counts');
  const C = fl.components;
  // float16 storage is read through the half table voxel by voxel (no float32 copy of the whole grid)
  const fdata = fl.data;
  const half = fl.storage === 'float16' ? halfTable() : null;
  const sampler = fieldSampler(field, 'border');
  const m = indexToWorldMatrix(fl);
  const out = new Float32Array(voxelCount(fl.size));
  const emb = new Float32Array(C);
  const u = [0, 0, 0];
  const [ni, nj, nk] = fl.size;
  for (let k = 0, n = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, n++) {
        const x = m[0] * i + m[1] * j + m[2] * k + m[3];
        const y = m[4] * i + m[5] * j + m[6] * k + m[7];
        const z = m[8] * i + m[9] * j + m[10] * k + m[11];
        sampler.sample(x, y, z, u);
        if (!sampleEmbedding(ml, [x + u[0], y + u[1], z + u[2]], emb)) {
          out[n] = NaN;
          continue;
        }
        let dotp = 0;
        let norm = 0;
        const base = n * C;
        for (let c = 0; c < C; c++) {
          const f = half ? half[fdata[base + c]] : fdata[base + c];
          dotp += f * emb[c];
          norm += f * f;
        }
        out[n] = norm > 0 ? dotp / Math.sqrt(norm) : NaN;
      }
  return makeVolume({
    size: fl.size,
    spacing: fl.spacing,
    origin: fl.origin,
    direction: fl.direction,
    data: out,
    meta: { description: 'SAM confidence (local embedding similarity)' },
  });
}

interface Acc {
  n: number;
  sum: number;
  low: number;
}
const acc = (): Acc => ({ n: 0, sum: 0, low: 0 });
const summarize = (name: string, a: Acc): RegionSummary => ({
  name,
  voxels: a.n,
  meanSimilarity: a.n ? a.sum / a.n : NaN,
  percentBelow: a.n ? (100 * a.low) / a.n : NaN,
});

/** Region of every fixed voxel: axial third (0 superior .. 2 inferior) and octant code (bits L, P, S). */
export function bodyRegions(mask: Volume): { third: Int8Array; octant: Int8Array } {
  const [ni, nj, nk] = mask.size;
  const lo: Vec3 = [Infinity, Infinity, Infinity];
  const hi: Vec3 = [-Infinity, -Infinity, -Infinity];
  const m = indexToWorldMatrix(mask);
  const world = (i: number, j: number, k: number, a: number) =>
    m[4 * a] * i + m[4 * a + 1] * j + m[4 * a + 2] * k + m[4 * a + 3];
  for (let k = 0, n = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, n++)
        if (mask.data[n])
          for (let a = 0; a < 3; a++) {
            const w = world(i, j, k, a);
            if (w < lo[a]) lo[a] = w;
            if (w > hi[a]) hi[a] = w;
          }
  const third = new Int8Array(ni * nj * nk).fill(-1);
  const octant = new Int8Array(ni * nj * nk).fill(-1);
  const c = [0, 1, 2].map((a) => (lo[a] + hi[a]) / 2);
  const h = hi[2] - lo[2];
  for (let k = 0, n = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++, n++) {
        if (!mask.data[n]) continue;
        const z = world(i, j, k, 2);
        // 0: superior third (largest z), 2: inferior
        third[n] = h > 0 ? Math.min(2, Math.floor((3 * (hi[2] - z)) / h)) : 1;
        let o = 0;
        for (let a = 0; a < 3; a++) if (world(i, j, k, a) >= c[a]) o |= 1 << a;
        octant[n] = o;
      }
  return { third, octant };
}

export const THIRD_NAMES = ['superior third', 'middle third', 'inferior third'];
/** Octant names by code: bit 0 left (x >= centre) / right, bit 1 posterior / anterior, bit 2 superior / inferior. */
export const OCTANT_NAMES = Array.from(
  { length: 8 },
  (_, o) => `${o & 1 ? 'left' : 'right'}-${o & 2 ? 'posterior' : 'anterior'}-${o & 4 ? 'superior' : 'inferior'}`,
);

/** Summaries of a similarity map on the fixed grid (see the header). */
export function summarizeConfidence(
  map: Volume,
  mask: Volume,
  threshold: number,
  labels?: Volume,
  labelNames: Record<number, string> = {},
): ConfidenceSummary {
  if (!sameGrid(map, mask)) throw new InputError('mask', 'the body mask is not on the fixed grid');
  const lab = labels ? onGrid(labels, map) : undefined;
  const { third, octant } = bodyRegions(mask);
  const body = acc();
  const thirds = [acc(), acc(), acc()];
  const octants = Array.from({ length: 8 }, acc);
  const perLabel = new Map<number, Acc>();
  const d = map.data;
  for (let n = 0; n < d.length; n++) {
    if (!mask.data[n]) continue;
    const v = d[n];
    if (!Number.isFinite(v)) continue;
    const low = v < threshold ? 1 : 0;
    for (const a of [body, thirds[third[n]], octants[octant[n]]]) {
      a.n++;
      a.sum += v;
      a.low += low;
    }
    if (lab) {
      const l = lab.data[n];
      if (l !== 0) {
        let a = perLabel.get(l);
        if (!a) perLabel.set(l, (a = acc()));
        a.n++;
        a.sum += v;
        a.low += low;
      }
    }
  }
  return {
    threshold,
    body: summarize('body', body),
    thirds: thirds.map((a, t) => summarize(THIRD_NAMES[t], a)),
    octants: octants.map((a, o) => summarize(OCTANT_NAMES[o], a)),
    labels: [...perLabel.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([l, a]) => ({ ...summarize(labelNames[l] ?? `label ${l}`, a), label: l })),
  };
}

/** A label map on a grid: itself when already there, else nearest-neighbour resampled. */
function onGrid(labels: Volume, grid: Volume): Volume {
  if (labels.components !== 1)
    throw new InputError('label map', `a label map needs 1 component, not ${labels.components}`);
  return sameGrid(labels, grid) ? labels : resample(labels, grid, { interpolation: 'nearest', fill: 0 });
}

/** The confidence map of a registration (see the header). */
export function confidenceMap(
  fixed: Volume,
  embeddings: { fixed: EmbeddedVolume; moving: EmbeddedVolume },
  field: Volume,
  options: ConfidenceOptions = {},
): ConfidenceResult {
  const threshold = options.threshold ?? DEFAULT_CONFIDENCE_THRESHOLD;
  if (!Number.isFinite(threshold)) throw new InputError('threshold', `not a number: ${threshold}`);
  const grid = confidenceGrid(embeddings, field);
  const map = resample(grid, fixed, { fill: NaN, outputType: 'float32' }) as Volume<Float32Array>;
  map.meta.description = 'SAM confidence (local embedding similarity)';
  const mask = (options.mask ?? bodyMask(fixed)) as Volume;
  if (!sameGrid(mask, fixed)) throw new InputError('mask', 'the body mask is not on the fixed grid');
  return assemble(
    fixed,
    grid,
    map,
    mask,
    summarizeConfidence(map, mask, threshold, options.labels, options.labelNames),
  );
}

/** The result around a map on the fixed grid: lowMask (body voxels below the summary's threshold) and the mask as bytes. */
function assemble(
  fixed: Volume,
  grid: Volume<Float32Array>,
  map: Volume<Float32Array>,
  mask: Volume,
  summary: ConfidenceSummary,
): ConfidenceResult {
  const low = new Uint8Array(voxelCount(fixed.size));
  for (let n = 0; n < low.length; n++) low[n] = mask.data[n] && map.data[n] < summary.threshold ? 1 : 0;
  const mask8 =
    mask.data instanceof Uint8Array
      ? (mask as Volume<Uint8Array>)
      : withData(
          mask,
          Uint8Array.from(mask.data, (v) => (v ? 1 : 0)),
        );
  return {
    grid,
    map,
    lowMask: withData(fixed, low, 1, { description: `SAM confidence below ${summary.threshold}` }),
    mask: mask8,
    summary,
  };
}

/**
 * A confidence result rebuilt from a stored similarity map on the fixed grid (the workstation keeps
 * the worker's int16 x1000 map, `noData` where undefined) and its summary: what the review report
 * needs (map, body mask, lowMask, summary) without the embeddings. `grid` is the map itself.
 */
export function confidenceFromStoredMap(
  fixed: Volume,
  stored: Int16Array,
  noData: number,
  summary: ConfidenceSummary,
  mask: Volume = bodyMask(fixed),
): ConfidenceResult {
  if (stored.length !== voxelCount(fixed.size))
    throw new InputError('confidence map', 'the stored map is not on the fixed grid');
  const data = new Float32Array(stored.length);
  for (let n = 0; n < stored.length; n++) data[n] = stored[n] === noData ? NaN : stored[n] / 1000;
  const map = withData(fixed, data, 1, { description: 'SAM confidence (local embedding similarity)' });
  return assemble(fixed, map, map, mask, summary);
}
