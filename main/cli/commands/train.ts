/**
 * `sam train`: self-supervised training of the SAM network on the user's unlabeled CTs.
 * Ctrl-C once saves a checkpoint and stops (resume with --resume); twice quits at once.
 */
import { mkdirSync } from 'node:fs';
import { totalmem } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../index.ts';
import { initTfBackend, maxTensorBytes, type TfBackendName } from '../../engine/compute/tf-backend.ts';
import { getSamConfig, type SamConfig } from '../../engine/sam/config.ts';
import { checkWeights, disposeWeights, type SamWeights } from '../../engine/sam/network.ts';
import { loadModel } from '../../engine/sam/weights-file.ts';
import { CancelledError, InputError } from '../../engine/errors.ts';
import { forwardCost } from '../../engine/sam/flops.ts';
import { loadTrainingSet } from '../../engine/train/dataset.ts';
import { ADAM, SAM_SGD, type OptimizerOptions } from '../../engine/train/optimizer.ts';
import { resumeConflicts, trainSam } from '../../engine/train/train-loop.ts';
import { checkRunFolder, savedRunOptions } from '../../engine/train/checkpoint.ts';
import { NO_AUGMENT } from '../../engine/train/augment.ts';
import { checkPatchFitsDevice, checkPatchSize } from '../../engine/train/patch-size-check.ts';
import { bar, duration, ProgressLine } from '../progress.ts';
import { trainingInterrupt } from '../interrupt.ts';
import { caseLog } from '../case-log.ts';
import { intOption, numberOption, sizeOption } from '../option-values.ts';

const USAGE = `usage: sam train --data <folder|file|list.txt> [--data ...] --out <run dir> [options]
       sam train --out <run dir> --resume [--iterations N]

  --data DIR|FILE     CT volumes: folders are searched (NIfTI, MetaImage, NRRD, VTI, DICOM series);
                      a .txt file lists paths, one per line (relative to the list's folder). Non-CT
                      inputs, and each series of a DICOM folder that is not CT, are skipped with the reason.
  --out DIR           run folder: checkpoints/, model.samw, loss.csv, loss.svg (axes, legend), loss.png
  --config NAME       network configuration: small (default), paper, tiny (a unit-test layout, too
                      small to learn anatomy)
  --iterations N      total iterations (default 2000)
  --batch P           patch pairs per iteration (default 1)
  --patch X,Y,Z       patch size in voxels at 2 mm (default 96,96,32; at least two voxels of the
                      network's coarsest level per axis, 32,32,8 for small/paper; refused when the CPU
                      backend's memory would not hold it). On a CPU one iteration of the default takes
                      about a minute: --patch 48,48,16 --iterations 5 --optimizer adam is a smoke test
  --optimizer sgd|adam  sgd: official SAM schedule (lr 0.02, momentum 0.9, wd 1e-4, warm-up 500);
                      adam: lr 1e-3, for short runs and --init (default sgd)
  --lr X              learning rate
  --warmup N          warm-up iterations (sgd)
  --checkpoint-every N  (default 100)
  --init FILE         start from this model's weights (fine-tuning; same configuration), not at random
  --resume            continue the run in --out from its latest checkpoint, with its options and data
                      (those given again must be the same; --iterations may grow)
  --seed N            (default 0): same seed, data and options give the same weights
  --backend NAME      auto (default: webgpu, then tfjs-node, then cpu), webgpu, tensorflow, cpu
  --no-augment        no noise / blur / intensity augmentation
  --tau X             InfoNCE temperature (default 0.5)
  --allow-gaps        interpolate across missing slices of DICOM series (such series are skipped otherwise)`;

/** The weights of --init, refused unless they were trained with the run's configuration. */
function initWeights(file: string, config: SamConfig): SamWeights {
  const m = loadModel(file);
  if (JSON.stringify(m.config) !== JSON.stringify(config)) {
    disposeWeights(m.weights);
    throw new InputError(
      file,
      `--init model has configuration '${m.config.name}', the run '${config.name}' (give --config ${m.config.name} to continue that network)`,
    );
  }
  checkWeights(config, m.weights, file);
  return m.weights;
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'train the SAM embedding network on unlabeled CT (self-supervised)',
  usage: USAGE,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        data: { type: 'string', multiple: true },
        out: { type: 'string' },
        config: { type: 'string' },
        iterations: { type: 'string' },
        batch: { type: 'string' },
        patch: { type: 'string' },
        optimizer: { type: 'string' },
        lr: { type: 'string' },
        warmup: { type: 'string' },
        'checkpoint-every': { type: 'string' },
        resume: { type: 'boolean', default: false },
        init: { type: 'string' },
        seed: { type: 'string' },
        backend: { type: 'string', default: 'auto' },
        'no-augment': { type: 'boolean', default: false },
        tau: { type: 'string' },
        'allow-gaps': { type: 'boolean', default: false },
      },
    });
    if (!values.out || (!values.data?.length && !values.resume)) {
      console.error(`sam train: ${values.out ? '--data' : '--out'} is required\n\n${USAGE}`);
      return 2;
    }
    // what can be refused without the data is, before it is read (minutes for a large set); a resumed
    // run's options given again and different are refused when the run starts
    checkRunFolder(values.out, values.resume, 'sam');
    // a resumed run takes its own options for those not given again (a different one is refused later)
    const saved: Partial<ReturnType<typeof savedRunOptions>> = values.resume ? savedRunOptions(values.out) : {};
    // --resume alone reads the data the run was started with (recorded since 2026-11-28)
    const data = values.data?.length ? values.data : saved.dataInputs;
    if (!data?.length)
      throw new InputError(
        values.out,
        "--resume without --data: this run's checkpoint does not record its data; give --data",
      );
    const int = intOption;
    const patch = values.patch ? sizeOption('patch', values.patch) : (saved.patch?.patchSize ?? [96, 96, 32]);
    const kind = values.optimizer ?? saved.optimizer?.kind ?? 'sgd';
    if (kind !== 'sgd' && kind !== 'adam') throw new InputError('--optimizer', 'sgd or adam');
    const optimizer: OptimizerOptions =
      saved.optimizer && !values.optimizer && !values.lr && !values.warmup
        ? { ...saved.optimizer }
        : { ...(kind === 'adam' ? ADAM : SAM_SGD) };
    if (values.lr) optimizer.lr = numberOption('lr', values.lr, { above: 0 });
    if (values.warmup) optimizer.warmup = int('warmup', values.warmup, 0);
    const config = getSamConfig(values.config ?? saved.config ?? 'small');
    const iterations = values.iterations ? int('iterations', values.iterations) : (saved.iterations ?? 2000);
    const batchPairs = values.batch ? int('batch', values.batch) : (saved.batchPairs ?? 1);
    const seed = values.seed ? int('seed', values.seed, 0) : (saved.seed ?? 0);
    const checkpointEvery = values['checkpoint-every']
      ? int('checkpoint-every', values['checkpoint-every'])
      : (saved.checkpointEvery ?? 100);
    const tau = values.tau ? numberOption('tau', values.tau, { above: 0 }) : (saved.tau ?? 0.5);
    const augment = values['no-augment'] ? NO_AUGMENT : saved.augment;

    const backend = await initTfBackend({ backend: values.backend as TfBackendName | 'auto' });
    if (!backend.gradients) throw new Error(`cannot train: gradients unavailable (${backend.gradientsReason})`);
    console.error(
      `backend: ${backend.backend}` +
        backend.attempts
          .filter((a) => !a.ok)
          .map((a) => ` (skipped ${a.name}: ${a.reason})`)
          .join(''),
    );
    if (saved.backend && saved.backend !== backend.backend)
      console.error(
        `note: the run trained on ${saved.backend} until now, on ${backend.backend} from here (the same computation; float rounding differs)`,
      );
    // the activations live in host memory on the CPU backends; a GPU's own limit shows when it allocates
    const onHost = backend.backend === 'cpu' || backend.backend === 'tensorflow';
    checkPatchSize(config, patch, batchPairs, onHost ? totalmem() : undefined);
    // on a GPU, each activation in one device buffer
    const cap = onHost ? undefined : maxTensorBytes();
    if (cap) checkPatchFitsDevice(config, patch, batchPairs, cap);
    const cost = forwardCost(config, [patch[2], patch[1], patch[0]]);
    console.error(
      `network: ${config.name}, ${(cost.params / 1e6).toFixed(2)} M parameters, ${(cost.flops / 1e9).toFixed(2)} GFLOP per patch forward`,
    );

    const init = values.init ? { file: values.init, weights: initWeights(values.init, config) } : undefined;
    const runOptions = {
      config,
      runDir: values.out,
      iterations,
      batchPairs,
      seed,
      optimizer,
      checkpointEvery,
      resume: values.resume,
      patch: { patchSize: patch },
      augment,
      tau,
      init,
      dataInputs: data.map((d) => resolve(d)),
    };
    if (values.resume) {
      // refused now, not after the data is read
      const conflicts = resumeConflicts(saved as Record<string, unknown>, runOptions);
      if (saved.config && saved.config !== config.name)
        conflicts.unshift(`configuration: '${saved.config}' then, '${config.name}' now`);
      if (conflicts.length)
        throw new InputError(
          values.out,
          `--resume with other options than the run was started with (${conflicts.join('; ')}): a resumed run must continue the same run`,
        );
      // (said once the options are known to be the run's own: a refused resume names the differences)
      console.error(
        `resuming ${values.out}: config ${config.name}, ${iterations} iterations, batch ${batchPairs}, patch ${patch.join(',')}, ` +
          `${optimizer.kind} lr ${optimizer.lr}, seed ${seed}, tau ${tau}${augment && !augment.noiseProb && !augment.blurProb && !augment.intensityProb ? ', no augmentation' : ''}`,
      );
      if (saved.iterationDone !== undefined && iterations <= saved.iterationDone) {
        console.error(
          `${values.out}: the run is at iteration ${saved.iterationDone} of ${iterations}: nothing to train (give --iterations above ${saved.iterationDone} to continue it)`,
        );
        return 0;
      }
    }

    const interrupt = trainingInterrupt();
    try {
      console.error('reading training data...');
      const dataLog = caseLog();
      const { cases, skipped } = await loadTrainingSet(data, {
        signal: interrupt.signal,
        allowGaps: values['allow-gaps'],
        onCase: dataLog.onCase,
      });
      dataLog.summary();
      console.error(
        `${cases.length} CT volume${cases.length === 1 ? '' : 's'} for training, ${skipped.length} input${skipped.length === 1 ? '' : 's'} skipped`,
      );
      // a volume smaller than the patch along an axis (at 2 mm) trains on patches padded with air
      const small = cases.filter((c) => c.ct.image.size.some((n, a) => n < patch[a]));
      if (small.length)
        console.error(
          `note: ${small.length} of them smaller than the ${patch.join('x')} patch along an axis at 2 mm, so their patches are partly air (padding): ` +
            small
              .slice(0, 3)
              .map((c) => `${c.source} (${c.ct.image.size.join('x')})`)
              .join(', ') +
            (small.length > 3 ? ', ...' : ''),
        );
      mkdirSync(values.out, { recursive: true });
      const progress = new ProgressLine();
      const result = await trainSam(cases, runOptions, {
        signal: interrupt.signal,
        // rate and ETA first: a narrow terminal cuts the end of the line
        onProgress: (p) =>
          progress.update(
            `${bar(p.iteration / p.iterations, 16)} ${p.iteration}/${p.iterations} ` +
              `${p.rate < 1 ? `${(1 / p.rate).toFixed(1)} s/it` : `${p.rate.toFixed(2)} it/s`} ETA ${duration(p.etaSeconds)} ` +
              // the total is the sum of the four InfoNCE terms (each patch as anchor)
              `loss ${p.row.total.toFixed(3)} = local ${p.row.localAB.toFixed(2)}+${p.row.localBA.toFixed(2)} ` +
              `+ global ${p.row.globalAB.toFixed(2)}+${p.row.globalBA.toFixed(2)} ` +
              `lr ${p.row.lr.toExponential(1)}`,
          ),
        onCheckpoint: (dir) => progress.note(`checkpoint ${dir}`),
        onNote: (text) => progress.note(`note: ${text}`),
      });
      if (!result.checkpoint)
        progress.done(
          result.iteration > 0
            ? `stopped before an iteration was trained: the run stays at iteration ${result.iteration} (continue it with: sam train --out ${values.out} --resume)`
            : `stopped before the first iteration: nothing trained, no model written (start it again without --resume)`,
        );
      else
        progress.done(
          `${result.stopped === 'done' ? 'finished' : 'stopped'} at iteration ${result.iteration}; model ${values.out}/model.samw; loss curve ${values.out}/loss.csv, loss.svg (axes, legend), loss.png` +
            (result.stopped === 'done' ? '' : `\ncontinue with: sam train --out ${values.out} --resume`),
        );
      return result.stopped === 'done' ? 0 : interrupt.exitCode();
    } catch (e) {
      if (e instanceof CancelledError) {
        console.error(`${e.message}: nothing trained, nothing written to ${values.out}`);
        return interrupt.exitCode();
      }
      throw e;
    } finally {
      interrupt.dispose();
    }
  },
};
