/**
 * Anatomical point matching on the tfjs device, against embeddings that stay there
 * (embed-on-device.ts): the same algorithm, score and answers as sam/match.ts matchPoints (read its
 * header), with the heavy parts as tensor ops and only small answers read back:
 *  1. template embeddings at the points: the 8 trilinear corners' rows gathered and weighted
 *     (indices and weights computed here, as match.ts sampleEmbedding), renormalised;
 *  2. global similarity with every query global voxel: one matrix product per block of points; the
 *     top-k global voxels (WGSL top-k on WebGPU, tf.topk elsewhere);
 *  3. the local windows around the candidates (exactly match.ts's boxes and order), scored with the
 *     query's local embedding and its global embedding upsampled trilinearly to the local grid and
 *     renormalised (computed once per query, kept in `derived`: tg · normalise(upsample(G)) equals
 *     match.ts's interpolated similarity divided by the interpolated embedding's norm). On WebGPU one
 *     WGSL dispatch searches every point's windows and returns only the best (window-argmax-wgsl.ts);
 *     elsewhere the windows' rows are gathered, scored by one batched matrix product a level and read
 *     back, and the best taken here; both keep the first maximum in match.ts's scan order;
 *  4. sub-voxel refinement on the continuous score (continuous-refine.ts): the 3x3x3 blocks of local
 *     and global voxels around each best voxel gathered, their dot products with the template and their
 *     Gram matrices (one batched product each); on WebGPU the pattern search runs there too
 *     (refine-wgsl.ts: only the refined positions come back), elsewhere the blocks are read back and
 *     searched on the host as matchPoints does;
 *  5. optional similarity map of one point and the forward-backward cycle check (the same function
 *     with template and query swapped).
 * Equal to matchPoints within float32 rounding (test/unit/match-on-device.test.ts, CPU and WebGPU).
 * Memory per block of points is bounded by `maxBlockBytes` (default 256 MB of gathered rows).
 */
import * as tf from '@tensorflow/tfjs-core';
import { CancelledError, InputError } from '../../errors.ts';
import { maxTensorBytes } from '../../compute/tf-backend.ts';
import { indexToWorld } from '../../volume/geometry.ts';
import { makeVolume, type Vec3 } from '../../volume/volume.ts';
import {
  applyCycleCheck,
  backMatchOptions,
  candidateWindow,
  DEFAULT_TOP_K,
  trilinearCorners,
  windowHalfSizes,
  type MatchOptions,
  type PointMatch,
} from '../match.ts';
import { cellTables, localToGlobal } from '../similarity-grid.ts';
import {
  BLOCK_SLOTS,
  blockAround,
  blockVoxels,
  refineContinuous,
  toGlobal,
  type SimBlock,
} from '../continuous-refine.ts';
import type { DeviceEmbedded, DeviceEmbeddingLevel } from './embed-on-device.ts';
import { profiler } from '../../util/profile.ts';
import { windowArgmaxApplies, windowArgmaxWgsl } from './window-argmax-wgsl.ts';
import { REFINE_GEOMETRY, refineContinuousWgsl } from './refine-wgsl.ts';
import { topkRowIndices } from '../../train/top-k-wgsl.ts';
import { readAndDispose } from '../../register/device/flat-program.ts';

export interface DeviceMatchOptions extends Omit<MatchOptions, 'backend' | 'blockSize'> {
  /** Bytes of gathered embedding rows per block of points (default 256 MB; each level's under the device's buffer cap). */
  maxBlockBytes?: number;
  /**
   * Where the windows are searched: 'device' (default on WebGPU: window-argmax-wgsl.ts, and the
   * refinement there too, refine-wgsl.ts: only each point's best and refined position come back) or
   * 'gather' (the windows' rows gathered and every score read back, the refinement's blocks read back
   * and refined on the host, as on other backends).
   */
  windowSearch?: 'device' | 'gather';
}

const UPSAMPLED_GLOBAL = 'globalOnLocalGrid';

/**
 * The global embedding trilinearly upsampled to the local grid and L2-normalised, [Vl, C] (cached in
 * e.derived). Trilinear in three separable passes with the CPU matcher's cell tables.
 */
export function upsampledGlobal(e: DeviceEmbedded): tf.Tensor2D {
  const hit = e.derived.get(UPSAMPLED_GLOBAL);
  if (hit) return hit as tf.Tensor2D;
  const { off, frac, step } = cellTables(e);
  const G = e.global.size;
  const L = e.local.size;
  const strides = [1, G[0], G[0] * G[1]];
  const out = tf.tidy(() => {
    let x: tf.Tensor4D = tf.reshape(e.global.data, [G[2], G[1], G[0], e.global.components]);
    for (const a of [0, 1, 2]) {
      const lo = Int32Array.from(off[a], (o) => o / strides[a]);
      const hi = Int32Array.from(lo, (v) => v + (step[a] ? 1 : 0));
      const shape = [1, 1, 1, 1];
      shape[2 - a] = L[a];
      const f = tf.tensor(Float32Array.from(frac[a]), shape);
      const x0 = tf.gather(x, tf.tensor1d(lo, 'int32'), 2 - a);
      const x1 = tf.gather(x, tf.tensor1d(hi, 'int32'), 2 - a);
      x = tf.add(x0, tf.mul(tf.sub(x1, x0), f)) as tf.Tensor4D;
    }
    const flat = tf.reshape(x, [L[0] * L[1] * L[2], e.global.components]);
    const norm = tf.sqrt(tf.maximum(tf.sum(tf.square(flat), 1, true), 1e-24));
    return tf.div(flat, norm) as tf.Tensor2D;
  });
  e.derived.set(UPSAMPLED_GLOBAL, out);
  return out;
}

/** Trilinear corners (flat voxel indices) and weights of points in a level (match.ts trilinearCorners). */
function corners(level: DeviceEmbeddingLevel, pts: Vec3[]): { idx: Int32Array; w: Float32Array; inside: boolean[] } {
  const idx = new Int32Array(pts.length * 8);
  const w = new Float32Array(pts.length * 8);
  const inside = pts.map((p, n) => trilinearCorners(level, p, idx, w, n * 8));
  return { idx, w, inside };
}

/** Normalised embeddings [P, C] at the points whose corners are given. */
function sampleRows(level: DeviceEmbeddingLevel, idx: Int32Array, w: Float32Array): tf.Tensor2D {
  const P = idx.length / 8;
  return tf.tidy(() => {
    const rows = tf.reshape(tf.gather(level.data, tf.tensor1d(idx, 'int32')), [P, 8, level.components]);
    const s = tf.sum(tf.mul(rows, tf.tensor3d(w, [P, 8, 1])), 1);
    const norm = tf.sqrt(tf.maximum(tf.sum(tf.square(s), 1, true), 1e-30));
    return tf.div(s, norm) as tf.Tensor2D;
  });
}

/** Scores (global, local) of the voxels idx [P, W] against each point's template rows; read back. */
async function windowScores(
  gn: tf.Tensor2D,
  ql: tf.Tensor2D,
  tg: tf.Tensor2D,
  tl: tf.Tensor2D,
  idx: Int32Array,
  P: number,
  W: number,
): Promise<{ g: Float32Array; l: Float32Array }> {
  const [g, l] = tf.tidy(() => {
    const i = tf.tensor1d(idx, 'int32');
    const one = (q: tf.Tensor2D, t: tf.Tensor2D) =>
      tf.reshape(tf.matMul(tf.reshape(tf.gather(q, i), [P, W, q.shape[1]]), tf.reshape(t, [P, t.shape[1], 1])), [
        P * W,
      ]);
    return [one(gn, tg), one(ql, tl)];
  });
  try {
    return { g: (await g.data()) as Float32Array, l: (await l.data()) as Float32Array };
  } finally {
    tf.dispose([g, l]);
  }
}

/**
 * The refinement blocks of P points (continuous-refine.ts): the voxels at `idx` (27 slots a point)
 * gathered from `rows`, their dot products with each point's template vector [P, 27] and their Gram
 * matrices [P, 27, 27].
 */
function deviceBlocks(
  rows: tf.Tensor2D,
  t: tf.Tensor2D,
  idx: Int32Array,
  P: number,
): { dots: tf.Tensor; gram: tf.Tensor } {
  return tf.tidy(() => {
    const v = tf.reshape(tf.gather(rows, tf.tensor1d(idx, 'int32')), [P, BLOCK_SLOTS, rows.shape[1]]);
    return { dots: tf.matMul(v, tf.reshape(t, [P, t.shape[1], 1])), gram: tf.matMul(v, v, false, true) };
  });
}

/**
 * The voxels each point's windows scan [P, Wb] (padded with the list's first voxel; counts the real
 * lengths): every local voxel, or the boxes around the top-k global candidates in match.ts's order.
 */
async function windowLists(
  query: DeviceEmbedded,
  tg: tf.Tensor2D,
  P: number,
  topK: number,
  exhaustive: boolean,
  h: number[],
): Promise<{ idx: Int32Array; Wb: number; counts: Int32Array }> {
  const [li, lj, lk] = query.local.size;
  const Vl = li * lj * lk;
  const counts = new Int32Array(P);
  if (exhaustive) {
    const idx = new Int32Array(P * Vl);
    for (let b = 0; b < P; b++) {
      for (let v = 0; v < Vl; v++) idx[b * Vl + v] = v;
      counts[b] = Vl;
    }
    return { idx, Wb: Vl, counts };
  }
  const top = tf.tidy(() => topkRowIndices(tf.matMul(tg, query.global.data, false, true), topK));
  const cand = (await readAndDispose(top)) as unknown as Int32Array;
  const lists: number[][] = [];
  for (let b = 0; b < P; b++) {
    const list: number[] = [];
    for (let q = 0; q < topK; q++) {
      const { lo, hi } = candidateWindow(query, cand[b * topK + q], h);
      for (let k = lo[2]; k <= hi[2]; k++)
        for (let j = lo[1]; j <= hi[1]; j++) for (let i = lo[0]; i <= hi[0]; i++) list.push(i + li * (j + lj * k));
    }
    lists.push(list);
  }
  const Wb = Math.max(1, ...lists.map((l) => l.length));
  const idx = new Int32Array(P * Wb);
  lists.forEach((list, b) => {
    counts[b] = list.length;
    idx.set(list, b * Wb);
    idx.fill(list[0] ?? 0, b * Wb + list.length, (b + 1) * Wb);
  });
  return { idx, Wb, counts };
}

/** Every global voxel's window (match.ts candidateWindow) as [Vg, 6] int32 (lo, hi), cached per query and h. */
function windowBoxes(query: DeviceEmbedded, h: number[]): tf.Tensor2D {
  const key = `windowBoxes ${h.join(' ')}`;
  const hit = query.derived.get(key);
  if (hit) return hit as tf.Tensor2D;
  const [gi, gj, gk] = query.global.size;
  const Vg = gi * gj * gk;
  const table = new Int32Array(Vg * 6);
  for (let v = 0; v < Vg; v++) {
    const { lo, hi } = candidateWindow(query, v, h);
    table.set([...lo, ...hi], v * 6);
  }
  const t = tf.tensor2d(table, [Vg, 6], 'int32');
  query.derived.set(key, t);
  return t;
}

/** Match template points (world mm) into the query; both embedded on the same tfjs device. */
export async function matchPointsOnDevice(
  template: DeviceEmbedded,
  query: DeviceEmbedded,
  points: Vec3[],
  options: DeviceMatchOptions = {},
): Promise<PointMatch[]> {
  const C = template.global.components;
  if (query.global.components !== C || template.local.components !== query.local.components)
    throw new InputError('SAM embeddings', 'template and query have different channel counts (different models?)');
  if (template.backend !== tf.getBackend() || query.backend !== tf.getBackend())
    throw new InputError('SAM embeddings', `they live on ${template.backend}/${query.backend}, not ${tf.getBackend()}`);
  const CL = query.local.components;
  const refine = options.refine ?? true;
  const [li, lj, lk] = query.local.size;
  const [gi, gj, gk] = query.global.size;
  const Vg = gi * gj * gk;
  const Vl = li * lj * lk;
  const topK = Math.max(1, Math.min(Vg, options.topK ?? DEFAULT_TOP_K));
  const exhaustive = topK === Vg;
  const h = windowHalfSizes(query, options);
  const l2g = localToGlobal(query);
  const mapFor = options.returnMap === true ? 0 : typeof options.returnMap === 'number' ? options.returnMap : -1;
  const gn = upsampledGlobal(query);
  const ql = query.local.data;
  // points per block: on WebGPU the windows are searched in place (window-argmax-wgsl.ts) and a
  // block's global similarities [P, Vg] stay within maxBlockBytes; elsewhere the windows' rows are
  // gathered: both levels' rows within maxBlockBytes, each gathered tensor under the buffer cap
  const inPlace = !exhaustive && options.windowSearch !== 'gather' && windowArgmaxApplies(1, Vl);
  const W = exhaustive ? Vl : topK * h.reduce((p, x) => p * (Math.floor(2 * x + 2e-6) + 1), 1);
  const perPoint = W * 4;
  const budget = options.maxBlockBytes ?? 256e6;
  const block = inPlace
    ? Math.max(1, Math.min(65535, Math.floor(Math.min(budget, maxTensorBytes() ?? Infinity) / (Vg * 4))))
    : Math.max(
        1,
        Math.min(
          4096,
          Math.floor(budget / (perPoint * (C + CL))),
          Math.floor((maxTensorBytes() ?? Infinity) / (perPoint * Math.max(C, CL))),
        ),
      );
  const boxes = inPlace ? windowBoxes(query, h) : null;
  const results: PointMatch[] = [];
  const voxelCentres: Vec3[] = [];
  const lv = (v: number): Vec3 => [v % li, Math.floor(v / li) % lj, Math.floor(v / (li * lj))];
  const prof = profiler('match-on-device');

  for (let p0 = 0; p0 < points.length; p0 += block) {
    if (options.signal?.aborted) throw new CancelledError('point matching');
    const pts = points.slice(p0, p0 + block);
    const P = pts.length;
    const cg = corners(template.global, pts);
    const cl = corners(template.local, pts);
    const tg = sampleRows(template.global, cg.idx, cg.w);
    const tl = sampleRows(template.local, cl.idx, cl.w);
    try {
      prof.mark('template');
      const bestV = new Int32Array(P);
      const best = new Float64Array(P).fill(-Infinity);
      const bestG = new Float64Array(P);
      const bestL = new Float64Array(P);
      if (boxes) {
        // the windows searched on the device: only each point's best comes back
        const found = tf.tidy(() => {
          const cand = topkRowIndices(tf.matMul(tg, query.global.data, false, true), topK);
          return windowArgmaxWgsl(gn, ql, tg, tl, cand, boxes, query.local.size);
        });
        const r = await readAndDispose(found);
        for (let b = 0; b < P; b++) {
          bestV[b] = r[4 * b];
          best[b] = r[4 * b + 1];
          bestG[b] = r[4 * b + 2];
          bestL[b] = r[4 * b + 3];
        }
      } else {
        const { idx, Wb, counts } = await windowLists(query, tg, P, topK, exhaustive, h);
        const { g, l } = await windowScores(gn, ql, tg, tl, idx, P, Wb);
        // best of each window, first maximum in scan order (as match.ts's strict '>')
        for (let b = 0; b < P; b++)
          for (let t = 0; t < counts[b]; t++) {
            const o = b * Wb + t;
            const s = (g[o] + l[o]) / 2;
            if (s > best[b]) {
              best[b] = s;
              bestV[b] = idx[o];
              bestG[b] = g[o];
              bestL[b] = l[o];
            }
          }
      }
      prof.mark('search');
      // the local and global blocks around the best voxels for the sub-voxel refinement: refined on
      // the device (refine-wgsl.ts) where the windows were searched there, else read back and refined
      // on the host
      let blocks: { local: SimBlock[]; global: SimBlock[] } | null = null;
      let refined: Float32Array | null = null;
      if (refine) {
        const places = {
          local: [] as ReturnType<typeof blockAround>[],
          global: [] as ReturnType<typeof blockAround>[],
        };
        const idxL = new Int32Array(P * BLOCK_SLOTS);
        const idxG = new Int32Array(P * BLOCK_SLOTS);
        const geometry = new Int32Array(P * REFINE_GEOMETRY);
        for (let b = 0; b < P; b++) {
          const bi = lv(bestV[b]);
          const pl = blockAround(bi, query.local.size);
          const pg = blockAround(toGlobal(l2g, bi), query.global.size);
          blockVoxels(pl, query.local.size, idxL, b * BLOCK_SLOTS);
          blockVoxels(pg, query.global.size, idxG, b * BLOCK_SLOTS);
          places.local.push(pl);
          places.global.push(pg);
          geometry.set([...bi, ...pl.base, ...pl.dims, ...pg.base, ...pg.dims], b * REFINE_GEOMETRY);
        }
        if (boxes) {
          refined = await readAndDispose(
            tf.tidy(() =>
              refineContinuousWgsl(
                deviceBlocks(ql, tl, idxL, P),
                deviceBlocks(query.global.data, tg, idxG, P),
                tf.tensor2d(geometry, [P, REFINE_GEOMETRY], 'int32'),
                query.local.size,
                l2g,
              ),
            ),
          );
        } else {
          const both = await readAndDispose(
            tf.tidy(() => {
              const l = deviceBlocks(ql, tl, idxL, P);
              const g = deviceBlocks(query.global.data, tg, idxG, P);
              return tf.concat([l.dots, l.gram, g.dots, g.gram].map((x) => tf.reshape(x, [-1])));
            }),
          );
          const levelFloats = P * BLOCK_SLOTS * (1 + BLOCK_SLOTS);
          const simBlocks = (at: typeof places.local, level: number): SimBlock[] => {
            const dots = level * levelFloats;
            const gram = dots + P * BLOCK_SLOTS;
            return at.map((p, b) => ({
              ...p,
              dots: Float64Array.from(both.subarray(dots + b * BLOCK_SLOTS, dots + (b + 1) * BLOCK_SLOTS)),
              gram: Float64Array.from(both.subarray(gram + b * BLOCK_SLOTS ** 2, gram + (b + 1) * BLOCK_SLOTS ** 2)),
            }));
          };
          blocks = { local: simBlocks(places.local, 0), global: simBlocks(places.global, 1) };
        }
        prof.mark(boxes ? 'refinement' : 'refinement blocks');
      }
      let map: Float32Array | null = null;
      if (mapFor >= p0 && mapFor < p0 + P) {
        const m = tf.tidy(() => {
          const r = mapFor - p0;
          const one = (q: tf.Tensor2D, t: tf.Tensor2D) => tf.matMul(tf.slice(t, [r, 0], [1, -1]), q, false, true);
          return tf.reshape(tf.div(tf.add(one(gn, tg), one(ql, tl)), 2), [Vl]);
        });
        map = (await m.data()) as Float32Array;
        m.dispose();
      }
      for (let b = 0; b < P; b++) {
        const bi = lv(bestV[b]);
        const at: Vec3 = refined
          ? [refined[3 * b], refined[3 * b + 1], refined[3 * b + 2]]
          : blocks
            ? refineContinuous(bi, query.local.size, blocks.local[b], blocks.global[b], l2g)
            : [...bi];
        const inT = cg.inside[b] && cl.inside[b];
        const m: PointMatch = {
          location: indexToWorld(query.local, at),
          score: best[b],
          globalScore: bestG[b],
          localScore: bestL[b],
          inTemplate: inT,
          accepted: inT && best[b] >= (options.minScore ?? -Infinity),
        };
        if (map && p0 + b === mapFor)
          m.map = makeVolume({
            size: query.local.size,
            spacing: query.local.spacing,
            origin: query.local.origin,
            direction: query.local.direction,
            components: 1,
            data: map,
            meta: { description: 'SAM similarity' },
          });
        results.push(m);
        voxelCentres.push(indexToWorld(query.local, bi));
      }
      prof.mark(refined || !blocks ? 'results' : 'host refinement');
    } finally {
      tf.dispose([tg, tl]);
    }
  }

  prof.done(`${points.length} points, ${boxes ? 'in place' : 'gathered'}, top ${topK}`);
  if (options.cycleCheck)
    applyCycleCheck(
      results,
      points,
      await matchPointsOnDevice(query, template, voxelCentres, backMatchOptions(options)),
      options,
    );
  return results;
}
