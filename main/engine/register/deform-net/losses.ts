/**
 * The SAM-deform network's training losses in tfjs (VoxelMorph's losses.py, SAME++'s terms). Images and
 * features [1, K, J, I, C] on the deform grid G, a per-voxel weight `mask` [1, K, J, I, 1] (window
 * centres / voxels that count: the fixed body inside the moving field of view).
 * - lncc: local NCC exactly as deform/local-ncc.ts (window (2r+1)^3 truncated at the faces, the same
 *   damping of each variance,
 *   loss = -(sum_c m_c cc_c) / sum_c m_c), box sums as a conv3d with a ones kernel.
 * - featureDissimilarity: 1 - the weighted mean cosine of fixed and warped moving features.
 * - diffusion: alpha * mean over voxels of sum over axes of |forward difference of u / h|^2, u in mm
 *   (as deform-loss.ts's smoothness term when alpha and h match).
 * - softDice: 1 - mean over labels of 2 sum(a b) / (sum a + sum b), a and b one-hot (warped: soft).
 */
import * as tf from '@tensorflow/tfjs-core';
import { defaultLnccEps } from '../deform/local-ncc.ts';

function boxSum(x: tf.Tensor5D, r: number): tf.Tensor5D {
  const k = tf.ones([2 * r + 1, 2 * r + 1, 2 * r + 1, 1, 1]) as tf.Tensor5D;
  return tf.conv3d(x, k, 1, 'same');
}

/** Local NCC loss of fixed I and warped moving J ([1, K, J, I, 1]); r: window radius. */
export function lncc(I: tf.Tensor5D, J: tf.Tensor5D, r: number, mask?: tf.Tensor5D, eps?: number): tf.Scalar {
  return tf.tidy(() => {
    const e = eps ?? defaultLnccEps(r);
    const n = boxSum(tf.onesLike(I), r);
    const sI = boxSum(I, r);
    const sJ = boxSum(J, r);
    const sII = boxSum(tf.mul(I, I), r);
    const sJJ = boxSum(tf.mul(J, J), r);
    const sIJ = boxSum(tf.mul(I, J), r);
    const cross = tf.sub(sIJ, tf.div(tf.mul(sI, sJ), n));
    const varI = tf.sub(sII, tf.div(tf.mul(sI, sI), n));
    const varJ = tf.sub(sJJ, tf.div(tf.mul(sJ, sJ), n));
    const cc = tf.div(tf.mul(cross, cross), tf.mul(tf.add(varI, e), tf.add(varJ, e)));
    if (!mask) return tf.neg(tf.mean(cc));
    return tf.neg(tf.div(tf.sum(tf.mul(cc, mask)), tf.maximum(tf.sum(mask), 1e-12)));
  });
}

/** 1 - weighted mean cosine similarity of two feature volumes [1, K, J, I, C]. */
export function featureDissimilarity(f: tf.Tensor5D, g: tf.Tensor5D, mask?: tf.Tensor5D): tf.Scalar {
  return tf.tidy(() => {
    const dot = tf.sum(tf.mul(f, g), 4, true);
    const nf = tf.sqrt(tf.add(tf.sum(tf.mul(f, f), 4, true), 1e-12));
    const ng = tf.sqrt(tf.add(tf.sum(tf.mul(g, g), 4, true), 1e-12));
    const cos = tf.div(dot, tf.mul(nf, ng));
    const m = mask ? tf.div(tf.sum(tf.mul(cos, mask)), tf.maximum(tf.sum(mask), 1e-12)) : tf.mean(cos);
    return tf.sub(1, m);
  });
}

/**
 * Diffusion regulariser of a displacement u [1, K, J, I, 3] in voxel units of a grid of isotropic
 * spacing h (mm): alpha / N * sum over forward differences of (h u)^2 / h^2 = alpha / N * sum (du)^2.
 * (u in mm would give the same number: the mm factors cancel on an isotropic grid.)
 */
export function diffusion(u: tf.Tensor5D, alpha: number): tf.Scalar {
  return tf.tidy(() => {
    const [, d, h, w] = u.shape;
    const N = d * h * w;
    const dz = tf.sub(tf.slice(u, [0, 1, 0, 0, 0], [-1, d - 1, -1, -1, -1]), tf.slice(u, 0, [-1, d - 1, -1, -1, -1]));
    const dy = tf.sub(tf.slice(u, [0, 0, 1, 0, 0], [-1, -1, h - 1, -1, -1]), tf.slice(u, 0, [-1, -1, h - 1, -1, -1]));
    const dx = tf.sub(tf.slice(u, [0, 0, 0, 1, 0], [-1, -1, -1, w - 1, -1]), tf.slice(u, 0, [-1, -1, -1, w - 1, -1]));
    const s = tf.addN([tf.sum(tf.square(dx)), tf.sum(tf.square(dy)), tf.sum(tf.square(dz))]);
    return tf.mul(s, alpha / N);
  });
}

/** 1 - mean soft Dice over the label channels of a and b ([1, K, J, I, L], one-hot or soft). */
export function softDice(a: tf.Tensor5D, b: tf.Tensor5D): tf.Scalar {
  return tf.tidy(() => {
    const inter = tf.sum(tf.mul(a, b), [0, 1, 2, 3]);
    const total = tf.add(tf.sum(a, [0, 1, 2, 3]), tf.sum(b, [0, 1, 2, 3]));
    const dice = tf.div(tf.mul(inter, 2), tf.maximum(total, 1e-6));
    return tf.sub(1, tf.mean(dice));
  });
}
