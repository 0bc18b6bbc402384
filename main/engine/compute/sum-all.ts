/**
 * The sum of every element of a tensor, in two reductions: tfjs reduces a whole tensor to a scalar in
 * one workgroup (on a GPU one multiprocessor reading every value, latency-bound), so large tensors are
 * summed as 1,024 rows first (1,024 workgroups), then the row sums. The same sum up to float order.
 */
import * as tf from '@tensorflow/tfjs-core';

const ROWS = 1024;

export function sumAll(x: tf.Tensor): tf.Scalar {
  if (x.size < 16 * ROWS) return tf.sum(x);
  // (no tf.tidy of its own: it is differentiated inside the callers' losses, whose scopes clean up)
  const per = Math.ceil(x.size / ROWS);
  let flat = tf.reshape(x, [x.size]) as tf.Tensor1D;
  if (per * ROWS !== x.size) flat = tf.pad(flat, [[0, per * ROWS - x.size]]);
  return tf.sum(tf.sum(tf.reshape(flat, [ROWS, per]), 1));
}
