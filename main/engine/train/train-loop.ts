/**
 * The self-supervised training loop of the SAM network: each iteration samples `batchPairs`
 * overlapping patch pairs from random training CTs, runs the network on all 2P patches, mines
 * hard and diverse negatives on the current embeddings, and takes one optimiser step on the
 * four-term InfoNCE loss. Deterministic for a seed: iteration t draws from an RNG seeded by
 * (seed, t), so a resumed run continues exactly as an uninterrupted one would.
 * Checkpoints every N iterations, at the end, and when cancelled (AbortSignal).
 */
import * as tf from '@tensorflow/tfjs-core';
import { flushGpuQueue } from '../compute/tf-backend.ts';
import { InputError } from '../errors.ts';
import type { SamConfig } from '../sam/config.ts';
import { createWeights, disposeWeights, forward, type SamWeights } from '../sam/network.ts';
import { augmentPatch, type AugmentOptions } from './augment.ts';
import { changedRunOptions, saveCheckpoint, startRun } from './checkpoint.ts';
import { changedDataSet, dataSetRecord, type DataSetRecord } from './data-set-record.ts';
import type { TrainingCase } from './dataset.ts';
import { samInfoNceLossPacked } from './infonce.ts';
import { LossLog, type LossRow } from './loss-log.ts';
import { mineSamBatch, type NegativeOptions } from './negatives.ts';
import { gradientsWithOneForward } from './one-forward-gradients.ts';
import { createOptimizerState, optimizerStep, type OptimizerOptions } from './optimizer.ts';
import { samplePatchPair, type PatchPair, type PatchPairOptions } from './patch-pairs.ts';
import type { Rng } from './rng.ts';
import { iterationRng, runIterations, type IterationProgress, type IterationsResult } from './run-iterations.ts';

export interface TrainOptions {
  config: SamConfig;
  runDir: string;
  iterations: number;
  /** Patch pairs per iteration (2 x this many patches go through the network). */
  batchPairs: number;
  seed: number;
  optimizer: OptimizerOptions;
  checkpointEvery: number;
  resume: boolean;
  patch?: PatchPairOptions;
  negatives?: NegativeOptions;
  augment?: AugmentOptions;
  tau?: number;
  /**
   * Start a new run from these weights (a saved model, e.g. the shipped one: fine-tuning) instead of
   * a random initialisation; the optimiser state starts fresh. Ignored by a resume.
   */
  init?: { file: string; weights: SamWeights };
  /**
   * Run the network twice per iteration (once to mine, once inside the differentiated loss) instead
   * of once (one-forward-gradients.ts). The same numbers either way; default false (env
   * SAM_TRAIN_TWO_PASS=1 turns it on). Not part of the run's identity.
   */
  twoPass?: boolean;
  /** The --data inputs (absolute paths), kept in checkpoints for a resume without --data; not part of the run's identity. */
  dataInputs?: string[];
}

export type TrainProgress = IterationProgress<LossRow>;

export type TrainResult = IterationsResult<LossRow>;

/** Options that define the run: a resume must use the same ones (iterations and checkpointEvery may change). */
const RUN_DEFINING = ['seed', 'batchPairs', 'optimizer', 'patch', 'negatives', 'augment', 'tau'] as const;

export { iterationSeed } from './run-iterations.ts';

/**
 * What stops a resume: the options that define the run and differ from the checkpoint's (named,
 * field by field), before any data is read.
 */
export function resumeConflicts(saved: Record<string, unknown>, o: TrainOptions): string[] {
  return changedRunOptions(RUN_DEFINING, saved, o as unknown as Record<string, unknown>);
}

export async function trainSam(
  cases: TrainingCase[],
  o: TrainOptions,
  hooks: {
    onProgress?: (p: TrainProgress) => void;
    onCheckpoint?: (dir: string) => void;
    /** Something the user should hear of (an older checkpoint resumed from). */
    onNote?: (text: string) => void;
    signal?: AbortSignal;
  } = {},
): Promise<TrainResult> {
  if (cases.length === 0) throw new InputError(o.runDir, 'no training cases');
  const log = new LossLog(o.runDir);
  const data = dataSetRecord(cases.map((c) => ({ source: c.source, size: c.ct.image.size })));
  const run = startRun({
    runDir: o.runDir,
    resume: o.resume,
    kind: 'sam',
    config: o.config,
    changedOptions: (saved, ckOpt) => [
      ...(!!ckOpt.v !== (o.optimizer.kind === 'adam')
        ? [`optimiser state: ${ckOpt.v ? 'adam' : 'sgd'} then, ${o.optimizer.kind} now`]
        : []),
      ...changedRunOptions(RUN_DEFINING, saved, o as unknown as Record<string, unknown>),
      ...changedDataSet(saved.data as DataSetRecord | undefined, data),
    ],
    fresh: () => {
      const w = o.init ? o.init.weights : createWeights(o.config, o.seed);
      return { weights: w, opt: createOptimizerState(o.optimizer, w) };
    },
  });
  if (run.note) hooks.onNote?.(run.note);
  let { weights, opt } = run;
  const { start, elapsedBefore } = run;
  const rows = log.load(start);
  log.start();
  const names = Object.keys(weights);
  const t0 = performance.now();
  const checkpoint = async (iteration: number): Promise<string> => {
    const dir = await saveCheckpoint(o.runDir, o.config, weights, opt, {
      iteration,
      elapsedSeconds: elapsedBefore + (performance.now() - t0) / 1000,
      // the backend for the record (a resume may use another: the same numbers within rounding)
      options: { ...o, config: o.config.name, init: o.init?.file, data, backend: tf.getBackend() },
    });
    log.plot(rows);
    hooks.onCheckpoint?.(dir);
    return dir;
  };

  const release = (): void => {
    disposeWeights(weights);
    disposeWeights(opt.m);
    if (opt.v) disposeWeights(opt.v);
  };

  /** Pairs [from, to) of an iteration's batch, appended to `pairs` (the same draws as all at once). */
  const samplePairs = (rng: Rng, pairs: PatchPair[] = [], from = 0, to = o.batchPairs): PatchPair[] => {
    for (let p = from; p < to; p++) {
      // A pair without positives (the official 20% of independently placed patches that miss each
      // other) would contribute nothing: draw again, a few times at most.
      let pair: PatchPair;
      let tries = 0;
      do pair = samplePatchPair(cases[rng.int(0, cases.length)].ct, rng, o.patch);
      while (pair.positives.local.a.length === 0 && ++tries < 8);
      for (const v of [pair.a, pair.b]) augmentPatch(v.image.data, v.image.size, rng, o.augment);
      pairs.push(pair);
    }
    return pairs;
  };
  // the next iteration's patch pairs, sampled while the GPU computes this one (the first half while
  // it mines, the rest while it computes the gradients), with the RNG that iteration continues from
  // (the same draws as sampling them then)
  let prefetched: { t: number; rng: Rng; pairs: PatchPair[] } | null = null;

  const step = async (t: number, fresh: Rng): Promise<LossRow> => {
    const tIter = performance.now();
    let rng = fresh;
    let pairs: PatchPair[];
    if (prefetched?.t === t) ({ rng, pairs } = prefetched);
    else pairs = samplePairs(rng);
    prefetched = null;
    const tSampled = performance.now();
    const [px, py, pz] = pairs[0].a.image.size;
    const input = tf.tidy(() => {
      const buf = new Float32Array(2 * pairs.length * px * py * pz);
      pairs.forEach((pair, p) => {
        buf.set(pair.a.image.data, 2 * p * px * py * pz);
        buf.set(pair.b.image.data, (2 * p + 1) * px * py * pz);
      });
      return tf.tensor5d(buf, [2 * pairs.length, pz, py, px, 1]);
    });
    // The current embeddings pick the positives' hard negatives (mining reads tensors asynchronously:
    // GPU backends have no synchronous read in Node), then the loss with those selections is
    // differentiated with respect to every weight. One forward pass serves both (its tape paused while
    // mining: one-forward-gradients.ts), or with twoPass the network runs again inside the loss.
    // the four terms and the total, [5], for one read-back
    let packed: tf.Tensor1D | null = null;
    let tMined = 0;
    let next: { t: number; rng: Rng; pairs: PatchPair[] } | null = null;
    const prefetchFirstHalf = () => {
      if (t >= o.iterations) return;
      next = { t: t + 1, rng: iterationRng(o.seed, t + 1), pairs: [] };
      samplePairs(next.rng, next.pairs, 0, Math.ceil(o.batchPairs / 2));
    };
    const mine = async (e: { local: tf.Tensor; global: tf.Tensor }) => {
      const sel = await mineSamBatch(e, pairs, rng, o.negatives, prefetchFirstHalf);
      tMined = performance.now();
      return sel;
    };
    const loss = (e: { local: tf.Tensor; global: tf.Tensor }, sel: Awaited<ReturnType<typeof mine>>): tf.Scalar => {
      const l = samInfoNceLossPacked(e, sel, o.tau ?? 0.5);
      packed = tf.keep(l.packed);
      return l.total;
    };
    const xs = names.map((n) => weights[n]);
    let value: tf.Scalar;
    let grads: tf.Tensor[];
    if (o.twoPass ?? process.env.SAM_TRAIN_TWO_PASS === '1') {
      const first = forward(weights, input as tf.Tensor5D, o.config);
      let sel;
      try {
        sel = await mine({ local: first.local, global: first.global });
      } finally {
        tf.dispose([first.local, first.global]);
      }
      ({ value, grads } = tf.valueAndGrads((...ws: tf.Tensor[]): tf.Scalar => {
        const w: SamWeights = Object.fromEntries(names.map((n, k) => [n, ws[k]]));
        const out = forward(w, input as tf.Tensor5D, o.config);
        return loss({ local: out.local, global: out.global }, sel);
      })(xs));
    } else
      ({ value, grads } = await gradientsWithOneForward(
        xs,
        () => {
          const out = forward(weights, input as tf.Tensor5D, o.config);
          return { local: out.local, global: out.global };
        },
        mine,
        loss,
      ));
    value.dispose();
    if (t < o.iterations) {
      // (tfjs queues GPU work and submits it in batches: send it all before the CPU turns to sampling)
      flushGpuQueue();
      next ??= { t: t + 1, rng: iterationRng(o.seed, t + 1), pairs: [] };
      samplePairs(next.rng, next.pairs, next.pairs.length);
      prefetched = next;
    }
    // the four terms and the total in one read-back (one flush and wait, not five)
    const terms5 = packed as tf.Tensor1D | null;
    if (!terms5) throw new Error('the loss was not computed');
    const read = await terms5.data();
    terms5.dispose();
    const [localAB, localBA, globalAB, globalBA, total] = Array.from(read);
    const terms = { localAB, localBA, globalAB, globalBA };
    input.dispose();
    const tGradients = performance.now();
    if (!Number.isFinite(total)) {
      grads.forEach((g) => g.dispose());
      throw new Error(`training diverged at iteration ${t}: loss is ${total} (lower the learning rate)`);
    }
    const gradRecord: SamWeights = Object.fromEntries(names.map((n, k) => [n, grads[k]]));
    const stepped = optimizerStep(o.optimizer, weights, gradRecord, opt, t);
    grads.forEach((g) => g.dispose());
    weights = stepped.weights;
    opt = stepped.state;
    const tEnd = performance.now();
    const row: LossRow = {
      iteration: t,
      total,
      ...terms,
      lr: stepped.lr,
      seconds: (tEnd - tIter) / 1000,
      phases: {
        sample: (tSampled - tIter) / 1000,
        mine: (tMined - tSampled) / 1000,
        gradients: (tGradients - tMined) / 1000,
        update: (tEnd - tGradients) / 1000,
      },
    };
    return row;
  };
  return runIterations({ start, log, rows, checkpoint, release, step }, o, hooks);
}
