/**
 * Anatomical point matching with SAM embeddings: where is each template point in the query volume?
 *
 * Official SAM inference (alibaba-damo-academy/self-supervised-anatomical-embedding-v2,
 * tools/interfaces.py get_sim_embed_loc*): the coarse (global) embedding map is upsampled
 * trilinearly to the fine (local) grid and renormalised; sim = (fine·q_fine + coarse·q_coarse) / 2
 * over every fine voxel; the match is the argmax. Here, coarse to fine with the same score:
 *  1. template embeddings sampled at each point (trilinear in each embedding grid, renormalised);
 *  2. global similarity with every query global voxel: one matrix product per block of points
 *     (dot-products.ts), top-k global voxels kept;
 *  3. around each candidate, a window of query local voxels (default: those inside the candidate's
 *     global voxel, 8 x 8 x 2 for strides 16/16/4 and 2/2/2) scored (g + l) / 2: l the local
 *     similarity, g the similarity with the query's global embedding upsampled trilinearly to the
 *     local voxel and
 *     renormalised, as the official code; computed without upsampling the embeddings, as the
 *     interpolated global similarities divided by the norm of the interpolated embedding
 *     (similarity-grid.ts globalNorms: from the Gram matrix of each global cell's corners). The best
 *     voxel wins, refined to sub-voxel on the continuous score (the query's embeddings interpolated
 *     trilinearly and renormalised, as the template's are) within one voxel (continuous-refine.ts).
 * The score is the official one; the argmax equals the official exhaustive argmax whenever that lies
 * within the windows of the top-k global candidates. Optional cycle check: the found locations (their
 * voxel centres, whose embeddings are the ones that scored) are matched back to the template and a
 * point is rejected when it returns farther than cycleThresholdMm from where it started.
 * Points are world LPS mm; every index <-> world conversion goes through geometry.ts.
 */
import { CancelledError, InputError } from '../errors.ts';
import { indexToWorld, insideExtent, worldToIndex, type Geometry } from '../volume/geometry.ts';
import type { Vec3, Volume } from '../volume/volume.ts';
import { dotRows, type DotBackend } from './dot-products.ts';
import { embeddingFloat32, halfTable, type EmbeddedVolume, type EmbeddingVolume } from './embed-volume.ts';
import { QuerySearch, type SearchBlock } from './match-search.ts';
import type { MatchThreads } from './match-threads.ts';
import { profiler } from '../util/profile.ts';

/**
 * Global candidates searched locally by default. Measured with the shipped model (the chest matched
 * onto itself, 2,000 body points, this 2-core CPU): 5 candidates missed the point itself for 271
 * points (> 10 mm off), 20 for 62, 50 for 12; `sam eval-match` CPM@10 75.7% with 5, 90.2% with 20,
 * 92.5% with 50. The point's interpolated global embedding often resembles distant raw global voxels
 * more than its own cell's corners, so few candidates miss it. 20 keeps 2,000 points under 1 s here
 * (0.7-0.8 s; the local scan skips voxels whose global similarity cannot win).
 */
export const DEFAULT_TOP_K = 20;

export interface MatchOptions {
  /**
   * Global candidates searched locally (default DEFAULT_TOP_K; Infinity: every global voxel, i.e.
   * the official exhaustive search). Raise it for networks whose global embedding is not
   * discriminative (random initialisation: cosine ~0.97 between any two voxels).
   */
  topK?: number;
  /**
   * Half-size of the local window around each global candidate's centre, mm, on every axis (default:
   * per axis, half the global spacing plus localMarginMm: the candidate's own voxel and a margin).
   */
  localRadiusMm?: number;
  /** Margin of the default window beyond the candidate's voxel, mm (default 0). */
  localMarginMm?: number;
  /** Match back and reject points that do not return (default false). */
  cycleCheck?: boolean;
  /** Largest accepted forward-backward distance (default 10 mm). */
  cycleThresholdMm?: number;
  /** Points scoring below are not accepted (default: no threshold). */
  minScore?: number;
  /** Return the combined similarity map on the query's local grid for this point (true = point 0). */
  returnMap?: boolean | number;
  /** Sub-voxel refinement (default true). */
  refine?: boolean;
  /** Points per matrix product (default 512: bounds memory at 512 x query global voxels). */
  blockSize?: number;
  backend?: DotBackend;
  /**
   * Worker threads that share each block's search (top k, window scan, refinement) with this thread
   * (match-threads.ts; the same answers); the caller starts and disposes them.
   */
  threads?: MatchThreads | null;
  signal?: AbortSignal;
}

export interface PointMatch {
  /** Matched location in the query, world LPS mm. */
  location: Vec3;
  /** (globalScore + localScore) / 2 at the matched voxel, in [-1, 1]. */
  score: number;
  globalScore: number;
  localScore: number;
  /** The point lies inside the template's embedding extent (else its embedding is the nearest edge's). */
  inTemplate: boolean;
  /** Distance from the point to its back-match in the template (cycle check only). */
  cycleErrorMm?: number;
  accepted: boolean;
  /** Combined similarity on the query's local grid (returnMap only). */
  map?: Volume<Float32Array>;
}

/**
 * The trilinear corners of a world point in a grid (the point clamped into it): flat voxel indices
 * into idx[at..at+8) and weights into w[at..at+8); a zero-weight corner past the edge of a size-1
 * axis is clamped onto it. Returns whether the point lies inside the grid's extent (half a voxel
 * beyond the outer voxel centres). Shared by sampleEmbedding and the GPU matcher (sam/device/).
 */
export function trilinearCorners(
  g: Geometry,
  p: Vec3,
  idx: Int32Array,
  w: Float32Array | Float64Array,
  at = 0,
): boolean {
  const c = worldToIndex(g, p);
  const inside = insideExtent(g.size, c[0], c[1], c[2]);
  const i0: number[] = [];
  const f: number[] = [];
  for (let a = 0; a < 3; a++) {
    const n = g.size[a];
    const x = Math.min(Math.max(c[a], 0), n - 1);
    i0[a] = Math.min(Math.floor(x), Math.max(n - 2, 0));
    f[a] = n > 1 ? x - i0[a] : 0;
  }
  for (let c8 = 0; c8 < 8; c8++) {
    const o = [c8 & 1, (c8 >> 1) & 1, (c8 >> 2) & 1];
    let wt = 1;
    for (let a = 0; a < 3; a++) wt *= o[a] ? f[a] : 1 - f[a];
    const ijk = o.map((d, a) => Math.min(i0[a] + d, g.size[a] - 1));
    idx[at + c8] = ijk[0] + g.size[0] * (ijk[1] + g.size[1] * ijk[2]);
    w[at + c8] = wt;
  }
  return inside;
}

const cornerIdx = new Int32Array(8);
const cornerW = new Float64Array(8);

/** Embedding of a world point: trilinear in the grid (clamped to it), L2-normalised. Returns inside-ness. */
export function sampleEmbedding(ev: EmbeddingVolume, p: Vec3, out: Float32Array, offset = 0): boolean {
  const C = ev.components;
  const inside = trilinearCorners(ev, p, cornerIdx, cornerW);
  const half = ev.storage === 'float16' ? halfTable() : null;
  const d = ev.data;
  out.fill(0, offset, offset + C);
  for (let c8 = 0; c8 < 8; c8++) {
    const w = cornerW[c8];
    if (w === 0) continue;
    const base = cornerIdx[c8] * C;
    for (let c = 0; c < C; c++) out[offset + c] += w * (half ? half[d[base + c]] : d[base + c]);
  }
  let s = 0;
  for (let c = 0; c < C; c++) s += out[offset + c] ** 2;
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  for (let c = 0; c < C; c++) out[offset + c] *= inv;
  return inside;
}

/**
 * Half-size of the local window around a global candidate, per axis, in local voxels (continuous):
 * localRadiusMm, or half the global spacing plus localMarginMm.
 */
export function windowHalfSizes(query: { global: Geometry; local: Geometry }, options: MatchOptions): number[] {
  return [0, 1, 2].map(
    (a) =>
      (options.localRadiusMm ?? query.global.spacing[a] / 2 + (options.localMarginMm ?? 0)) / query.local.spacing[a],
  );
}

/** The box [lo, hi] (local voxel indices, inclusive) around global candidate voxel v. */
export function candidateWindow(
  query: { global: Geometry; local: Geometry },
  v: number,
  h: number[],
): { lo: number[]; hi: number[] } {
  const [gi, gj] = query.global.size;
  const gIdx: Vec3 = [v % gi, Math.floor(v / gi) % gj, Math.floor(v / (gi * gj))];
  const c = worldToIndex(query.local, indexToWorld(query.global, gIdx));
  return {
    lo: c.map((x, a) => Math.max(0, Math.ceil(x - h[a] - 1e-6))),
    hi: c.map((x, a) => Math.min(query.local.size[a] - 1, Math.floor(x + h[a] + 1e-6))),
  };
}

/** Match template points (world mm) into the query. */
export async function matchPoints(
  template: EmbeddedVolume,
  query: EmbeddedVolume,
  points: Vec3[],
  options: MatchOptions = {},
): Promise<PointMatch[]> {
  const C = template.global.components;
  if (query.global.components !== C || template.local.components !== query.local.components)
    throw new InputError('SAM embeddings', 'template and query have different channel counts (different models?)');
  const CL = query.local.components;
  const refine = options.refine ?? true;
  const block = Math.max(1, options.blockSize ?? 512);
  const qg = { data: embeddingFloat32(query.global), rows: query.global.data.length / C, cols: C };
  const [li, lj] = query.local.size;
  const [gi, gj, gk] = query.global.size;
  const Vg = gi * gj * gk;
  const topK = Math.max(1, Math.min(Vg, options.topK ?? DEFAULT_TOP_K));
  /** Window half-size per axis, in local voxels (continuous: compared with voxel-centre offsets). */
  const h = windowHalfSizes(query, options);
  const mapFor = options.returnMap === true ? 0 : typeof options.returnMap === 'number' ? options.returnMap : -1;
  const results: PointMatch[] = [];
  /** Centre of each match's voxel (before refinement): where the cycle check starts back. */
  const voxelCentres: Vec3[] = [];
  const search = new QuerySearch(query);
  const threads = options.threads?.usable ? options.threads : null;

  const prof = profiler('match');
  for (let p0 = 0; p0 < points.length; p0 += block) {
    if (options.signal?.aborted) throw new CancelledError('point matching');
    const nb = Math.min(block, points.length - p0);
    const tg = new Float32Array(nb * C);
    const tl = new Float32Array(nb * CL);
    const inside: boolean[] = [];
    for (let b = 0; b < nb; b++) {
      const inG = sampleEmbedding(template.global, points[p0 + b], tg, b * C);
      inside.push(sampleEmbedding(template.local, points[p0 + b], tl, b * CL) && inG);
    }
    prof.mark('templates');
    const sims = await dotRows({ data: tg, rows: nb, cols: C }, qg, options.backend);
    prof.mark('global similarities');
    const work: SearchBlock = { tg, tl, sims, n: nb, topK, h, refine };
    // top k, window scan, refinement: shared with the match threads when they are given
    const found = threads ? await threads.search(query, search, work, options.signal) : search.searchAll(work);
    prof.mark(threads ? 'search (threads)' : 'search');
    for (let b = 0; b < nb; b++) {
      const pi = p0 + b;
      const v = found.voxel[b];
      const bi: Vec3 = [v % li, Math.floor(v / li) % lj, Math.floor(v / (li * lj))];
      const best = found.score[b];
      const m: PointMatch = {
        location: indexToWorld(query.local, [found.at[3 * b], found.at[3 * b + 1], found.at[3 * b + 2]]),
        score: best,
        globalScore: found.globalScore[b],
        localScore: found.localScore[b],
        inTemplate: inside[b],
        accepted: inside[b] && best >= (options.minScore ?? -Infinity),
      };
      if (pi === mapFor) m.map = search.similarityMap(work, b);
      results.push(m);
      voxelCentres.push(indexToWorld(query.local, bi));
    }
  }
  prof.done(`${points.length} points, top ${topK}${threads ? `, ${threads.size} threads + this one` : ''}`);
  // the threads let go of the query: embeddings the caller drops are not kept alive there
  threads?.release();

  if (options.cycleCheck)
    applyCycleCheck(
      results,
      points,
      await matchPoints(query, template, voxelCentres, backMatchOptions(options)),
      options,
    );
  return results;
}

/** The options of the cycle check's backward matching: the forward ones without map, threshold or recursion. */
export function backMatchOptions<O extends MatchOptions>(options: O): O {
  return { ...options, cycleCheck: false, returnMap: false, minScore: undefined };
}

/** Records each point's forward-backward distance and rejects those farther than the threshold (default 10 mm). */
export function applyCycleCheck(
  results: PointMatch[],
  points: Vec3[],
  back: PointMatch[],
  options: MatchOptions,
): void {
  const thr = options.cycleThresholdMm ?? 10;
  results.forEach((r, n) => {
    const b = back[n].location;
    const p = points[n];
    r.cycleErrorMm = Math.hypot(b[0] - p[0], b[1] - p[1], b[2] - p[2]);
    if (!(r.cycleErrorMm <= thr)) r.accepted = false;
  });
}
