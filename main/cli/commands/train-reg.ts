/**
 * `sam train-reg`: trains the SAM-deform network (register/deform-net/) on pairs made from the user's
 * CTs by known transforms. Ctrl-C once saves a checkpoint and stops (resume with --resume); twice
 * quits at once.
 */
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Command } from '../index.ts';
import { MODEL_OPTIONS, openModelFromArgs } from '../model-args.ts';
import { initTfBackend, type TfBackendName } from '../../engine/compute/tf-backend.ts';
import { InputError } from '../../engine/errors.ts';
import { ADAM, type OptimizerOptions } from '../../engine/train/optimizer.ts';
import { getDeformNetConfig, sizeMultiple, type DeformNetConfig } from '../../engine/register/deform-net/config.ts';
import { checkDeformWeights, disposeDeformWeights } from '../../engine/register/deform-net/network.ts';
import { loadDeformNet } from '../../engine/register/deform-net/weights-file.ts';
import { DEFAULT_REG_LOSS, trainDeformNet } from '../../engine/register/deform-net/train.ts';
import { loadRegTrainingSet } from '../../engine/register/deform-net/train-set.ts';
import type { Vec3 } from '../../engine/volume/volume.ts';
import { bar, duration, ProgressLine } from '../progress.ts';
import { trainingInterrupt } from '../interrupt.ts';
import { caseLog } from '../case-log.ts';
import { checkRunFolder } from '../../engine/train/checkpoint.ts';
import { intOption, numberOption } from '../option-values.ts';

const USAGE = `usage: sam train-reg --data <folder|file|list.txt> [--data ...] --out <run dir> [options]

  Trains the SAM-deform network (a small U-Net on the 4 mm deform grid: fixed and pre-registered
  moving CT plus the SAM local-feature correlation in, a stationary velocity field out, integrated by
  scaling and squaring) on pairs made from each CT by a known affine and smooth deformation.

  --data DIR|FILE     CT volumes (folders are searched); a .txt file lists one CT per line, optionally
                      followed by its label map ("ct.nii.gz labels.nii.gz": adds the Dice term)
  --out DIR           run folder: checkpoints/, model.samw (the network file for sam register
                      --deform-net), loss.csv, loss.svg (axes, legend), loss.png
  --net NAME          network configuration: small (default), tiny
  --iterations N      total iterations (default 500)
  --crop X,Y,Z        crop of the 4 mm grid per pair, voxels (default 32,32,32)
  --lr X              Adam learning rate (default 1e-3)
  --alpha X           diffusion weight (default ${DEFAULT_REG_LOSS.alpha})
  --feature-weight X  SAM feature similarity weight (default ${DEFAULT_REG_LOSS.featureWeight})
  --dice-weight X     soft Dice weight where labels exist (default ${DEFAULT_REG_LOSS.diceWeight})
  --checkpoint-every N  (default 50)
  --init FILE         start from this network's weights (same configuration)
  --resume            continue the run in --out from its latest checkpoint
  --seed N            (default 0): same seed, data and options give the same weights
  --backend NAME      tfjs backend for training: cpu (default; the only one the network is tested on),
                      auto, webgpu, tensorflow
  --weights FILE      SAM model for the features (default resources/sam-small.samw)
  --random-init SEED  the untrained SAM network instead (testing only); --config NAME its configuration
  --device NAME       compute device for the SAM embeddings (default auto)`;

export const trainRegCommand: Command = {
  name: 'train-reg',
  summary: 'train the SAM-deform registration network on pairs made from CTs by known transforms',
  usage: USAGE,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        data: { type: 'string', multiple: true },
        out: { type: 'string' },
        net: { type: 'string', default: 'small' },
        iterations: { type: 'string', default: '500' },
        crop: { type: 'string', default: '32,32,32' },
        lr: { type: 'string', default: '1e-3' },
        alpha: { type: 'string', default: String(DEFAULT_REG_LOSS.alpha) },
        'feature-weight': { type: 'string', default: String(DEFAULT_REG_LOSS.featureWeight) },
        'dice-weight': { type: 'string', default: String(DEFAULT_REG_LOSS.diceWeight) },
        'checkpoint-every': { type: 'string', default: '50' },
        init: { type: 'string' },
        resume: { type: 'boolean', default: false },
        seed: { type: 'string', default: '0' },
        backend: { type: 'string', default: 'cpu' },
        ...MODEL_OPTIONS,
      },
    });
    if (!values.data?.length || !values.out) {
      console.error(USAGE);
      return 2;
    }
    const int = intOption;
    const num = (name: string, v: string) => numberOption(name, v, { min: 0 });
    const config: DeformNetConfig = getDeformNetConfig(values.net);
    const m = sizeMultiple(config);
    const crop = values.crop.split(',').map((v) => int('crop', v)) as Vec3;
    if (crop.length !== 3 || crop.some((n) => n % m !== 0))
      throw new InputError('--crop', `three sizes X,Y,Z, multiples of ${m}, got '${values.crop}'`);
    const optimizer: OptimizerOptions = { ...ADAM, lr: num('lr', values.lr) };
    // refused before the CTs are read and embedded (minutes)
    checkRunFolder(values.out, values.resume, 'deform-net');
    const interrupt = trainingInterrupt();
    try {
      // SAM features first (the engine may use tfjs too), then the training backend
      const model = await openModelFromArgs(values, '--random-init SEED');
      console.error('reading and embedding the training CTs...');
      const dataLog = caseLog();
      let cases;
      try {
        cases = await loadRegTrainingSet(values.data, model.engine, {
          spacingMm: config.spacingMm,
          featureChannels: config.featureChannels,
          signal: interrupt.signal,
          onCase: dataLog.onCase,
        });
      } finally {
        await model.engine.dispose();
      }
      dataLog.summary();
      const backend = await initTfBackend({ backend: values.backend as TfBackendName | 'auto' });
      if (!backend.gradients) throw new Error(`cannot train: gradients unavailable (${backend.gradientsReason})`);
      console.error(`backend: ${backend.backend}; network ${config.name}; ${cases.length} CT volume(s)`);
      let init;
      if (values.init) {
        const n = loadDeformNet(values.init);
        if (JSON.stringify(n.config) !== JSON.stringify(config)) {
          disposeDeformWeights(n.weights);
          throw new InputError(
            values.init,
            `--init network has configuration '${n.config.name}', the run '${config.name}'`,
          );
        }
        checkDeformWeights(config, n.weights, values.init);
        init = { file: values.init, weights: n.weights };
      }
      mkdirSync(values.out, { recursive: true });
      const progress = new ProgressLine();
      const result = await trainDeformNet(
        cases,
        {
          config,
          runDir: values.out,
          iterations: int('iterations', values.iterations),
          seed: int('seed', values.seed, 0),
          optimizer,
          checkpointEvery: int('checkpoint-every', values['checkpoint-every']),
          resume: values.resume,
          sample: { crop },
          loss: {
            ...DEFAULT_REG_LOSS,
            alpha: num('alpha', values.alpha),
            featureWeight: num('feature-weight', values['feature-weight']),
            diceWeight: num('dice-weight', values['dice-weight']),
          },
          init,
        },
        {
          signal: interrupt.signal,
          // rate, ETA and TRE first: a narrow terminal cuts the end of the line
          onProgress: (p) =>
            progress.update(
              `${bar(p.iteration / p.iterations, 16)} ${p.iteration}/${p.iterations} ` +
                `${p.rate < 1 ? `${(1 / p.rate).toFixed(1)} s/it` : `${p.rate.toFixed(2)} it/s`} ETA ${duration(p.etaSeconds)} ` +
                `TRE ${p.row.treBefore.toFixed(2)} -> ${p.row.treAfter.toFixed(2)} mm loss ${p.row.total.toFixed(4)} ` +
                `(ncc ${p.row.ncc.toFixed(3)}, feature ${p.row.feature.toFixed(3)}, smooth ${p.row.smooth.toFixed(4)}` +
                `${p.row.dice ? `, dice ${p.row.dice.toFixed(3)}` : ''})`,
            ),
          onCheckpoint: (dir) => progress.note(`checkpoint ${dir}`),
          onNote: (text) => progress.note(`note: ${text}`),
        },
      );
      progress.done(
        result.checkpoint
          ? `${result.stopped === 'done' ? 'finished' : 'stopped'} at iteration ${result.iteration}; network ${values.out}/model.samw; loss curve ${values.out}/loss.csv, loss.svg (axes, legend), loss.png`
          : `stopped before an iteration was trained: nothing new saved${result.iteration > 0 ? ` (the run stays at iteration ${result.iteration})` : ', no network written'}`,
      );
      return result.stopped === 'done' ? 0 : interrupt.exitCode();
    } finally {
      interrupt.dispose();
    }
  },
};
