/**
 * The SAM training loss: InfoNCE in tf ops, given the embeddings and the indices chosen by
 * negatives.ts. For each positive pair (q, k+) with negatives k-_n:
 *   -log( exp(q.k+/tau) / (exp(q.k+/tau) + sum_n exp(q.k-_n/tau)) ),
 * averaged over the positives of the batch; four terms (local A->B, local B->A, global A->B,
 * global B->A), summed. A pair without positives contributes nothing (never a query compared
 * with itself); a term without any positive is 0 (with a zero gradient).
 * Indices are rows of the embeddings flattened to [batch * voxels, C] (voxel order z, y, x).
 *
 * Differentiable through tf.customGrad with the analytic gradient (softmax - one-hot, scattered
 * back onto the embedding rows with scatterND): tfjs-core alone registers no gradients
 * (they come with the @tensorflow/tfjs union package), and the custom gradient also avoids
 * keeping the [queries, negatives, C] gathers on the tape. On WebGPU samInfoNceLoss runs each
 * level's selections as two WGSL dispatches instead (infonce-wgsl.ts; SAM_INFONCE=tfops keeps these
 * ops there too).
 */
import * as tf from '@tensorflow/tfjs-core';
import { levelLossAndGradWgsl, termSumsWgsl, type LevelItem } from './infonce-wgsl.ts';

export interface DirectionSelection {
  /** Row of each query (anchor patch). */
  query: Int32Array;
  /** Row of each query's positive key (other patch). */
  key: Int32Array;
  /** query.length * perQuery rows of per-query negatives; -1 = none (fewer were available). */
  negatives: Int32Array;
  perQuery: number;
  /** Rows used as negatives by every query (the global term's random voxels of other pairs). */
  shared: Int32Array;
}

export interface PairSelection {
  local: { ab: DirectionSelection; ba: DirectionSelection };
  global: { ab: DirectionSelection; ba: DirectionSelection };
}

export interface SamLossTerms {
  /** The sum of the four terms: the only one that carries gradients. */
  total: tf.Scalar;
  localAB: tf.Scalar;
  localBA: tf.Scalar;
  globalAB: tf.Scalar;
  globalBA: tf.Scalar;
  /** Number of positives behind each term. */
  counts: { localAB: number; localBA: number; globalAB: number; globalBA: number };
}

interface Piece {
  rows: tf.Tensor1D;
  values: tf.Tensor2D;
}

/**
 * Loss summed over the queries of one selection; with gradScale (d total / d this sum), also the
 * gradient as (rows, values) to be summed onto the embedding rows. Runs without a tape.
 */
function selectionLoss(
  emb: tf.Tensor2D,
  sel: DirectionSelection,
  tau: number,
  gradScale?: tf.Scalar,
): { loss: tf.Scalar; piece?: Piece } {
  const nq = sel.query.length;
  const c = emb.shape[1];
  return tf.tidy(() => {
    const q = tf.gather(emb, tf.tensor1d(sel.query, 'int32')) as tf.Tensor2D;
    const k = tf.gather(emb, tf.tensor1d(sel.key, 'int32')) as tf.Tensor2D;
    const pos = tf.div(tf.sum(tf.mul(q, k), 1), tau);
    const parts: tf.Tensor[] = [tf.reshape(pos, [nq, 1])];
    const p = sel.perQuery;
    let negRows: tf.Tensor1D | undefined;
    let neg: tf.Tensor3D | undefined;
    if (p > 0) {
      const idx = new Int32Array(sel.negatives.length);
      const valid = new Uint8Array(sel.negatives.length);
      for (let i = 0; i < idx.length; i++) {
        valid[i] = sel.negatives[i] >= 0 ? 1 : 0;
        idx[i] = valid[i] ? sel.negatives[i] : 0;
      }
      negRows = tf.tensor1d(idx, 'int32');
      neg = tf.reshape(tf.gather(emb, negRows), [nq, p, c]) as tf.Tensor3D;
      const logits = tf.div(tf.reshape(tf.matMul(neg, tf.reshape(q, [nq, c, 1])), [nq, p]), tau);
      // exp(-1e9 - max) is exactly 0 in float32: a missing negative adds nothing, value or gradient.
      parts.push(tf.where(tf.tensor2d(valid, [nq, p], 'bool'), logits, tf.scalar(-1e9)));
    }
    const ns = sel.shared.length;
    let sharedRows: tf.Tensor1D | undefined;
    let shared: tf.Tensor2D | undefined;
    if (ns > 0) {
      sharedRows = tf.tensor1d(sel.shared, 'int32');
      shared = tf.gather(emb, sharedRows) as tf.Tensor2D;
      parts.push(tf.div(tf.matMul(q, shared, false, true), tau));
    }
    const all = parts.length > 1 ? tf.concat(parts, 1) : parts[0];
    const lse = tf.logSumExp(all, 1);
    const loss = tf.sum(tf.sub(lse, pos)) as tf.Scalar;
    if (!gradScale) return { loss };
    // dL/dlogit = softmax - onehot(positive), times the upstream scale, over tau for the dot products.
    const soft = tf.mul(tf.exp(tf.sub(all, tf.reshape(lse, [nq, 1]))), tf.div(gradScale, tau));
    const gPos = tf.sub(tf.slice(soft, [0, 0], [nq, 1]), tf.div(gradScale, tau)); // [nq, 1]
    let dq = tf.mul(gPos, k);
    const rows: tf.Tensor1D[] = [tf.tensor1d(sel.query, 'int32'), tf.tensor1d(sel.key, 'int32')];
    const dk = tf.mul(gPos, q) as tf.Tensor2D;
    const values: tf.Tensor2D[] = [];
    const extra: tf.Tensor2D[] = [dk];
    if (neg && negRows) {
      const gNeg = tf.reshape(tf.slice(soft, [0, 1], [nq, p]), [nq, p, 1]) as tf.Tensor3D;
      dq = tf.add(dq, tf.reshape(tf.matMul(gNeg, neg, true, false), [nq, c]));
      extra.push(tf.reshape(tf.matMul(gNeg, tf.reshape(q, [nq, 1, c])), [nq * p, c]) as tf.Tensor2D);
      rows.push(negRows);
    }
    if (shared && sharedRows) {
      const gSh = tf.slice(soft, [0, 1 + p], [nq, ns]) as tf.Tensor2D;
      dq = tf.add(dq, tf.matMul(gSh, shared));
      extra.push(tf.matMul(gSh, q, true, false));
      rows.push(sharedRows);
    }
    values.push(dq as tf.Tensor2D, ...extra);
    return { loss, piece: { rows: tf.concat(rows) as tf.Tensor1D, values: tf.concat(values, 0) as tf.Tensor2D } };
  });
}

/** Gradient of a sum of selection losses (each with its scale) w.r.t. the [rows, C] embeddings. */
function scatterGradient(
  emb: tf.Tensor2D,
  items: { sel: DirectionSelection; scale: tf.Scalar }[],
  tau: number,
): tf.Tensor2D {
  return tf.tidy(() =>
    scatterPieces(
      emb,
      items.map((it) => selectionLoss(emb, it.sel, tau, it.scale).piece!),
    ),
  );
}

/** The pieces' values summed onto their rows of a zero [rows, C] tensor shaped like emb. */
function scatterPieces(emb: tf.Tensor2D, pieces: Piece[]): tf.Tensor2D {
  return tf.tidy(() => {
    if (pieces.length === 0) return tf.zerosLike(emb);
    const rows = tf.concat(pieces.map((p) => p.rows));
    const values = tf.concat(
      pieces.map((p) => p.values),
      0,
    );
    // scatterND sums duplicate rows (unsortedSegmentSum on the CPU backend loops over all rows).
    return tf.scatterND(tf.reshape(rows, [-1, 1]), values, emb.shape) as tf.Tensor2D;
  });
}

/** Mean over the queries of the InfoNCE loss of one selection on [rows, C] embeddings (0 without queries); differentiable. */
export function infoNce(emb: tf.Tensor2D, sel: DirectionSelection, tau = 0.5): tf.Scalar {
  const n = sel.query.length;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const e = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([e]);
    const value: tf.Tensor = n === 0 ? tf.scalar(0) : tf.div(selectionLoss(e as tf.Tensor2D, sel, tau).loss, n);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const items = n === 0 ? [] : [{ sel, scale: tf.div(dy, n) as tf.Scalar }];
      return [scatterGradient(saved[0] as tf.Tensor2D, items, tau)];
    };
    return { value, gradFunc };
  });
  return f(emb) as tf.Scalar;
}

/**
 * The WGSL loss (infonce-wgsl.ts) on WebGPU unless SAM_INFONCE=tfops (the tfjs ops, as on other
 * backends); setInfoNceMode overrides both (tests).
 */
let infoNceMode: 'auto' | 'wgsl' | 'tfops' = 'auto';
export function setInfoNceMode(mode: 'auto' | 'wgsl' | 'tfops'): void {
  infoNceMode = mode;
}
function useWgsl(): boolean {
  if (tf.getBackend() !== 'webgpu') return false;
  if (infoNceMode !== 'auto') return infoNceMode === 'wgsl';
  return process.env.SAM_INFONCE !== 'tfops';
}

type TermName = 'localAB' | 'localBA' | 'globalAB' | 'globalBA';
const TERMS: { name: TermName; local: boolean; pick: (s: PairSelection) => DirectionSelection }[] = [
  { name: 'localAB', local: true, pick: (s) => s.local.ab },
  { name: 'localBA', local: true, pick: (s) => s.local.ba },
  { name: 'globalAB', local: false, pick: (s) => s.global.ab },
  { name: 'globalBA', local: false, pick: (s) => s.global.ba },
];

/**
 * The four SAM terms over a batch (pair p = patches 2p and 2p + 1 of the [2P, z, y, x, C] local
 * and global embeddings), each averaged over all positives of its direction in the batch, and
 * their sum `total`, differentiable w.r.t. both embeddings. The four terms are values for
 * logging, without gradients.
 */
export function samInfoNceLoss(
  emb: { local: tf.Tensor; global: tf.Tensor },
  selections: PairSelection[],
  tau = 0.5,
): SamLossTerms {
  const { total, packed, counts } = samInfoNceLossPacked(emb, selections, tau);
  const out = {} as Record<TermName, tf.Scalar>;
  TERMS.forEach((t, n) => (out[t.name] = tf.tidy(() => tf.reshape(tf.slice(packed, [n], [1]), []) as tf.Scalar)));
  packed.dispose();
  return { total, ...out, counts };
}

/**
 * samInfoNceLoss with the four terms and the total as one [5] tensor `packed` (localAB, localBA,
 * globalAB, globalBA, total; values without gradients), for one read-back: on WebGPU that is the
 * WGSL loss's own output (no slices and no concatenation).
 */
export function samInfoNceLossPacked(
  emb: { local: tf.Tensor; global: tf.Tensor },
  selections: PairSelection[],
  tau = 0.5,
): { total: tf.Scalar; packed: tf.Tensor1D; counts: SamLossTerms['counts'] } {
  const counts = { localAB: 0, localBA: 0, globalAB: 0, globalBA: 0 };
  for (const t of TERMS) for (const s of selections) counts[t.name] += t.pick(s).query.length;
  let packed: tf.Tensor1D | undefined;
  const flat = (x: tf.Tensor): tf.Tensor2D => tf.reshape(x, [-1, x.shape[x.shape.length - 1]]) as tf.Tensor2D;
  // The gradient is made with the value: every piece of it is the loss's gradient times dy, so the
  // forward pass computes it for dy = 1 (each selection's softmax once, not again in the backward
  // pass) and the backward pass scales it.
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [local, global] = args as tf.Tensor[];
    const l2 = flat(local);
    const g2 = flat(global);
    if (useWgsl()) {
      // on WebGPU: each level's selections in two dispatches (infonce-wgsl.ts), the terms in one more
      const items = (level: boolean): LevelItem[] =>
        TERMS.filter((t) => t.local === level).flatMap((t) =>
          selections.map((s) => ({ sel: t.pick(s), scale: counts[t.name] > 0 ? 1 / counts[t.name] : 0 })),
        );
      const lv = levelLossAndGradWgsl(l2, items(true), tau);
      const gv = levelLossAndGradWgsl(g2, items(false), tau);
      const sums = termSumsWgsl(lv, gv, selections.length);
      packed = tf.keep(sums);
      (args[2] as tf.GradSaveFunc)([tf.reshape(lv.grad, local.shape), tf.reshape(gv.grad, global.shape)]);
      const value: tf.Tensor = tf.reshape(tf.slice(sums, [4], [1]), []);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => [tf.mul(saved[0], dy), tf.mul(saved[1], dy)];
      return { value, gradFunc };
    }
    const pieces: { local: Piece[]; global: Piece[] } = { local: [], global: [] };
    const parts = {} as Record<TermName, tf.Scalar>;
    for (const t of TERMS) {
      let sum: tf.Scalar = tf.scalar(0);
      for (const s of selections) {
        const d = t.pick(s);
        if (d.query.length === 0) continue;
        const r = selectionLoss(t.local ? l2 : g2, d, tau, tf.scalar(1 / counts[t.name]));
        sum = tf.add(sum, r.loss) as tf.Scalar;
        pieces[t.local ? 'local' : 'global'].push(r.piece!);
      }
      parts[t.name] = counts[t.name] > 0 ? (tf.div(sum, counts[t.name]) as tf.Scalar) : sum;
    }
    (args[2] as tf.GradSaveFunc)([
      tf.reshape(scatterPieces(l2, pieces.local), local.shape),
      tf.reshape(scatterPieces(g2, pieces.global), global.shape),
    ]);
    const value: tf.Tensor = tf.addN(TERMS.map((t) => parts[t.name]));
    packed = tf.keep(tf.concat([...TERMS.map((t) => parts[t.name]), value].map((x) => tf.reshape(x, [1]))));
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => [tf.mul(saved[0], dy), tf.mul(saved[1], dy)];
    return { value, gradFunc };
  });
  const total = f(emb.local, emb.global) as tf.Scalar;
  // kept through the custom gradient's inner scope: hand the caller's scope a copy
  const kept = packed!;
  const out = tf.clone(kept);
  kept.dispose();
  return { total, packed: out, counts };
}
