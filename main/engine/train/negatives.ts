/**
 * Negative mining for the SAM InfoNCE loss: pure index selection (no gradients), vectorised in
 * tf ops (a matMul of the queries against every candidate voxel of both patches, distances by
 * matMul, then top-k; only the final filtering of the top-k and the random draw run in JS); the
 * results are plain Int32Arrays of rows of the flattened [batch * voxels, C] embeddings
 * (see infonce.ts).
 *
 * - Local (per direction A->B and B->A): candidates are the local voxels of both patches, ranked
 *   by local similarity + similarity of the global embeddings upsampled (trilinear, renormalised)
 *   to the local grid; voxels within radiusMm (world space) of the positive's world point, and the
 *   query and key voxels themselves, are excluded; the top nCand are kept and nNeg drawn at random.
 * - Global: the same on the global voxels of both patches with global similarity (top globalCand,
 *   globalNeg drawn), plus nRand random global voxels from the OTHER pairs of the batch, shared by
 *   every query of the direction.
 * Excluded voxels are really excluded (set to -Infinity, then re-checked in float64), never merely
 * multiplied by 0. Batch layout: pair p is patches 2p (A) and 2p + 1 (B).
 * Call on embeddings outside a gradient scope where possible: nothing here needs gradients.
 */
import * as tf from '@tensorflow/tfjs-core';
import { indexToWorld, worldToIndex, type Geometry } from '../volume/geometry.ts';
import type { Vec3 } from '../volume/volume.ts';
import type { Rng } from './rng.ts';
import { topkRows, topkRowsMaskedPackedWgsl } from './top-k-wgsl.ts';
import { localScorerWgsl } from './local-score-wgsl.ts';
import { embeddingGrid, gridWorldPositions, type PositivePairs, type PositiveSet } from './patch-pairs.ts';
import type { DirectionSelection, PairSelection } from './infonce.ts';

export interface NegativeOptions {
  /** Local: candidates kept after ranking (official pre_select_neg_number 2000). */
  nCand?: number;
  /** Local: negatives drawn from the candidates (official after_select_neg_number 500). */
  nNeg?: number;
  /** Local exclusion radius in mm (official ignore_distance 20). */
  radiusMm?: number;
  /** Global: hard candidates kept (official coarse_pre_select_neg_number 250). */
  globalCand?: number;
  /** Global: hard negatives drawn from them (official coarse_after_select_neg_number 200). */
  globalNeg?: number;
  /** Global exclusion radius in mm (official coarse_ignore_distance 5). */
  globalRadiusMm?: number;
  /** Global: random voxels of other pairs of the batch (official coarse_global_select_number 1000). */
  nRand?: number;
}

export const SAM_NEGATIVES: Required<NegativeOptions> = {
  nCand: 2000,
  nNeg: 500,
  radiusMm: 20,
  globalCand: 250,
  globalNeg: 200,
  globalRadiusMm: 5,
  nRand: 1000,
};

export interface HardNegativeRequest {
  /** [nq, N] ranking score of every candidate for every query (higher = harder). */
  scores: tf.Tensor2D;
  /** World point (mm) of each query's positive, nq * 3 interleaved. */
  queryWorld: ArrayLike<number>;
  /** World position of each candidate, N * 3 interleaved. */
  candidateWorld: ArrayLike<number>;
  /** Candidates closer than this (mm) to the query's world point are excluded. */
  radiusMm: number;
  /** Candidates excluded explicitly: perQuery indices per query (-1 = none). */
  exclude?: { indices: Int32Array; perQuery: number };
  nCand: number;
  nNeg: number;
  rng: Rng;
}

export interface NegativeIndices {
  /** nq * perQuery candidate indices, -1 where a query has fewer than perQuery negatives. */
  indices: Int32Array;
  perQuery: number;
}

/** Hard-and-diverse negatives: rank, exclude, keep the top nCand, draw nNeg of them at random. */
export async function selectHardNegatives(r: HardNegativeRequest): Promise<NegativeIndices> {
  const ranked = rankCandidates(r);
  return drawNegatives(r, await readRanking(ranked));
}

/**
 * The queued top-k of a request's masked scores (tensors on the backend), k with a few spare places:
 * values and indices, or on WebGPU both in one int32 tensor (topkRowsMaskedPackedWgsl: indices, then
 * the values' bits, rows of `stride`).
 */
type PairTop = { values: tf.Tensor; indices: tf.Tensor };
type PackedTop = { packed: tf.Tensor; rows: number; stride: number };
interface Ranking {
  k: number;
  top: PairTop | PackedTop | null;
}

/**
 * Queues the ranking of a request: candidates clearly inside the exclusion radius out, then the top k
 * by score. Returns at once (the backend computes it meanwhile); readRanking reads it.
 */
function rankCandidates(r: HardNegativeRequest): Ranking {
  const [nq, n] = r.scores.shape;
  if (nq === 0 || n === 0 || r.nNeg === 0 || r.nCand === 0) return { k: 0, top: null };
  const ex = r.exclude?.perQuery ?? 0;
  // A few spare places for candidates on the radius, which only the exact test in drawNegatives drops.
  const k = Math.min(n, r.nCand + ex + 32);
  // Centre the positions so that the float32 squared distances stay accurate.
  const ref = [0, 1, 2].map((a) => r.candidateWorld[a]);
  const qw = new Float32Array(nq * 3);
  const cw = new Float32Array(n * 3);
  for (let i = 0; i < nq * 3; i++) qw[i] = r.queryWorld[i] - ref[i % 3];
  for (let i = 0; i < n * 3; i++) cw[i] = r.candidateWorld[i] - ref[i % 3];
  const r2 = r.radiusMm * r.radiusMm;
  // on WebGPU the mask is applied inside the top-k program (top-k-wgsl.ts): one dispatch
  const packed = topkRowsMaskedPackedWgsl(r.scores, k, { rowWorld: qw, candidateWorld: cw, within: r2 - 0.05 });
  if (packed) return { k, top: { packed: packed.packed, rows: nq, stride: packed.stride } };
  const top = tf.tidy(() => {
    // |q - c|^2 = [|q|^2, 1, -2q] . [1, |c|^2, c]: one matMul, no broadcasting.
    const qa = new Float32Array(nq * 5);
    const ca = new Float32Array(n * 5);
    for (let i = 0; i < nq; i++) {
      const [x, y, z] = [qw[3 * i], qw[3 * i + 1], qw[3 * i + 2]];
      qa.set([x * x + y * y + z * z, 1, -2 * x, -2 * y, -2 * z], 5 * i);
    }
    for (let i = 0; i < n; i++) {
      const [x, y, z] = [cw[3 * i], cw[3 * i + 1], cw[3 * i + 2]];
      ca.set([1, x * x + y * y + z * z, x, y, z], 5 * i);
    }
    const d2 = tf.matMul(tf.tensor2d(qa, [nq, 5]), tf.tensor2d(ca, [n, 5]), false, true);
    // Clearly inside (beyond float32 rounding): out of the ranking; the exact float64 test decides the rest.
    const masked = tf.where(tf.less(d2, r2 - 0.05), tf.fill([nq, n], -Infinity), r.scores);
    // on WebGPU one dispatch instead of tfjs' bitonic network (top-k-wgsl.ts)
    const t = topkRows(masked as tf.Tensor2D, k);
    return { values: t.values, indices: t.indices };
  });
  return { k, top };
}

/** A ranking read back: row q's candidates at q * stride (k of them), best first. */
type ReadRanking = { k: number; stride: number; values: Float32Array; indices: Int32Array };

/** A ranking's values and candidate indices, read back (asynchronously: GPU backends have no synchronous read in Node). */
async function readRanking(ranking: Ranking): Promise<ReadRanking> {
  return (await readRankings([ranking]))[0];
}

/**
 * Rankings read back at once: the packed ones (WebGPU) concatenated into one tensor, the others' values
 * into one and their indices into another, so one read-back (each a flush and a wait for the GPU)
 * instead of two per ranking; the same numbers, split again on the host.
 */
async function readRankings(rankings: Ranking[]): Promise<ReadRanking[]> {
  const tops = rankings.map((r) => r.top).filter((t) => t !== null);
  const packed = tops.filter((t): t is PackedTop => 'packed' in t);
  const pairs = tops.filter((t): t is PairTop => !('packed' in t));
  const owned = tops.flatMap((t) => ('packed' in t ? [t.packed] : [t.values, t.indices]));
  let reads: tf.Tensor[] = [];
  try {
    reads = tf.tidy(() => {
      const flat = (ts: tf.Tensor[]) =>
        ts.length === 1 ? tf.reshape(ts[0], [-1]) : tf.concat(ts.map((t) => tf.reshape(t, [-1])));
      const out: tf.Tensor[] = [];
      if (packed.length) out.push(flat(packed.map((t) => t.packed)));
      if (pairs.length) out.push(flat(pairs.map((t) => t.values)), flat(pairs.map((t) => t.indices)));
      return out;
    });
    const data = await Promise.all(reads.map((t) => t.data()));
    const bits = (packed.length ? data.shift() : new Int32Array(0)) as Int32Array;
    const [v, i] = (pairs.length ? data : [new Float32Array(0), new Int32Array(0)]) as [Float32Array, Int32Array];
    let atPacked = 0;
    let atPairs = 0;
    return rankings.map((r): ReadRanking => {
      const t = r.top;
      if (!t) return { k: 0, stride: 0, values: new Float32Array(0), indices: new Int32Array(0) };
      if ('packed' in t) {
        const n = t.rows * t.stride;
        const at = atPacked;
        atPacked += 2 * n;
        const values = new Float32Array(bits.buffer, bits.byteOffset + 4 * (at + n), n);
        return { k: r.k, stride: t.stride, values, indices: bits.subarray(at, at + n) };
      }
      const n = t.values.size;
      const at = atPairs;
      atPairs += n;
      return { k: r.k, stride: r.k, values: v.subarray(at, at + n), indices: i.subarray(at, at + n) };
    });
  } finally {
    tf.dispose(owned);
    tf.dispose(reads);
  }
}

/** From a read ranking: the exact exclusions, the top nCand kept, nNeg of them drawn at random. */
function drawNegatives(r: HardNegativeRequest, ranked: ReadRanking): NegativeIndices {
  const nq = r.scores.shape[0];
  const perQuery = r.nNeg;
  const out = new Int32Array(nq * perQuery).fill(-1);
  const k = ranked.k;
  const stride = ranked.stride;
  if (k === 0) return { indices: out, perQuery };
  const ex = r.exclude?.perQuery ?? 0;
  const r2 = r.radiusMm * r.radiusMm;
  const kept = new Int32Array(r.nCand);
  for (let qi = 0; qi < nq; qi++) {
    let m = 0;
    for (let t = 0; t < k && m < r.nCand; t++) {
      const v = ranked.values[qi * stride + t];
      if (v === -Infinity) break; // sorted: only excluded ones remain
      if (Number.isNaN(v)) continue;
      const ci = ranked.indices[qi * stride + t];
      let skip = false;
      for (let e = 0; e < ex; e++) if (r.exclude!.indices[qi * ex + e] === ci) skip = true;
      if (skip) continue;
      const dx = r.candidateWorld[ci * 3] - r.queryWorld[qi * 3];
      const dy = r.candidateWorld[ci * 3 + 1] - r.queryWorld[qi * 3 + 1];
      const dz = r.candidateWorld[ci * 3 + 2] - r.queryWorld[qi * 3 + 2];
      if (dx * dx + dy * dy + dz * dz < r2) continue;
      kept[m++] = ci;
    }
    const pick = r.rng.sample(m, perQuery);
    for (let t = 0; t < pick.length; t++) out[qi * perQuery + t] = kept[pick[t]];
  }
  return { indices: out, perQuery };
}

/** n distinct random rows of a [batch * voxelsPerPatch] layout, from patches not in `own`. */
export function sampleOtherPatchVoxels(
  batch: number,
  voxelsPerPatch: number,
  own: number[],
  n: number,
  rng: Rng,
): Int32Array {
  const allowed: number[] = [];
  for (let p = 0; p < batch; p++) if (!own.includes(p)) allowed.push(p);
  const pick = rng.sample(allowed.length * voxelsPerPatch, n);
  return pick.map((x) => allowed[Math.floor(x / voxelsPerPatch)] * voxelsPerPatch + (x % voxelsPerPatch));
}

/**
 * Linear interpolation taps along index axis `axis`, by world position (clamped at the borders, as
 * align_corners=False): local index o reads global g0[o] with weight 1 - f[o] and g0[o] + 1 with f[o].
 */
export function interpolationTaps(
  local: Geometry,
  global: Geometry,
  axis: number,
): { g0: Int32Array; f: Float64Array } {
  const nl = local.size[axis];
  const ng = global.size[axis];
  const g0 = new Int32Array(nl);
  const f = new Float64Array(nl);
  for (let o = 0; o < nl; o++) {
    const idx: Vec3 = [0, 0, 0];
    idx[axis] = o;
    let g = worldToIndex(global, indexToWorld(local, idx))[axis];
    g = Math.min(Math.max(g, 0), ng - 1);
    g0[o] = Math.min(Math.floor(g), Math.max(ng - 2, 0));
    f[o] = ng > 1 ? g - g0[o] : 0;
  }
  return { g0, f };
}

/** Linear interpolation matrix [nLocal, nGlobal] along index axis `axis` (interpolationTaps). */
function interpolationMatrix(local: Geometry, global: Geometry, axis: number): tf.Tensor2D {
  const nl = local.size[axis];
  const ng = global.size[axis];
  const { g0, f } = interpolationTaps(local, global, axis);
  const w = new Float32Array(nl * ng);
  for (let o = 0; o < nl; o++) {
    w[o * ng + g0[o]] += 1 - f[o];
    if (f[o] > 0) w[o * ng + g0[o] + 1] += f[o];
  }
  return tf.tensor2d(w, [nl, ng]);
}

/**
 * Trilinear upsampling (separable, as align_corners=False) of a [Gz, Gy, Gx, C] map on a patch's
 * global grid to its local grid: [Lz * Ly * Lx, C], not normalised.
 */
export function upsampleToLocal(map: tf.Tensor4D, globalGrid: Geometry, localGrid: Geometry): tf.Tensor2D {
  return tf.tidy(() => {
    const [gz, gy, gx, c] = map.shape;
    const [lx, ly, lz] = localGrid.size;
    // x: [Gx, Gz*Gy*C] -> [Lx, Gz, Gy, C]
    let t: tf.Tensor = tf.reshape(tf.transpose(map, [2, 0, 1, 3]), [gx, gz * gy * c]);
    t = tf.reshape(tf.matMul(interpolationMatrix(localGrid, globalGrid, 0), t as tf.Tensor2D), [lx, gz, gy, c]);
    // y: [Gy, Gz*Lx*C] -> [Ly, Gz, Lx, C]
    t = tf.reshape(tf.transpose(t, [2, 1, 0, 3]), [gy, gz * lx * c]);
    t = tf.reshape(tf.matMul(interpolationMatrix(localGrid, globalGrid, 1), t as tf.Tensor2D), [ly, gz, lx, c]);
    // z: [Gz, Ly*Lx*C] -> [Lz, Ly, Lx, C]
    t = tf.reshape(tf.transpose(t, [1, 0, 2, 3]), [gz, ly * lx * c]);
    return tf.reshape(tf.matMul(interpolationMatrix(localGrid, globalGrid, 2), t as tf.Tensor2D), [
      lz * ly * lx,
      c,
    ]) as tf.Tensor2D;
  });
}

/**
 * The same upsampling for B maps [B, Gz, Gy, Gx] (e.g. one similarity map per query): [B, Lz * Ly * Lx],
 * by (broadcast) matMuls only.
 */
export function upsampleMapsToLocal(maps: tf.Tensor4D, globalGrid: Geometry, localGrid: Geometry): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, gz, gy, gx] = maps.shape;
    const [lx, ly, lz] = localGrid.size;
    const w = [0, 1, 2].map((ax) => interpolationMatrix(localGrid, globalGrid, ax));
    let t: tf.Tensor = tf.matMul(tf.reshape(maps, [b * gz * gy, gx]), w[0], false, true); // [B*Gz*Gy, Lx]
    t = tf.matMul(tf.reshape(w[1], [1, ly, gy]), tf.reshape(t, [b * gz, gy, lx])); // [B*Gz, Ly, Lx]
    t = tf.matMul(tf.reshape(w[2], [1, lz, gz]), tf.reshape(t, [b, gz, ly * lx])); // [B, Lz, Ly*Lx]
    return tf.reshape(t, [b, lz * ly * lx]) as tf.Tensor2D;
  });
}

/** What mining needs of a pair (a PatchPair fits). */
export interface MiningPair {
  a: { geometry: Geometry };
  b: { geometry: Geometry };
  positives: PositivePairs;
}

export interface BatchEmbeddings {
  /** [2P, Lz, Ly, Lx, C], L2-normalised. */
  local: tf.Tensor;
  /** [2P, Gz, Gy, Gx, C], L2-normalised. */
  global: tf.Tensor;
}

function checkShape(t: tf.Tensor, batch: number, grid: Geometry, what: string): number {
  const [gx, gy, gz] = grid.size;
  const s = t.shape;
  if (s.length !== 5 || s[0] !== batch || s[1] !== gz || s[2] !== gy || s[3] !== gx)
    throw new RangeError(`${what} embeddings have shape [${s}], expected [${batch}, ${gz}, ${gy}, ${gx}, C]`);
  return s[4];
}

function concatWorld(a: Float32Array, b: Float32Array): Float32Array {
  const w = new Float32Array(a.length + b.length);
  w.set(a);
  w.set(b, a.length);
  return w;
}

/** Ranking scores [nq, N] of the queries (candidate indices) against every candidate. */
type Scorer = (queries: tf.Tensor1D) => tf.Tensor2D;

interface DirectionContext {
  score: Scorer;
  /** World positions of the candidates (A's voxels, then B's). */
  world: Float32Array;
  /** Voxels per patch: candidate index of B's voxel v is voxels + v. */
  voxels: number;
  /** Batch row of candidate 0 (A's first voxel). */
  rowBase: number;
  radiusMm: number;
  nCand: number;
  nNeg: number;
  rng: Rng;
}

/** One direction (A->B, or B->A when fromB): queries in one patch, keys in the other, its ranking queued. */
interface QueuedDirection {
  ctx: DirectionContext;
  q: Int32Array;
  k: Int32Array;
  request: HardNegativeRequest | null;
  ranking: Ranking;
}

function queueDirection(ctx: DirectionContext, pos: PositiveSet, fromB: boolean): QueuedDirection {
  const nq = pos.a.length;
  const q = new Int32Array(nq);
  const k = new Int32Array(nq);
  const exclude = new Int32Array(nq * 2);
  for (let i = 0; i < nq; i++) {
    q[i] = fromB ? ctx.voxels + pos.b[i] : pos.a[i];
    k[i] = fromB ? pos.a[i] : ctx.voxels + pos.b[i];
    exclude[2 * i] = q[i];
    exclude[2 * i + 1] = k[i];
  }
  if (nq === 0) return { ctx, q, k, request: null, ranking: { k: 0, top: null } };
  const scores = tf.tidy(() => ctx.score(tf.tensor1d(q, 'int32')));
  const request: HardNegativeRequest = {
    scores,
    queryWorld: pos.world,
    candidateWorld: ctx.world,
    radiusMm: ctx.radiusMm,
    exclude: { indices: exclude, perQuery: 2 },
    nCand: ctx.nCand,
    nNeg: ctx.nNeg,
    rng: ctx.rng,
  };
  try {
    return { ctx, q, k, request, ranking: rankCandidates(request) };
  } finally {
    // queued: the backend keeps what the ranking still needs
    scores.dispose();
  }
}

/** The direction's selection from its read ranking (the random draws happen here, in call order). */
function finishDirection(d: QueuedDirection, ranked: ReadRanking, shared: Int32Array): DirectionSelection {
  const neg = d.request ? drawNegatives(d.request, ranked).indices : new Int32Array(0);
  const base = d.ctx.rowBase;
  return {
    query: d.q.map((v) => v + base),
    key: d.k.map((v) => v + base),
    negatives: neg.map((v) => (v < 0 ? -1 : v + base)),
    perQuery: d.ctx.nNeg,
    shared,
  };
}

/**
 * The local ranking score by tfjs ops: local similarity plus the similarity of the global
 * embeddings upsampled to the local grid and renormalised (the upsampled similarity map divided by
 * the upsampled embeddings' norms: the same numbers without a [queries x voxels x C] product).
 */
export function tfOpsLocalScorer(
  cl: tf.Tensor2D,
  cg: tf.Tensor2D,
  grids: { local: Geometry; global: Geometry }[],
  vl: number,
  vg: number,
  [gz, gy, gx]: number[],
  cG: number,
): Scorer {
  const g = [0, 1].map((x) => tf.slice(cg, [x * vg, 0], [vg, cG]) as tf.Tensor2D);
  const up = [0, 1].map((x) =>
    upsampleToLocal(tf.reshape(g[x], [gz, gy, gx, cG]) as tf.Tensor4D, grids[x].global, grids[x].local),
  );
  const norms = up.map((u) => tf.sqrt(tf.maximum(tf.sum(tf.square(u), 1), 1e-24)));
  const upUnit = tf.concat(
    up.map((u, x) => tf.div(u, tf.reshape(norms[x], [vl, 1]))),
    0,
  );
  return (qi) => {
    const qG = tf.gather(upUnit, qi) as tf.Tensor2D;
    const nq = qi.shape[0];
    const globalSim = [0, 1].map((x) => {
      const sim = tf.reshape(tf.matMul(qG, g[x], false, true), [nq, gz, gy, gx]) as tf.Tensor4D;
      return tf.div(upsampleMapsToLocal(sim, grids[x].global, grids[x].local), tf.reshape(norms[x], [1, vl]));
    });
    return tf.add(tf.matMul(tf.gather(cl, qi) as tf.Tensor2D, cl, false, true), tf.concat(globalSim, 1)) as tf.Tensor2D;
  };
}

/**
 * Positives and negatives of every pair of the batch, as rows of the flattened embeddings.
 * Local ranking = local similarity + similarity of the upsampled, renormalised global
 * embeddings, computed as the upsampled global similarity map divided by the upsampled
 * embeddings' norms (the same numbers, without a [queries x local voxels x C] product).
 * `whileWaiting` runs once every ranking is queued and its read-back requested, before the wait
 * (host work that then overlaps the GPU's); it must not use `rng`.
 */
export async function mineSamBatch(
  emb: BatchEmbeddings,
  pairs: MiningPair[],
  rng: Rng,
  options: NegativeOptions = {},
  whileWaiting?: () => void,
): Promise<PairSelection[]> {
  const o = { ...SAM_NEGATIVES, ...options };
  const batch = pairs.length * 2;
  // Every direction of every pair is ranked first and read back at once (one wait for the GPU instead
  // of one per direction); the random draws then follow in the same order as one pair at a time.
  // A manual scope instead of tf.tidy, which cannot span the asynchronous read.
  tf.engine().startScope();
  try {
    const queued: QueuedDirection[][] = [];
    for (let p = 0; p < pairs.length; p++) {
      const { a, b, positives } = pairs[p];
      const grids = [a, b].map((x) => ({
        local: embeddingGrid(x.geometry, positives.strides.local),
        global: embeddingGrid(x.geometry, positives.strides.global),
      }));
      const c = checkShape(emb.local, batch, grids[0].local, 'local');
      const cG = checkShape(emb.global, batch, grids[0].global, 'global');
      if (grids[1].local.size.some((n, i) => n !== grids[0].local.size[i]))
        throw new RangeError('the two patches of a pair must have the same size');
      const vl = grids[0].local.size.reduce((x, y) => x * y);
      const vg = grids[0].global.size.reduce((x, y) => x * y);
      const [gz, gy, gx] = emb.global.shape.slice(1, 4);
      const cl = tf.slice(tf.reshape(emb.local, [-1, c]), [2 * p * vl, 0], [2 * vl, c]) as tf.Tensor2D;
      const cg = tf.slice(tf.reshape(emb.global, [-1, cG]), [2 * p * vg, 0], [2 * vg, cG]) as tf.Tensor2D;
      // on WebGPU a few WGSL dispatches (local-score-wgsl.ts); the same numbers by tfjs ops elsewhere
      const localScore: Scorer =
        localScorerWgsl(cl, cg, grids)?.score ?? tfOpsLocalScorer(cl, cg, grids, vl, vg, [gz, gy, gx], cG);
      const globalScore: Scorer = (qi) => tf.matMul(tf.gather(cg, qi) as tf.Tensor2D, cg, false, true);
      const local: DirectionContext = {
        score: localScore,
        world: concatWorld(gridWorldPositions(grids[0].local), gridWorldPositions(grids[1].local)),
        voxels: vl,
        rowBase: 2 * p * vl,
        radiusMm: o.radiusMm,
        nCand: o.nCand,
        nNeg: o.nNeg,
        rng,
      };
      const global: DirectionContext = {
        score: globalScore,
        world: concatWorld(gridWorldPositions(grids[0].global), gridWorldPositions(grids[1].global)),
        voxels: vg,
        rowBase: 2 * p * vg,
        radiusMm: o.globalRadiusMm,
        nCand: o.globalCand,
        nNeg: o.globalNeg,
        rng,
      };
      queued.push([
        queueDirection(local, positives.local, false),
        queueDirection(local, positives.local, true),
        queueDirection(global, positives.global, false),
        queueDirection(global, positives.global, true),
      ]);
    }
    // every ranking in two read-backs, queued (readRankings runs up to its wait), then the caller's
    // host work while the GPU computes
    const reading = readRankings(queued.flat().map((d) => d.ranking));
    whileWaiting?.();
    const flat = await reading;
    const read = queued.map((_, p) => flat.slice(4 * p, 4 * p + 4));
    const none = new Int32Array(0);
    return queued.map(([lab, lba, gab, gba], p) => {
      const vg = gab.ctx.voxels;
      const own = [2 * p, 2 * p + 1];
      const r = read[p];
      const local = { ab: finishDirection(lab, r[0], none), ba: finishDirection(lba, r[1], none) };
      const sharedAB = sampleOtherPatchVoxels(batch, vg, own, o.nRand, rng);
      const ab = finishDirection(gab, r[2], sharedAB);
      const sharedBA = sampleOtherPatchVoxels(batch, vg, own, o.nRand, rng);
      const ba = finishDirection(gba, r[3], sharedBA);
      return { local, global: { ab, ba } };
    });
  } finally {
    tf.engine().endScope();
  }
}
