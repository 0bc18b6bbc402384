/**
 * Gradients of a loss whose inputs need an asynchronous step between the forward pass and the loss,
 * with ONE forward pass: SAM training mines its negatives from the current embeddings (reading
 * tensors back, which is asynchronous on a GPU backend in Node), then differentiates the InfoNCE loss
 * of those same embeddings. tfjs' public gradient functions take a synchronous function, so the
 * straightforward way runs the network twice (once to mine, once inside the differentiated function);
 * this records the first pass on tfjs' tape instead, pauses the tape while `between` runs (its ops are
 * not recorded), resumes it for the loss and back-propagates through both (tfjs' Engine.gradients on
 * the already-open tape: it only resets the tape when none is open; the outer opening is closed at the
 * end of the loss, so that the backward pass, as in Engine.gradients alone, is not recorded).
 *
 * This leans on tfjs-core's Engine internals (startTape, endTape, state.activeTape, state.gradientDepth;
 * checked against @tensorflow/tfjs-core 4.22): a tfjs upgrade must rerun the test that compares it with
 * the two-pass way (test/unit/train-one-forward.test.ts: identical losses and weights).
 * Not re-entrant: nothing else may compute gradients while `between` runs.
 */
import * as tf from '@tensorflow/tfjs-core';

interface TapeEngine {
  startTape(): void;
  endTape(): void;
  state: { activeTape: { saved?: tf.Tensor[] }[] | null; gradientDepth: number };
  gradients<T extends tf.Tensor>(f: () => T, xs: tf.Tensor[]): { value: T; grads: tf.Tensor[] };
}

export async function gradientsWithOneForward<F extends tf.TensorContainer, S>(
  xs: tf.Tensor[],
  forwardFn: () => F,
  between: (forward: F) => Promise<S>,
  lossFn: (forward: F, s: S) => tf.Scalar,
): Promise<{ value: tf.Scalar; grads: tf.Tensor[]; between: S }> {
  const engine = tf.engine() as unknown as TapeEngine;
  if (engine.state.gradientDepth !== 0) throw new Error('gradientsWithOneForward: a gradient tape is already open');
  engine.startTape();
  let open = true;
  let out: F | undefined;
  try {
    out = tf.tidy(forwardFn);
    // pause: `between` (the mining) is not recorded; the tape so far is kept for the loss
    const tape = engine.state.activeTape;
    engine.endTape();
    open = false;
    const s = await between(out);
    engine.startTape();
    open = true;
    engine.state.activeTape = tape;
    const forward = out;
    const { value, grads } = engine.gradients(() => {
      const loss = lossFn(forward, s);
      // close this function's tape before Engine.gradients closes its own: the backward pass then runs
      // untaped (with ours still open, every backward kernel was recorded and its inputs cloned) and
      // Engine.gradients frees the tape's saved tensors itself
      engine.endTape();
      open = false;
      return loss;
    }, xs);
    return { value, grads, between: s };
  } finally {
    if (open) engine.endTape();
    // the tape's saved tensors (its own clones) are freed with it, as Engine.gradients does
    for (const node of engine.state.activeTape ?? []) for (const t of node.saved ?? []) t.dispose();
    engine.state.activeTape = null;
    if (out) tf.dispose(out);
  }
}
