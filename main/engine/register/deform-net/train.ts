/**
 * The training loop of the SAM-deform network (`sam train-reg`), built from the SAM training's pieces
 * (train/: optimiser, seeded RNG per iteration, checkpoints with --resume, loss CSV and PNG): each
 * iteration makes one pair (train-data.ts), runs the network, warps the moving image, features and
 * labels with its displacement, and takes one optimiser step on
 *   loss = (1 + LNCC) + featureWeight (1 - cos of SAM features) + alpha diffusion + diceWeight (1 - soft Dice)
 * (losses.ts; Dice only for CTs with labels). It also logs the pair's TRE (mm, known truth) before and
 * after the network over the counted voxels. Deterministic for a seed: iteration t draws from an RNG
 * seeded by (seed, t), so a resumed run continues as an uninterrupted one would.
 * Checkpoints every N iterations, at the end, and when cancelled (AbortSignal).
 */
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../../errors.ts';
import { applyAffine, indexToWorldMatrix } from '../../volume/geometry.ts';
import type { Vec3 } from '../../volume/volume.ts';
import { changedRunOptions, saveCheckpoint, startRun, type WeightsIo } from '../../train/checkpoint.ts';
import { changedDataSet, dataSetRecord, type DataSetRecord } from '../../train/data-set-record.ts';
import { LossLog } from '../../train/loss-log.ts';
import {
  createOptimizerState,
  optimizerStep,
  type OptimizerOptions,
  type OptimizerState,
} from '../../train/optimizer.ts';
import type { Rng } from '../../train/rng.ts';
import { runIterations, type IterationProgress, type IterationsResult } from '../../train/run-iterations.ts';
import type { DeformNetConfig } from './config.ts';
import { sampleTensors, voxelToWorld } from './inputs.ts';
import { warp } from './layers.ts';
import { diffusion, featureDissimilarity, lncc, softDice } from './losses.ts';
import { createDeformWeights, deformForward, disposeDeformWeights, type DeformNetWeights } from './network.ts';
import { makeTrainingSample, type RegSampleOptions, type RegTrainingCase } from './train-data.ts';
import { loadDeformNet, saveDeformNet } from './weights-file.ts';

export interface RegLossRow {
  iteration: number;
  total: number;
  ncc: number;
  feature: number;
  smooth: number;
  dice: number;
  treBefore: number;
  treAfter: number;
  lr: number;
  seconds: number;
  [k: string]: number;
}

const COLUMNS: (keyof RegLossRow & string)[] = [
  'iteration',
  'total',
  'ncc',
  'feature',
  'smooth',
  'dice',
  'treBefore',
  'treAfter',
  'lr',
  'seconds',
];
const SERIES: [keyof RegLossRow & string, [number, number, number]][] = [
  ['total', [0, 0, 0]],
  ['ncc', [31, 119, 180]],
  ['feature', [214, 39, 40]],
  ['smooth', [44, 160, 44]],
  ['dice', [148, 103, 189]],
];

export interface RegLossWeights {
  featureWeight: number;
  alpha: number;
  diceWeight: number;
  windowRadius: number;
}

export const DEFAULT_REG_LOSS: RegLossWeights = { featureWeight: 0.5, alpha: 1, diceWeight: 0.5, windowRadius: 2 };

export interface TrainRegOptions {
  config: DeformNetConfig;
  runDir: string;
  iterations: number;
  seed: number;
  optimizer: OptimizerOptions;
  checkpointEvery: number;
  resume: boolean;
  sample: Omit<RegSampleOptions, 'spacingMm' | 'corrRadius'>;
  loss: RegLossWeights;
  /** Start from these weights (same configuration) instead of a random initialisation. */
  init?: { file: string; weights: DeformNetWeights };
}

export type TrainRegProgress = IterationProgress<RegLossRow>;

export type TrainRegResult = IterationsResult<RegLossRow>;

export const DEFORM_IO: WeightsIo<DeformNetConfig> = {
  save: saveDeformNet,
  load: (path) => loadDeformNet(path),
};

const RUN_DEFINING = ['seed', 'optimizer', 'sample', 'loss'] as const;

/** Mean |a - b| (3-vectors) over the voxels with weight. */
function meanDistance(a: Float32Array, b: Float32Array, mask: Float32Array): number {
  let s = 0;
  let n = 0;
  for (let v = 0; v < mask.length; v++)
    if (mask[v]) {
      s += Math.hypot(a[3 * v] - b[3 * v], a[3 * v + 1] - b[3 * v + 1], a[3 * v + 2] - b[3 * v + 2]);
      n++;
    }
  return n ? s / n : NaN;
}

export async function trainDeformNet(
  cases: RegTrainingCase[],
  o: TrainRegOptions,
  hooks: {
    onProgress?: (p: TrainRegProgress) => void;
    onCheckpoint?: (dir: string) => void;
    /** Something the user should hear of (an older checkpoint resumed from: checkpoint.ts). */
    onNote?: (text: string) => void;
    signal?: AbortSignal;
  } = {},
): Promise<TrainRegResult> {
  if (cases.length === 0) throw new InputError(o.runDir, 'no training cases');
  const log = new LossLog<RegLossRow>(o.runDir, COLUMNS, SERIES);
  const data = dataSetRecord(cases.map((c) => ({ source: c.source, size: c.ct.size })));
  const run = startRun({
    runDir: o.runDir,
    resume: o.resume,
    kind: 'deform-net',
    config: o.config,
    io: DEFORM_IO,
    changedOptions: (saved) => [
      ...changedRunOptions(RUN_DEFINING, saved, o as unknown as Record<string, unknown>),
      ...changedDataSet(saved.data as DataSetRecord | undefined, data),
    ],
    fresh: () => {
      const w = o.init ? o.init.weights : createDeformWeights(o.config, o.seed);
      return { weights: w, opt: createOptimizerState(o.optimizer, w) };
    },
  });
  if (run.note) hooks.onNote?.(run.note);
  let weights: DeformNetWeights = run.weights;
  let opt: OptimizerState = run.opt;
  const { start, elapsedBefore } = run;
  const rows = log.load(start);
  log.start();
  const names = Object.keys(weights);
  const t0 = performance.now();
  const checkpoint = async (iteration: number): Promise<string> => {
    const dir = await saveCheckpoint(
      o.runDir,
      o.config,
      weights,
      opt,
      {
        iteration,
        elapsedSeconds: elapsedBefore + (performance.now() - t0) / 1000,
        options: { ...o, config: o.config.name, init: o.init?.file, data, backend: tf.getBackend() },
      },
      DEFORM_IO,
    );
    log.plot(rows);
    hooks.onCheckpoint?.(dir);
    return dir;
  };
  const release = (): void => {
    disposeDeformWeights(weights);
    disposeDeformWeights(opt.m);
    if (opt.v) disposeDeformWeights(opt.v);
  };
  const L = o.loss;
  const step = async (t: number, rng: Rng): Promise<RegLossRow> => {
    const tIter = performance.now();
    const c = cases[rng.int(0, cases.length)];
    const ts = makeTrainingSample(c, rng, {
      ...o.sample,
      spacingMm: o.config.spacingMm,
      corrRadius: o.config.corrRadius,
    });
    const S = ts.sample;
    const [ni, nj, nk] = S.grid.size;
    const { input, mask } = sampleTensors(S);
    const shape = (ch: number): [number, number, number, number, number] => [1, nk, nj, ni, ch];
    const ff = tf.tensor5d(S.fixedFeatures, shape(S.featureChannels));
    const mf = tf.tensor5d(S.movingFeatures, shape(S.featureChannels));
    const lab = ts.labels
      ? {
          fixed: tf.tensor5d(ts.labels.fixed, shape(ts.labels.count)),
          moving: tf.tensor5d(ts.labels.moving, shape(ts.labels.count)),
        }
      : undefined;
    let kept: tf.Tensor[] = [];
    const lossFn = (...ws: tf.Tensor[]): tf.Scalar => {
      const w: DeformNetWeights = Object.fromEntries(names.map((n, k) => [n, ws[k]]));
      const out = deformForward(w, input, o.config);
      const ncc = tf.add(1, lncc(input.fixed, warp(input.moving, out.displacement), L.windowRadius, mask)) as tf.Scalar;
      const feature = featureDissimilarity(ff, warp(mf, out.displacement), mask);
      const smooth = diffusion(out.displacement, L.alpha);
      const dice = lab ? softDice(lab.fixed, warp(lab.moving, out.displacement)) : tf.scalar(0);
      kept = [ncc, feature, smooth, dice, out.displacement].map((x) => tf.keep(x));
      let total = tf.add(tf.add(ncc, tf.mul(feature, L.featureWeight)), smooth);
      if (lab) total = tf.add(total, tf.mul(dice, L.diceWeight));
      return total as tf.Scalar;
    };
    const { value, grads } = tf.valueAndGrads(lossFn)(names.map((n) => weights[n]));
    const [ncc, feature, smooth, dice] = await Promise.all(kept.slice(0, 4).map(async (x) => (await x.data())[0]));
    const disp = (await kept[4].data()) as Float32Array;
    tf.dispose(kept);
    tf.dispose([input.fixed, input.moving, input.correlation, mask, ff, mf]);
    if (lab) tf.dispose([lab.fixed, lab.moving]);
    const total = (await value.data())[0];
    value.dispose();
    if (!Number.isFinite(total)) {
      grads.forEach((g) => g.dispose());
      throw new Error(`training diverged at iteration ${t}: loss is ${total} (lower the learning rate)`);
    }
    const stepped = optimizerStep(o.optimizer, weights, Object.fromEntries(names.map((n, k) => [n, grads[k]])), opt, t);
    grads.forEach((g) => g.dispose());
    weights = stepped.weights;
    opt = stepped.state;
    // TRE of the pair before (the affine b alone) and after (b after the network's map)
    const uw = voxelToWorld(S.grid, disp);
    const toW = indexToWorldMatrix(S.grid);
    const after = new Float32Array(uw.length);
    const a = ts.affine as Parameters<typeof applyAffine>[0];
    for (let k = 0, q = 0; k < nk; k++)
      for (let j = 0; j < nj; j++)
        for (let i = 0; i < ni; i++, q += 3) {
          const x = applyAffine(toW, [i, j, k]);
          after.set(applyAffine(a, [x[0] + uw[q], x[1] + uw[q + 1], x[2] + uw[q + 2]] as Vec3), q);
        }
    const row: RegLossRow = {
      iteration: t,
      total,
      ncc,
      feature,
      smooth,
      dice,
      treBefore: meanDistance(S.base, ts.truth, S.mask),
      treAfter: meanDistance(after, ts.truth, S.mask),
      lr: stepped.lr,
      seconds: (performance.now() - tIter) / 1000,
    };
    return row;
  };
  return runIterations({ start, log, rows, checkpoint, release, step }, o, hooks);
}
